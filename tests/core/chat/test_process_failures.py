"""Real processes killed with SIGKILL (no ``exit``): nothing acknowledged is lost.

A maintainer (and its successor) killed while messages flow. The long churn run lives in
test_process_churn.py; the same failures, and a killed member, run on the simulator too
(test_replication.py).
"""

from __future__ import annotations

import threading
import time

import pytest

from core.chat.model.ids import channel_key
from tests.procs import Cluster, kind

PRUNE = ("--prune-grace", "2")


@pytest.fixture
def cluster(tmp_path):
    with Cluster(tmp_path, extra_args=PRUNE) as c:
        yield c


pytestmark = pytest.mark.slow


def ring_order(procs):
    return sorted(procs, key=lambda p: int(p.id, 16))


def owner_of(procs, key: int):
    ordered = ring_order(p for p in procs if p.alive)
    return next((p for p in ordered if int(p.id, 16) >= key), ordered[0])


def successor_of(procs, proc):
    ordered = ring_order(procs)
    return ordered[(ordered.index(proc) + 1) % len(ordered)]


def paced_sends(sender, channel: str, count: int, every: float, prefix: str,
                at: dict[str, float] | None = None) -> threading.Thread:
    """Type ``count`` sends into ``sender``, one every ``every`` seconds, in a thread."""
    def run() -> None:
        for i in range(count):
            if at is not None:
                at[f"{prefix}{i}"] = time.monotonic()
            sender.send(f"send {channel} {prefix}{i}")
            time.sleep(every)  # pacing the traffic, not waiting for anything
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def check_delivery(members, sender, channel: str, prefix: str, count: int) -> list[str]:
    """Every acknowledged message reached every member exactly once, in one order."""
    outcome = sender.wait_for(
        lambda e: (e["event"] == "sent" and e["channel"] == channel
                   and e["text"].startswith(prefix))
        or (e["event"] == "error" and f"#{channel}" in e["message"]),
        count=count, timeout=180, what=f"{count} acks or errors")
    assert outcome
    acked = [e["msg_id"] for e in sender.matching(kind("sent", channel=channel))
             if e["text"].startswith(prefix)]
    errors = [e["message"] for e in sender.matching(kind("error"))]
    assert len(acked) == count, f"only {len(acked)} of {count} acknowledged; errors {errors}"
    orders = []
    for m in members:
        m.wait_for(lambda e: e["event"] == "channel" and e["msg_id"] in set(acked),
                   count=len(acked), timeout=120, what=f"all {len(acked)} acked messages")
        got = [e["msg_id"] for e in m.matching(kind("channel", channel=channel))
               if e["text"].startswith(prefix)]
        assert len(got) == len(set(got)), f"{m.nick} was shown a message twice"
        assert set(acked) <= set(got), f"{m.nick} misses {len(set(acked) - set(got))}"
        seqs = [e["seq"] for e in m.matching(kind("channel", channel=channel))]
        assert seqs == sorted(seqs), f"{m.nick} saw sequence numbers out of order"
        orders.append([i for i in got if i in set(acked)])
    assert all(o == orders[0] for o in orders), "members saw different orders"
    return acked


def kill_maintainer_while_sending(cluster, also_successor: bool) -> None:
    procs = cluster.start_ring([f"n{i}" for i in range(7)])
    key = channel_key("ops")
    maintainer = owner_of(procs, key)
    victims = [maintainer]
    if also_successor:
        victims.append(successor_of(procs, maintainer))
    rest = [p for p in procs if p not in victims]
    members, bystander = rest[:4], rest[4]
    for m in members:
        m.send("join ops")
        m.wait_for(kind("joined", channel="ops"))
    sender = members[1]
    thread = paced_sends(sender, "ops", 200, 0.02, "k")
    sender.wait_for(lambda e: e["event"] == "sent" and e["text"] == "k40", timeout=60)
    for v in victims:
        v.kill()
    thread.join(60)
    acked = check_delivery(members, sender, "ops", "k", 200)
    taker = owner_of(rest, key)
    assert taker.matching(kind("migration", step="takeover", key="ops")), \
        f"{taker.nick} did not take #ops over"
    # the channel kept its members
    bystander.send("join ops")
    joined = bystander.wait_for(kind("joined", channel="ops"))
    assert sorted(joined["members"]) == sorted([m.nick for m in members] + [bystander.nick])
    # ... and its history: the last 100 messages, in order, marked as history
    bystander.wait_for(kind("channel", channel="ops", history=True), count=100)
    history = bystander.matching(kind("channel", channel="ops", history=True))
    assert [e["msg_id"] for e in history] == acked[-100:]
    # the dead nodes' nicks can be claimed now
    for v in victims:
        claimer = cluster.start(v.nick, bootstrap=bystander)
        assert claimer.matching(kind("ready"))
        members[0].send(f"msg {v.nick} welcome back")
        claimer.wait_for(kind("private", text="welcome back"))


def test_failure__maintainer_killed_while_a_member_sends_200_messages(cluster):
    kill_maintainer_while_sending(cluster, also_successor=False)


def test_failure__maintainer_and_its_successor_killed_together(cluster):
    kill_maintainer_while_sending(cluster, also_successor=True)

