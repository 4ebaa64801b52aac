"""Signed channel entries: a user's join, leave or message, signed by the user, sequenced by others.

The author signs (kind ``channel.<join|leave|msg>``) the channel, its nick and key, the
address of its node, a message id, the text and its own clock. The maintainer verifies
before it sequences an entry and members verify again before they show it. The
sequence number the maintainer assigns is *not* signed: a maintainer can drop or
reorder entries but never forge one or alter a signed field.

Why the address is signed: a channel member is (nick, node address), so a join names
where deliveries go, and a leave names which membership ends; a leave is accepted only
under the key that joined from that address. Why ``at`` is signed: membership is a
last-writer-wins set stamped with ``at``, so a replayed old leave loses to a later
join; and a maintainer can refuse messages outside ``REPLAY_WINDOW`` of its clock,
beyond which it no longer remembers their ids.

Why a message may carry ``series`` and ``n`` (signed): ``n`` counts the author's messages
to the channel within one ``series`` (a random id the author draws once per session, so a
restart starts a fresh series and nothing needs to be persisted). A member that sees an
author's ``n`` jump knows messages are missing even when the maintainer's unsigned
``seq`` was renumbered to hide it (``users/gaps.py``, docs/security.md). Entries
without them (joins, leaves, older nodes) verify as before: the signed fields are the
same as they always were when both are absent.
"""

from __future__ import annotations

import math
import re
import sys
import time
from dataclasses import dataclass

from core.datadir import valid_nick

from .identity import Identity, is_key, verify

KINDS = ("join", "leave", "msg", "topic", "mode", "kick", "invite")
MAX_TOPIC = 300             # characters of a channel topic
REPLAY_WINDOW = 10 * 60.0   # seconds either side of the maintainer's clock
MAX_ADDRESS = 300
MAX_MSG_ID = 128
MAX_SERIES = 32
MAX_N = 2 ** 53     # an author's counter stays an exact JSON number
# the canonical channel name (core.chat.model.commands.channel_name makes it)
CHANNEL_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,49}")
_SIGNATURE_RE = re.compile(r"[0-9a-f]{128}")


class EntryError(ValueError):
    """A channel entry of the wrong shape (from the wire)."""


