"""The input line: its caption names where plain text goes; a line longer than the row
scrolls sideways to keep the cursor in view instead of growing the row. A pasted or
Alt+Enter text of several lines shows them, up to ``max_rows`` around the cursor.

Readline's editing keys arrive as ``edit(name)`` (tui.line_editing holds the moves); what
a kill removes can be yanked back (Ctrl+Y), and kills in a row add up, as in readline.
"""

from __future__ import annotations

import urwid

from tui import line_editing


class InputLine(urwid.Edit):
    """An Edit whose ``rows`` only counts newlines, so a key costs the same at any length.

    A wrapping Edit lays out its whole text to count its rows on every key that passes
    through the footer Pile: a pasted 5,000-character line took tens of seconds that way.
    """

    def __init__(self, max_rows: int = 6) -> None:
        super().__init__(("prompt", "> "), wrap="clip")
        self.max_rows = max_rows
        self.killed = ""           # the yank buffer
        self.pasted = False        # the text holds a paste (until taken or replaced)
        self._last_was_kill = False

    @property
    def lines(self) -> int:
        """How many lines the text has (a newline starts one)."""
        return self.edit_text.count("\n") + 1

    def rows(self, size, focus: bool = False) -> int:
        return min(self.lines, self.max_rows)

    def render(self, size, focus: bool = False):
        canvas = super().render(size, focus)
        shown = self.rows(size, focus)
        if canvas.rows() <= shown:
            return canvas
        # more lines than rows: the rows around the cursor
        cursor_row = canvas.cursor[1] if canvas.cursor else 0
        top = min(max(0, cursor_row - shown + 1), canvas.rows() - shown)
        canvas = urwid.CompositeCanvas(canvas)
        canvas.trim(top, shown)
        return canvas

    def set_target(self, title: str) -> None:
        self.set_caption(("prompt", f"{title}> "))

    def take(self) -> str:
        """The typed text, leaving the input empty."""
        text = self.edit_text
        self.set_edit_text("")
        self.pasted = False
        return text

    def replace(self, text: str, cursor: int | None = None) -> None:
        self.pasted = False
        self.set_edit_text(text)
        self.set_edit_pos(len(text) if cursor is None else cursor)

    def newline(self) -> None:
        """Alt+Enter: a new line in the text, which Enter then sends as one message."""
        self.insert_text("\n")

    def paste(self, text: str) -> None:
        """Insert a pasted text as it is, in one edit (not one key at a time); Enter sends
        it as chat text."""
        self.pasted = self.pasted or bool(text)
        self.insert_text(text)

    def edit(self, name: str) -> None:
        """Run one of readline's moves (tui.line_editing.MOVES) or "yank"."""
        if name == "newline":
            self.newline()
            return
        if name == "yank":
            done = line_editing.yank(self.edit_text, self.edit_pos, self.killed)
        else:
            done = line_editing.MOVES[name](self.edit_text, self.edit_pos)
        if done.killed:
            backwards = done.cursor < self.edit_pos
            if self._last_was_kill:
                self.killed = done.killed + self.killed if backwards \
                    else self.killed + done.killed
            else:
                self.killed = done.killed
        if done.text != self.edit_text:
            self.set_edit_text(done.text)
        self.set_edit_pos(done.cursor)
        self._last_was_kill = bool(done.killed)

    def move_line(self, delta: int) -> bool:
        """Up (-1) or down (+1) one line of the text; False on the first or last line."""
        step = line_editing.line_up if delta < 0 else line_editing.line_down
        cursor = step(self.edit_text, self.edit_pos)
        if cursor is None:
            return False
        self.set_edit_pos(cursor)
        return True

    def keypress(self, size, key):
        self._last_was_kill = False
        return super().keypress(size, key)
