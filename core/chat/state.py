"""What a maintainer keeps for others — channels with members and a sequenced log, name
records — how two copies merge (a union), and a receiver's duplicate filter. No I/O here.

Both kinds are state-based replicated values: ``merge`` is commutative, associative and
idempotent, so a migration or a replica can be applied any number of times, in any order.
- Members are a last-writer-wins element set keyed by (nick, node address) — one node may
  serve several users: a join or a leave is stamped; the later stamp wins, so a union of
  two member lists keeps everyone who joined on either side unless a later leave says
  otherwise.
- The log holds channel messages and join/leave notices with a maintainer-assigned
  sequence number; merging is a union by message id.
- A name is a signed ``NameRecord`` (core.chat.records): the greater of two copies wins.

Whatever a user did travels as the user's signed original (core.chat.entries), so every
copy — a replica, a migration, a member's delivery — is checked again where it arrives:
``from_wire`` drops a member or log entry whose signature does not verify (``dropped``
counts them). Only the maintainer's own notices (a member removed as unreachable,
"pruned", or denied by its node, "gone") are unsigned: they can remove a membership but
never add one or speak in anyone's name.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import ClassVar

from .entries import EntryError, SignedEntry

# `X as X`: re-exported only for core/chat/users.py (split on another branch), which still
# imports these names from here; remove once users.py imports them from their home.
from .ids import Seen as Seen
from .ids import channel_key, name_key, new_id, verified
from .records import NameRecord, RecordError

log = logging.getLogger(__name__)

HISTORY = 100       # messages a new member receives on join
LOG_LIMIT = 300     # entries (messages and notices) a channel keeps at most
LOG_CHARS = 150_000  # and at most this much text, so that a channel fits in one 1 MiB frame
NOTICES = ("pruned", "gone")   # the maintainer's own (unsigned) reasons to remove a member

MemberKey = tuple[str, str]
"""A channel member: (nick in lower case, node address)."""


@dataclass(frozen=True)
class Member:
    """One user's membership of a channel, as last set by a join (present) or leave.

    ``signed`` is the user's signed join or leave (``stamp`` is its ``at``); a removal by
    the maintainer (pruned, gone) is unsigned and stamped just above the join it ends.
    """
    nick: str
    address: str
    stamp: float
    present: bool = True
    signed: SignedEntry | None = None

    @classmethod
    def of(cls, signed: SignedEntry) -> Member:
        """The membership a signed join or leave sets."""
        return cls(signed.nick, signed.address, float(signed.at), signed.kind == "join",
                   signed)

    def removed(self) -> Member:
        """An unsigned removal of this membership (the maintainer's: pruned or gone)."""
        return Member(self.nick, self.address, math.nextafter(self.stamp, math.inf), False)

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
        return {"nick": self.nick, "address": self.address, "stamp": self.stamp,
                "present": self.present}

    @classmethod
    def from_wire(cls, d: object, channel: str) -> Member:
        """A member record from a copy; ValueError unless signed by the user for this
        channel, or an unsigned removal."""
        if not isinstance(d, dict):
            raise ValueError("a member must be an object")
        if "entry" in d:
            signed = SignedEntry.from_wire(d["entry"])
            if signed.kind == "msg" or signed.channel != channel or not verified(signed):
                raise ValueError(f"a member record of #{channel} that does not verify")
            return cls.of(signed)
        nick, address, stamp = d.get("nick"), d.get("address"), d.get("stamp")
        if (not isinstance(nick, str) or not isinstance(address, str)
                or not isinstance(stamp, (int, float)) or isinstance(stamp, bool)
                or not math.isfinite(stamp) or d.get("present") is not False):
            raise ValueError("an unsigned member record can only be a removal")
        return cls(nick, address, float(stamp), False)

    def wins_over(self, other: Member) -> bool:
        # ties go to the leave, so a leave stamped at the same instant is never undone
        # (and then by nick, so that merging is the same in any order)
        return ((self.stamp, not self.present, self.nick)
                > (other.stamp, not other.present, other.nick))


@dataclass(frozen=True)
class Entry:
    """One item of a channel's log: a message (``kind="msg"``) or a join/leave notice.

    ``signed`` is the author's signed original (a message, join or leave); only the
    maintainer's removal notices ("pruned", "gone") have none. The sequence number is the
    maintainer's and is not signed.
    """
    seq: int
    msg_id: str
    kind: str      # "msg", "join", "leave"
    nick: str
    text: str = ""
    at: float = 0.0
    signed: SignedEntry | None = None

    @classmethod
    def of(cls, seq: int, signed: SignedEntry) -> Entry:
        return cls(seq, signed.msg_id, signed.kind, signed.nick, signed.text,
                   float(signed.at), signed)

    def to_wire(self) -> dict:
        if self.signed is not None:
            return {"seq": self.seq, **self.signed.to_wire()}
        return {"seq": self.seq, "msg_id": self.msg_id, "kind": self.kind, "nick": self.nick,
                "text": self.text, "at": self.at}

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
        if (d.get("kind") != "leave" or text not in NOTICES or not isinstance(msg_id, str)
                or not isinstance(nick, str) or not isinstance(at, (int, float))
                or isinstance(at, bool)):
            raise ValueError("an unsigned entry can only be a maintainer's removal notice")
        return cls(seq, msg_id, "leave", nick, text, float(at))


@dataclass
class Channel:
    """A channel as its maintainer keeps it: members by (nick, address), the sequenced log."""
    name: str
    members: dict[MemberKey, Member] = field(default_factory=dict)
    log: list[Entry] = field(default_factory=list)
    last_seq: int = 0

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

    def find(self, msg_id: str) -> Entry | None:
        return next((e for e in reversed(self.log) if e.msg_id == msg_id), None)

    def append(self, kind: str, nick: str, text: str = "", msg_id: str | None = None,
               at: float = 0.0, signed: SignedEntry | None = None) -> tuple[Entry, bool]:
        """Add an entry with the next sequence number; (entry, False) if the id is known.

        With ``signed``, the entry is that signed original (its fields win)."""
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
            entry = Entry(self.last_seq, msg_id or new_id(), kind, nick, text, at)
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
                                                      log[-1].seq if log else 0))
        merged._trim()
        return merged

    def to_wire(self) -> dict:
        return {"name": self.name,
                "members": [m.to_wire() for m in
                            sorted(self.members.values(), key=lambda m: (m.address, m.key))],
                "log": [e.to_wire() for e in self.log],
                "last_seq": self.last_seq}

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
        channel = cls(name, members, entries, max(last_seq, entries[-1].seq if entries else 0))
        channel.dropped = dropped
        return channel

    dropped: ClassVar[int] = 0    # members and entries a copy brought that did not verify


