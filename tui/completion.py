"""Tab completion of command names, channel names and nicks; Tab again cycles. A nick at
the start of a line is addressed, as in chat: ``linus: ``; elsewhere ``linus ``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sources:
    """Where candidates come from, read at each Tab so they are always current.

    ``commands``: command words (without "/"); ``arguments``: for a command word, what its
    arguments are ("channel", "nick", a choice such as "on|off", or anything else for free
    text), in order. ``bare_commands``: whether a command word without "/" is a command
    where the line is typed (not in a conversation, where such a line is chat text).
    """
    commands: Callable[[], Sequence[str]]
    arguments: Callable[[str], Sequence[str]]
    channels: Callable[[], Sequence[str]]
    nicks: Callable[[], Sequence[str]]
    bare_commands: Callable[[], bool] = lambda: True


@dataclass
class _Cycle:
    start: int            # where the completed word starts
    candidates: list[str]
    index: int
    result: tuple[str, int]  # (text, cursor) we produced last
    suffix: str = " "        # after the completed word: ": " for a nick addressed


class Completer:
    """Completes the word before the cursor; a second Tab on our own result cycles."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self._cycle: _Cycle | None = None

    def complete(self, text: str, cursor: int) -> tuple[str, int] | None:
        """The new (text, cursor) after one Tab, or None when nothing matches."""
        cycle = self._cycle
        if cycle and cycle.result == (text, cursor) and len(cycle.candidates) > 1:
            cycle.index = (cycle.index + 1) % len(cycle.candidates)
            return self._apply(text, cycle)
        line_start = text.rfind("\n", 0, cursor) + 1   # a text may have several lines
        start = max(text.rfind(" ", 0, cursor) + 1, line_start)
        word = text[start:cursor]
        if line_start:   # a second line is text, never a command: nicks only
            candidates, suffix = _matching(self.sources.nicks(), word), (
                ": " if start == line_start else " ")
        else:
            candidates, suffix = self._candidates(text[:start].split(), word)
        if not candidates:
            self._cycle = None
            return None
        # the rest of the old word after the cursor is replaced too
        end = cursor
        while end < len(text) and text[end] not in " \n":
            end += 1
        text = text[:start] + word + text[end:]
        self._cycle = _Cycle(start, candidates, 0, (text, start + len(word)), suffix)
        return self._apply(text, self._cycle)

    def _apply(self, text: str, cycle: _Cycle) -> tuple[str, int]:
        _, old_cursor = cycle.result
        tail = text[old_cursor:]
        if tail.startswith(cycle.suffix):
            tail = tail[len(cycle.suffix):]
        elif tail.startswith(" "):
            tail = tail[1:]
        choice = cycle.candidates[cycle.index] + cycle.suffix
        new_text = text[:cycle.start] + choice + tail
        cycle.result = (new_text, cycle.start + len(choice))
        return cycle.result

    def _candidates(self, before: list[str], word: str) -> tuple[list[str], str]:
        """The names ``word`` may complete to, and what follows the one chosen."""
        src = self.sources
        if not before:
            slash = word.startswith("/")
            found = []
            if slash or src.bare_commands():
                found = _matching([("/" if slash else "") + c for c in src.commands()], word)
            if found:
                return found, " "
            # a plain-text line may start with a nick, addressed: "bob: hi"
            return _matching(src.nicks(), word), ": "
        return self._argument(before, word), " "

    def _argument(self, before: list[str], word: str) -> list[str]:
        src = self.sources
        command = before[0].startswith("/") or src.bare_commands()
        kinds = src.arguments(before[0].lstrip("/").lower()) if command else []
        position = len(before) - 1
        kind = kinds[position] if position < len(kinds) else None
        if kind is not None and "|" in kind:  # a choice of words, e.g. "on|off"
            return _matching(kind.split("|"), word)
        if kind == "channel" or (kind is None and word.startswith("#")):
            hashed = word.startswith("#")
            return _matching([("#" if hashed else "") + c for c in src.channels()], word)
        if kind == "nick" or kind is None or kind == "text":
            return _matching(src.nicks(), word)
        return []


def _matching(names: Sequence[str], word: str) -> list[str]:
    """Names starting with ``word`` (case-insensitive), sorted, without duplicates."""
    low = word.lower()
    seen: dict[str, str] = {}
    for name in names:
        if name.lower().startswith(low):
            seen.setdefault(name.lower(), name)
    return sorted(seen.values(), key=str.lower)
