"""Real ``chordchat --headless --json`` processes on loopback: channels and private messages."""

from __future__ import annotations

import pytest

from tests.support.procs import Cluster, kind


@pytest.fixture
def cluster(tmp_path):
    with Cluster(tmp_path) as c:
        yield c


pytestmark = pytest.mark.slow


def test_channel__non_member_and_member_sends_reach_each_member_once(cluster):
    a, b, c, d, e = cluster.start_ring(["alice", "bob", "carol", "dave", "erin"])
    for p in (b, c, d):
        p.send("join #General")
    for p in (b, c, d):
        p.wait_for(kind("joined", channel="general"), what="joined #general")
    a.send("send #general hello from outside")
    a.wait_for(kind("sent", channel="general"), what="ack of the send")
    for p in (b, c, d):
        p.wait_for(kind("channel", channel="general", text="hello from outside"))
    b.send("send general me too")
    b.wait_for(kind("channel", channel="general", text="me too", **{"from": "bob"}),
               what="bob's own message back")
    for p in (c, d):
        p.wait_for(kind("channel", channel="general", text="me too"))
    # exactly once: a marker sent last has arrived, so anything duplicated has too
    c.send("send general marker")
    for p in (b, c, d):
        p.wait_for(kind("channel", text="marker"))
        assert len(p.matching(kind("channel", text="hello from outside"))) == 1
        assert len(p.matching(kind("channel", text="me too"))) == 1
    for p in (a, e):
        assert p.matching(kind("channel")) == []
    for p in (a, b, c, d, e):
        assert p.stop() == 0


def test_msg__reaches_the_right_node_and_unknown_nick_is_an_error(cluster):
    procs = cluster.start_ring(["alice", "bob", "carol", "dave", "erin"])
    a, e = procs[0], procs[4]
    a.send("msg erin hello erin")
    got = e.wait_for(kind("private", text="hello erin"), what="erin's private message")
    assert got["from"] == "alice" and got["outgoing"] is False
    a.wait_for(kind("private", text="hello erin", outgoing=True), what="alice's receipt")
    for p in procs[1:4]:
        assert p.matching(kind("private")) == []
    mark = a.mark()
    a.send("msg nobody are you there")
    err = a.wait_for(kind("failed"), since=mark, what="unknown-nick failure")
    assert "unknown nick 'nobody'" in err["reason"]
    # by node id, in the form that cannot be a nick: @ and a hex prefix of the id
    e.send(f"msg @{a.id[:10]} by id")
    assert a.wait_for(kind("private", text="by id"))["from"] == "erin"
    for p in procs:
        assert p.stop() == 0



def test_channel__joins_and_leaves_are_announced_and_bad_input_changes_nothing(cluster):
    a, b, c = cluster.start_ring(["alice", "bob", "carol"])
    a.send("join news")
    a.wait_for(kind("joined", channel="news"))
    b.send("join #NEWS")
    assert sorted(b.wait_for(kind("joined", channel="news"))["members"]) == ["alice", "bob"]
    a.wait_for(kind("member_joined", channel="news", nick="bob"))
    mark = b.mark()
    for line, message in [("send news " + "x" * 4001, "at most 4000"),
                          ("send news bell\x07", "control character"),
                          ("join #bad/name", "invalid channel name"),
                          ("msg 1bob hi", "invalid nick"),
                          ("send news", "needs a text"),
                          ("msg nobody hi", "unknown nick 'nobody'")]:
        b.send(line)
        # a line to a nick nobody holds is accepted, then fails: said once, by "failed"
        failed = line.startswith("msg nobody")
        err = b.wait_for(kind("failed" if failed else "error"), since=mark,
                         what=f"error for {line[:20]!r}")
        assert message in err["reason" if failed else "message"]
        mark = b.mark()
    b.send("leave news")
    b.wait_for(kind("left", channel="news"))
    a.wait_for(kind("member_left", channel="news", nick="bob", reason="left"))
    assert a.matching(kind("channel")) == []  # none of the bad sends reached the channel
    for p in (a, b, c):
        assert p.stop() == 0
