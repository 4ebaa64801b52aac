"""Offline mail as its keepers hold it: a sealed ``Letter``, the ``Mailbox`` of one nick,
and how two copies of a mailbox merge. No I/O here (the wire verbs that put and take
letters are core.chat.ring.mailboxes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from .ids import name_key


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
        """The union of two copies (neither is changed): letters by id, taken ones staying
        taken (the later take time kept). Commutative, associative and idempotent
        (tests/core/chat/model/test_mailbox.py)."""
        if other.name != self.name:
            raise ValueError(f"cannot merge mailbox {other.nick!r} into {self.nick!r}")
        taken = dict(self.taken)
        for msg_id, at in other.taken.items():
            taken[msg_id] = max(at, taken.get(msg_id, at))
        letters = dict(self.letters)
        for msg_id, letter in other.letters.items():
            known = letters.get(msg_id)
            if known is None or _order(letter) < _order(known):
                letters[msg_id] = letter   # two letters under one id: the same one everywhere
        letters = {i: x for i, x in letters.items() if i not in taken}
        return Mailbox(min(self.nick, other.nick), letters, taken)

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


def _order(letter: Letter) -> tuple:
    """Which of two letters under one message id a merge keeps (the first in this order),
    so that copies merged in any order agree: a sender's retry that reached two sides of a
    partition is one letter taken in at two times; the earlier stays."""
    return letter.at, letter.sender, json.dumps(letter.sealed, sort_keys=True)
