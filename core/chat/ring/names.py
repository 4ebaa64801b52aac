"""Name records: which key holds a nick and which node serves it. Served by the owner of the
nick's ring key, called by a user registering, looking up or releasing its nick.

Every record is signed by the holder's key (``records.NameRecord``) and decided by the
pure rule ``records.decide``: the first valid claim of a free nick wins; while the holder
lives only its key may update (a higher sequence number) or delete; a replay is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.chord import Address, Local, Remote, RpcError

from ..model.holdings import Holdings, Range
from ..model.ids import name_key, verified
from ..model.records import Accept, Decision, NameRecord, RecordError, decide, needs_liveness
from ..wire import verbs as p
from ..wire.calls import Caller
from .journal import Journal
from .replication import Replication


def record_of(d: dict, key: int | None = None) -> NameRecord:
    """The signed record a payload or reply carries (ProtocolError for a bad shape)."""
    try:
        record = NameRecord.from_wire(d.get("record"))
    except RecordError as e:
        raise p.ProtocolError(f"'record': {e}") from None
    if key is not None and record.ring_key != key:
        raise p.ProtocolError("'record' is for another nick than 'key'")
    return record


def looked_up(reply: dict, nick: str) -> NameRecord | None:
    """The record in a ``chat.name.get`` reply if it verifies and is ``nick``'s, else None."""
    if not reply.get("ok"):
        return None
    try:
        record = record_of(reply)
    except p.ProtocolError:
        return None
    if record.name != nick.lower() or not record.present or not verified(record):
        return None
    return record


class Names:
    """The name records this node maintains, and the calls that reach other nodes' records.

    Args:
        wall_ms: the wall clock in ms (a sequence number far ahead of it is refused).
    """

    def __init__(self, node: Local, holdings: Holdings, range_: Range, caller: Caller,
                 replication: Replication, journal: Journal,
                 wall_ms: Callable[[], int]) -> None:
        self.node = node
        self.holdings = holdings
        self.range = range_
        self.caller = caller
        self.replication = replication
        self.journal = journal
        self.wall_ms = wall_ms
        self._locks: dict[str, asyncio.Lock] = {}

    def handlers(self) -> dict[p.Verb, p.Handler]:
        return {p.NAME_SET: self.rpc_name_set, p.NAME_GET: self.rpc_name_get,
                p.NAME_DEL: self.rpc_name_del}

    # -- set and delete: one rule ----------------------------------------------------------

    async def call_name_set(self, record: NameRecord, retry_for: float | None = None) -> dict:
        verb = p.NAME_DEL if record.deleted else p.NAME_SET
        what = (f"deleting the name record of {record.nick!r}" if record.deleted
                else f"registering the nick {record.nick!r}")
        return await self.caller.route(verb, record.ring_key, {"record": record.to_wire()},
                                       what, retry_for)

    async def rpc_name_set(self, d: dict) -> dict:
        return await self._put(record_of(d, p.key_of(d)), deleting=False)

    async def rpc_name_del(self, d: dict) -> dict:
        return await self._put(record_of(d, p.key_of(d)), deleting=True)

    async def _put(self, incoming: NameRecord, deleting: bool) -> dict:
        if incoming.deleted != deleting:
            raise p.ProtocolError("a set carries a record, a delete a tombstone")
        lock = self._locks.setdefault(incoming.name, asyncio.Lock())
        async with lock:  # two claims of one nick are decided one after the other
            current = self.holdings.name(incoming.name)
            alive = False
            if needs_liveness(current, incoming):
                alive = await self._alive(current.address)
            decision = decide(current, incoming, alive, now_ms=self.wall_ms())
            if not isinstance(decision, Accept):
                holder = current.address if current is not None else None
                extra = {"current_seq": decision.current_seq, "holder": holder}
                raise p.Refused(decision.reason, f"{incoming.nick}: {decision.message}",
                                **extra)
            if not self.range.serves(incoming.ring_key):
                return p.NOT_OWNER
            if not decision.changed:
                return p.OK
            if current is not None and current.present and current.key != incoming.key:
                self.journal.log(f"the nick {incoming.nick} passes from dead "
                                 f"{current.address} to {incoming.address}")
            record = self.holdings.put_name(incoming)
        await self.replication.call_replicate([record])
        self.journal.log(f"name record {incoming.nick} "
                         f"{'deleted' if deleting else 'set to ' + incoming.address}")
        self.journal.status()
        return p.OK

    async def take_copy(self, incoming: NameRecord) -> Decision:
        """A copy of a record another node held (a migration, a hand-off): decided as a
        ``chat.name.set`` would be, and kept (merged into what we maintain) if accepted."""
        lock = self._locks.setdefault(incoming.name, asyncio.Lock())
        async with lock:
            current = self.holdings.name(incoming.name)
            alive = (needs_liveness(current, incoming)
                     and await self._alive(current.address))  # type: ignore[union-attr]
            decision = decide(current, incoming, alive, now_ms=self.wall_ms())
            if isinstance(decision, Accept):
                self.holdings.maintain(incoming)
            return decision

    async def _alive(self, address: str) -> bool:
        """Whether a node answers; asked twice with a generous timeout, because a wrong
        "dead" would hand a live user's nick to someone else (a dead process refuses the
        connection at once, so this is quick when it matters)."""
        try:
            holder = Remote(Address.from_wire(address), self.node.transport)
        except ValueError:
            return False
        for _ in range(2):
            if await holder.ping(timeout=max(3.0, 2 * self.node.timeout)):
                return True
        return False

    # -- two holders met (a healed partition) ----------------------------------------------

    async def tell_conflict(self, kept: NameRecord, lost: NameRecord) -> None:
        """Tell both holders' nodes that the nick was held under two keys and which keeps it
        (``NameRecord.merge``: the later claim). The signed records go along, so each node
        can check the news for itself. Said only if the loser is alive: a record of a dead
        holder losing to a new claim is the normal passing of a nick."""
        try:
            loser = Remote(Address.from_wire(lost.address), self.node.transport)
        except ValueError:
            return
        if not await loser.ping():
            return
        self.journal.log(f"the nick {kept.nick} was held by {lost.address} and {kept.address} "
                         f"under two keys: {kept.address} keeps it (the later claim)")
        payload = {"nick": kept.nick, "kept": kept.to_wire(), "lost": lost.to_wire()}
        for record in (kept, lost):
            try:
                await self.node.user_command(Address.from_wire(record.address),
                                             p.NAME_CONFLICT.type, payload)
            except (RpcError, ValueError) as e:
                self.journal.log(f"could not tell {record.address} of the conflict: {e}")

    # -- get -------------------------------------------------------------------------------

    async def call_name_get(self, nick: str, retry_for: float | None = None) -> dict:
        return await self.caller.route(p.NAME_GET, name_key(nick), {"nick": nick},
                                       f"looking up {nick!r}", retry_for)

    async def lookup(self, nick: str, retry_for: float | None = None) -> NameRecord | None:
        """``nick``'s record if it is registered and verifies (the caller checks it: the
        node that answers is not trusted)."""
        return looked_up(await self.call_name_get(nick, retry_for), nick)

    async def rpc_name_get(self, d: dict) -> dict:
        record = self.holdings.name(d["nick"])
        if record is None or not record.present:
            return {"ok": False}
        return {"ok": True, "record": record.to_wire()}
