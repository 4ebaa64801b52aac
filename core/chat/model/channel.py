"""A channel as its maintainer keeps it — members and a sequenced log — and how two copies
of it merge (a union). No I/O here.

A channel is a state-based replicated value: ``Channel.merge`` is commutative,
associative and idempotent, so a migration or a replica can be applied any number of
times, in any order.
- Members are a last-writer-wins element set keyed by (nick, node address) — one node may
  serve several users: a join or a leave is stamped; the later stamp wins, so a union of
  two member lists keeps everyone who joined on either side unless a later leave says
  otherwise.
- The log holds channel messages and join/leave notices with a maintainer-assigned
  sequence number; merging is a union by message id.

Whatever a user did travels as the user's signed original (core.chat.model.entries), so every
copy — a replica, a migration, a member's delivery — is checked again where it arrives:
``from_wire`` drops a member or log entry whose signature does not verify (``dropped``
counts them). Only the maintainer's own notices (a member removed as unreachable,
"pruned", or denied by its node, "gone") are unsigned: they can remove a membership but
never add one or speak in anyone's name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from .entries import MAX_TOPIC, EntryError, SignedEntry
from .ids import channel_key, new_id, verified
from .modes import Modes

HISTORY = 100       # messages a new member receives on join
LOG_LIMIT = 300     # entries (messages and notices) a channel keeps at most
LOG_CHARS = 150_000  # and at most this much text, so that a channel fits in one 1 MiB frame
NOTICES = ("pruned", "gone")   # the maintainer's own (unsigned) reasons to remove a member

MemberKey = tuple[str, str]
"""A channel member: (nick in lower case, node address)."""


@dataclass(frozen=True, slots=True)
class Member:
    """One user's membership of a channel, as last set by a join (present) or leave.

    ``signed`` is the user's signed join or leave (``stamp`` is its ``at``); a removal by
    the maintainer (pruned, gone) is unsigned: it carries the signed join it ends
    (``ended``) and is stamped just above that join's ``at``, so a copy can never bring a
    removal that beats a later signed join of the same member.
    """
    nick: str
    address: str
    stamp: float
    present: bool = True
    signed: SignedEntry | None = None
    ended: SignedEntry | None = None    # a removal: the signed join it ends

    @classmethod
    def of(cls, signed: SignedEntry) -> Member:
        """The membership a signed join or leave sets."""
        return cls(signed.nick, signed.address, float(signed.at), signed.kind == "join",
                   signed)

    def removed(self) -> Member:
        """An unsigned removal of this membership (the maintainer's: pruned or gone)."""
        return Member(self.nick, self.address, math.nextafter(self.stamp, math.inf), False,
                      ended=self.signed if self.signed is not None else self.ended)

    @property
    def key(self) -> MemberKey:
        return self.nick.lower(), self.address

    @property
    def public_key(self) -> str | None:
        """The key the user joined with (None for an unsigned record)."""
        return None if self.signed is None else self.signed.key

    def to_wire(self) -> dict:
        if self.signed is not None:
            return {"entry": self.signed.to_wire()}
        if self.ended is not None:
            return {"ended": self.ended.to_wire(), "present": False}
        return {"nick": self.nick, "address": self.address, "stamp": self.stamp,
                "present": self.present}

    @classmethod
    def from_wire(cls, d: object, channel: str) -> Member:
        """A member record from a copy; ValueError unless signed by the user for this
        channel, or a maintainer's removal carrying the signed join it ends (its stamp is
        that join's, never one the copy names: a removal cannot outlast a later join)."""
        if not isinstance(d, dict):
            raise ValueError("a member must be an object")
        if "entry" in d:
            signed = SignedEntry.from_wire(d["entry"])
            if (signed.kind not in ("join", "leave") or signed.channel != channel
                    or not verified(signed)):
                raise ValueError(f"a member record of #{channel} that does not verify")
            return cls.of(signed)
        if "ended" in d and d.get("present") is False:
            join = SignedEntry.from_wire(d["ended"])
            if join.kind != "join" or join.channel != channel or not verified(join):
                raise ValueError(f"a removal of #{channel} whose join does not verify")
            return cls.of(join).removed()
        raise ValueError("an unsigned member record is a removal with the join it ends")

    def wins_over(self, other: Member) -> bool:
        # ties go to the leave, so a leave stamped at the same instant is never undone
        # (and then by nick, so that merging is the same in any order)
        return ((self.stamp, not self.present, self.nick)
                > (other.stamp, not other.present, other.nick))


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of a channel's log: a message (``kind="msg"``) or a join/leave notice.

    ``signed`` is the author's signed original (a message, join or leave); only the
    maintainer's removal notices ("pruned", "gone") have none: those name the signed join
    they end (``ended``, its ``msg_id``), so a member can tell a removal of the join that
    stands from one of a join its author has since made again. The sequence number is the
    maintainer's and is not signed.
    """
    seq: int
    msg_id: str
    kind: str      # "msg", "join", "leave"
    nick: str
    text: str = ""
    at: float = 0.0
    signed: SignedEntry | None = None
    ended: str | None = None    # a removal notice: the msg_id of the signed join it ends

    @property
    def action(self) -> bool:
        """A message that is an action (``/me``): its author signed it so."""
        return self.signed is not None and self.signed.action

    @classmethod
    def of(cls, seq: int, signed: SignedEntry) -> Entry:
        return cls(seq, signed.msg_id, signed.kind, signed.nick, signed.text,
                   float(signed.at), signed)

    def to_wire(self) -> dict:
        if self.signed is not None:
            return {"seq": self.seq, **self.signed.to_wire()}
        wire = {"seq": self.seq, "msg_id": self.msg_id, "kind": self.kind, "nick": self.nick,
                "text": self.text, "at": self.at}
        if self.ended is not None:
            wire["ended"] = self.ended
        return wire

    @classmethod
    def from_wire(cls, d: object, channel: str) -> Entry:
        """An entry from a copy or a delivery; ValueError unless it is signed by its author
        for this channel, or a maintainer's removal notice."""
        if not isinstance(d, dict):
            raise ValueError("an entry must be an object")
        seq = d.get("seq")
        if type(seq) is not int or seq < 1:
            raise ValueError("'seq' must be a positive integer")
        if "signature" in d:
            signed = SignedEntry.from_wire(d)
            if signed.channel != channel or not verified(signed):
                raise ValueError(f"an entry of #{channel} that does not verify")
            return cls.of(seq, signed)
        msg_id, nick, text, at = d.get("msg_id"), d.get("nick"), d.get("text"), d.get("at")
        ended = d.get("ended")
        if (d.get("kind") != "leave" or text not in NOTICES or not isinstance(msg_id, str)
                or not isinstance(nick, str) or not isinstance(at, (int, float))
                or isinstance(at, bool) or not isinstance(ended, (str, type(None)))):
            raise ValueError("an unsigned entry can only be a maintainer's removal notice")
        return cls(seq, msg_id, "leave", nick, text, float(at), ended=ended)


def later_topic(a: SignedEntry | None, b: SignedEntry | None) -> SignedEntry | None:
    """The topic that stands of two: the later signed ``at`` (last writer wins), ties by
    signature, so that merging copies in any order gives the same."""
    if a is None or b is None:
        return a or b
    return a if (a.at, a.signature) >= (b.at, b.signature) else b


def topic_from_wire(d: object, channel: str) -> SignedEntry | None | bool:
    """A copy's topic: the signed entry, None if it has none, False if it does not verify
    (left out)."""
    if d is None:
        return None
    try:
        signed = SignedEntry.from_wire(d)
    except EntryError:
        return False
    if (signed.kind != "topic" or signed.channel != channel or len(signed.text) > MAX_TOPIC
            or not verified(signed)):
        return False
    return signed


@dataclass
class Channel:
    """A channel as its maintainer keeps it: members by (nick, address), the sequenced log."""
    name: str
    members: dict[MemberKey, Member] = field(default_factory=dict)
    log: list[Entry] = field(default_factory=list)
    last_seq: int = 0
    topic: SignedEntry | None = None   # the member's signed ``topic`` entry that set it
    modes: Modes = field(default_factory=Modes)   # founder, operators, modes (modes.py)

    @property
    def key(self) -> int:
        return channel_key(self.name)

    ring_key = key

    # -- changes at the maintainer -----------------------------------------------------

    def present(self) -> list[Member]:
        """The members now in the channel, in (address, nick) order."""
        return sorted((m for m in self.members.values() if m.present),
                      key=lambda m: (m.address, m.key))

    def is_member(self, member: MemberKey) -> bool:
        m = self.members.get(member)
        return m is not None and m.present

    def set_member(self, member: Member) -> bool:
        """Apply a join or leave; True if it changed who is present."""
        old = self.members.get(member.key)
        if old is not None and not member.wins_over(old):
            return False
        self.members[member.key] = member
        return old is None or old.present != member.present or old.nick != member.nick

    def set_topic(self, signed: SignedEntry) -> bool:
        """A member's signed topic; True if it is now the channel's (the latest signed)."""
        if later_topic(self.topic, signed) is not signed or self.topic == signed:
            return False
        self.topic = signed
        return True

    def standing(self, nick: str) -> str | None:
        """The msg_id of the signed entry this nick's membership rests on now: its join
        (present), the join a removal ended, or its signed leave; None if never a member.
        Of several addresses under one nick, the latest record's."""
        records = [m for key, m in self.members.items() if key[0] == nick.lower()]
        if not records:
            return None
        latest = max(records, key=lambda m: (m.stamp, m.address))
        signed = latest.signed if latest.signed is not None else latest.ended
        return None if signed is None else signed.msg_id

    def find(self, msg_id: str) -> Entry | None:
        return next((e for e in reversed(self.log) if e.msg_id == msg_id), None)

    def append(self, kind: str, nick: str, text: str = "", msg_id: str | None = None,
               at: float = 0.0, signed: SignedEntry | None = None,
               ended: str | None = None) -> tuple[Entry, bool]:
        """Add an entry with the next sequence number; (entry, False) if the id is known.

        With ``signed``, the entry is that signed original (its fields win); ``ended``: a
        removal notice's join."""
        if signed is not None:
            msg_id = signed.msg_id
        if msg_id is not None:
            known = self.find(msg_id)
            if known is not None:
                return known, False
        self.last_seq += 1
        if signed is not None:
            entry = Entry.of(self.last_seq, signed)
        else:
            entry = Entry(self.last_seq, msg_id or new_id(), kind, nick, text, at,
                          ended=ended)
        self.log.append(entry)
        self._trim()
        return entry, True

    def after(self, seq: int) -> list[Entry]:
        """The entries with a sequence number above ``seq``, in order."""
        return [e for e in self.log if e.seq > seq]

    def history(self, limit: int = HISTORY) -> list[Entry]:
        """The last ``limit`` messages (not notices), oldest first."""
        return [e for e in self.log if e.kind == "msg"][-limit:]

    def _trim(self) -> None:
        if len(self.log) > LOG_LIMIT:
            del self.log[:len(self.log) - LOG_LIMIT]
        total = sum(len(e.text) for e in self.log)
        while total > LOG_CHARS:
            total -= len(self.log.pop(0).text)

    # -- merging copies ----------------------------------------------------------------

    def merge(self, other: Channel) -> Channel:
        """The union of two copies of the same channel (neither is changed)."""
        if other.name != self.name:
            raise ValueError(f"cannot merge channel {other.name!r} into {self.name!r}")
        members = dict(self.members)
        for key, m in other.members.items():
            if key not in members or m.wins_over(members[key]):
                members[key] = m
        by_id: dict[str, Entry] = {}
        for e in (*self.log, *other.log):
            known = by_id.get(e.msg_id)
            if known is None or e.seq < known.seq:
                by_id[e.msg_id] = e
        log = sorted(by_id.values(), key=lambda e: (e.seq, e.msg_id))
        merged = Channel(self.name, members, log, max(self.last_seq, other.last_seq,
                                                      log[-1].seq if log else 0),
                         later_topic(self.topic, other.topic), self.modes.merge(other.modes))
        merged._trim()
        return merged

    def to_wire(self) -> dict:
        wire = {"name": self.name,
                "members": [m.to_wire() for m in
                            sorted(self.members.values(), key=lambda m: (m.address, m.key))],
                "log": [e.to_wire() for e in self.log],
                "last_seq": self.last_seq}
        if self.topic is not None:
            wire["topic"] = self.topic.to_wire()
        if self.modes.founder is not None:
            wire["modes"] = self.modes.to_wire()
        return wire

    @classmethod
    def from_wire(cls, d: object) -> Channel:
        """A copy of a channel; every member and entry is checked again, and those that do
        not verify are left out (``dropped`` says how many). ValueError for a bad shape."""
        if not isinstance(d, dict):
            raise ValueError("a channel must be an object")
        name, wires, log_wires, last_seq = (d.get("name"), d.get("members"), d.get("log"),
                                            d.get("last_seq"))
        if (not isinstance(name, str) or not isinstance(wires, list)
                or not isinstance(log_wires, list) or type(last_seq) is not int):
            raise ValueError("a channel has a name, members, a log and last_seq")
        dropped = 0
        members: dict[MemberKey, Member] = {}
        for wire in wires:
            try:
                m = Member.from_wire(wire, name)
            except (ValueError, EntryError):
                dropped += 1
                continue
            if m.key not in members or m.wins_over(members[m.key]):
                members[m.key] = m
        entries = []
        for wire in log_wires:
            try:
                entries.append(Entry.from_wire(wire, name))
            except (ValueError, EntryError):
                dropped += 1
        entries.sort(key=lambda e: (e.seq, e.msg_id))
        topic = topic_from_wire(d.get("topic"), name)
        if topic is False:
            dropped, topic = dropped + 1, None
        modes, left_out = Modes.from_wire(d.get("modes"), name)
        channel = cls(name, members, entries, max(last_seq, entries[-1].seq if entries else 0),
                      topic, modes)
        dropped += left_out
        channel.dropped = dropped
        return channel

    dropped: ClassVar[int] = 0    # members and entries a copy brought that did not verify
