"""Moving maintained state between nodes: migration (copy, ack, delete), replication to the
next r successors, takeover from replicas, and the periodic rebalance."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from core import events as ev
from core.chord import Address, Remote, RpcError
from core.chord.ids import in_half_open, in_open

from . import protocol as p
from .state import (
    Channel,
    Item,
    item_from_wire,
    item_ref,
    item_to_wire,
)

log = logging.getLogger(__name__)

COPIES_LIMIT = 600_000  # rough bytes of replicas a hand-off reply carries at most


class Handover:
    """Mixin of ChatService: migration, replication and takeover."""

    def _migration(self, step: str, kind: str, key: str, from_: str, to: str,
                   members: int = 0, detail: str = "") -> None:
        self.post(ev.Migration(step=step, kind=kind, key=key, from_=from_, to=to,
                               members=members, detail=detail))
        log.info("migration %s %s %s %s -> %s %s", step, kind, key, from_, to, detail)

    @staticmethod
    def _size(item: Item) -> int:
        return len(item.present()) if isinstance(item, Channel) else 0

    async def _hand_over(self, item: Item, to: Remote, keep_replica: bool = True,
                         exiting: bool = False) -> bool:
        """Migrate one item: copy it to ``to``, wait for its ack, then delete it here.

        The receiver accepts only keys it owns (unless we are exiting and it is our
        successor); a node that does not own the key yet answers ``moved`` and the item
        stays here until a later rebalance or the receiver's hand-off request.
        """
        me, there = self.address, str(to.address)
        kind, name = item_ref(item)
        while True:
            wire = item_to_wire(item)
            if (kind, name) not in self._deferred:
                self._migration("send", kind, name, me, there, self._size(item))
            try:
                reply = await self.node.user_command(
                    to, p.MIGRATE, {"from": me, "items": [wire], "exit": exiting},
                    timeout=max(self.node.timeout, 5.0))
            except RpcError as e:
                self._migration("failed", kind, name, me, there, self._size(item), str(e))
                return False
            if isinstance(reply, dict) and reply.get("moved") and exiting:
                self._migration("failed", kind, name, me, there, self._size(item),
                                "the successor is leaving too")
                return False
            if isinstance(reply, dict) and reply.get("moved"):
                if (kind, name) not in self._deferred:
                    self._deferred.add((kind, name))
                    self._migration("deferred", kind, name, me, there, self._size(item),
                                    "the receiver does not own it yet; kept here meanwhile")
                return False
            if not (isinstance(reply, dict) and reply.get("ok")):
                self._migration("failed", kind, name, me, there, self._size(item),
                                f"refused: {reply!r}")
                return False
            self._deferred.discard((kind, name))
            self._migration("ack", kind, name, me, there, self._size(item))
            current = self.primary.get(kind, name)
            if current is not None and item_to_wire(current) != wire:
                item = current  # it changed while in flight (a merge): send the union again
                continue
            self.primary.pop(kind, name)
            if keep_replica:
                self.replicas.put(item)
                self._replica_seen[(kind, name)] = time.monotonic()
            for ref in [r for r in self._feeds if kind == "channel" and r[0] == name]:
                feed = self._feeds.pop(ref)
                if feed.task is not None:
                    feed.task.cancel()
            self._migration("delete", kind, name, me, there, self._size(item))
            self._post_status()
            return True

    async def _serve_migrate(self, payload: object) -> dict:
        d = p.need(payload, items=list)
        sender = str(d.get("from", "?"))
        items = [item_from_wire(p.need(wire, kind=str, state=dict)) for wire in d["items"]]
        if self._leaving:
            return p.MOVED  # leaving too: the sender tries its next successor
        if not d.get("exit") and not all(self.node.is_ours(item.key) for item in items):
            return p.MOVED  # only the owner takes state over: no copy parked on a bystander
        accepted = []
        for item in items:
            ref = item_ref(item)
            replica = self.replicas.pop(*ref)
            self._replica_seen.pop(ref, None)
            if replica is not None:
                self.primary.put(replica)
            before = self.primary.get(*ref)
            merged = self.primary.put(item)
            self._merged(before, merged)
            if ref[0] == "channel":
                self._safe.pop(ref[1], None)  # the old maintainer replicated it
            accepted.append(merged)
            self._migration("receive", ref[0], ref[1], sender, self.address, self._size(merged))
        self._ensure_feeds()
        self._spawn(self._replicate(accepted))
        self._post_status()
        return {"ok": True, "accepted": len(accepted)}

    async def _serve_replicate(self, payload: object) -> dict:
        d = p.need(payload, items=list)
        now = time.monotonic()
        for wire in d["items"]:
            item = item_from_wire(p.need(wire, kind=str, state=dict))
            ref = item_ref(item)
            if self.primary.get(*ref) is not None:
                continue  # we maintain it ourselves now (a migration raced the replica)
            self.replicas.put(item)
            self._replica_seen[ref] = now
        return {"ok": True}

    async def _serve_handoff(self, payload: object) -> dict:
        d = p.need(payload, to=str, start=str, end=str)
        to = Remote(p.need_address(d, "to"), self.node.transport)
        start, end = int(d["start"], 16), int(d["end"], 16)
        count = 0
        async with self._lock:
            for item in list(self.primary):
                if in_half_open(item.key, start, end) and not self.node.is_ours(item.key):
                    count += await self._hand_over(item, to)
        # our replicas of that range too: after a double failure the asker's own replica
        # may miss what only the dead ones had; merging ours in loses nothing
        copies, size = [], 0
        for item in self.replicas if d.get("copies") else []:
            if in_half_open(item.key, start, end) and size < COPIES_LIMIT:
                wire = item_to_wire(item)
                size += 200 + (sum(len(e.text) * 4 for e in item.log)
                               if isinstance(item, Channel) else 0)
                copies.append(wire)
        return {"ok": True, "count": count, "copies": copies}

    async def _replicate(self, items: list[Item]) -> bool:
        """Copy ``items`` to the next r successors; True if the first successor has them.

        Only then may the channels' entries up to what was copied be delivered: the first
        successor is the one that takes over if we crash. Other failed copies are
        repaired by the next round.
        """
        copied = {i.name: i.last_seq for i in items if isinstance(i, Channel)}
        ok = await self._copy_to_replicas(items)
        if ok:
            for name, seq in copied.items():
                if name in self._safe and seq > self._safe[name]:
                    self._safe[name] = seq
                    ch = self.primary.get("channel", name)
                    if isinstance(ch, Channel):
                        self._wake(ch)
        return ok

    async def _copy_to_replicas(self, items: list[Item]) -> bool:
        if not items or self.settings.replicas < 1:
            return True
        targets = [s for s in self.node.successors()
                   if s.address != self.node.address][:self.settings.replicas]
        if not targets:
            return True
        batches: list[list[dict]] = [[]]
        size = 0
        for item in items:
            wire = item_to_wire(item)
            weight = 200 + (sum(len(e.text) * 4 for e in item.log)
                            if isinstance(item, Channel) else 0)
            if batches[-1] and size + weight > 600_000:
                batches.append([])
                size = 0
            batches[-1].append(wire)
            size += weight
        calls = [self.node.user_command(t, p.REPLICATE, {"from": self.address, "items": b})
                 for t in targets for b in batches]
        results = await asyncio.gather(*calls, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, RpcError):
                log.warning("replication failed: %r", result)
        return not any(isinstance(r, Exception) for r in results[:len(batches)])

    def _on_predecessor(self, old: Remote | None, new: Remote | None) -> None:
        """Notify handler (assignment item 6): the range we own changed; rebalance.

        If the range grew (we joined, or the predecessor died or left), we promote our
        replicas of it at once, and until the successor has handed over anything of it
        that it holds (a joiner's range; a leaver's state sent to a stale successor) we
        answer "moved" rather than serve from a partial copy.
        """
        # (the front ends hear of the change itself from the ring: a RingChange event)
        owned_nothing = not self._had_predecessor and self._joined_ring_via_bootstrap
        if new is None:
            grew = True              # alone: everything is ours
        elif old is None:
            grew = owned_nothing     # a joiner's first predecessor (else: we were alone)
        else:
            grew = in_open(old.id, new.id, self.node.id)
        if new is not None:
            self._had_predecessor = True
        if grew and new is not None:
            self._pulls += 1
            # after a failure our replica may lack what only the dead had: ask for copies
            self._spawn(self._pull_from_successor(new, copies=old is not None))
        taken = self._take_over(f"predecessor {old.address if old else '-'} gone")
        if taken:
            self._spawn(self._replicate(taken))
        self._spawn(self._rebalance("new predecessor"))
        self._post_status()

    async def _pull_from_successor(self, predecessor: Remote, copies: bool) -> None:
        """Ask the nodes of our successor list to hand over what they hold of our range.

        Not only the first: while the ring settles, the node that maintained the range
        may already sit further along (another node joined between us meanwhile).
        """
        try:
            args = {"to": self.address, "start": f"{predecessor.id:x}",
                    "end": f"{self.node.id:x}", "copies": copies}

            async def ask(successor: Remote) -> None:
                with contextlib.suppress(RpcError):
                    reply = await self.node.user_command(
                        successor, p.HANDOFF, args, timeout=max(self.node.timeout, 5.0))
                    self._merge_copies(reply.get("copies", []) if isinstance(reply, dict)
                                       else [], str(successor.address))

            await asyncio.gather(*(ask(s) for s in self.node.successors()
                                   if s.address != self.node.address))
        finally:
            self._pulls -= 1
            self._ensure_feeds()
            self._post_status()

    def _merge_copies(self, wires: list, source: str) -> None:
        """Merge a successor's replicas of our range into what we maintain (a union)."""
        changed = []
        for wire in wires:
            try:
                item = item_from_wire(wire)
            except (KeyError, TypeError, ValueError):
                continue
            if not self.node.is_ours(item.key):
                continue
            ref = item_ref(item)
            before = self.primary.get(*ref)
            merged = self.primary.put(item)
            self._merged(before, merged)
            if before is None or item_to_wire(before) != item_to_wire(merged):
                changed.append(merged)
                self._migration("takeover", ref[0], ref[1], source, self.address,
                                self._size(merged), "merged a successor's replica")
        if changed:
            self._ensure_feeds()
            self._spawn(self._replicate(changed))
            self._post_status()

    def _take_over(self, why: str) -> list[Item]:
        """Promote the replicas whose keys are now ours (a predecessor died or left).

        Synchronous, so that it happens in the same step as the change of predecessor:
        no request for the new range is served before its state is here.
        """
        taken = []
        if self._leaving:
            return taken
        for item in self.replicas:
            if self.node.is_ours(item.key):
                ref = item_ref(item)
                self.replicas.pop(*ref)
                self._replica_seen.pop(ref, None)
                before = self.primary.get(*ref)
                merged = self.primary.put(item)
                self._merged(before, merged)
                taken.append(merged)
                if isinstance(merged, Channel):
                    self._safe.pop(merged.name, None)  # all of it is replicated already
                self._migration("takeover", ref[0], ref[1], "replica", self.address,
                                self._size(merged), why)
        if taken:
            self._ensure_feeds()
            self._post_status()
        return taken

    async def _rebalance(self, why: str) -> None:
        """Take over replicas now ours; migrate away what is no longer ours (copy/ack/delete)."""
        if self._leaving:
            return
        async with self._lock:
            taken = self._take_over(why)
            if taken:
                await self._replicate(taken)
            moving: dict[Address, tuple[Remote, list[Item]]] = {}
            for item in list(self.primary):
                if self.node.is_ours(item.key) or self._leaving:
                    continue
                try:
                    owner, _ = await self.node.find_successor(item.key)
                except RpcError:
                    continue
                if owner.address == self.node.address:
                    continue  # the ring has not settled; next round
                moving.setdefault(owner.address, (owner, []))[1].append(item)
            for owner, items in moving.values():
                for item in items:
                    await self._hand_over(item, owner)

    async def _maintain(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self.settings.maintenance_interval)
            rounds += 1
            try:
                await self._rebalance("maintenance")
                self._ensure_feeds()
                if rounds % 2 == 0:
                    await self._replicate(list(self.primary))
                now = time.monotonic()
                for ref, seen in list(self._replica_seen.items()):
                    if now - seen > self.settings.replica_ttl:
                        self.replicas.pop(*ref)
                        del self._replica_seen[ref]
                self._post_status()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("chat maintenance failed")
