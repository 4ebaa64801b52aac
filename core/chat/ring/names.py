"""Name records: which key holds a nick and which node serves it. Served by the owner of the
nick's ring key, called by a user registering, looking up or releasing its nick.

Every record is signed by the holder's key (``records.NameRecord``) and decided by the
pure rule ``records.decide``: the first valid claim of a free nick wins; while the holder
lives only its key may update (a higher sequence number) or delete; a replay is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable

from core.chord import Local, Remote, RemoteError, RpcError
from core.chord.relay import reachable

from ..model.holdings import Holdings, Range
from ..model.identity import verify
from ..model.ids import name_key, verified
from ..model.limits import DEFAULT, Limits, record_excess
from ..model.records import Accept, Decision, NameRecord, RecordError, decide, needs_liveness
from ..wire import verbs as p
from ..wire.calls import Caller
from ..wire.rate import caller_host, normal_host
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


ALIVE_KIND = "name.alive"   # what a holder's key signs to show its node serves it
DEAD_FOR = 10.0             # seconds a holder found dead is taken for dead without asking


def alive_fields(nick: str, key: str, nonce: str) -> dict:
    """What a holder signs (kind ``name.alive``) to answer a liveness challenge."""
    return {"nick": nick.lower(), "key": key, "nonce": nonce}


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
                 wall_ms: Callable[[], int], limits: Limits = DEFAULT) -> None:
        self.limits = limits
        self.node = node
        self.holdings = holdings
        self.range = range_
        self.caller = caller
        self.replication = replication
        self.journal = journal
        self.wall_ms = wall_ms
        self._locks: dict[str, asyncio.Lock] = {}
        self._dead: dict[tuple[str, str], float] = {}   # (address, key) -> dead until

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
        excess = record_excess(incoming, self.limits)
        if excess is not None:
            raise p.Refused("too_long", excess)
        if not incoming.valid():
            raise p.Refused("bad_signature", f"{incoming.nick}: "
                                             "the record's signature does not verify")
        host = caller_host()
        lock = self._locks.setdefault(incoming.name, asyncio.Lock())
        async with lock:  # two claims of one nick are decided one after the other
            current = self.holdings.name(incoming.name)
            if incoming.present:
                self._room_for(incoming, current)
                if (host is not None and not _same_host(incoming.address, host)
                        and not await self._alive(incoming)):
                    raise p.Refused("bad_address",
                                    f"{incoming.nick}: a claim from {host} names "
                                    f"{incoming.address}, which does not answer for its key")
            alive = False
            if needs_liveness(current, incoming):
                if not self.range.serves(incoming.ring_key):
                    return p.NOT_OWNER   # at once, not after a liveness check of seconds
                alive = await self._alive(current)
            decision = decide(current, incoming, alive, now_ms=self.wall_ms())
            if not isinstance(decision, Accept):
                holder = current.address if current is not None else None
                extra = {"current_seq": decision.current_seq, "holder": holder,
                         "clock_ms": self.wall_ms()}
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

    def _room_for(self, incoming: NameRecord, current: NameRecord | None) -> None:
        """Refused ``full`` if this maintainer keeps ``records_per_key`` other nicks under
        the claim's key, or ``records_per_address`` naming its address."""
        if current is not None and current.present and current.key == incoming.key \
                and current.address == incoming.address:
            return   # an update in place takes nothing more
        by_key = by_address = 0
        for record in self.holdings.maintained.names():
            if record.present and record.name != incoming.name:
                by_key += record.key == incoming.key
                by_address += record.address == incoming.address
        lim = self.limits
        if by_key >= lim.records_per_key:
            raise p.Refused("full", f"{incoming.nick}: its key holds {by_key} nicks here "
                                    f"(at most {lim.records_per_key})")
        if by_address >= lim.records_per_address:
            raise p.Refused("full", f"{incoming.nick}: {incoming.address} holds {by_address} "
                                    f"nicks here (at most {lim.records_per_address})")

    async def take_copy(self, incoming: NameRecord) -> Decision:
        """A copy of a record another node held (a migration, a hand-off): decided as a
        ``chat.name.set`` would be, and kept (merged into what we maintain) if accepted.

        One exception, the partition rule: a copy that loses only because our holder is
        alive (``taken``) wins if it is the later claim (``NameRecord.merge``) and its own
        holder is alive too — two live holders of one nick are the two sides of a healed
        partition, each let in while the other's holder could not be reached. The merge
        notes the conflict, and both holders are told (``tell_conflict``). A forged,
        future or stale copy is still refused by ``decide``; a later claim whose holder
        does not answer for its key never displaces a live one."""
        lock = self._locks.setdefault(incoming.name, asyncio.Lock())
        async with lock:
            current = self.holdings.name(incoming.name)
            alive = (needs_liveness(current, incoming)
                     and await self._alive(current))  # type: ignore[arg-type]
            decision = decide(current, incoming, alive, now_ms=self.wall_ms())
            if (not isinstance(decision, Accept) and decision.reason == "taken"
                    and current is not None and incoming.merge(current) is incoming
                    and await self._alive(incoming)):
                decision = Accept()
            if isinstance(decision, Accept):
                self.holdings.maintain(incoming)
            return decision

    async def _alive(self, record: NameRecord) -> bool:
        """Whether the node ``record`` names serves its holder: it must sign a fresh nonce
        with the holder's key (``chat.name.alive``), so any node answering at that address
        is not enough. Asked twice with a generous timeout, because a wrong "dead" would
        hand a live user's nick to someone else (a dead process refuses the connection at
        once, so this is quick when it matters); a holder cut off by a partition takes
        three timeouts, and is then taken for dead for ``DEAD_FOR`` seconds."""
        try:
            address = reachable(record.address)
        except ValueError:
            return False
        # a holder found dead a moment ago is dead still: the claims that follow (retries,
        # a second claimer, behind the lock) are not each kept waiting by a check of seconds
        dead = (record.address, record.key)
        if self._dead.get(dead, float("-inf")) > asyncio.get_running_loop().time():
            return False
        if not await self._answers(address, record):
            if len(self._dead) > 1000:
                self._dead.clear()
            self._dead[dead] = asyncio.get_running_loop().time() + DEAD_FOR
            return False
        self._dead.pop(dead, None)
        return True

    async def _answers(self, address, record: NameRecord) -> bool:
        nonce = secrets.token_hex(16)
        payload = {"nick": record.nick, "key": record.key, "nonce": nonce}
        timeout = max(3.0, 2 * self.node.timeout)
        # at most three timeouts in all: a call that fails goes round through neighbours
        # (detour.py) at twice the timeout each, and two such rounds kept a claim waiting
        # (and every claim of the nick after it, behind the lock) past its sender's patience
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3 * timeout):
                for _ in range(2):
                    try:
                        reply = await self.node.user_command(address, p.NAME_ALIVE.type,
                                                             payload, timeout=timeout)
                    except RemoteError:
                        return False   # it answers, but not for this key
                    except RpcError:
                        continue
                    return (isinstance(reply, dict) and reply.get("ok") is True
                            and verify(record.key, ALIVE_KIND,
                                       alive_fields(record.nick, record.key, nonce),
                                       reply.get("sig")))
        return False

    # -- two holders met (a healed partition) ----------------------------------------------

    async def tell_conflict(self, kept: NameRecord, lost: NameRecord) -> None:
        """Tell both holders' nodes that the nick was held under two keys and which keeps it
        (``NameRecord.merge``: the later claim). The signed records go along, so each node
        can check the news for itself. Said only if the loser is alive: a record of a dead
        holder losing to a new claim is the normal passing of a nick."""
        try:
            loser = Remote(reachable(lost.address), self.node.transport)
        except ValueError:
            return
        if not await loser.ping():
            return
        self.journal.log(f"the nick {kept.nick} was held by {lost.address} and {kept.address} "
                         f"under two keys: {kept.address} keeps it (the later claim)")
        payload = {"nick": kept.nick, "kept": kept.to_wire(), "lost": lost.to_wire()}
        for record in (kept, lost):
            try:
                await self.node.user_command(reachable(record.address),
                                             p.NAME_CONFLICT.type, payload)
            except (RpcError, ValueError) as e:
                self.journal.log(f"could not tell {record.address} of the conflict: {e}")

    # -- get -------------------------------------------------------------------------------

    async def call_name_get(self, nick: str, retry_for: float | None = None) -> dict:
        return await self.caller.route(p.NAME_GET, name_key(nick), {"nick": nick},
                                       f"looking up {nick!r}", retry_for)

    copies = None   # a NameCopies: lookups read the owner and its replicas (service.py)

    async def lookup(self, nick: str, retry_for: float | None = None) -> NameRecord | None:
        """``nick``'s record if it is registered and verifies (the caller checks it: the
        node that answers is not trusted)."""
        if self.copies is not None:   # robust: owner and replicas (ring/namecopies.py)
            return await self.copies.lookup(nick, retry_for)
        return looked_up(await self.call_name_get(nick, retry_for), nick)

    async def rpc_name_get(self, d: dict) -> dict:
        record = self.holdings.name(d["nick"])
        if record is None or not record.present:
            return {"ok": False}
        return {"ok": True, "record": record.to_wire()}


def _same_host(address: str, host: str) -> bool:
    try:
        return normal_host(reachable(address).host) == host
    except ValueError:
        return False
