"""Migration: handing maintained items to the node that owns their keys now — copy, wait
for the acknowledgement, then delete here (assignment item 6) — on a rebalance, when asked
by a new owner, and all at once when this node exits (item 7)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from core.chord import Local, Remote, RpcError, TaskSet, in_half_open

from ..model.holdings import Holdings, Range
from ..model.items import Item, item_ref, item_to_wire, wire_ring_key
from ..model.records import Accept, Decision, NameRecord, Refuse
from ..wire import verbs as p
from ..wire.calls import now
from .admission import MAX_ITEMS, checked, keyed
from .feeds import Feeds
from .journal import Journal
from .neighbours import Neighbours
from .replication import Replication


class Migration:
    """Moves maintained items to their owners, one at a time under one lock."""

    def __init__(self, node: Local, holdings: Holdings, range_: Range,
                 replication: Replication, feeds: Feeds, journal: Journal,
                 tasks: TaskSet, neighbours: Neighbours,
                 take_name: Callable[[NameRecord], Awaitable[Decision]],
                 stamp: Callable[[], float]) -> None:
        self.node = node
        self.neighbours = neighbours
        self.take_name = take_name     # a name record decided as a chat.name.set (Names)
        self.stamp = stamp
        self.holdings = holdings
        self.range = range_
        self.replication = replication
        self.feeds = feeds
        self.journal = journal
        self.tasks = tasks
        self.lock = asyncio.Lock()
        self._deferred: set[tuple[str, str]] = set()   # hand-overs the receiver put off

    def handlers(self) -> dict[p.Verb, p.Handler]:
        return {p.MIGRATE: self.rpc_migrate}

    @property
    def deferred(self) -> int:
        """How many hand-overs wait for their receiver to own the key."""
        return len(self._deferred)

    async def hand_over(self, item: Item, to: Remote, keep_replica: bool = True,
                        exiting: bool = False) -> bool:
        """Migrate one item: copy it to ``to``, wait for its ack, then delete it here.

        The receiver accepts only keys it owns (unless we are exiting and it is our
        successor); one that does not own the key yet answers ``not_owner`` and the item
        stays here until a later rebalance or the receiver's hand-off request.
        """
        ref = item_ref(item)
        while True:
            wire = item_to_wire(item)
            if not await self._offer(item, wire, to, exiting):
                return False
            current = self.holdings.maintained.get(*ref)
            if current is None or item_to_wire(current) == wire:
                break
            item = current  # it changed while in flight (a merge): send the union again
        self.holdings.release(*ref, now=now() if keep_replica else None)
        if ref[0] == "channel":
            self.feeds.stop(ref[1])
        self.journal.migration("delete", item, self.journal.me, str(to.address))
        self.journal.status()
        return True

    async def _offer(self, item: Item, wire: dict, to: Remote, exiting: bool) -> bool:
        """Send one copy of ``item``; True once the receiver has acknowledged it."""
        me, there, ref = self.journal.me, str(to.address), item_ref(item)
        if ref not in self._deferred:
            self.journal.migration("send", item, me, there)
        try:
            reply = await self.call_migrate(to, wire, exiting)
        except RpcError as e:
            self.journal.migration("failed", item, me, there, str(e))
            return False
        if reply.get("not_owner") and exiting:
            self.journal.migration("failed", item, me, there, "the successor is leaving too")
        elif reply.get("not_owner"):
            if ref not in self._deferred:
                self._deferred.add(ref)
                self.journal.migration("deferred", item, me, there, "the receiver does not "
                                       "own it yet; kept here meanwhile")
        elif not reply.get("ok"):
            self.journal.migration("failed", item, me, there, f"refused: {reply!r}")
        else:
            self._deferred.discard(ref)
            self.journal.migration("ack", item, me, there)
            return True
        return False

    async def call_migrate(self, to: Remote, wire: dict, exiting: bool) -> dict:
        reply = await self.node.user_command(
            to, p.MIGRATE.type, {"from": self.journal.me, "items": [wire], "exit": exiting},
            timeout=max(self.node.timeout, 5.0))
        return reply if isinstance(reply, dict) else {}

    async def rpc_migrate(self, d: dict) -> dict:
        """Take over items from a node whose range held them: cheap checks first (count,
        sender, keys), then signatures, then the rules of a direct request."""
        wires = d["items"]
        if len(wires) > MAX_ITEMS:
            raise p.Refused("too_many", f"more than {MAX_ITEMS} items in one migration")
        if self.range.leaving:
            return p.NOT_OWNER  # leaving too: the sender tries its next successor
        sender = await self.neighbours.sender(d)
        source = str(sender)
        if d.get("exit"):
            # a predecessor that leaves: the keys of its range (and any between it and us)
            if not await self.neighbours.is_predecessor(sender, self.neighbours.depth):
                raise p.Refused("not_neighbour", f"{sender} is not a predecessor of ours")
            before = await self.neighbours.before(sender)
            me = self.node.id
            wires, _ = keyed(wires, (lambda key: True) if before is None else
                             (lambda key: in_half_open(key, before.id, me)), source)
        else:
            # a rebalance or a hand-off: from a node of our neighbourhood, keys we own now
            if not await self.neighbours.is_neighbour(sender):
                raise p.Refused("not_neighbour", f"{sender} is not a neighbour of ours")
            for wire in wires:
                try:
                    if not self.node.is_ours(wire_ring_key(wire)):
                        return p.NOT_OWNER  # only the owner takes state over
                except ValueError:
                    pass   # left out below
            wires, _ = keyed(wires, self.node.is_ours, source)
        items = checked(wires, source, self.stamp)
        keys = {item.ring_key for item in items}
        self.holdings.promote(lambda key: key in keys)
        accepted, refused = [], []
        for item in items:
            if isinstance(item, NameRecord):
                decision = await self.take_name(item)
                if not isinstance(decision, Accept):
                    refused.append(item.nick)
                    self.note_conflict(item, decision)
                    self.journal.log(f"refused the name record of {item.nick} from "
                                     f"{source}: {decision.message}")
                    continue
                merged = self.holdings.maintained.get(*item_ref(item))
                assert merged is not None
                accepted.append(merged)
            else:
                accepted.append(self.holdings.maintain(item))
        for item in accepted:
            self.journal.migration("receive", item, source, self.journal.me)
        self.feeds.ensure()
        self.tasks.spawn(self.replication.call_replicate(accepted))
        self.journal.status()
        return {"ok": True, "accepted": len(accepted), "refused": refused}

    def note_conflict(self, lost: NameRecord, decision: Decision) -> None:
        """A copy claimed a nick a live holder keeps (two sides of a healed partition, or a
        forger): both holders are told, and the ring's record says who kept it."""
        kept = self.holdings.name(lost.name)
        if (isinstance(decision, Refuse) and decision.reason == "taken" and kept is not None
                and lost.present):
            self.holdings.conflicts.append((kept, lost))

    async def rebalance(self) -> None:
        """Migrate away what is no longer ours, each item to the owner of its key."""
        if self.range.leaving:
            return
        async with self.lock:
            for item in self.holdings.not_ours(self.node.is_ours):
                if self.range.leaving:
                    return
                try:
                    owner, _ = await self.node.find_successor(item.ring_key)
                except RpcError:
                    continue
                if owner.address != self.node.address:   # else: not settled; next round
                    await self.hand_over(item, owner)

    async def hand_over_in(self, start: int, end: int, to: Remote) -> tuple[int, int]:
        """Migrate to ``to`` what we maintain in (start, end] but no longer own — each item
        only if ``to`` is its owner as we see it: our own lookup of its key finds ``to``
        (as a rebalance would), or ``to`` is one of our predecessors (their chain walked
        by ``Neighbours``, never the asker's word). The asker's word that it owns the range
        moves nothing. Returns (items moved, items in the range held back): a held-back
        item waits for our view to agree (the asker asks again, ``Takeover._pull``)."""
        moved = held = 0
        async with self.lock:
            for item in self.holdings.not_ours(self.node.is_ours):
                if not in_half_open(item.ring_key, start, end):
                    continue
                try:
                    owner, _ = await self.node.find_successor(item.ring_key)
                except RpcError:
                    owner = None
                if (owner is not None and owner.address == to.address) or \
                        await self.neighbours.is_predecessor(to.address, self.neighbours.depth):
                    done = await self.hand_over(item, to)
                    moved += done
                    held += not done
                else:
                    held += 1
        return moved, held

    async def hand_all_over(self) -> None:
        """On exit: every item to the first live successor (none: dropped, said so)."""
        me = self.journal.me
        async with self.lock:
            for item in list(self.holdings.maintained):
                for successor in self.node.successors():
                    if successor.address != self.node.address and await self.hand_over(
                            item, successor, keep_replica=False, exiting=True):
                        break
                else:
                    self.holdings.release(*item_ref(item))
                    self.journal.migration("drop", item, me, "-",
                                           "no live successor to hand it to")
