"""Channel operators and channel modes: signed ``mode`` entries by operators, kept with the
channel, and how two copies of them merge. No I/O here.

A channel's life starts with its founder: the member whose join found it empty (the
maintainer says so by keeping that signed join as ``founder``). The founder is its first
operator; operators give and take ``+o`` and set the other modes, each change a signed
``mode`` entry (``text``: the changes and their arguments, ``"+ntk beer"``).

What stands is a function of the set of entries, so copies merge in any order:
- the founder is the later signed join of two copies (a channel emptied and founded
  again); entries signed before it belong to an old life and are left out;
- grants: ``+o X`` by Y counts only if Y is the founder or has a counting grant (a least
  fixpoint from the founder, so that no entry makes its own author an operator and no two
  non-operators make each other ones); the authors so reached may set modes;
- every mode letter (and, for the list modes ``o v b e I``, every argument) is set by the
  latest such entry that names it, by (signed ``at``, key, signature).
An entry whose author is not reached never counts; a copy that brings one (a forgery, or
an entry out of its context) has it left out where it arrives (``from_wire``), while a
merge of what is kept is a plain union (the laws above hold exactly). An operator keeps
the right its grants give until a later ``-o`` takes it; a ``-o`` also ends the grants
the de-opped member gave.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .entries import EntryError, SignedEntry
from .ids import verified

LIST_MODES = "ovbeI"     # one slot per argument
ARG_MODES = "kl"         # an argument when set
FLAG_MODES = "imnst"     # no argument
LETTERS = LIST_MODES + ARG_MODES + FLAG_MODES
MAX_KEY = 23             # characters of a channel key (RFC 2812 §2.3.1)
MAX_LIMIT = 1_000_000
MAX_MASK = 100
MAX_LIST = 100           # masks of each list mode (ISUPPORT MAXLIST)
MAX_CHANGES = 12         # changes one entry carries at most (ISUPPORT MODES)
MAX_ENTRIES = 600        # mode entries a channel keeps at most
MASK_HOST = "ring"       # the mask of a member: nick!nick@ring (as the IRC gateway shows it)
INVITE_FOR = 3600.0      # seconds an invitation lets its invitee in
MAX_INVITES = 100
_KEY_RE = re.compile(rf"[\x21-\x2b\x2d-\x7e]{{1,{MAX_KEY}}}")   # no space, no comma
_MASK_RE = re.compile(rf"[^\s,]{{1,{MAX_MASK}}}")
_NICK_RE = re.compile(r"[^\s,!@*?#&:]{1,64}")

Change = tuple[str, str, str]    # (sign "+"/"-", letter, argument or "")
Slot = tuple[str, str]           # (letter, argument in lower case or "")


class ModeError(ValueError):
    """A mode change that is not well formed; the message says which and why."""

    def __init__(self, letter: str, message: str) -> None:
        super().__init__(message)
        self.letter = letter


def needs_arg(sign: str, letter: str) -> bool:
    return letter in LIST_MODES or (letter in ARG_MODES and sign == "+")


def check_arg(sign: str, letter: str, arg: str) -> str:
    """``arg`` of one change, checked (ModeError says what is wrong)."""
    if letter in "ov":
        if not _NICK_RE.fullmatch(arg):
            raise ModeError(letter, f"{arg!r} is not a nick")
    elif letter in "beI":
        if not _MASK_RE.fullmatch(arg):
            raise ModeError(letter, f"a mask is 1 to {MAX_MASK} characters, no spaces")
    elif letter == "k" and sign == "+":
        if not _KEY_RE.fullmatch(arg):
            raise ModeError(letter, f"a key is 1 to {MAX_KEY} printable ASCII characters, "
                                    "no spaces or commas")
    elif letter == "l" and sign == "+":
        if not arg.isdigit() or not 0 < int(arg) <= MAX_LIMIT:
            raise ModeError(letter, f"a limit is a whole number from 1 to {MAX_LIMIT}")
        arg = str(int(arg))
    return arg


def parse_changes(text: str) -> list[Change]:
    """The changes a mode entry's text carries: ``"+ov-k alice bob beer"`` (strict: an
    unknown letter, a missing or extra argument is a ModeError)."""
    words = text.split(" ")
    if not words or not words[0] or words[0][0] not in "+-":
        raise ModeError("", "mode changes start with + or -")
    args = iter(words[1:])
    changes: list[Change] = []
    sign = "+"
    for letter in words[0]:
        if letter in "+-":
            sign = letter
            continue
        if letter not in LETTERS:
            raise ModeError(letter, f"unknown mode {letter!r}")
        arg = ""
        if needs_arg(sign, letter):
            arg = next(args, None)
            if arg is None:
                raise ModeError(letter, f"mode {sign}{letter} needs an argument")
            arg = check_arg(sign, letter, arg)
        changes.append((sign, letter, arg))
    if next(args, None) is not None:
        raise ModeError("", "more arguments than modes that take one")
    if not changes or len(changes) > MAX_CHANGES:
        raise ModeError("", f"1 to {MAX_CHANGES} mode changes at once")
    return changes


def changes_text(changes: Iterable[Change]) -> str:
    """The text of a mode entry (and of an IRC MODE line) for ``changes``."""
    letters, args, sign = "", [], ""
    for s, letter, arg in changes:
        if s != sign:
            letters, sign = letters + s, s
        letters += letter
        if arg:
            args.append(arg)
    return " ".join([letters, *args])


def slot(letter: str, arg: str) -> Slot:
    return letter, arg.lower() if letter in LIST_MODES else ""


def mask_matches(mask: str, nick: str) -> bool:
    """Whether a ban or exception mask (``*`` and ``?`` wildcards, case-insensitive)
    matches a member, whose mask is nick!nick@ring."""
    return fnmatch.fnmatchcase(f"{nick}!{nick}@{MASK_HOST}".lower(),
                               mask.lower().replace("[", "[[]"))


def _order(e: SignedEntry) -> tuple:
    return (e.at, e.key, e.signature)


@dataclass
class Modes:
    """A channel's founder, mode entries and invitations (``Channel.modes``)."""
    founder: SignedEntry | None = None
    entries: dict[str, SignedEntry] = field(default_factory=dict)    # by signature
    invites: dict[str, SignedEntry] = field(default_factory=dict)    # by invitee (lower)
    # computed from the above (``_settle``)
    reached: set[str] = field(default_factory=set, repr=False)       # authors who count
    slots: dict[Slot, tuple[str, str, SignedEntry]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._settle()

    # -- what stands -----------------------------------------------------------------------

    def _settle(self) -> None:
        """Recompute what stands from the entries, dropping those that do not count."""
        start = self.founder.at if self.founder is not None else None
        live = {s: e for s, e in self.entries.items()
                if start is not None and e.at >= start and _parsed(e) is not None}
        reached = {self.founder.nick.lower()} if self.founder is not None else set()
        grants: list[tuple[str, SignedEntry]] = [
            (arg.lower(), e) for e in live.values() for sign, letter, arg in _parsed(e)
            if sign == "+" and letter == "o"]
        grew = True
        while grew:
            grew = False
            for target, e in grants:
                if target not in reached and e.nick.lower() in reached:
                    reached.add(target)
                    grew = True
        slots: dict[Slot, tuple[str, str, SignedEntry]] = {}
        for e in sorted((e for e in live.values() if e.nick.lower() in reached), key=_order):
            for sign, letter, arg in _parsed(e):
                slots[slot(letter, arg)] = (sign, arg, e)
        # de-opped: the grants they gave no longer count (computed once more without them)
        lost = {a for (letter, a), (sign, _, _) in slots.items()
                if letter == "o" and sign == "-"
                and a != (self.founder.nick.lower() if self.founder else None)}
        if lost & reached:
            reached2 = {self.founder.nick.lower()} if self.founder is not None else set()
            grew = True
            while grew:
                grew = False
                for target, e in grants:
                    author = e.nick.lower()
                    if (target not in reached2 and author in reached2
                            and (author not in lost or author == target)):
                        reached2.add(target)
                        grew = True
            if reached2 != reached:
                reached = reached2
                slots = {}
                for e in sorted((e for e in live.values() if e.nick.lower() in reached),
                                key=_order):
                    for sign, letter, arg in _parsed(e):
                        slots[slot(letter, arg)] = (sign, arg, e)
        if len(live) > MAX_ENTRIES:   # the latest (a union below this: merging is exact)
            kept = sorted(live.values(), key=_order)[-MAX_ENTRIES:]
            live = {e.signature: e for e in kept}
        self.entries = live
        if start is not None:
            self.invites = {k: e for k, e in self.invites.items() if e.at >= start}
        self.reached, self.slots = reached, slots

    def is_op(self, nick: str) -> bool:
        """Whether ``nick`` is an operator of the channel now."""
        key = nick.lower()
        if key not in self.reached:
            return False
        state = self.slots.get(("o", key))
        return state is None and self.founder is not None and \
            self.founder.nick.lower() == key or state is not None and state[0] == "+"

    def is_voiced(self, nick: str) -> bool:
        state = self.slots.get(("v", nick.lower()))
        return state is not None and state[0] == "+"

    def flag(self, letter: str) -> bool:
        state = self.slots.get((letter, ""))
        return state is not None and state[0] == "+"

    def value(self, letter: str) -> str | None:
        """The argument of ``k`` or ``l`` when set."""
        state = self.slots.get((letter, ""))
        return state[1] if state is not None and state[0] == "+" else None

    def listed(self, letter: str) -> list[tuple[str, str, float]]:
        """The masks of list mode ``letter`` (b, e, I): (mask, who set it, when)."""
        return sorted((arg, e.nick, float(e.at)) for (l_, _), (sign, arg, e)
                      in self.slots.items() if l_ == letter and sign == "+")

    def summary(self) -> tuple[str, list[str]]:
        """The flags and argument modes set (``+iklnst``) and their arguments."""
        letters = "".join(c for c in sorted(FLAG_MODES + ARG_MODES)
                          if self.flag(c) or self.value(c) is not None)
        return "+" + letters, [self.value(c) for c in letters if c in ARG_MODES]

    def matches(self, letter: str, nick: str) -> bool:
        return any(mask_matches(mask, nick) for mask, _, _ in self.listed(letter))

    def invited(self, nick: str, now: float) -> bool:
        e = self.invites.get(nick.lower())
        return e is not None and now - INVITE_FOR <= float(e.at)

    # -- changes ---------------------------------------------------------------------------

    def found(self, join: SignedEntry) -> None:
        """A new life: ``join``'s author found the channel empty."""
        self.founder = join
        self._settle()

    def add(self, entry: SignedEntry) -> bool:
        """A mode entry (checked by the caller: its author is an operator); True if it
        changed what stands."""
        before = dict(self.slots)
        self.entries[entry.signature] = entry
        self._settle()
        return self.slots != before

    def invite(self, entry: SignedEntry) -> None:
        known = self.invites.get(entry.text.lower())
        if known is None or _order(entry) > _order(known):
            self.invites[entry.text.lower()] = entry
        while len(self.invites) > MAX_INVITES:
            del self.invites[min(self.invites, key=lambda k: _order(self.invites[k]))]

    # -- copies ----------------------------------------------------------------------------

    def before(self, limit: float) -> Modes:
        """These modes less what was signed after ``limit`` (itself if nothing was)."""
        if (all(e.at <= limit for e in self.entries.values())
                and all(e.at <= limit for e in self.invites.values())
                and (self.founder is None or self.founder.at <= limit)):
            return self
        founder = self.founder if self.founder is None or self.founder.at <= limit else None
        return Modes(founder, {s: e for s, e in self.entries.items() if e.at <= limit},
                     {k: e for k, e in self.invites.items() if e.at <= limit})

    def merge(self, other: Modes) -> Modes:
        founders = [f for f in (self.founder, other.founder) if f is not None]
        founder = max(founders, key=_order) if founders else None
        invites = dict(self.invites)
        for k, e in other.invites.items():
            if k not in invites or _order(e) > _order(invites[k]):
                invites[k] = e
        return Modes(founder, {**self.entries, **other.entries}, invites)

    def to_wire(self) -> dict:
        return {"founder": None if self.founder is None else self.founder.to_wire(),
                "entries": [e.to_wire() for e in sorted(self.entries.values(), key=_order)],
                "invites": [e.to_wire() for e in sorted(self.invites.values(), key=_order)]}

    @classmethod
    def from_wire(cls, d: object, channel: str) -> tuple[Modes, int]:
        """A copy's modes and how many of its entries were left out (do not verify, of
        the wrong kind or channel, or by an author who is not an operator)."""
        if d is None:
            return cls(), 0
        if not isinstance(d, dict):
            raise ValueError("modes must be an object")
        dropped = 0

        def signed(w: object, kind: str) -> SignedEntry | None:
            nonlocal dropped
            try:
                e = SignedEntry.from_wire(w)
            except EntryError:
                e = None
            if e is None or e.kind != kind or e.channel != channel or not verified(e):
                dropped += 1
                return None
            return e

        founder = signed(d["founder"], "join") if d.get("founder") is not None else None
        wires, invite_wires = d.get("entries", []), d.get("invites", [])
        if not isinstance(wires, list) or not isinstance(invite_wires, list):
            raise ValueError("mode entries and invites are lists")
        entries = {e.signature: e for w in wires[:MAX_ENTRIES]
                   if (e := signed(w, "mode")) is not None}
        invites: dict[str, SignedEntry] = {}
        for w in invite_wires[:MAX_INVITES]:
            e = signed(w, "invite")
            if e is not None and (e.text.lower() not in invites
                                  or _order(e) > _order(invites[e.text.lower()])):
                invites[e.text.lower()] = e
        modes = cls(founder, entries, invites)
        # what the copy's own operators did not sign never counts: left out on receipt
        counted = {sig: e for sig, e in modes.entries.items() if e.nick.lower() in modes.reached}
        dropped += len(entries) - len(counted)
        return cls(founder, counted, modes.invites), dropped


def _parsed(e: SignedEntry) -> list[Change] | None:
    try:
        return _parse_cached(e.text)
    except ModeError:
        return None


_CACHE: dict[str, list[Change]] = {}


def _parse_cached(text: str) -> list[Change]:
    changes = _CACHE.get(text)
    if changes is None:
        changes = parse_changes(text)
        if len(_CACHE) > 4096:
            _CACHE.clear()
        _CACHE[text] = changes
    return changes
