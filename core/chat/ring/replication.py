"""Replication: every change a maintainer makes is copied to its next r successors before
members see it; the successors keep the copies as replicas."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from core.chord import Local, RpcError
from core.chord.placement import within_quota

from ..model.channel import Channel
from ..model.holdings import Holdings
from ..model.items import Item, item_to_wire, items_from_wire
from ..model.mailbox import Mailbox
from ..wire import verbs as p
from ..wire.calls import now

log = logging.getLogger(__name__)

BATCH_BYTES = 600_000  # rough size of one replicate call, under the 1 MiB frame


def weight(item: Item) -> int:
    """A rough upper bound of an item's size on the wire."""
    if isinstance(item, Mailbox):
        return 200 + item.size + 60 * len(item.taken)
    return 200 + (sum(len(e.text) * 4 for e in item.log) if isinstance(item, Channel) else 0)


class Replication:
    """Copies maintained items to the replicas, and keeps the copies others send us.

    Args:
        replicas: r, how many successors hold a copy.
        advanced: called with a channel's name when its replicated mark rose (wake feeds).
        per_prefix: at most this many of the holders (this node and its replicas) in one
            IPv4 /24 or IPv6 /48 (``placement.within_quota``); None: no limit. The first
            successor always gets a copy (it takes over if we crash); the quota decides
            which of the successors after it take the other copies.
    """

    def __init__(self, node: Local, holdings: Holdings, replicas: int,
                 advanced: Callable[[str], None], per_prefix: int | None = None) -> None:
        self.node = node
        self.holdings = holdings
        self.replicas = replicas
        self.advanced = advanced
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
        full round (``replicate_all``).
        """
        if await self._copy(items):
            for item in items:
                if isinstance(item, Channel) and self.holdings.replicated(item):
                    self.advanced(item.name)
            return True
        return False

    async def replicate_all(self) -> bool:
        return await self.call_replicate(list(self.holdings.maintained))

    async def _copy(self, items: list[Item]) -> bool:
        targets = self.targets()
        if not items or not targets:
            return True
        batches: list[list[dict]] = [[]]
        size = 0
        for item in items:
            if batches[-1] and size + weight(item) > BATCH_BYTES:
                batches.append([])
                size = 0
            batches[-1].append(item_to_wire(item))
            size += weight(item)
        me = str(self.node.address)
        calls = [self.node.user_command(t, p.REPLICATE.type, {"from": me, "items": b})
                 for t in targets for b in batches]
        results = await asyncio.gather(*calls, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, RpcError):
                log.warning("replication failed: %r", result)
        return not any(isinstance(r, Exception) for r in results[:len(batches)])

    async def rpc_replicate(self, d: dict) -> dict:
        at = now()
        for item in items_from_wire(d["items"], str(d.get("from", "?"))):
            self.holdings.keep_replica(item, at)
        return p.OK
