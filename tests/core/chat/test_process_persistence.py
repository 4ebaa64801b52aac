"""Real processes, each with its own --data-dir: nothing typed is lost across kill -9 and
restarts, offline private messages, bad storage. (The logic: test_persistence.py.)"""

from __future__ import annotations

import sqlite3

import pytest

from core.store import FILENAME
from tests.support.procs import Cluster, kind


@pytest.fixture
def cluster(tmp_path):
    with Cluster(tmp_path) as c:
        yield c


pytestmark = pytest.mark.slow


def history_lines(proc, conversation: str) -> list[dict]:
    return [m for e in proc.matching(kind("history", conversation=conversation))
            for m in e["messages"]]


def test_outbox__kill_9_mid_burst_then_restart_every_line_shown_to_each_member_once(cluster):
    members = cluster.start_ring(["alice", "bob", "carol"])
    dave = cluster.start("dave", bootstrap=members[1])
    for p in (*members, dave):
        p.send("join #room")
        p.wait_for(kind("joined", channel="room"))
    lines = [f"burst line {i}" for i in range(60)]
    for line in lines:
        dave.send(f"send room {line}")
    dave.wait_for(kind("delivered"), count=5, what="five lines delivered")
    dave.kill()                                         # kill -9 in the middle of the burst
    shown_pending = {e["msg_id"] for e in dave.matching(kind("pending"))}
    assert len(dave.matching(kind("delivered"))) < len(lines), "the burst was over already"
    # again, same data directory, no --bootstrap: through a known peer
    again = cluster.start("dave", data_dir=dave.data_dir)
    accepted = history_lines(again, "#room")
    assert shown_pending <= {m["msg_id"] for m in accepted}    # every line shown is on disk
    texts = [m["text"] for m in accepted]
    assert texts == lines[:len(texts)]                          # in the order typed
    again.wait_for(kind("joined", channel="room"), what="rejoined without a join")
    for p in members:
        for m in accepted:
            p.wait_for(kind("channel", msg_id=m["msg_id"]), what=m["text"])
    members[0].send("send room marker")        # sent last: anything repeated came before
    for p in members:
        p.wait_for(kind("channel", text="marker"))
        got = [e["msg_id"] for e in p.matching(kind("channel", channel="room"))
               if e["from"] == "dave"]
        assert sorted(got) == sorted(m["msg_id"] for m in accepted)   # each exactly once
    pending = {m["msg_id"] for m in accepted if m["state"] == "pending"}
    for msg_id in pending:
        again.wait_for(kind("delivered", msg_id=msg_id), what="resent and delivered")
    mark = again.mark()
    again.send("search burst line 7")
    hits = again.wait_for(kind("search"), since=mark)["hits"]
    found = {h["text"] for h in hits}     # every word, as a substring: 7, 17, 27, ...
    assert "burst line 7" in found and all("7" in t for t in found)
    for p in (*members, again):
        assert p.stop() == 0


# Issue 23's mailbox test: it failed about 1 run in 3 (a graceful leave right after joins left a
# node alone, which dropped the letter: fixed in 55322ca); it runs in every suite run. A failed
# wait gives up after 30 s (a stop after 60 s); the run takes ~2 s; this timeout, for a
# hang, is well below the suite's 300 s.
@pytest.mark.timeout(120)
def test_mailbox__a_message_to_an_offline_nick_arrives_once_after_both_restarted(cluster):
    alice, bob, carol = cluster.start_ring(["alice", "bob", "carol"])
    bob.send("msg alice hi alice")                  # first contact: both keys pinned
    alice.wait_for(kind("private", text="hi alice"))
    assert alice.stop() == 0                        # alice is offline
    mark = bob.mark()
    bob.send("msg alice while you were away")
    pending = bob.wait_for(kind("pending", text="while you were away"), since=mark)
    bob.wait_for(kind("info"), since=mark, what="left in the mailbox")
    assert bob.matching(kind("error"), since=mark) == []
    assert bob.stop() == 0                          # the sender goes too
    alice = cluster.start("alice", bootstrap=carol, data_dir=alice.data_dir)
    got = alice.wait_for(kind("private", text="while you were away"), what="the mail")
    assert got["from"] == "bob" and got["verified"] is True
    bob = cluster.start("bob", bootstrap=carol, data_dir=bob.data_dir)
    assert [m["state"] for m in history_lines(bob, "alice")
            if m["msg_id"] == pending["msg_id"]] == ["pending"]
    bob.wait_for(kind("delivered", msg_id=pending["msg_id"]), what="the receipt")
    assert alice.stop() == 0
    alice = cluster.start("alice", bootstrap=carol, data_dir=alice.data_dir)
    bob.send("msg alice marker")
    alice.wait_for(kind("private", text="marker"))
    assert alice.matching(kind("private", text="while you were away")) == []   # once
    assert [m["text"] for m in history_lines(alice, "bob")] == ["hi alice",
                                                                 "while you were away"]
    for p in (alice, bob, carol):
        assert p.stop() == 0


def test_store__corrupt_database_set_aside_and_a_second_process_refused(cluster, tmp_path):
    alice = cluster.start("alice")
    assert alice.stop() == 0
    db = alice.data_dir / "users" / "alice" / FILENAME
    db.write_bytes(b"this is not a database" * 100)
    again = cluster.start("alice", data_dir=alice.data_dir)
    error = again.wait_for(kind("error"), what="the set-aside notice")["message"]
    assert str(db) in error and "moved aside" in error
    assert [p.name for p in db.parent.iterdir() if ".corrupt-" in p.name]
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    second = cluster.start("alice", data_dir=alice.data_dir, wait_ready=False)
    assert second.wait_exit(30) == 2
    said = "\n".join(second.lines)
    assert "already running" in said and str(alice.data_dir) in said
    assert again.stop() == 0
