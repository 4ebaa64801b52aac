"""The conversation pane: a message list per conversation that follows new lines unless
the user has scrolled back, and then says that there is more below instead of jumping."""

from __future__ import annotations

import re

import urwid

STATE_MARKS = {"pending": ("time", " …"), "delivered": ("time", " ✓"),
               "failed": ("error", " ✗ not sent")}


LONG_URL = re.compile(r"\w+://\S{40,}")   # a link that would wrap in the text column


class MessageLine(urwid.WidgetWrap):
    """One message: time and nick, then the text; wrapped lines stay indented under the text.

    Not so for a message with a long link: it wraps to the left edge, so a link broken over
    rows has no indent inside it and can be copied or clicked whole (a terminal joins rows
    that fill its width).

    ``msg_id`` finds the line again; ``state`` (an own line's "pending", "delivered" or
    "failed") is a mark after the text.
    """

    def __init__(self, prefix, text, msg_id: str | None = None,
                 state: str | None = None) -> None:
        self.msg_id = msg_id
        self._prefix = urwid.Text(prefix, wrap="clip")
        self._body = text if isinstance(text, list) else [text]
        self._text = urwid.Text("")
        self.flat = LONG_URL.search(_plain(self._body)) is not None
        self._lead = (prefix if isinstance(prefix, list) else [prefix]) if self.flat else []
        self.state: str | None = None
        self.set_state(state)
        super().__init__(self._text if self.flat else urwid.Columns(
            [(len(self._prefix.text), self._prefix), self._text]))

    def set_state(self, state: str | None) -> None:
        self.state = state
        mark = STATE_MARKS.get(state or "")
        self._text.set_text([*self._lead, *self._body, mark] if mark
                            else [*self._lead, *self._body])

    @property
    def text(self) -> str:
        return self._text.text if self.flat else self._prefix.text + self._text.text


def _plain(markup: list) -> str:
    return "".join(m if isinstance(m, str) else m[1] if isinstance(m, tuple) else ""
                   for m in markup)


class HitLine(urwid.WidgetWrap):
    """A search result: selectable; a click or Enter emits "open"."""

    signals = ["open"]

    def __init__(self, markup) -> None:
        self._label = urwid.Text(markup)
        super().__init__(urwid.AttrMap(self._label, None, focus_map="side current"))

    def selectable(self) -> bool:
        return True

    def keypress(self, size, key):
        if key == "enter":
            self._emit("open")
            return None
        return key

    def mouse_event(self, size, event, button, col, row, focus):
        if event == "mouse press" and button == 1:
            self._emit("open")
            return True
        return False

    @property
    def text(self) -> str:
        return self._label.text


