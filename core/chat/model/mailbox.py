"""Offline mail as its keepers hold it: a sealed ``Letter``, the ``Mailbox`` of one nick,
and how two copies of a mailbox merge. No I/O here (the wire verbs that put and take
letters are core.chat.ring.mailboxes).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field

from .identity import is_key, verify
from .ids import name_key
from .limits import Limits

LETTER_KIND = "mail.letter"   # the sender's signature over a letter, checked by its keeper


def letter_fields(to: str, sealed: dict) -> dict:
    """What a sender signs (kind ``mail.letter``) so that a mailbox's keeper can count a
    letter against the key that really sent it (the box itself it cannot open)."""
    return {"to": str(to).lower(), "msg_id": sealed.get("msg_id"),
            "from": sealed.get("from"), "key": sealed.get("key"),
            "nonce": sealed.get("nonce"), "box": sealed.get("box")}


@dataclass(frozen=True)
class Letter:
    """A private message kept for a nick that is offline: sealed to its key, so the
    mailbox's keepers see only the envelope (sender, recipient, id, size). ``sig``: the
    sender key's signature over ``letter_fields`` (empty in letters from before)."""
    msg_id: str
    sender: str
    at: float          # when the mailbox took it (its maintainer's wall clock)
    sealed: dict
    sig: str = ""

    @functools.cached_property
    def size(self) -> int:
        """Its bytes as stored and sent on: the whole letter, envelope and padding too."""
        try:
            return len(json.dumps(self.to_wire(), separators=(",", ":")))
        except (TypeError, ValueError):
            return 1 << 30

    @property
    def key(self) -> str | None:
        """The sender key the envelope names (checked at a put by ``signed_by_sender``)."""
        key = self.sealed.get("key")
        return key if is_key(key) else None

    def signed_by_sender(self, to: str) -> bool:
        return self.key is not None and verify(self.key, LETTER_KIND,
                                               letter_fields(to, self.sealed), self.sig)

    def to_wire(self) -> dict:
        wire = {"msg_id": self.msg_id, "from": self.sender, "at": self.at,
                "sealed": self.sealed}
        if self.sig:
            wire["sig"] = self.sig
        return wire

    @classmethod
    def from_wire(cls, d: object, to: str) -> Letter:
        """ValueError unless ``d`` is a letter sealed to ``to`` under its own id."""
        if not isinstance(d, dict):
            raise ValueError("a letter must be an object")
        msg_id, sender, at, sealed = d.get("msg_id"), d.get("from"), d.get("at"), d.get("sealed")
        sig = d.get("sig", "")
        if (not isinstance(msg_id, str) or not 0 < len(msg_id) <= 64
                or not isinstance(sender, str) or not isinstance(sealed, dict)
                or type(at) not in (int, float) or not math.isfinite(at)
                or not isinstance(sig, str) or len(sig) > 128):
            raise ValueError("a letter has a msg_id, from, at and sealed")
        if (sealed.get("msg_id") != msg_id or sealed.get("from") != sender
                or not isinstance(sealed.get("to"), str) or sealed["to"].lower() != to.lower()
                or not isinstance(sealed.get("box"), str)):
            raise ValueError("a letter's envelope does not match it")
        return cls(msg_id, sender, float(at), sealed, sig)


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
    # the keys the nick vouched for (its pins, signed with its last take) and when it
    # signed them: letters from these are a friend's, any other key's a stranger's
    friends: tuple[float, frozenset[str]] = (0.0, frozenset())

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

    def refusal(self, letter: Letter, limits: Limits) -> str | None:
        """Why ``letter`` may not be added (None: it may). Strangers (keys the nick did not
        vouch for) have a small quota each and one together, so they never fill the box
        for a friend; each friend has its own."""
        if letter.msg_id in self.letters or letter.msg_id in self.taken:
            return None      # known: adding it again changes nothing
        if len(self.letters) >= limits.mailbox_letters:
            return f"{len(self.letters)} messages wait already (at most {limits.mailbox_letters})"
        if self.size + letter.size > limits.mailbox_bytes:
            return f"its messages would take over {limits.mailbox_bytes // 1000} kB"
        friends = self.friends[1]
        same = [x for x in self.letters.values() if x.key == letter.key]
        if letter.key in friends:
            if len(same) >= limits.letters_per_sender:
                return f"{len(same)} of your messages wait already (at most " \
                       f"{limits.letters_per_sender})"
            return None
        if len(same) >= limits.letters_per_stranger:
            return f"{len(same)} of your messages wait already (at most " \
                   f"{limits.letters_per_stranger} from a key it has not pinned)"
        strangers = [x for x in self.letters.values() if x.key not in friends]
        if len(strangers) >= limits.stranger_letters:
            return f"{len(strangers)} messages from keys it has not pinned wait already " \
                   f"(at most {limits.stranger_letters})"
        if sum(x.size for x in strangers) + letter.size > limits.stranger_bytes:
            return f"messages from keys it has not pinned would take over " \
                   f"{limits.stranger_bytes // 1000} kB"
        return None

    def vouch(self, at: float, keys: frozenset[str]) -> bool:
        """The nick's signed list of the keys it knows, if newer than the one kept."""
        if at <= self.friends[0]:
            return False
        self.friends = (at, keys)
        return True

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
        friends = max(self.friends, other.friends, key=lambda f: (f[0], sorted(f[1])))
        return Mailbox(min(self.nick, other.nick), letters, taken, friends)

    def to_wire(self) -> dict:
        wire = {"nick": self.nick, "letters": [x.to_wire() for x in self.waiting()],
                "taken": sorted([i, at] for i, at in self.taken.items())}
        if self.friends[1]:
            wire["friends"] = {"at": self.friends[0], "keys": sorted(self.friends[1])}
        return wire

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
        friends = d.get("friends")
        if friends is not None:
            if (not isinstance(friends, dict) or type(friends.get("at")) not in (int, float)
                    or not isinstance(friends.get("keys"), list)
                    or not all(is_key(k) for k in friends["keys"])):
                raise ValueError("a mailbox's friends are {at, keys}")
            box.friends = (float(friends["at"]), frozenset(friends["keys"]))
        return box.merge(cls(nick))   # drops a letter also listed as taken


def _order(letter: Letter) -> tuple:
    """Which of two letters under one message id a merge keeps (the first in this order),
    so that copies merged in any order agree: a sender's retry that reached two sides of a
    partition is one letter taken in at two times; the earlier stays."""
    return letter.at, letter.sender, json.dumps(letter.sealed, sort_keys=True), letter.sig
