"""Reading a name record that a hostile owner cannot hide: from the owner and its replicas.

The owner of a nick's key may lie: answer "unknown nick", or an old record that still
verifies (it was validly signed once). So a robust lookup (``core.chord.robust``) finds
and confirms the owner over several paths, and the record is read from the owner *and*
the next r nodes after it (its replicas), each asked directly with ``chat.name.copy``.
Of the answers that verify and name the nick, the greatest in the records' total order
wins (``NameRecord.merge``: the highest sequence number), so one honest holder is enough;
a tombstone that wins means the nick is free.
"""

from __future__ import annotations

import asyncio

from core.chord import Address, Local, RpcError
from core.chord.robust import RobustLookup

from ..model.errors import ChatError
from ..model.holdings import Holdings
from ..model.ids import name_key, verified
from ..model.records import NameRecord, RecordError
from ..wire import verbs as p
from ..wire.calls import Backoff


class NameCopies:
    """Serves ``chat.name.copy`` (our copy of a record: maintained or replica) and reads
    a nick's record from its owner and replicas.

    Args:
        robust: how the owner is found.
        replicas: r, how many holders after the owner are asked too.
        retry_for: the default of ``lookup``'s ``retry_for``.
    """

    def __init__(self, node: Local, holdings: Holdings, robust: RobustLookup,
                 replicas: int, retry_for: float) -> None:
        self.node = node
        self.holdings = holdings
        self.robust = robust
        self.replicas = replicas
        self.retry_for = retry_for
        self.last_holders: list[Address] = []   # asked by the last lookup (for tests, logs)

    def handlers(self) -> dict[p.Verb, p.Handler]:
        return {p.NAME_COPY: self.rpc_name_copy}

    async def rpc_name_copy(self, d: dict) -> dict:
        name = d["nick"].lower()
        record = self.holdings.maintained.get("name", name) or self.holdings.replicas.get(
            "name", name)
        if not isinstance(record, NameRecord):
            return {"ok": False}
        return {"ok": True, "record": record.to_wire()}

    async def lookup(self, nick: str, retry_for: float | None = None) -> NameRecord | None:
        """``nick``'s record (None: not registered, or released), the best valid copy held
        by its confirmed owner and replicas. Raises ChatError if none of them could be
        reached within ``retry_for`` seconds."""
        backoff = Backoff(self.retry_for if retry_for is None else retry_for)
        avoid: set[Address] = set()
        while True:
            try:
                found = await self.robust.find(name_key(nick), avoid)
                holders = await self.robust.holders(found, self.replicas)
                self.last_holders = holders
                answers = await asyncio.gather(*(self._copy(h, nick) for h in holders))
                if any(a is not False for a in answers):
                    best = max((a for a in answers if isinstance(a, NameRecord)),
                               key=NameRecord.order, default=None)
                    return best if best is not None and best.present else None
                avoid.update(holders)
                last = "no holder answered"
            except RpcError as e:
                last = str(e)
            if backoff.attempts % 8 == 7:
                avoid.clear()
            if not await backoff.wait():
                raise ChatError(f"looking up {nick!r}: gave up ({last})")

    async def _copy(self, holder: Address, nick: str) -> NameRecord | None | bool:
        """The holder's valid copy of ``nick``'s record; None if it has none; False if it
        did not answer (or answered nonsense)."""
        try:
            reply = await self.node.user_command(holder, p.NAME_COPY.type, {"nick": nick})
        except (RpcError, ValueError, KeyError, TypeError):
            return False
        if not isinstance(reply, dict):
            return False
        if not reply.get("ok"):
            return None
        try:
            record = NameRecord.from_wire(reply.get("record"))
        except RecordError:
            return None
        if record.name != nick.lower() or not verified(record):
            return None
        return record
