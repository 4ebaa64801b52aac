"""The chat's ids and ring keys, and what a receiver remembers of what it checked: the
message ids it has shown (``Seen``) and the signatures it has verified (``verified``).

Ring keys are ``core.chord.ids.hash_string`` of a canonical name: a channel's name
(lower case, no ``#``) and a nick in lower case. No I/O here.
"""

from __future__ import annotations

import collections
import functools
import uuid

from core.chord.ids import hash_string

from .entries import SignedEntry
from .records import NameRecord

SEEN_LIMIT = 10_000  # message ids a receiver remembers to drop duplicates


def new_id() -> str:
    """A fresh message id: 32 hex digits."""
    return uuid.uuid4().hex


def channel_key(name: str) -> int:
    """The ring key of a channel (its canonical name: lower-case, no ``#``)."""
    return hash_string(name)


def name_key(nick: str) -> int:
    """The ring key of a nick's name record."""
    return hash_string(nick.lower())


class Seen:
    """The message ids a receiver has shown, to drop a repeat (the last ``limit`` of them)."""

    def __init__(self, limit: int = SEEN_LIMIT) -> None:
        self._ids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._limit = limit

    def __contains__(self, msg_id: str) -> bool:
        return msg_id in self._ids

    def first(self, msg_id: str) -> bool:
        """True the first time ``msg_id`` is offered, and remember it."""
        if msg_id in self._ids:
            return False
        self._ids[msg_id] = None
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)
        return True


@functools.lru_cache(maxsize=20_000)
def _valid(signed: SignedEntry | NameRecord, _at_type: type) -> bool:
    return signed.valid()


def verified(signed: SignedEntry | NameRecord) -> bool:
    """``signed.valid()``, remembered: a replica or a history resends the same originals.

    (The type of ``at`` is part of the key: 1 and 1.0 are equal in Python but not signed
    alike.)"""
    return _valid(signed, type(getattr(signed, "at", None)))
