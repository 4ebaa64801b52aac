"""Readline's editing moves as pure functions of (text, cursor): no widget, no urwid.

Each move returns ``Edited(text, cursor, killed)``; ``killed`` is the text a kill removed
(for the yank buffer), "" for moves that kill nothing. "Line" means the line of the input
the cursor is on (a pasted or Alt+Enter input has several). Words, as in readline: Alt+B,
Alt+F and Alt+D see letters and digits; Ctrl+W sees everything up to the previous blank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class Edited(NamedTuple):
    text: str
    cursor: int
    killed: str = ""


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _line_start(text: str, cursor: int) -> int:
    return text.rfind("\n", 0, cursor) + 1


def _line_end(text: str, cursor: int) -> int:
    end = text.find("\n", cursor)
    return len(text) if end < 0 else end


def _word_back(text: str, cursor: int) -> int:
    i = cursor
    while i > 0 and not _is_word(text[i - 1]):
        i -= 1
    while i > 0 and _is_word(text[i - 1]):
        i -= 1
    return i


def _word_forward(text: str, cursor: int) -> int:
    i = cursor
    while i < len(text) and not _is_word(text[i]):
        i += 1
    while i < len(text) and _is_word(text[i]):
        i += 1
    return i


def _blank_word_back(text: str, cursor: int) -> int:
    i = cursor
    while i > 0 and text[i - 1].isspace():
        i -= 1
    while i > 0 and not text[i - 1].isspace():
        i -= 1
    return i


def _move(to: Callable[[str, int], int]) -> Callable[[str, int], Edited]:
    return lambda text, cursor: Edited(text, to(text, cursor))


def _kill(to: Callable[[str, int], int]) -> Callable[[str, int], Edited]:
    """Delete between the cursor and where ``to`` goes, keeping what was deleted."""
    def kill(text: str, cursor: int) -> Edited:
        other = to(text, cursor)
        if other == cursor and to is _line_end and cursor < len(text):
            other = cursor + 1  # Ctrl+K at the end of a line joins the next one, as readline
        start, end = sorted((cursor, other))
        return Edited(text[:start] + text[end:], start, text[start:end])
    return kill


# action name (the key table's, without "edit_") -> the move
MOVES: dict[str, Callable[[str, int], Edited]] = {
    "line_start": _move(_line_start),
    "line_end": _move(_line_end),
    "char_back": _move(lambda t, c: max(0, c - 1)),
    "char_forward": _move(lambda t, c: min(len(t), c + 1)),
    "word_back": _move(_word_back),
    "word_forward": _move(_word_forward),
    "kill_to_start": _kill(_line_start),
    "kill_to_end": _kill(_line_end),
    "kill_word_back": _kill(_blank_word_back),
    "kill_alnum_word_back": _kill(_word_back),
    "kill_word_forward": _kill(_word_forward),
}


def yank(text: str, cursor: int, killed: str) -> Edited:
    """Put the last killed text back at the cursor."""
    return Edited(text[:cursor] + killed + text[cursor:], cursor + len(killed))


def line_up(text: str, cursor: int) -> int | None:
    """The cursor one line up, at the same column if it can be; None on the first line."""
    start = _line_start(text, cursor)
    if start == 0:
        return None
    above = _line_start(text, start - 1)
    return min(above + cursor - start, start - 1)


def line_down(text: str, cursor: int) -> int | None:
    """The cursor one line down, at the same column if it can be; None on the last line."""
    end = _line_end(text, cursor)
    if end == len(text):
        return None
    column = cursor - _line_start(text, cursor)
    return min(end + 1 + column, _line_end(text, end + 1))
