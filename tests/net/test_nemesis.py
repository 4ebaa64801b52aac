"""A short nemesis (tests/support/nemesis.py): five chordchat processes on namespace hosts
chat in three channels and privately for a minute while a seeded schedule kills, pauses,
exits, partitions, skews and adds nodes; the checker (tests/support/history.py) finds
nothing lost, doubled, reordered or made up. ``make nemesis SEED=… MINUTES=…`` runs a
longer one."""

from __future__ import annotations

import pytest

from tests.support.history import check
from tests.support.nemesis import KINDS, Run, schedule
from tests.support.procs import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SEED = 5   # its first minute has one fault of every kind


def test_schedule__a_seed_replays_the_same_faults():
    assert schedule(SEED, 60) == schedule(SEED, 60)
    assert schedule(SEED, 60) != schedule(SEED + 1, 60)
    assert {f.kind for f in schedule(SEED, 60)} == set(KINDS)


def test_checker__finds_a_lost_a_doubled_and_a_made_up_message():
    class P:   # the events a process printed, as procs.Proc keeps them
        def __init__(self, events):
            self.events = events
    sent = [{"event": "pending", "msg_id": i, "_t": 0} for i in "ab"] + [
        {"event": "sent", "channel": "c", "msg_id": i, "_t": 1} for i in "ab"]
    joined = {"event": "joined", "channel": "c", "_t": 0}
    shown = [{"event": "channel", "channel": "c", "from": "x", "msg_id": i, "_t": 2}
             for i in "aaz"]
    own = [{"event": "channel", "channel": "c", "from": "x", "msg_id": i, "_t": 2}
           for i in "ab"]
    report = check({"x": [P([joined, *sent, *own])], "y": [P([joined, *shown])]}, set(), 0.0)
    assert sorted(v.split(":")[0] for v in report.violations) == [
        "lost", "made up", "twice"], report.violations


def test_nemesis__a_minute_of_faults_loses_nothing(network, tmp_path):
    with Cluster(tmp_path) as cluster:
        run = Run(network, cluster, SEED, 60, hosts=5)
        report = run.go()
        print(f"\n{run.describe()}\n{report.summary()}")
        assert sum(run.applied.values()) >= 5, run.describe()
        assert report.violations == [], "\n".join(report.violations)
