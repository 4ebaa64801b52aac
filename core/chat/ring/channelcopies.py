"""Reading a channel's log from its replicas, past a maintainer that drops or withholds.

A maintainer replicates every entry to its next r successors before it acknowledges a
send or delivers it (``Replication.commit``), so the replicas hold what the maintainer
should have delivered. A member that finds entries missing (``users/gaps.py``) asks them
with ``chat.replica.get {channel, after_seq}``; each holder answers from its copy of the
channel (a replica, or the channel itself if it maintains it now: a takeover), with the
authors' signed entries and its seq. The asker checks every entry as it checks a
delivery (``Entry.from_wire``: signed by its author for this channel) and trusts nothing
else a holder says: a lying replica can withhold too, or send old entries of the
channel again (dropped by id), but never forge one.

The holders are found as for a name record (``namecopies.py``): a robust lookup of the
channel's key confirms its owner, and the owner's next r nodes are gathered from more
than its own successor list, so a hostile maintainer cannot name its accomplices as its
replicas.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from core.chord import Address, Local, RpcError
from core.chord.robust import RobustLookup

from ..model.channel import LOG_LIMIT, Channel, Entry
from ..model.entries import EntryError
from ..model.holdings import Holdings
from ..model.ids import channel_key
from ..wire import verbs as p

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Copy:
    """What one holder answered: its entries after the seq asked for, each verified."""
    holder: str
    entries: list[Entry]
    last_seq: int


class ChannelCopies:
    """Serves ``chat.replica.get`` and reads a channel's entries from its holders.

    Args:
        robust: how the owner and its replicas are found.
        replicas: r, how many holders after the owner there are.
    """

    def __init__(self, node: Local, holdings: Holdings, robust: RobustLookup,
                 replicas: int) -> None:
        self.node = node
        self.holdings = holdings
        self.robust = robust
        self.replicas = replicas

    def handlers(self) -> dict[p.Verb, p.Handler]:
        return {p.REPLICA_GET: self.rpc_replica_get}

    async def rpc_replica_get(self, d: dict) -> dict:
        """Our copy's entries after ``after_seq`` (a replica's, or ours if we maintain the
        channel now), at most a log's worth."""
        name, after = d["channel"], d["after_seq"]
        ch = self.holdings.replicas.get("channel", name) or self.holdings.channel(name)
        if not isinstance(ch, Channel):
            return {"ok": False}
        return {"ok": True, "entries": [e.to_wire() for e in ch.after(after)[:LOG_LIMIT]],
                "last_seq": ch.last_seq}

    async def holders(self, channel: str) -> list[Address]:
        """The channel's confirmed owner and its next r nodes (RpcError: no lookup)."""
        found = await self.robust.find(channel_key(channel))
        return await self.robust.holders(found, self.replicas)

    async def read(self, channel: str, after_seq: int, skip: str | None = None,
                   timeout: float = 5.0) -> list[Copy]:
        """Every holder's entries of ``channel`` after ``after_seq`` (``skip``: an address
        not to ask, the maintainer being doubted; this node is not asked either). The
        holders that answered, each with the entries that verify. Never raises."""
        try:
            async with asyncio.timeout(timeout):
                holders = [h for h in await self.holders(channel)
                           if str(h) != skip and h != self.node.address]
                answers = await asyncio.gather(
                    *(self._ask(h, channel, after_seq) for h in holders))
        except (RpcError, TimeoutError) as e:
            log.info("reading #%s from its replicas: %s", channel, e)
            return []
        return [a for a in answers if a is not None]

    async def _ask(self, holder: Address, channel: str, after_seq: int) -> Copy | None:
        try:
            reply = await self.node.user_command(holder, p.REPLICA_GET.type,
                                                 {"channel": channel, "after_seq": after_seq})
        except (RpcError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(reply, dict) or reply.get("ok") is not True:
            return None
        wires = reply.get("entries")
        entries, dropped = [], 0
        for wire in wires[:LOG_LIMIT] if isinstance(wires, list) else []:
            try:
                e = Entry.from_wire(wire, channel)
            except (ValueError, EntryError):
                dropped += 1
                continue
            if e.seq > after_seq:
                entries.append(e)
        if dropped:
            log.warning("%s sent %d entries of #%s that do not verify", holder, dropped,
                        channel)
        last_seq = reply.get("last_seq")
        return Copy(str(holder), sorted(entries, key=lambda e: (e.seq, e.msg_id)),
                    last_seq if type(last_seq) is int else 0)
