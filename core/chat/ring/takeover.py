"""When this node's range changes (the notify handler): promote the replicas that are now
ours, ask the successors to hand over what they still hold of a grown range (``handoff``),
and rebalance what is no longer ours."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from core.chord import Local, Remote, RpcError, TaskSet, in_open

from ..model.holdings import Holdings, Range
from ..model.items import Item, item_ref, item_to_wire
from ..model.records import Accept, Decision, NameRecord
from ..wire import verbs as p
from .admission import MAX_ITEMS, checked, keyed
from .feeds import Feeds
from .journal import Journal
from .migration import Migration
from .neighbours import Neighbours
from .replication import Replication, wire_size

COPIES_BYTES = 600_000  # rough size of the replicas one hand-off reply carries at most


# a pull asks again after these pauses (then every last one) while no successor has named
# us its predecessor yet, or one holds part of our range back; for PULL_FOR seconds at most
PULL_AGAIN = (0.1, 0.2, 0.4, 0.8, 1.5)
PULL_FOR = 10.0


class Answer(NamedTuple):
    """A successor's reply to a hand-off: items of our range it held back, and whether it
    names us its predecessor (its view of the ring agrees that the range is ours)."""
    held: int
    yours: bool


class Takeover:
    """Keeps what this node maintains in step with the range it owns."""

    def __init__(self, node: Local, holdings: Holdings, range_: Range,
                 replication: Replication, feeds: Feeds, migration: Migration,
                 journal: Journal, tasks: TaskSet, neighbours: Neighbours,
                 take_name: Callable[[NameRecord], Awaitable[Decision]],
                 stamp: Callable[[], float]) -> None:
        self.node = node
        self.neighbours = neighbours
        self.take_name = take_name
        self.stamp = stamp
        self.holdings = holdings
        self.range = range_
        self.replication = replication
        self.feeds = feeds
        self.migration = migration
        self.journal = journal
        self.tasks = tasks
        self._joined_via_bootstrap = node.bootstrap is not None
        self._had_predecessor = False
        self._pulls_started = 0   # the latest pull ends the earlier ones

    def handlers(self) -> dict[p.Verb, p.Handler]:
        return {p.HANDOFF: self.rpc_handoff}

    def on_predecessor(self, old: Remote | None, new: Remote | None) -> None:
        """Notify handler (assignment item 6): the range we own changed.

        If it grew (we joined, or the predecessor died or left), we promote our replicas
        of it at once, and until the successors have handed over anything of it that they
        hold (a joiner's range; a leaver's state sent to a stale successor) we answer
        ``not_owner`` rather than serve from a partial copy.
        """
        if new is None:
            grew = True                  # alone: everything is ours
        elif old is None:                # a joiner's first predecessor (else: we were alone)
            grew = not self._had_predecessor and self._joined_via_bootstrap
        else:
            grew = in_open(old.id, new.id, self.node.id)
        if new is not None:
            self._had_predecessor = True
        if grew and new is not None:
            self.range.pulls += 1
            # after a failure our replica may lack what only the dead had: ask for copies.
            # A joiner asks too: when the node it replaces died and it joined before the
            # successor noticed, the successor never owned that range, so it holds it only
            # as replicas, which nobody would promote
            self._pulls_started += 1
            self.tasks.spawn(self._pull(new, copies=True, gone=old, nth=self._pulls_started))
        self.promote(f"predecessor {old.address if old else '-'} gone")
        self.tasks.spawn(self.migration.rebalance())
        self.journal.status()

    def promote(self, why: str) -> list[Item]:
        """Maintain the replicas whose keys are now ours, and replicate them.

        Synchronous, so that it happens in the same step as the change of predecessor:
        no request for the new range is served before its state is here.
        """
        if self.range.leaving:
            return []
        taken = self.holdings.promote(self.node.is_ours)
        for item in taken:
            self.journal.migration("takeover", item, "replica", self.journal.me, why)
        if taken:
            self.feeds.ensure()
            self.tasks.spawn(self.replication.call_replicate(taken))
            self.journal.status()
        return taken

    async def _pull(self, predecessor: Remote, copies: bool, gone: Remote | None,
                    nth: int) -> None:
        """Ask the nodes of our successor list to hand over what they hold of our range.

        Not only the first: while the ring settles, the node that maintained the range
        may already sit further along (another node joined between us meanwhile). Not the
        predecessor we just lost (in a small ring our list comes round to it), nor a node
        our transport saw fail: waiting on a dead node would hold the range unserved
        until the call gives up.

        The range stays closed (``not_owner``) until a successor that names us its
        predecessor has answered and none holds part of it back, for ``PULL_FOR`` seconds
        at most. "Nobody held anything" is no answer while the ones asked are not our
        successors in the ring's eyes: a node back at its address is notified by its
        predecessor (a probe's merge) before its own join has found its successor, so
        its list is itself alone, or nodes further along that hold nothing of the range,
        while the successor that took its channels on exit still has them.
        """
        transport = self.node.transport
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PULL_FOR
        pauses = iter(PULL_AGAIN)
        try:
            while True:
                answers = [a for a in await asyncio.gather(*(
                    self.call_handoff(s, predecessor, copies) for s in self.node.successors()
                    if s.address != self.node.address and s != gone
                    and not transport.is_suspected(s.address))) if a is not None]
                if nth != self._pulls_started:
                    break   # the range grew again: a later pull asks for it
                now = self.node.predecessor() or predecessor
                if (now == predecessor and any(a.yours for a in answers)
                        and not any(a.held for a in answers)):
                    break
                # (another predecessor meanwhile: a closer one shrank the range, ask on for
                # what is left of it; none, while the start rebuilds the routing, changes
                # nothing: the range is still not confirmed by any successor)
                predecessor = now
                delay = next(pauses, PULL_AGAIN[-1])
                if loop.time() + delay > deadline:
                    self.journal.log(f"opening ({predecessor.address}, {self.journal.me}] "
                                     f"after {PULL_FOR:.0f} s without a successor that names "
                                     "us its predecessor and holds nothing of it back")
                    break
                await asyncio.sleep(delay)
        finally:
            self.range.pulls -= 1
            self.feeds.ensure()
            self.journal.status()

    async def call_handoff(self, successor: Remote, predecessor: Remote,
                           copies: bool) -> Answer | None:
        """Ask ``successor`` for what it holds of our range (None: it did not answer)."""
        args = {"to": self.journal.me, "start": f"{predecessor.id:x}",
                "end": f"{self.node.id:x}", "copies": copies}
        try:
            reply = await self.node.user_command(successor, p.HANDOFF.type, args,
                                                 timeout=max(self.node.timeout, 5.0))
        except RpcError:
            return None
        if not isinstance(reply, dict):
            return None
        if isinstance(reply.get("copies"), list):
            await self._merge_copies(reply["copies"], str(successor.address))
        held = reply.get("held")
        return Answer(held=max(0, held) if isinstance(held, int) else 0,
                      yours=reply.get("yours") is True)

    async def rpc_handoff(self, d: dict) -> dict:
        """A node before us took over a range: migrate to it what we hold of that range and
        no longer own (each item only if our own lookup finds the asker), and our replicas
        of it (``copies``) only if it is one of our r predecessors, i.e. we are in its
        replica set. The asker must be who it says (the connection's host) and ask for its
        own range (ending at its id)."""
        try:
            start, end = int(d["start"], 16), int(d["end"], 16)
        except ValueError:
            raise p.ProtocolError("'start' and 'end' must be hex") from None
        to_address = await self.neighbours.sender(d, "to")
        if end != to_address.id:
            raise p.Refused("bad_range", "a node asks for its own range, ending at its id")
        to = Remote(to_address, self.node.transport)
        count, held = await self.migration.hand_over_in(start, end, to)
        # our replicas of that range too: after a double failure the asker's own replica
        # may miss what only the dead ones had; merging ours in loses nothing
        copies: list[dict] = []
        if d.get("copies") and await self.neighbours.is_copier(to_address):
            size = 0
            for item in self.holdings.replicas_in(start, end):
                wire = item_to_wire(item)
                n = wire_size(wire)
                if size + n > COPIES_BYTES or len(copies) >= MAX_ITEMS:
                    continue
                copies.append(wire)
                size += n
        ours = self.node.predecessor()
        return {"ok": True, "count": count, "held": held, "copies": copies,
                "yours": ours is not None and ours.address == to_address}

    async def _merge_copies(self, wires: list, source: str) -> None:
        """Merge a successor's replicas of our range into what we maintain (a union), on
        the rules of a migration: keys of our range first, then signatures, then a name
        record decided as a ``chat.name.set``."""
        wires, _ = keyed(wires[:MAX_ITEMS], self.node.is_ours, source)
        changed = []
        for item in checked(wires, source, self.stamp):
            if not self.node.is_ours(item.ring_key):
                continue
            before = self.holdings.maintained.get(*item_ref(item))
            if isinstance(item, NameRecord):
                decision = await self.take_name(item)
                if not isinstance(decision, Accept):
                    self.migration.note_conflict(item, decision)
                    continue
                merged = self.holdings.maintained.get(*item_ref(item))
                assert merged is not None
            else:
                merged = self.holdings.maintain(item)
            if before is None or item_to_wire(before) != item_to_wire(merged):
                changed.append(merged)
                self.journal.migration("takeover", merged, source, self.journal.me,
                                       "merged a successor's replica")
        if changed:
            self.feeds.ensure()
            self.tasks.spawn(self.replication.call_replicate(changed))
            self.journal.status()
