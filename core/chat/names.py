"""Name records: which node serves a nick. Served by the owner of the nick's key, called by
a user registering, looking up or deleting a nick."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.chord import Address, Local, Remote, RpcError

from . import protocol as p
from .calls import Caller
from .commands import check_nick
from .holdings import Holdings, Range
from .journal import Journal
from .replication import Replication
from .state import NameMap, name_key


class Names:
    """The name records this node maintains, and the calls that reach other nodes' records.

    Args:
        stamp: the wall clock that stamps a record (last writer wins).
    """

    def __init__(self, node: Local, holdings: Holdings, range_: Range, caller: Caller,
                 replication: Replication, journal: Journal,
                 stamp: Callable[[], float]) -> None:
        self.node = node
        self.holdings = holdings
        self.range = range_
        self.caller = caller
        self.replication = replication
        self.journal = journal
        self.stamp = stamp
        self._locks: dict[str, asyncio.Lock] = {}

    def handlers(self) -> dict[p.Verb, p.Handler]:
        return {p.NAME_SET: self.rpc_name_set, p.NAME_GET: self.rpc_name_get,
                p.NAME_DEL: self.rpc_name_del}

    # -- set -------------------------------------------------------------------------------

    async def call_name_set(self, nick: str, address: str, node_id: str) -> dict:
        return await self.caller.route(p.NAME_SET, name_key(nick),
                                       {"nick": nick, "address": address, "id": node_id},
                                       f"registering the nick {nick!r}")

    async def rpc_name_set(self, d: dict) -> dict:
        nick, address = check_nick(d["nick"]), str(p.need_address(d))
        lock = self._locks.setdefault(nick.lower(), asyncio.Lock())
        async with lock:  # two claims of one nick are decided one after the other
            current = self.holdings.name(nick)
            if current is not None and current.present and current.address != address:
                if await self._alive(Address.from_wire(current.address)):
                    self.journal.log(f"refused the nick {nick} to {address}: "
                                     f"held by {current.address}")
                    return {"ok": False, "holder": current.address}
                self.journal.log(f"the nick {nick} passes from dead {current.address} "
                                 f"to {address}")
            if not self.range.serves(name_key(nick)):
                return p.NOT_OWNER
            entry = self.holdings.put_name(NameMap(nick, address, d["id"], self._stamp(current)))
        await self.replication.call_replicate([entry])
        self.journal.log(f"name map {nick} set to {address}")
        self.journal.status()
        return p.OK

    async def _alive(self, address: Address) -> bool:
        """Whether a node answers; asked twice with a generous timeout, because a wrong
        "dead" would hand a live user's nick to someone else (a dead process refuses the
        connection at once, so this is quick when it matters)."""
        holder = Remote(address, self.node.transport)
        for _ in range(2):
            if await holder.ping(timeout=max(3.0, 2 * self.node.timeout)):
                return True
        return False

    def _stamp(self, current: NameMap | None) -> float:
        return max(self.stamp(), current.stamp + 1e-6 if current else 0.0)

    # -- two holders met (a healed partition) ----------------------------------------------

    async def tell_conflict(self, kept: NameMap, lost: NameMap) -> None:
        """Tell both holders' nodes that the nick was held by two nodes and which keeps it
        (``NameMap.merge``: the later claim). Said only if the loser is alive: a record of a
        dead holder losing to a new claim is the normal passing of a nick."""
        if not await Remote(Address.from_wire(lost.address), self.node.transport).ping():
            return
        self.journal.log(f"the nick {kept.nick} was held by {kept.address} and {lost.address}: "
                         f"{kept.address} keeps it (the later claim)")
        payload = {"nick": kept.nick, "kept": {"address": kept.address, "id": kept.node_id},
                   "lost": {"address": lost.address, "id": lost.node_id}}
        for record in (kept, lost):
            try:
                await self.node.user_command(Address.from_wire(record.address),
                                             p.NAME_CONFLICT.type, payload)
            except RpcError as e:
                self.journal.log(f"could not tell {record.address} of the conflict: {e}")

    # -- get -------------------------------------------------------------------------------

    async def call_name_get(self, nick: str) -> dict:
        return await self.caller.route(p.NAME_GET, name_key(nick), {"nick": nick},
                                       f"looking up {nick!r}")

    async def rpc_name_get(self, d: dict) -> dict:
        entry = self.holdings.name(d["nick"])
        if entry is None or not entry.present:
            return {"ok": False}
        return {"ok": True, "nick": entry.nick, "address": entry.address, "id": entry.node_id}

    # -- delete ----------------------------------------------------------------------------

    async def call_name_del(self, nick: str, address: str, retry_for: float) -> dict:
        return await self.caller.route(p.NAME_DEL, name_key(nick),
                                       {"nick": nick, "address": address},
                                       "deleting the name map", retry_for)

    async def rpc_name_del(self, d: dict) -> dict:
        current = self.holdings.name(d["nick"])
        if current is None or current.address != d["address"]:
            return {"ok": False}
        entry = self.holdings.put_name(NameMap(current.nick, current.address, current.node_id,
                                               self._stamp(current), present=False))
        await self.replication.call_replicate([entry])
        self.journal.log(f"name map {current.nick} deleted")
        self.journal.status()
        return p.OK
