"""Replication: every change a maintainer makes is copied to its next r successors before
members see it; the successors keep the copies as replicas."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from core.chord import Local, RpcError, in_half_open
from core.chord.placement import within_quota

from ..model.channel import Channel
from ..model.holdings import Holdings
from ..model.items import Item, item_ref, item_to_wire
from ..model.mailbox import Mailbox
from ..wire import verbs as p
from ..wire.calls import now
from .admission import MAX_ITEMS, checked, keyed
from .neighbours import Neighbours

try:
    import orjson
except ImportError:   # pragma: no cover - the codec falls back the same way
    orjson = None

log = logging.getLogger(__name__)

# a copy refused as "not_neighbour" (the replica's view of the ring lags a join) is sent
# again after these pauses, not left to the next full round
REFUSED_AGAIN = (0.05, 0.15, 0.3, 0.6)
BATCH_BYTES = 600_000  # one replicate call at most, well under the 1 MiB frame
ITEM_BYTES = 900_000   # one item at most: a larger one is not replicated (said once)


def weight(item: Item) -> int:
    """A rough upper bound of an item's size on the wire."""
    if isinstance(item, Mailbox):
        return 200 + item.size + 60 * len(item.taken)
    return 200 + (sum(len(e.text) * 4 for e in item.log) if isinstance(item, Channel) else 0)


