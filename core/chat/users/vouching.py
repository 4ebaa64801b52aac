"""Whose key a nick may speak with, as one local user sees it (trust on first use).

A signature is shown as a nick's when it verifies under the key pinned for that nick
(``pins.py``); with none pinned, the ring's name record must name the same key, and it is
pinned then. A changed key is warned about once and pinned only when the user trusts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core import events as ev
from core.chord.relay import describe

from ..model.channel import Entry
from ..model.commands import check_nick
from ..model.errors import ChatError
from ..model.identity import fingerprint
from ..model.records import NameRecord
from ..ring.names import Names
from ..wire.calls import Caller, now
from .pins import Pins, PinsError
from .signer import Signer

LOOKUP_TTL = 30.0    # seconds a name record looked up to vouch for a key is remembered
LOOKUP_AGAIN = 2.0   # a key it does not name is looked up again at most this often
VERIFIED, UNVERIFIED, FORGED = "verified", "unverified", "forged"


class Voucher:
    """The pins of one user and what the ring's name records said of other nicks' keys."""

    def __init__(self, me: Signer, pins: Pins, names: Names, caller: Caller,
                 post: Callable[[ev.Event], None]) -> None:
        self.me = me
        self.pins = pins
        self.names = names
        self.caller = caller
        self.post = post
        self._lookups: dict[str, tuple[float, str | None]] = {}  # nick -> (when, ring's key)
        self._asked: dict[tuple[str, str], float] = {}   # (nick, key) -> last looked up
        self._new_keys: dict[str, str] = {}    # nick -> a key seen that is not the pinned one
        self._warned: set[tuple[str, str]] = set()

    async def vouch_all(self, entries: list[Entry]) -> list[str]:
        """``vouch`` for each entry's author (the maintainer's unsigned notices pass)."""
        authors = {(e.nick, e.signed.key) for e in entries if e.signed is not None}
        results = dict(zip(authors, await asyncio.gather(
            *(self.vouch(nick, key) for nick, key in authors)), strict=True))
        return [VERIFIED if e.signed is None else results[(e.nick, e.signed.key)]
                for e in entries]

    async def vouch(self, nick: str, key: str) -> str:
        """Whether a valid signature by ``key`` may be shown as ``nick``'s: VERIFIED (the
        pinned key; or none pinned and the ring's name record names it: pinned now),
        UNVERIFIED (not the pinned key, or no record to compare: shown marked so; a changed
        key is warned about once) or FORGED (the ring gives the nick another key)."""
        if self.me.is_me(nick):
            return VERIFIED if key == self.me.identity.key else FORGED
        status = self.pins.check(nick, key)
        if status == "same":
            return VERIFIED
        ring_key = await self._ring_key(nick, key)
        if ring_key is not None and ring_key != key:
            return FORGED
        if status == "new":
            if ring_key is None:
                return UNVERIFIED
            try:
                self.pins.pin(nick, key)
            except PinsError as e:
                self.post(ev.Error(message=str(e)))
            return VERIFIED
        self.changed(nick, key)
        return UNVERIFIED

    async def _ring_key(self, nick: str, key: str) -> str | None:
        """The key of ``nick``'s name record on the ring (remembered for a while), or None."""
        name = nick.lower()
        cached = self._lookups.get(name)
        if cached is not None:
            age, ring_key = now() - cached[0], cached[1]
            # "no record" answered for another key (an earlier session of the nick, while
            # nobody held it) says nothing of this one: the nick may have come back since
            if age < LOOKUP_TTL and (ring_key == key or (ring_key is None
                                                         and (name, key) in self._asked)):
                return ring_key
            # another key may be a new record: asked again, but for one key not more than
            # every LOOKUP_AGAIN s (a flood of one forgery costs the nick's owner nothing)
            asked = self._asked.get((name, key))
            if asked is not None and now() - asked < LOOKUP_AGAIN:
                return ring_key
        if len(self._asked) > 1000:
            self._asked.clear()
        self._asked[(name, key)] = now()
        try:
            # briefly: a member answers its maintainer's delivery only after this
            record = await self.names.lookup(nick, retry_for=min(1.0, self.caller.retry_for))
        except ChatError:
            return None   # not remembered: asked again next time
        key = None if record is None else record.key
        self._lookups[name] = (now(), key)
        return key

    def changed(self, nick: str, key: str) -> None:
        """``nick`` came with ``key``, not the pinned one: warn once per key."""
        name = nick.lower()
        self._new_keys[name] = key
        pinned = self.pins.get(nick)
        if pinned is not None and (name, key) not in self._warned:
            self._warned.add((name, key))
            self.post(ev.KeyChanged(nick=nick, old=fingerprint(pinned), new=fingerprint(key)))

    def addressee(self, record: NameRecord) -> None:
        """Whether a private message may be sealed to the key of ``record``: pinned on first
        contact; a ChatError if it is not the key pinned for the nick (until trusted)."""
        if self.me.is_me(record.name):
            return
        shown = record.nick
        status = self.pins.check(shown, record.key)
        if status == "changed":
            self.changed(shown, record.key)
            raise ChatError(f"the key of {shown} changed (now {fingerprint(record.key)}); "
                            f"compare it with {shown}, then: trust {shown}")
        if status == "new":
            self.pins.pin(shown, record.key)

    def _reach(self, address: str) -> str:
        """How our node reaches ``address``: direct, hole-punched, or through a relay."""
        node = getattr(self.me, "node", None)
        return node.reach_of(address) if node is not None else describe(address)

    async def whois(self, nick: str) -> ev.Whois:
        """Who holds ``nick``: its key's fingerprint and node (a Whois event)."""
        record = await self.names.lookup(check_nick(nick))
        if record is None:
            raise ChatError(f"unknown nick {nick!r}: no node has registered it")
        mine = self.me.is_me(record.name)
        status = "same" if mine else self.pins.check(record.nick, record.key)
        if status == "changed":
            self.changed(record.nick, record.key)
        whois = ev.Whois(nick=record.nick, fingerprint=fingerprint(record.key),
                         id=record.node_id, address=record.address, pin=status,
                         reach=self._reach(record.address))
        self.post(whois)
        return whois

    async def trust(self, nick: str) -> str:
        """Pin the key last seen for ``nick`` (after a key-changed warning), else the key
        its name record names now. Returns the fingerprint trusted."""
        name = check_nick(nick).lower()
        key = self._new_keys.get(name)
        if key is None:
            record = await self.names.lookup(nick)
            if record is None:
                raise ChatError(f"unknown nick {nick!r}: no key to trust")
            key = record.key
        try:
            self.pins.trust(nick, key)
        except PinsError as e:
            raise ChatError(str(e)) from None
        self._new_keys.pop(name, None)
        self._lookups.pop(name, None)
        self.post(ev.Info(text=f"trusted {nick}'s key {fingerprint(key)}"))
        return fingerprint(key)
