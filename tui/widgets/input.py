"""The input line: an Edit whose caption names where plain text goes."""

from __future__ import annotations

import urwid


class InputLine(urwid.Edit):
    def __init__(self) -> None:
        super().__init__(("prompt", "> "))

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