class MessageList(urwid.ListBox):
    """The lines of one conversation, oldest first, at most ``limit`` of them.

    A line taller than the view shows from its start; the view then stops following (as if
    scrolled back), so the pane's marker says there is more below and new lines do not
    yank it away; ``cut`` is that line while its end is out of view.
    """

    def __init__(self, limit: int = 5000) -> None:
        self.limit = limit
        self.following = True  # the newest line is in view and new ones scroll it up
        self.unseen = 0        # lines that arrived below the view while scrolled back
        self._size: tuple[int, int] = (80, 20)  # the last rendered size, for scrolling by keys
        self.cut: urwid.Widget | None = None
        super().__init__(urwid.SimpleFocusListWalker([]))

    def check_cut(self, size: tuple[int, int]) -> None:
        """At ``size``, is the newest line followed but taller than the view? Then stop
        following at its start (its end is below)."""
        self._size = size
        if not (self.following and self.body) or "bottom" in self.ends_visible(size):
            return
        newest = self.body[self.focus_position]
        if newest.rows((size[0],)) <= size[1]:
            # it fits: a resize (rows wrapped anew) left its end below, so follow it again
            self.set_focus_valign("bottom")
            return
        self.following = False
        self.unseen = 0
        self.cut = newest

    def check_uncut(self, size: tuple[int, int]) -> None:
        """A cut line, the newest, that fits whole at ``size`` now (the terminal grew):
        show it whole and follow again, so no marker is left with nothing below."""
        if (self.cut is not None and self.body and self.focus is self.cut
                and self.focus_position == len(self.body) - 1
                and self.cut.rows((size[0],)) <= size[1]):
            self.set_focus_valign("bottom")
            self.following, self.unseen, self.cut = True, 0, None
            self._invalidate()

    def append(self, widget: urwid.Widget) -> None:
        self.body.append(widget)
        if len(self.body) > self.limit:
            del self.body[0]
        if self.following:
            self.body.set_focus(len(self.body) - 1)
            self.set_focus_valign("bottom")
        else:
            self.unseen += 1
        self._invalidate()

    def render(self, size, focus=False):
        self._size = size
        return super().render(size, focus)

    def scroll(self, key: str) -> None:
        """Page back ("page up") or forward ("page down"); reaching the end follows again."""
        self.keypress(self._size, key)
        self._update_following()

    def mouse_event(self, size, event, button, col, row, focus):
        handled = super().mouse_event(size, event, button, col, row, focus)
        self._size = size
        self._update_following()
        return handled

    def _update_following(self) -> None:
        at_end = not self.body or (self.focus_position == len(self.body) - 1
                                    and "bottom" in self.ends_visible(self._size))
        self.following = at_end
        if at_end:
            self.unseen = 0
        if self.cut is not None and (at_end or self.focus is not self.cut):
            self.cut = None
        self._invalidate()

    def texts(self) -> list[str]:
        """The text of every line (for tests and captures)."""
        return [w.text for w in self.body]

    def find(self, msg_id: str) -> int | None:
        """The position of the line of message ``msg_id`` (None: not shown here)."""
        for i in range(len(self.body) - 1, -1, -1):
            if getattr(self.body[i], "msg_id", None) == msg_id:
                return i
        return None

    def show_line(self, position: int) -> None:
        """Bring line ``position`` into view, in the middle (stops following new lines)."""
        self.body.set_focus(position)
        self.set_focus_valign("middle")
        self.following = position == len(self.body) - 1
        self._invalidate()


class ConversationPane(urwid.WidgetWrap):
    """Shows one MessageList under a title line, with a "more below" marker when scrolled back.

    ``more_key`` is how the marker spells the key that scrolls forward.
    """

    def __init__(self, more_key: str = "PgDn") -> None:
        self.more_key = more_key
        self._title = urwid.Text("", wrap="clip")
        self._marker = urwid.Text("", align="center", wrap="clip")
        self._marker_map = urwid.AttrMap(self._marker, "more")
        self._frame = urwid.Frame(urwid.SolidFill(" "),
                                  header=urwid.AttrMap(self._title, "title"))
        self.messages: MessageList | None = None
        super().__init__(self._frame)

    def show(self, messages: MessageList, title: str) -> None:
        self.messages = messages
        self._frame.body = messages
        self._title.set_text(" " + title)
        self.refresh_marker()

    def refresh_marker(self) -> None:
        """Show or hide the marker after the shown list changed or scrolled."""
        m = self.messages
        if m is None or m.following:
            self._frame.footer = None
            return
        new = f" ({m.unseen} new)" if m.unseen else ""
        # the state of a cut line (its ✓) is at its end, out of view: the marker shows it
        mark = STATE_MARKS.get(getattr(m.cut, "state", None) or "", (None, ""))[1]
        self._marker.set_text(f"── more below{new}: {self.more_key} ──{mark}")
        self._frame.footer = self._marker_map

    def render(self, size, focus=False):
        if self.messages is not None and len(size) == 2 and self.messages.following:
            # the rows the list has with the title and a marker line
            self.messages.check_cut((size[0], max(1, size[1] - 2)))
            self.refresh_marker()
        elif self.messages is not None and len(size) == 2 and self.messages.cut is not None:
            self.messages.check_uncut((size[0], max(1, size[1] - 1)))   # title, no marker
            self.refresh_marker()
        return super().render(size, focus)

    def mouse_event(self, size, event, button, col, row, focus):
        handled = super().mouse_event(size, event, button, col, row, focus)
        self.refresh_marker()  # the wheel scrolls the list
        return handled

    @property
    def marker(self) -> str:
        """The marker's text, empty when it is hidden (for tests)."""
        return self._marker.text if self._frame.footer is not None else ""
