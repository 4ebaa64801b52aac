"""Real processes killed with SIGKILL (no ``exit``): nothing acknowledged is lost.

A maintainer (and its successor) killed while messages flow. The long churn run lives in
test_process_churn.py; the same failures, and a killed member, run on the simulator too
(ring/test_replication.py).
"""

from __future__ import annotations

import pytest

from core.chat.model.ids import channel_key
from tests.support.delivery import check_delivery, owner_of, paced_sends, successor_of
from tests.support.procs import Cluster, kind

PRUNE = ("--prune-grace", "2")


@pytest.fixture
def cluster(tmp_path):
    with Cluster(tmp_path, extra_args=PRUNE) as c:
        yield c


pytestmark = pytest.mark.slow


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

