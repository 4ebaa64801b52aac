"""The ring log's lines: one per ring change or migration step, nodes named by short id and
address; checked on the core's events and on the events of two real nodes."""

from __future__ import annotations

import socket

from core import events as ev
from core.chat.model.commands import parse
from core.chord import Address, hash_string, in_half_open, short_id
from core.runtime import Runtime
from tests.support.runtime import Collector, options
from tests.tui.doubles import RecordingRuntime
from tui.app import ChatApp
from tui.ring_log import RingLog, node

ME, PRED, SUCC = "127.0.0.1:4000", "127.0.0.1:4002", "127.0.0.1:4001"


def sid(address: str) -> str:
    return short_id(hash_string(address))


def ring_log() -> RingLog:
    r = RingLog()
    r.ready(ev.Ready("alice", "ab" * 20, ME))
    return r


class TestRingLines:
    def test_ring_log__a_predecessor_change_is_one_line_with_short_ids(self):
        r = ring_log()
        first = r.line(ev.RingChange("predecessor", old=None, new=PRED))
        assert first.text == f"predecessor → {sid(PRED)} {PRED} (was none)"
        second = r.line(ev.RingChange("predecessor", old=PRED, new=SUCC))
        assert second.text == f"predecessor → {sid(SUCC)} {SUCC} (was {sid(PRED)})"
        assert r.line(ev.RingChange("predecessor", old=PRED, new=None)).text == \
            f"predecessor → none (was {sid(PRED)})"

    def test_ring_log__successor_fingers_suspicion_start_and_leave(self):
        r = RingLog()
        started = r.line(ev.RingChange("started", new=ME, bootstrap=SUCC))
        assert started.text == f"node {sid(ME)} {ME} joined the ring through {sid(SUCC)} {SUCC}"
        assert r.line(ev.RingChange("successor", old=ME, new=SUCC)).text == \
            f"successor → {sid(SUCC)} {SUCC} (was this node)"
        assert r.line(ev.RingChange("fingers", count=3)).text == "finger table: 3 distinct nodes"
        assert r.line(ev.RingChange("fingers", count=1)).text == "finger table: 1 distinct node"
        suspected = r.line(ev.RingChange("predecessor_suspected", old=PRED))
        assert suspected.text == f"predecessor {sid(PRED)} {PRED} is not answering"
        assert suspected.attr == "log error"
        assert r.line(ev.RingChange("left")).text.startswith("left the ring")
        moved = r.line(ev.RingChange("moved", old=ME, new=PRED))
        assert moved.text == f"this node moved: {sid(ME)} {ME} → {sid(PRED)} {PRED}"
        assert r.me == PRED   # "this node" from now on
        assert RingLog().line(ev.RingChange("started", new=ME)).text == \
            f"node {sid(ME)} {ME} started a new ring"

    def test_ring_log__a_kind_it_does_not_know_is_still_shown(self):
        assert ring_log().line(ev.RingChange("rebuilt", old=PRED, new=SUCC)).text == \
            f"ring: rebuilt (old {PRED}, new {SUCC})"

    def test_ring_log__other_lines_are_shown_as_the_core_wrote_them(self):
        for text in (f"name map bob set to {SUCC}", "a -> b", "predecessor x -> y"):
            assert ring_log().line(ev.Log(text)).text == text

    def test_node__own_address_unknown_and_none(self):
        assert node(ME, me=ME) == "this node"
        assert node(None) == node("-") == "none"
        assert node(SUCC) == f"{sid(SUCC)} {SUCC}"


class TestMigrationLines:
    def migration(self, step, kind="channel", key="general", from_=ME, to=SUCC, members=3,
                  detail=""):
        return ring_log().line(ev.MigrationStep(step, kind, key, from_, to, members, detail))

    def test_ring_log__each_step_says_what_moved_where_and_how_many_members(self):
        to = f"{sid(SUCC)} {SUCC}"
        assert self.migration("delete").text == f"moved #general (3 members) to {to}"
        assert self.migration("receive", from_=PRED, to=ME, members=1).text == \
            f"received #general (1 member) from {sid(PRED)} {PRED}"
        assert self.migration("delete", kind="name", key="bob", members=0).text == \
            f"moved name map bob to {to}"
        assert self.migration("takeover", from_="replica", to=ME,
                              detail="new predecessor").text == \
            "took over #general (3 members) from a replica (new predecessor)"
        assert all(self.migration(s).tag == "migration" for s in ("delete", "receive"))

    def test_ring_log__a_move_is_one_line_on_each_side(self):
        # the sender's send and ack are steps of the move that "delete" completes
        assert self.migration("send") is None and self.migration("ack") is None

    def test_ring_log__failures_stand_out_and_the_end_of_exit_is_said_once(self):
        failed = self.migration("failed", detail="timed out")
        assert failed.attr == "log error" and failed.text.endswith(": timed out")
        assert self.migration("leave-ring", kind="node", key="alice", to="-") is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ring_log__two_real_nodes_one_line_per_change_and_the_migration_named():
    """ann keeps a channel; bo joins as its predecessor and takes it over. Everything ann's
    core posted, shown by the app: one predecessor line, and the channel's move."""
    ann_events, bo_events = Collector(), Collector()
    ann = Runtime(options("ann"), ann_events.post)
    bo = None
    try:
        ready = ann.start().result(20)
        bo_port = free_port()
        bo_address = f"127.0.0.1:{bo_port}"
        room = next(f"room{i}" for i in range(100_000) if in_half_open(
            hash_string(f"room{i}"), int(ready.id, 16), hash_string(bo_address)))
        ann.execute(parse(f"join {room}")).result(20)
        ann_events.wait(ev.Joined, channel=room)
        bo = Runtime(options("bo", Address.parse(ready.address), port=bo_port), bo_events.post)
        bo.start().result(20)
        ann_events.wait(ev.MigrationStep, step="delete", key=room)

        app = ChatApp(RecordingRuntime(), "ann", bell=False)
        for event in ann_events.events:
            app.handle(event)
        log = app.screen.log.texts()
        changes = [e for e in ann_events.events
                   if isinstance(e, ev.RingChange) and e.kind == "predecessor"]
        shown = [t for t in log if "predecessor →" in t]
        assert len(changes) >= 1 and len(shown) == len(changes), log
        assert any(f"predecessor → {sid(bo_address)} {bo_address} (was none)" in t
                   for t in shown), log
        to = f"{sid(bo_address)} {bo_address}"
        moves = [t for t in log if "migration" in t and f"#{room}" in t]
        assert len(moves) == 1 and moves[0].endswith(f" migration  moved #{room} (1 member) "
                                                     f"to {to}"), log
        assert not any(" -> " in t for t in log), log
        # the chat service says nothing of its own about the change the ring reported
        assert not any(isinstance(e, ev.Log) and "predecessor" in e.text
                       for e in ann_events.events), ann_events.events
    finally:
        if bo is not None:
            bo.shutdown().result(30)
        ann.shutdown().result(30)