@dataclass(frozen=True, slots=True)
class SignedEntry:
    """A join, leave or message as its author signed it."""
    channel: str     # canonical name: lower-case, no "#"
    kind: str        # "join", "leave", "msg", "topic" (the text is the channel's topic),
    #                  "mode" (the text: changes, model/modes.py), "kick" (the text: the
    #                  member kicked, a space and the reason) or "invite" (the text: the nick)
    nick: str
    key: str         # the author's public key, 64 hex digits
    address: str     # the author's node, "host:port"
    msg_id: str
    text: str
    at: float        # the author's wall clock, seconds (int or float, signed as sent)
    signature: str
    series: str | None = None   # the author's session: its messages are counted in it
    n: int | None = None        # the author's count of its messages to the channel
    action: bool = False   # a message that is an action (``/me waves``): signed with it

    @property
    def sign_kind(self) -> str:
        return f"channel.{self.kind}"

    def fields(self) -> dict:
        """What the signature covers (besides the kind): everything but the signature
        (``series`` and ``n`` only when present, ``action`` only when true: an entry
        without them is signed as it always was)."""
        fields = {"channel": self.channel, "kind": self.kind, "nick": self.nick,
                  "key": self.key, "address": self.address, "msg_id": self.msg_id,
                  "text": self.text, "at": self.at}
        if self.n is not None:
            fields["series"], fields["n"] = self.series, self.n
        if self.action is not False:
            fields["action"] = self.action
        return fields

    @property
    def counted(self) -> tuple[str, str, int] | None:
        """(key, series, n) of a counted message; None for an entry without a count."""
        return None if self.n is None else (self.key, str(self.series), self.n)

    def check_shape(self) -> None:
        """Raise ``EntryError`` unless every field has the right type and form."""
        if not isinstance(self.channel, str) or not CHANNEL_RE.fullmatch(self.channel):
            raise EntryError("'channel' is not a canonical channel name")
        if self.kind not in KINDS:
            raise EntryError(f"'kind' must be one of {', '.join(KINDS)}")
        if not valid_nick(self.nick):
            raise EntryError("'nick' is not a valid nick")
        if not is_key(self.key):
            raise EntryError("'key' must be 64 lower-case hex digits")
        if not isinstance(self.address, str) or not 0 < len(self.address) <= MAX_ADDRESS:
            raise EntryError("'address' must be a non-empty string")
        if not isinstance(self.msg_id, str) or not 0 < len(self.msg_id) <= MAX_MSG_ID:
            raise EntryError("'msg_id' must be a non-empty string")
        if not isinstance(self.text, str):
            raise EntryError("'text' must be a string")
        if (not isinstance(self.at, (int, float)) or isinstance(self.at, bool)
                or not math.isfinite(self.at)):
            raise EntryError("'at' must be a finite number")
        if not isinstance(self.signature, str):
            raise EntryError("'signature' must be a string")
        if (self.series is None) != (self.n is None):
            raise EntryError("'series' and 'n' come together")
        if self.n is not None:
            if not isinstance(self.series, str) or not 0 < len(self.series) <= MAX_SERIES:
                raise EntryError("'series' must be a non-empty string")
            if type(self.n) is not int or not 0 < self.n <= MAX_N:
                raise EntryError("'n' must be a positive integer")
        if self.action is not False and (self.action is not True or self.kind != "msg"):
            raise EntryError("'action' must be true, on a message, or absent")

    def valid(self) -> bool:
        """Well formed and signed by its own key. Never raises."""
        try:
            self.check_shape()
        except EntryError:
            return False
        return (_SIGNATURE_RE.fullmatch(self.signature) is not None
                and verify(self.key, self.sign_kind, self.fields(), self.signature))

    def fresh(self, now: float, window: float = REPLAY_WINDOW) -> bool:
        """Whether ``at`` lies within ``window`` seconds of ``now`` (the wall clock)."""
        return abs(self.at - now) <= window

    def to_wire(self) -> dict:
        return {**self.fields(), "signature": self.signature}

    @classmethod
    def from_wire(cls, d: object) -> SignedEntry:
        """Parse an entry; only its shape is checked (call ``valid()`` for the signature).

        Extra fields (the maintainer's ``seq``) are ignored.

        Raises:
            EntryError: not an object of the right fields and types.
        """
        if not isinstance(d, dict):
            raise EntryError("a channel entry must be an object")
        try:
            entry = cls(d["channel"], d["kind"], d["nick"], d["key"], d["address"],
                        d["msg_id"], d["text"], d["at"], d["signature"], d.get("series"),
                        d.get("n"), d.get("action", False))
        except KeyError as e:
            raise EntryError(f"a channel entry lacks {e.args[0]!r}") from None
        entry.check_shape()
        # one string object for what repeats in every entry of a channel (a maintainer
        # keeps 300 entries of each: the author's key, node, nick and the channel's name)
        return cls(sys.intern(entry.channel), sys.intern(entry.kind), sys.intern(entry.nick),
                   sys.intern(entry.key), sys.intern(entry.address), entry.msg_id, entry.text,
                   entry.at, entry.signature,
                   None if entry.series is None else sys.intern(entry.series), entry.n,
                   entry.action)


def sign_entry(identity: Identity, channel: str, kind: str, msg_id: str, *,
               address: str, text: str = "", at: float | None = None,
               count: tuple[str, int] | None = None, action: bool = False) -> SignedEntry:
    """``identity`` signs a join, leave or message in ``channel`` (a canonical name).

    Args:
        address: the author's node address (where a member's deliveries go).
        at: the author's wall clock in seconds; now if None.
        count: (series, n) of a message: the author's count of its messages to the
            channel in this series (None: not counted).
        action: a message that is an action (``/me``).

    Raises:
        EntryError: a field has the wrong form (a bad channel name, kind, …).
    """
    at = time.time() if at is None else at
    series, n = count if count is not None else (None, None)
    unsigned = SignedEntry(channel, kind, identity.nick, identity.key, address, msg_id,
                           text, at, "", series, n, action)
    unsigned.check_shape()
    return SignedEntry(channel, kind, identity.nick, identity.key, address, msg_id, text, at,
                       identity.sign(unsigned.sign_kind, unsigned.fields()), series, n, action)


def may_leave(member_key: str, leave: SignedEntry) -> bool:
    """Whether ``leave`` may end the membership that ``member_key`` signed the join of.

    Nobody can remove another member: the leave must be valid and under the same key.
    """
    return leave.kind == "leave" and leave.key == member_key and leave.valid()
