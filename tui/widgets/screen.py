"""The whole chat screen: side pane | conversation, the ring log, status bar and input line.

Keys go through the key table first (``tui.keys``); a bound key becomes an ``action``
signal for the app, the rest go to the input line, which always keeps the focus.
"""

from __future__ import annotations

import urwid

from tui import keys

from .conversation import ConversationPane
from .input import InputLine
from .log import LogPane
from .side import SidePane
from .status import StatusBar


class ChatScreen(urwid.WidgetWrap):
    """Emits ``action(name, position)`` for every key bound in the key table."""

    signals = ["action"]

    def __init__(self, side_width: int = 18, log_rows: int = 6) -> None:
        self.side = SidePane(side_width)
        self.conversation = ConversationPane()
        self.log = LogPane(f"ring log ({keys.label_of('toggle_log')} hides, "
                           f"{keys.label_of('log_up')}/PgDn scrolls)",
                           more_key=keys.label_of("log_down"))
        self.status = StatusBar()
        self.input = InputLine()
        self.log_rows = log_rows
        divider = urwid.AttrMap(urwid.SolidFill("│"), "divider")
        self._columns = urwid.Columns([(side_width, self.side), (1, divider),
                                       self.conversation], focus_column=2)
        self._body = urwid.Pile([self._columns])
        self._frame = urwid.Frame(self._body, footer=urwid.Pile([self.status, self.input]),
                                  focus_part="footer")
        super().__init__(self._frame)
        self.set_log_visible(True)

    @property
    def log_visible(self) -> bool:
        return len(self._body.contents) > 1

    def set_log_visible(self, visible: bool) -> None:
        if visible and not self.log_visible:
            self._body.contents.append((self.log, self._body.options("given", self.log_rows)))
        elif not visible and self.log_visible:
            del self._body.contents[1:]
        self._body.focus_position = 0

    def keypress(self, size, key):
        bound = keys.action_for(key)
        if bound is not None:
            urwid.emit_signal(self, "action", *bound)
            return None
        return super().keypress(size, key)

    def mouse_event(self, size, event, button, col, row, focus):
        handled = super().mouse_event(size, event, button, col, row, focus)
        # a click may move urwid's focus into the panes; typing must still reach the input
        self._frame.focus_position = "footer"
        return handled
