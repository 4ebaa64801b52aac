"""Signed name records: who holds a nick, the rule that decides a claim, and their merge.

A ``NameRecord`` says "nick is held by the key K, reachable at address / node id", with
a sequence number, signed by K (kind ``name``); a tombstone (kind ``name.del``) is K's
signed "I let nick go". The rules are those of BitTorrent's mutable DHT items (BEP 44)
and OpenDHT's signed values, plus Chord's liveness check:

- the first valid claim of a free nick wins (free: no record, a tombstone, or a holder
  that no longer answers);
- while the holder lives, only its key may update the record or delete it, and only
  with a higher sequence number: an equal or lower one is a replay and is refused;
- a record that does not verify is always refused.

Sequence numbers are the author's clock in milliseconds, kept increasing by
``next_seq`` (so a restart goes on above the last record without keeping a counter).
``decide`` is pure: the maintainer asks it whether the holder lives only when
``needs_liveness`` says that answer matters.

Copies (replicas, migrations, a healed partition) merge by ``NameRecord.merge``: the
greater record in one total order — ``(seq, deleted, key, signature, …)``. For one key
that is "higher sequence wins" (a tombstone wins a tie). Between two keys it is "the
later claim wins", which is what ``decide`` enforces too: a claim over another key's
record must carry a higher sequence, so whatever ``decide`` accepts also wins every
later merge. A max over a total order is commutative, associative and idempotent.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from core.chord.ids import hash_string
from core.datadir import valid_nick

from .identity import Identity, is_key, verify

KIND = "name"
DELETE_KIND = "name.del"
MAX_SEQ = 2**63 - 1
SKEW_MS = 5 * 60 * 1000   # how far in the future a sequence number may be (clock skew)
MAX_ADDRESS = 300
_NODE_ID_RE = re.compile(r"[0-9a-f]{40}")
_SIGNATURE_RE = re.compile(r"[0-9a-f]{128}")


class RecordError(ValueError):
    """A name record of the wrong shape (from the wire)."""


def next_seq(last: int = 0, now_ms: int | None = None) -> int:
    """A sequence number above ``last``: the wall clock in ms, or ``last + 1`` if that is later."""
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return max(last + 1, now)


@dataclass(frozen=True)
class NameRecord:
    """A signed claim of a nick (or, ``deleted``, the holder's signed release of it)."""
    nick: str
    key: str          # the holder's ed25519 public key, 64 hex digits
    address: str      # "host:port" (empty in a tombstone)
    node_id: str      # 40 hex digits (empty in a tombstone)
    seq: int
    signature: str
    deleted: bool = False

    @classmethod
    def create(cls, identity: Identity, address: str, node_id: str, seq: int) -> NameRecord:
        """``identity`` claims its nick at (address, node_id)."""
        return cls._signed(identity, address, node_id, seq, deleted=False)

    @classmethod
    def tombstone(cls, identity: Identity, seq: int) -> NameRecord:
        """``identity`` lets its nick go (sent on exit instead of an unsigned delete)."""
        return cls._signed(identity, "", "", seq, deleted=True)

    @classmethod
    def _signed(cls, identity: Identity, address: str, node_id: str, seq: int,
                deleted: bool) -> NameRecord:
        unsigned = cls(identity.nick, identity.key, address, node_id, seq, "", deleted)
        record = cls(identity.nick, identity.key, address, node_id, seq,
                     identity.sign(unsigned.kind, unsigned.fields()), deleted)
        record.check_shape()
        return record

    # -- what it is --------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The nick as compared: lower-case."""
        return self.nick.lower()

    @property
    def ring_key(self) -> int:
        """Where the record lives on the ring: hash(nick lower-cased)."""
        return hash_string(self.name)

    @property
    def present(self) -> bool:
        return not self.deleted

    @property
    def kind(self) -> str:
        return DELETE_KIND if self.deleted else KIND

    def fields(self) -> dict:
        """What the signature covers (besides the kind)."""
        return {"nick": self.nick, "key": self.key, "address": self.address,
                "node_id": self.node_id, "seq": self.seq}

    def check_shape(self) -> None:
        """Raise ``RecordError`` unless every field has the right type and form."""
        if not valid_nick(self.nick):
            raise RecordError("'nick' is not a valid nick")
        if not is_key(self.key):
            raise RecordError("'key' must be 64 lower-case hex digits")
        if not isinstance(self.deleted, bool):
            raise RecordError("'deleted' must be a boolean")
        if self.deleted:
            if self.address != "" or self.node_id != "":
                raise RecordError("a deleted record has no address or node id")
        else:
            if not isinstance(self.address, str) or not 0 < len(self.address) <= MAX_ADDRESS:
                raise RecordError("'address' must be a non-empty string")
            if not isinstance(self.node_id, str) or not _NODE_ID_RE.fullmatch(self.node_id):
                raise RecordError("'node_id' must be 40 lower-case hex digits")
        if type(self.seq) is not int or not 0 < self.seq <= MAX_SEQ:
            raise RecordError("'seq' must be a positive integer below 2**63")
        if not isinstance(self.signature, str):
            raise RecordError("'signature' must be a string")

    def valid(self) -> bool:
        """Well formed and signed by its own key. Never raises."""
        try:
            self.check_shape()
        except RecordError:
            return False
        return (_SIGNATURE_RE.fullmatch(self.signature) is not None
                and verify(self.key, self.kind, self.fields(), self.signature))

    # -- copies ------------------------------------------------------------------------

    def order(self) -> tuple:
        """The total order ``merge`` takes the greatest of (see the module docstring)."""
        return (self.seq, self.deleted, self.key, self.signature, self.nick, self.address,
                self.node_id)

    def merge(self, other: NameRecord) -> NameRecord:
        """The winner of two copies of the same name (neither is changed)."""
        if other.name != self.name:
            raise ValueError(f"cannot merge name {other.nick!r} into {self.nick!r}")
        return other if other.order() > self.order() else self

    def to_wire(self) -> dict:
        return {**self.fields(), "deleted": self.deleted, "signature": self.signature}

    @classmethod
    def from_wire(cls, d: object) -> NameRecord:
        """Parse a record; only its shape is checked (call ``valid()`` for the signature).

        Raises:
            RecordError: not an object of the right fields and types.
        """
        if not isinstance(d, dict):
            raise RecordError("a name record must be an object")
        try:
            record = cls(d["nick"], d["key"], d["address"], d["node_id"], d["seq"],
                         d["signature"], d["deleted"])
        except KeyError as e:
            raise RecordError(f"a name record lacks {e.args[0]!r}") from None
        record.check_shape()
        return record


# -- the acceptance rule -------------------------------------------------------------------

@dataclass(frozen=True)
class Accept:
    """Store the incoming record (``changed`` False: it is the very record stored)."""
    changed: bool = True


@dataclass(frozen=True)
class Refuse:
    """Keep what is stored. ``current_seq``: the stored sequence, for a ``stale`` retry."""
    reason: str
    current_seq: int | None = None

    @property
    def message(self) -> str:
        return REASONS[self.reason]


REASONS = {
    "bad_signature": "the record is malformed or its signature does not verify",
    "other_name": "the record is for another nick",
    "future": "the sequence number is too far in the future",
    "stale": "the sequence number is not above the stored one (a replay?)",
    "taken": "the nick is held by another key whose node is alive",
    "not_holder": "only the holder's key may delete a nick",
}

Decision = Accept | Refuse


def needs_liveness(current: NameRecord | None, incoming: NameRecord) -> bool:
    """Whether ``decide`` needs to know if ``current``'s holder lives (a ping to its address)."""
    return current is not None and current.present and current.key != incoming.key


def decide(current: NameRecord | None, incoming: NameRecord, holder_alive: bool, *,
           now_ms: int | None = None) -> Decision:
    """Whether the owner of a name stores ``incoming`` in place of ``current``.

    Args:
        current: the stored record (a tombstone included), or None.
        incoming: the record a set or delete request carries.
        holder_alive: whether ``current``'s node answers; consulted only when
            ``needs_liveness(current, incoming)``.
        now_ms: the wall clock in ms; when given, a sequence number more than
            ``SKEW_MS`` ahead is refused (it would lock a nick away from later claims).

    Returns:
        ``Accept()`` or ``Refuse(reason)``. Whenever it accepts a change,
        ``current.merge(incoming)`` is ``incoming``.
    """
    if not incoming.valid():
        return Refuse("bad_signature")
    if current is not None and current.name != incoming.name:
        return Refuse("other_name")
    if now_ms is not None and incoming.seq > now_ms + SKEW_MS:
        return Refuse("future")
    if current is None:
        return Accept()
    if incoming == current:
        return Accept(changed=False)  # a retry of the stored record: no effect, no error
    if incoming.key != current.key:
        if incoming.deleted:
            return Refuse("not_holder")
        if current.present and holder_alive:
            return Refuse("taken")
    if incoming.seq <= current.seq:
        return Refuse("stale", current.seq)
    return Accept()
