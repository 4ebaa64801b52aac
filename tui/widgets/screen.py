"""The whole chat screen: side pane | conversation, the ring log, status bar and input line.

Keys go through the key table first (``tui.keys``); a bound key becomes an ``action``
signal for the app (or, for ``edit_*`` actions, an edit of the input line), the rest go
to the input line, which always keeps the focus. Two exceptions: a bracketed paste (the
terminal's ``begin paste`` … ``end paste``) goes into the input line as text, its Enters
as newlines, never as keys; and while a popup (help, search hits) is open it gets the
keys, and Esc closes it.

On a small screen the ring log gives way to the conversation: it shrinks to what the
screen can spare and hides itself below ``MIN_CONVERSATION_ROWS`` of conversation.
"""

from __future__ import annotations

import urwid

from tui import keys

from .conversation import ConversationPane
from .input import InputLine
from .log import LogPane
from .popup import Popup
from .side import SidePane
from .status import StatusBar

# what a key inside a bracketed paste puts into the text (other named keys are dropped)
PASTED = {"enter": "\n", "tab": "    "}
MIN_CONVERSATION_ROWS = 8   # rows the conversation keeps before the ring log gets any
MIN_LOG_ROWS = 3            # fewer than this and the ring log hides itself
NARROW = 60                 # below this many columns the side pane narrows


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
        self.side_width = side_width
        self.popup: Popup | None = None
        self._pasted: list[str] | None = None  # inside a bracketed paste: its text so far
        self._log_wanted = True                # the user's choice (F2); the size may overrule
        divider = urwid.AttrMap(urwid.SolidFill("│"), "divider")
        self._columns = urwid.Columns([(side_width, self.side), (1, divider),
                                       self.conversation], focus_column=2)
        self._body = urwid.Pile([self._columns])
        self._frame = urwid.Frame(self._body, footer=urwid.Pile([self.status, self.input]),
                                  focus_part="footer")
        super().__init__(self._frame)
        self.set_log_visible(True)

    # ---- the ring log pane and the size of the screen --------------------------------

    @property
    def log_visible(self) -> bool:
        return self._log_wanted

    def set_log_visible(self, visible: bool) -> None:
        self._log_wanted = visible
        self._place_log(self.log_rows if visible else 0)

    def _place_log(self, rows: int) -> None:
        if rows and len(self._body.contents) == 1:
            self._body.contents.append((self.log, self._body.options("given", rows)))
        elif rows:
            self._body.contents[1] = (self.log, self._body.options("given", rows))
        elif len(self._body.contents) > 1:
            del self._body.contents[1:]
        self._body.focus_position = 0

    def log_rows_for(self, maxrow: int) -> int:
        """Rows the ring log gets on a screen of ``maxrow`` rows: what the conversation can
        spare, up to ``log_rows`` (0: hidden)."""
        if not self._log_wanted:
            return 0
        footer = 1 + self.input.rows((80,))
        spare = maxrow - footer - MIN_CONVERSATION_ROWS
        rows = min(self.log_rows, spare)
        return rows if rows >= MIN_LOG_ROWS else 0

    def _fit(self, size) -> None:
        """Lay the panes out for ``size``: the log's rows, the side pane's width."""
        if len(size) == 2:
            rows = self.log_rows_for(size[1])
            placed = self._body.contents[1][1][1] if len(self._body.contents) > 1 else 0
            if rows != placed:
                self._place_log(rows)
            width = self.side_width if size[0] >= NARROW else max(8, size[0] // 5)
            if self._columns.contents[0][1][1] != width:
                self._columns.contents[0] = (self.side, self._columns.options("given", width))
                self.side.set_width(width)

    def render(self, size, focus=False):
        self._fit(size)
        return super().render(size, focus)

    # ---- popups ----------------------------------------------------------------------

    def open_popup(self, popup: Popup) -> None:
        """Show ``popup`` over the screen; it has the keys until Esc (or ``close_popup``)."""
        self.popup = popup
        self._w = urwid.Overlay(popup, self._frame, "center", ("relative", 90),
                                "middle", ("relative", 90), min_width=20, min_height=5)

    def close_popup(self) -> None:
        self.popup = None
        self._w = self._frame

    # ---- keys ------------------------------------------------------------------------

    def keypress(self, size, key):
        if self._pasted is not None:
            if key == "end paste":
                text, self._pasted = "".join(self._pasted), None
                self.input.paste(text)
            elif isinstance(key, str):
                self._pasted.append(PASTED.get(key, key if len(key) == 1 else ""))
            return None
        if key == "begin paste":
            self._pasted = []
            return None
        if key == "end paste":
            return None
        bound = keys.action_for(key)
        if self.popup is not None and (bound is None or bound[0] not in ("quit", "help")):
            if key == "esc":
                self.close_popup()
                return None
            self._fit(size)
            return self._w.keypress(size, key)
        if bound is not None:
            action, position = bound
            if action.startswith(keys.EDIT_PREFIX):
                self.input.edit(action.removeprefix(keys.EDIT_PREFIX))
            else:
                urwid.emit_signal(self, "action", action, position)
            return None
        return super().keypress(size, key)

    def mouse_event(self, size, event, button, col, row, focus):
        handled = super().mouse_event(size, event, button, col, row, focus)
        if self.popup is None:
            # a click may move urwid's focus into the panes; typing must still reach the input
            self._frame.focus_position = "footer"
        return handled
