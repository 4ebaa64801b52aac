"""A short nemesis (tests/support/nemesis.py): five chordchat processes on namespace hosts
chat in three channels and privately for a minute while a seeded schedule kills, pauses,
exits, partitions, skews, cuts two hosts apart, makes one direction lossy, jumps a running
clock and adds nodes; the checker (tests/support/history.py) finds nothing lost, doubled,
reordered or made up, in the event streams nor in the databases. ``make nemesis SEED=…
MINUTES=…`` runs a longer one."""

from __future__ import annotations

import pytest

from tests.support.history import check
from tests.support.nemesis import KINDS, Run, schedule
from tests.support.procs import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SEED = 1989   # its first minute: exit, jump, skew, oneway, cut, pause, join


def test_schedule__a_seed_replays_the_same_faults():
    assert schedule(SEED, 60) == schedule(SEED, 60)
    assert schedule(SEED, 60) != schedule(SEED + 1, 60)
    assert {f.kind for f in schedule(SEED, 60)} >= {"jump", "oneway", "cut"}
    assert {f.kind for f in schedule(1, 120)} == set(KINDS)   # two minutes of seed 1


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


def test_checker__order_is_compared_but_for_messages_typed_or_stored_while_apart():
    class P:
        def __init__(self, events):
            self.events = events

    def run(typed: dict[str, float], stored: dict[str, float], apart) -> list[str]:
        mine = [{"event": "joined", "channel": "c", "_t": 0}] + [
            {"event": "pending", "msg_id": i, "_t": t} for i, t in typed.items()] + [
            {"event": "sent", "channel": "c", "msg_id": i, "_t": t} for i, t in stored.items()]
        seen = [{"event": "joined", "channel": "c", "_t": 0}]
        x = [{"event": "channel", "channel": "c", "from": "x", "msg_id": i, "_t": 50}
             for i in "ab"]
        y = [{"event": "channel", "channel": "c", "from": "x", "msg_id": i, "_t": 50}
             for i in "ba"]
        return check({"x": [P(mine + x)], "y": [P(seen + y)]}, set(), 0.0,
                     apart=apart).violations
    # two messages typed and stored outside any split, in two orders: a violation
    assert [v.split(":")[0] for v in run({"a": 1, "b": 2}, {"a": 3, "b": 4}, [])] == ["order"]
    assert [v.split(":")[0] for v in run({"a": 1, "b": 2}, {"a": 3, "b": 4},
                                         [(20, 30)])] == ["order"]
    # typed before a split, stored during it (one side's copy): not compared
    assert run({"a": 1, "b": 2}, {"a": 25, "b": 26}, [(20, 30)]) == []
    # typed during it
    assert run({"a": 21, "b": 22}, {"a": 35, "b": 36}, [(20, 30)]) == []


def test_nemesis__a_minute_of_faults_loses_nothing(network, tmp_path):
    with Cluster(tmp_path) as cluster:
        run = Run(network, cluster, SEED, 60, hosts=5)
        report = run.go()
        print(f"\n{run.describe()}\n{report.summary()}")
        assert sum(run.applied.values()) >= 5, run.describe()
        assert report.violations == [], "\n".join(report.violations)


def test_checker__compares_the_databases_with_what_was_printed(tmp_path):
    import sqlite3

    from tests.support.history import Report, check_databases

    class P:
        def __init__(self, events):
            self.events = events

    def database(nick, messages, outbox=()):
        path = tmp_path / f"{nick}.sqlite3"
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE messages (msg_id, conversation, sender, outgoing, state)")
        db.execute("CREATE TABLE outbox (msg_id, kind, destination)")
        db.executemany("INSERT INTO messages VALUES (?, '#c', 'x', ?, ?)", messages)
        db.executemany("INSERT INTO outbox VALUES (?, 'channel', '#c')", outbox)
        db.commit()
        db.close()
        return path
    joined = {"event": "joined", "channel": "c", "_t": 0}
    x = [joined] + [{"event": e, "channel": "c", "msg_id": i, "_t": 1}
                    for i in "ab" for e in ("pending", "sent")]
    y = [joined, {"event": "channel", "channel": "c", "msg_id": "b", "from": "x", "_t": 2}]
    databases = {"x": database("x", [("a", 1, "delivered"), ("b", 1, "delivered")], ["b"]),
                 "y": database("y", [("a", 0, "delivered"), ("z", 0, "delivered")])}
    report = check_databases({"x": [P(x)], "y": [P(y)]}, set(), databases, Report())
    assert sorted(v.split(":")[0] for v in report.violations) == [
        "db lost", "db made up", "db outbox", "db unshown"], report.violations
    assert report.databases == 2 and report.stored == 4
