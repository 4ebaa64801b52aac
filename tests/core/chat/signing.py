"""Signed test data: one fixed identity per nick, and the members, entries and name records
they sign (remembered, so hypothesis runs sign each one once)."""

from __future__ import annotations

import functools

from core.chat.model.channel import Channel, Entry, Member
from core.chat.model.entries import SignedEntry, sign_entry
from core.chat.model.identity import Identity
from core.chat.model.records import NameRecord


@functools.cache
def identity(nick: str) -> Identity:
    """The test identity of ``nick`` (the same object for the whole run)."""
    return Identity.generate(nick)


@functools.lru_cache(maxsize=20_000)
def signed(channel: str, kind: str, nick: str, msg_id: str, text: str = "", at: float = 0.0,
           address: str = "h:1") -> SignedEntry:
    return sign_entry(identity(nick), channel, kind, msg_id, address=address, text=text, at=at)


def member(nick: str, address: str, stamp: float, present: bool = True,
           channel: str = "c") -> Member:
    """``nick``'s signed join (or leave) of ``channel`` from ``address`` at ``stamp``."""
    kind = "join" if present else "leave"
    return Member.of(signed(channel, kind, nick, f"{kind}-{nick}-{address}-{stamp!r}",
                            "" if present else "left", stamp, address))


def message(ch: Channel, nick: str, text: str, msg_id: str, at: float = 0.0) -> Entry:
    """Append ``nick``'s signed message to ``ch`` (as its maintainer would)."""
    entry, _ = ch.append("msg", nick, signed=signed(ch.name, "msg", nick, msg_id, text, at))
    return entry


def record(nick: str, address: str = "h:1", seq: int = 1, deleted: bool = False,
           node_id: str = "ab" * 20) -> NameRecord:
    me = identity(nick.lower())
    me.nick = nick
    if deleted:
        return NameRecord.tombstone(me, seq)
    return NameRecord.create(me, address, node_id, seq)
