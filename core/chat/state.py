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
- A name map is one last-writer-wins register (a delete is a tombstone).
"""

from __future__ import annotations

import collections
import uuid
from dataclasses import dataclass, field

from core.chord.ids import hash_string

HISTORY = 100       # messages a new member receives on join
LOG_LIMIT = 300     # entries (messages and notices) a channel keeps at most
LOG_CHARS = 150_000  # and at most this much text, so that a channel fits in one 1 MiB frame
SEEN_LIMIT = 10_000  # message ids a receiver remembers to drop duplicates

MemberKey = tuple[str, str]
"""A channel member: (nick in lower case, node address)."""


def new_id() -> str:
    """A fresh message id: 32 hex digits."""
    return uuid.uuid4().hex


def channel_key(name: str) -> int:
    """The ring key of a channel (its canonical name: lower-case, no ``#``)."""
    return hash_string(name)


def name_key(nick: str) -> int:
    """The ring key of a nick's name map."""
    return hash_string(nick.lower())


class Seen:
    """The message ids a receiver has shown, to drop a repeat (the last ``limit`` of them)."""

    def __init__(self, limit: int = SEEN_LIMIT) -> None:
        self._ids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._limit = limit

    def first(self, msg_id: str) -> bool:
        """True the first time ``msg_id`` is offered, and remember it."""
        if msg_id in self._ids:
            return False
        self._ids[msg_id] = None
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)
        return True


@dataclass(frozen=True)
class Member:
    """One user's membership of a channel, as last set by a join (present) or leave."""
    nick: str
    address: str
    stamp: float
    present: bool = True

    @property
    def key(self) -> MemberKey:
        return self.nick.lower(), self.address

    def wins_over(self, other: Member) -> bool:
        # ties go to the leave, so a leave stamped at the same instant is never undone
        # (and then by nick, so that merging is the same in any order)
        return ((self.stamp, not self.present, self.nick)
                > (other.stamp, not other.present, other.nick))


@dataclass(frozen=True)
class Entry:
    """One item of a channel's log: a message (``kind="msg"``) or a join/leave notice."""
    seq: int
    msg_id: str
    kind: str      # "msg", "join", "leave"
    nick: str
    text: str = ""
    at: float = 0.0

    def to_wire(self) -> dict:
        return {"seq": self.seq, "msg_id": self.msg_id, "kind": self.kind, "nick": self.nick,
                "text": self.text, "at": self.at}

    @classmethod
    def from_wire(cls, d: dict) -> Entry:
        return cls(int(d["seq"]), str(d["msg_id"]), str(d["kind"]), str(d["nick"]),
                   str(d.get("text", "")), float(d.get("at", 0.0)))


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
               at: float = 0.0) -> tuple[Entry, bool]:
        """Add an entry with the next sequence number; (entry, False) if the id is known."""
        if msg_id is not None:
            known = self.find(msg_id)
            if known is not None:
                return known, False
        self.last_seq += 1
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
                "members": [[m.nick, m.address, m.stamp, m.present] for m in
                            sorted(self.members.values(), key=lambda m: (m.address, m.key))],
                "log": [e.to_wire() for e in self.log],
                "last_seq": self.last_seq}

    @classmethod
    def from_wire(cls, d: dict) -> Channel:
        members = {}
        for nick, address, stamp, present in d["members"]:
            m = Member(str(nick), str(address), float(stamp), bool(present))
            if m.key not in members or m.wins_over(members[m.key]):
                members[m.key] = m
        log = sorted((Entry.from_wire(e) for e in d["log"]), key=lambda e: (e.seq, e.msg_id))
        return cls(str(d["name"]), members, log, int(d["last_seq"]))


@dataclass(frozen=True)
class NameMap:
    """A nick's name record: which node serves it (address, 40-hex id); a delete is a tombstone."""
    nick: str
    address: str
    node_id: str
    stamp: float
    present: bool = True

    @property
    def key(self) -> int:
        return name_key(self.nick)

    @property
    def name(self) -> str:
        return self.nick.lower()

    def merge(self, other: NameMap) -> NameMap:
        """The later of two copies (a tombstone wins a tie)."""
        if other.name != self.name:
            raise ValueError(f"cannot merge name {other.nick!r} into {self.nick!r}")
        mine = (self.stamp, not self.present, self.address, self.nick, self.node_id)
        theirs = (other.stamp, not other.present, other.address, other.nick, other.node_id)
        return other if theirs > mine else self

    def to_wire(self) -> dict:
        return {"nick": self.nick, "address": self.address, "id": self.node_id,
                "stamp": self.stamp, "present": self.present}

    @classmethod
    def from_wire(cls, d: dict) -> NameMap:
        return cls(str(d["nick"]), str(d["address"]), str(d["id"]), float(d["stamp"]),
                   bool(d["present"]))


Item = Channel | NameMap


def item_kind(item: Item) -> str:
    return "channel" if isinstance(item, Channel) else "name"


def item_ref(item: Item) -> tuple[str, str]:
    """(kind, name): how a store indexes an item."""
    return item_kind(item), item.name


def item_to_wire(item: Item) -> dict:
    return {"kind": item_kind(item), "state": item.to_wire()}


def item_from_wire(d: dict) -> Item:
    kind = d["kind"]
    if kind == "channel":
        return Channel.from_wire(d["state"])
    if kind == "name":
        return NameMap.from_wire(d["state"])
    raise ValueError(f"unknown item kind {kind!r}")


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

    def names(self) -> list[NameMap]:
        return [i for i in self.items.values() if isinstance(i, NameMap)]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(list(self.items.values()))