@dataclass(frozen=True)
class Letter:
    """A private message kept for a nick that is offline: sealed to its key, so the
    mailbox's keepers see only the envelope (sender, recipient, id, size)."""
    msg_id: str
    sender: str
    at: float          # when the mailbox took it (its maintainer's wall clock)
    sealed: dict

    @property
    def size(self) -> int:
        return len(str(self.sealed.get("box", ""))) + 200

    def to_wire(self) -> dict:
        return {"msg_id": self.msg_id, "from": self.sender, "at": self.at,
                "sealed": self.sealed}

    @classmethod
    def from_wire(cls, d: object, to: str) -> Letter:
        """ValueError unless ``d`` is a letter sealed to ``to`` under its own id."""
        if not isinstance(d, dict):
            raise ValueError("a letter must be an object")
        msg_id, sender, at, sealed = d.get("msg_id"), d.get("from"), d.get("at"), d.get("sealed")
        if (not isinstance(msg_id, str) or not 0 < len(msg_id) <= 64
                or not isinstance(sender, str) or not isinstance(sealed, dict)
                or type(at) not in (int, float) or not math.isfinite(at)):
            raise ValueError("a letter has a msg_id, from, at and sealed")
        if (sealed.get("msg_id") != msg_id or sealed.get("from") != sender
                or not isinstance(sealed.get("to"), str) or sealed["to"].lower() != to.lower()
                or not isinstance(sealed.get("box"), str)):
            raise ValueError("a letter's envelope does not match it")
        return cls(msg_id, sender, float(at), sealed)


