"""The input line: one row whose caption names where plain text goes; a line longer than
the row scrolls sideways to keep the cursor in view instead of growing the row."""

from __future__ import annotations

import urwid


class InputLine(urwid.Edit):
    """A one-row Edit. ``rows`` is constant, so a key costs the same at any length of text.

    A wrapping Edit lays out its whole text to count its rows on every key that passes
    through the footer Pile: a pasted 5,000-character line took tens of seconds that way.
    """

    def __init__(self) -> None:
        super().__init__(("prompt", "> "), wrap="clip")

    def rows(self, size, focus: bool = False) -> int:
        return 1  # never multiline, and the caption is one line

    def set_target(self, title: str) -> None:
        self.set_caption(("prompt", f"{title}> "))

    def take(self) -> str:
        """The typed line, leaving the input empty."""
        text = self.edit_text
        self.set_edit_text("")
        return text

    def replace(self, text: str, cursor: int | None = None) -> None:
        self.set_edit_text(text)
        self.set_edit_pos(len(text) if cursor is None else cursor)