def wire_size(wire: dict) -> int:
    """The bytes ``wire`` takes in a frame (as the codec writes it)."""
    if orjson is not None:
        try:
            return len(orjson.dumps(wire))
        except TypeError:
            pass
    return len(json.dumps(wire, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


class Replication:
    """Copies maintained items to the replicas, and keeps the copies others send us.

    Args:
        replicas: r, how many successors hold a copy.
        advanced: called with a channel's name when its replicated mark rose (wake feeds).
        neighbours: who may send us copies (one of our r predecessors).
        stamp: the wall clock, seconds (a copy signed far ahead of it is left out).
        per_prefix: at most this many of the holders (this node and its replicas) in one
            IPv4 /24 or IPv6 /48 (``placement.within_quota``); None: no limit. The first
            successor always gets a copy (it takes over if we crash); the quota decides
            which of the successors after it take the other copies.
    """

    def __init__(self, node: Local, holdings: Holdings, replicas: int,
                 advanced: Callable[[str], None], neighbours: Neighbours,
                 stamp: Callable[[], float], per_prefix: int | None = None) -> None:
        self.node = node
        self.holdings = holdings
        self.replicas = replicas
        self.advanced = advanced
        self.neighbours = neighbours
        self.stamp = stamp
        self._oversize: dict[tuple[str, str], int] = {}   # said once per item and size
        self.per_prefix = per_prefix

    def targets(self) -> list:
        """The successors that keep our copies: r of them, within the per-prefix quota."""
        me = self.node.address
        successors = [s.address for s in self.node.successors() if s.address != me]
        if not successors or self.replicas <= 0:
            return []
        first = successors[0]
        return [first, *within_quota(successors[1:], self.replicas - 1, self.per_prefix,
                                     held=[me, first])]

    async def commit(self, ch: Channel) -> bool:
        """Replicate what changed in a maintained channel; then its feeds may deliver it."""
        copy = self.holdings.unreplicated(ch.name)
        return await self.call_replicate([copy]) if copy is not None else True

    async def call_replicate(self, items: list[Item]) -> bool:
        """Copy ``items`` to the next r successors; True if the first successor has them.

        Only then may a channel's entries in the copy be delivered: the first successor is
        the one that takes over if we crash. Other failed copies are repaired by the next
        full round (``replicate_all``). Each item travels on its own merits: one too
        large, or one a batch failed for, holds back no other.
        """
        acked = await self._copy(items)
        for item in acked:
            if isinstance(item, Channel) and self.holdings.replicated(item):
                self.advanced(item.name)
        return len(acked) == len(items)

    async def replicate_all(self) -> bool:
        return await self.call_replicate(list(self.holdings.maintained))

    def _batches(self, items: list[Item]) -> list[list[tuple[Item, dict]]]:
        """The items in batches of at most ``BATCH_BYTES`` (an item over ``ITEM_BYTES``
        is left out, with one log line)."""
        batches: list[list[tuple[Item, dict]]] = [[]]
        size = 0
        for item in items:
            wire = item_to_wire(item)
            n = wire_size(wire)
            if n > ITEM_BYTES:
                ref = item_ref(item)
                if self._oversize.get(ref) != n:
                    self._oversize[ref] = n
                    log.warning("not replicated: %s %s takes %d bytes, over the %d-byte "
                                "limit of one item", *ref, n, ITEM_BYTES)
                continue
            if batches[-1] and size + n > BATCH_BYTES:
                batches.append([])
                size = 0
            batches[-1].append((item, wire))
            size += n
        return [b for b in batches if b]

    async def _copy(self, items: list[Item]) -> list[Item]:
        """Send the copies; the items the first successor acknowledged."""
        targets = self.targets()
        if not items:
            return []
        if not targets:
            return list(items)
        batches = self._batches(items)
        me = str(self.node.address)
        calls = [self._send(t, {"from": me, "items": [w for _, w in b]})
                 for t in targets for b in batches]
        results = await asyncio.gather(*calls, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, RpcError):
                log.warning("replication failed: %r", result)
            elif isinstance(result, dict) and result.get("refused"):
                log.warning("replication refused: %s", result.get("error"))
        acked: list[Item] = []
        for batch, result in zip(batches, results[:len(batches)], strict=True):
            if isinstance(result, dict) and result.get("ok"):
                out = {tuple(r) for r in result.get("left_out", []) if isinstance(r, list)}
                acked += [item for item, _ in batch if item_ref(item) not in out]
        return acked

    async def _send(self, target, payload: dict) -> dict:
        """One copy to ``target``; sent again while it refuses us as ``not_neighbour``
        (it has not seen the join that made us its predecessor) and is still ours."""
        for pause in REFUSED_AGAIN:
            reply = await self.node.user_command(target, p.REPLICATE.type, payload)
            if (not isinstance(reply, dict) or reply.get("refused") != "not_neighbour"
                    or target not in self.targets()):
                return reply
            await asyncio.sleep(pause)
        return await self.node.user_command(target, p.REPLICATE.type, payload)

    async def rpc_replicate(self, d: dict) -> dict:
        """Keep copies from one of our r predecessors (or the node becoming our first),
        of keys in its range."""
        wires = d["items"]
        if len(wires) > MAX_ITEMS:
            raise p.Refused("too_many", f"more than {MAX_ITEMS} items in one copy")
        sender = await self.neighbours.sender(d)
        if not await self.neighbours.is_copier(sender):
            raise p.Refused("not_neighbour", f"{sender} is not one of our "
                                             f"{self.replicas} predecessors")
        before = await self.neighbours.copier_before(sender)
        source = str(sender)
        if before is not None:
            wires, _ = keyed(wires, lambda key: in_half_open(key, before.id, sender.id),
                             source)
        items = checked(wires, source, self.stamp)
        at = now()
        # an item we maintain ourselves is not kept (a migration raced the copy, or two
        # nodes serve one channel): left out, so its sender does not take it as
        # replicated — it would acknowledge and deliver what no successor holds, and
        # number on from a copy that is not the one its successor would take over
        kept = {item_ref(item) for item in items if self.holdings.keep_replica(item, at)}
        left_out = []
        for wire in d["items"]:
            ref = _wire_ref(wire)
            if ref is not None and ref not in kept:
                left_out.append(list(ref))
        return {"ok": True, "left_out": left_out}


def _wire_ref(wire: object) -> tuple[str, str] | None:
    """(kind, name) as an item's wire names it (not checked), or None."""
    if not isinstance(wire, dict) or not isinstance(wire.get("state"), dict):
        return None
    kind, state = wire.get("kind"), wire["state"]
    name = state.get("name") if kind == "channel" else state.get("nick")
    return (kind, name.lower()) if isinstance(kind, str) and isinstance(name, str) else None