@dataclass
class Mailbox:
    """The letters waiting for one nick, kept like a channel by the owner of hash(nick)
    (the node that keeps its name record) and replicated with it.

    Merging is a union of letters minus a union of ``taken`` ids (delivered: kept as
    tombstones for the age limit, so that a stale copy never brings a letter back, and so
    that a sender can ask whether its letter was taken).
    """
    nick: str
    letters: dict[str, Letter] = field(default_factory=dict)
    taken: dict[str, float] = field(default_factory=dict)   # msg_id -> when

    @property
    def name(self) -> str:
        return self.nick.lower()

    @property
    def key(self) -> int:
        return name_key(self.nick)

    ring_key = key

    @property
    def size(self) -> int:
        return sum(letter.size for letter in self.letters.values())

    def waiting(self) -> list[Letter]:
        """The letters not yet taken, oldest first."""
        return sorted(self.letters.values(), key=lambda x: (x.at, x.msg_id))

    def refusal(self, letter: Letter, limits: tuple[int, int]) -> str | None:
        """Why ``letter`` may not be added (None: it may). ``limits``: (count, bytes)."""
        if letter.msg_id in self.letters or letter.msg_id in self.taken:
            return None      # known: adding it again changes nothing
        count, size = limits
        if len(self.letters) >= count:
            return f"{len(self.letters)} messages wait already (at most {count})"
        if self.size + letter.size > size:
            return f"its messages would take over {size // 1000} kB"
        return None

    def add(self, letter: Letter) -> bool:
        if letter.msg_id in self.letters or letter.msg_id in self.taken:
            return False
        self.letters[letter.msg_id] = letter
        return True

    def take(self, msg_ids: list[str], now: float) -> list[str]:
        """Mark letters delivered; returns the ids that were waiting."""
        done = [i for i in msg_ids if i in self.letters]
        for msg_id in done:
            del self.letters[msg_id]
            self.taken[msg_id] = now
        return done

    def expire(self, now: float, age: float) -> int:
        """Drop letters and tombstones older than ``age``; returns the letters dropped."""
        old = [i for i, x in self.letters.items() if now - x.at > age]
        for msg_id in old:
            del self.letters[msg_id]
        for msg_id in [i for i, at in self.taken.items() if now - at > age]:
            del self.taken[msg_id]
        return len(old)

    def merge(self, other: Mailbox) -> Mailbox:
        if other.name != self.name:
            raise ValueError(f"cannot merge mailbox {other.nick!r} into {self.nick!r}")
        taken = dict(self.taken)
        for msg_id, at in other.taken.items():
            taken[msg_id] = max(at, taken.get(msg_id, at))
        letters = {i: x for i, x in {**other.letters, **self.letters}.items()
                   if i not in taken}
        return Mailbox(self.nick, letters, taken)

    def to_wire(self) -> dict:
        return {"nick": self.nick, "letters": [x.to_wire() for x in self.waiting()],
                "taken": sorted([i, at] for i, at in self.taken.items())}

    @classmethod
    def from_wire(cls, d: object) -> Mailbox:
        if not isinstance(d, dict) or not isinstance(d.get("nick"), str):
            raise ValueError("a mailbox has a nick")
        nick, wires, taken = d["nick"], d.get("letters"), d.get("taken")
        if not isinstance(wires, list) or not isinstance(taken, list):
            raise ValueError("a mailbox has letters and taken")
        box = cls(nick)
        for wire in wires:
            letter = Letter.from_wire(wire, nick)
            box.letters[letter.msg_id] = letter
        for pair in taken:
            if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str)
                    or type(pair[1]) not in (int, float)):
                raise ValueError("a mailbox's taken ids are [msg_id, at] pairs")
            box.taken[pair[0]] = float(pair[1])
        return box.merge(cls(nick))   # drops a letter also listed as taken


Item = Channel | NameRecord | Mailbox


def item_kind(item: Item) -> str:
    if isinstance(item, Mailbox):
        return "mailbox"
    return "channel" if isinstance(item, Channel) else "name"


def item_ref(item: Item) -> tuple[str, str]:
    """(kind, name): how a store indexes an item."""
    return item_kind(item), item.name


def item_to_wire(item: Item) -> dict:
    return {"kind": item_kind(item), "state": item.to_wire()}


def item_from_wire(d: object) -> Item:
    """An item from a copy, checked again: a name record must verify (ValueError if not);
    a channel keeps only the members and entries that verify."""
    if not isinstance(d, dict):
        raise ValueError("an item must be an object")
    kind = d.get("kind")
    if kind == "channel":
        return Channel.from_wire(d.get("state"))
    if kind == "mailbox":
        return Mailbox.from_wire(d.get("state"))
    if kind == "name":
        try:
            record = NameRecord.from_wire(d.get("state"))
        except RecordError as e:
            raise ValueError(str(e)) from None
        if not verified(record):
            raise ValueError(f"the name record of {record.nick!r} does not verify")
        return record
    raise ValueError(f"unknown item kind {kind!r}")


def items_from_wire(wires: object, source: str) -> list[Item]:
    """The items of a copy that verify; each one left out is one log line."""
    items = []
    for wire in wires if isinstance(wires, list) else []:
        try:
            item = item_from_wire(wire)
        except (ValueError, TypeError) as e:
            log.warning("dropped an item from %s: %s", source, e)
            continue
        if isinstance(item, Channel) and item.dropped:
            log.warning("dropped %d members or entries of #%s from %s: not signed by their "
                        "authors", item.dropped, item.name, source)
        items.append(item)
    return items


def merge_items(a: Item | None, b: Item) -> Item:
    """Merge ``b`` into ``a`` (a may be missing)."""
    if a is None:
        return b
    return a.merge(b)  # type: ignore[arg-type]


class Store:
    """Items by (kind, name): what a node maintains, or the replicas it holds for others."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Item] = {}

    def get(self, kind: str, name: str) -> Item | None:
        return self.items.get((kind, name))

    def put(self, item: Item) -> Item:
        """Merge ``item`` in; return what is now stored."""
        ref = item_ref(item)
        merged = merge_items(self.items.get(ref), item)
        self.items[ref] = merged
        return merged

    def pop(self, kind: str, name: str) -> Item | None:
        return self.items.pop((kind, name), None)

    def channels(self) -> list[Channel]:
        return [i for i in self.items.values() if isinstance(i, Channel)]

    def mailboxes(self) -> list[Mailbox]:
        return [i for i in self.items.values() if isinstance(i, Mailbox)]

    def names(self) -> list[NameRecord]:
        return [i for i in self.items.values() if isinstance(i, NameRecord)]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(list(self.items.values()))
