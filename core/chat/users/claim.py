"""A local user's claim on its nick: the signed name record it puts on the ring at start,
keeps or loses after a partition (the later claim wins), and withdraws when it quits.
"""

from __future__ import annotations

from collections.abc import Callable

from core import events as ev

from ..model.errors import ChatError, NickTaken
from ..model.identity import fingerprint
from ..model.records import NameRecord, RecordError, next_seq
from ..ring.clock import describe
from ..ring.journal import Journal
from ..ring.names import Names
from ..wire import verbs as p
from ..wire.calls import Caller
from .signer import Signer


class Claim:
    """The user's name record (``record``) and whether the nick is its (``registered``)."""

    def __init__(self, me: Signer, names: Names, caller: Caller, journal: Journal,
                 post: Callable[[ev.Event], None]) -> None:
        self.me = me
        self.names = names
        self.caller = caller
        self.journal = journal
        self.post = post
        self.record: NameRecord | None = None
        self.registered = False

    async def register(self, announce: bool = True) -> ev.Ready:
        """Claim the nick on the ring with a signed record (NickTaken if another key holds
        it and its node lives); post Ready (unless not ``announce``: a record renewed
        because the node's address changed)."""
        me = self.me
        seq = next_seq(0, me.wall_ms())
        for _ in range(3):
            record = NameRecord.create(me.identity, me.address, me.id_hex, seq)
            reply = await self.names.call_name_set(record)
            refused = reply.get("refused")
            if reply.get("ok"):
                break
            if refused == "taken":
                raise NickTaken(f"the nick {me.nick!r} is already taken by the node at "
                                f"{reply.get('holder') or '?'}")
            current = reply.get("current_seq")
            if refused == "future" and type(reply.get("clock_ms")) is int:
                ahead = (record.seq - reply["clock_ms"]) / 1000
                raise ChatError(f"the nick {me.nick!r} was refused: your clock is "
                                f"{describe(ahead)} the clock of the node that keeps the "
                                "nick's record, more than it allows; set your clock right")
            if refused != "stale" or type(current) is not int:
                raise ChatError(f"the nick {me.nick!r} was refused: "
                                f"{reply.get('error', reply)}")
            seq = next_seq(current, me.wall_ms())   # our clock is behind the record's
        else:
            raise ChatError(f"the nick {me.nick!r} was refused: {reply.get('error')}")
        self.record = record
        self.registered = True
        ready = ev.Ready(nick=me.nick, id=me.id_hex, address=me.address,
                         fingerprint=me.fingerprint)
        if announce:
            self.post(ready)
        return ready

    async def conflict(self, kept: object, lost: object) -> dict:
        """Our nick was held under two keys (claimed on both sides of a partition); the
        later claim kept it. Believed only from the two signed records themselves, and only
        if the ring's record of the nick is now the one that kept it (a forger could sign a
        claim of its own, but the nick's owner would not have stored it)."""
        won, beaten = await self._believed(kept, lost)
        me = self.me
        if won.key == me.identity.key:
            self.post(ev.Info(text=f"your nick {me.nick} was also claimed, by the key "
                                   f"{fingerprint(beaten.key)} at {beaten.address}, while the "
                                   "network was split; you keep it (the later claim wins)"))
        elif self.registered:
            self.registered = False
            self.post(ev.Error(message=(
                f"you lost the nick {me.nick} to the key {fingerprint(won.key)} at "
                f"{won.address}: both claimed it while the network was split, and the later "
                "claim wins; restart under another nick to be reachable by name")))
        return p.OK

    async def _believed(self, kept: object, lost: object) -> tuple[NameRecord, NameRecord]:
        """The records of a conflict, (won, lost), once checked; else ``Refused``."""
        try:
            won, beaten = NameRecord.from_wire(kept), NameRecord.from_wire(lost)
        except RecordError as e:
            raise p.Refused("bad_conflict",
                            f"a name conflict with a malformed record: {e}") from None
        if not (won.valid() and beaten.valid() and won.present and beaten.present
                and won.name == beaten.name == self.me.nick.lower() and won.key != beaten.key
                and won.merge(beaten) is won
                and self.me.identity.key in (won.key, beaten.key)):
            raise p.Refused("bad_conflict", "a name conflict that its records do not show")
        try:
            on_ring = await self.names.lookup(self.me.nick,
                                              retry_for=min(2.0, self.caller.retry_for))
        except ChatError as e:
            raise p.Refused("bad_conflict", f"cannot check the conflict: {e}") from None
        if on_ring is None or on_ring.key != won.key:
            raise p.Refused("bad_conflict", "the ring does not hold the record that won")
        return won, beaten

    async def withdraw(self, retry_for: float, reason: str) -> None:
        """Let the nick go: a signed tombstone replaces the record (on quit)."""
        if not self.registered or self.record is None:
            return
        self.registered = False
        tombstone = NameRecord.tombstone(self.me.identity,
                                         next_seq(self.record.seq, self.me.wall_ms()))
        try:
            reply = p.refusal(await self.names.call_name_set(tombstone, retry_for),
                            "deleting the name record")
            self.journal.migration("unname", ("name", self.me.nick), self.me.address,
                                   reply["via"], reason)
        except ChatError as e:
            self.post(ev.Error(message=f"could not delete the name record on exit: {e}"))
