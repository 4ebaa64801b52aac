"""The conversation pane: a message list per conversation that follows new lines unless
the user has scrolled back, and then says that there is more below instead of jumping."""

from __future__ import annotations

import urwid


class MessageLine(urwid.WidgetWrap):
    """One message: time and nick, then the text; wrapped lines stay indented under the text."""

    def __init__(self, prefix, text) -> None:
        self._prefix = urwid.Text(prefix, wrap="clip")
        self._text = urwid.Text(text)
        super().__init__(urwid.Columns([(len(self._prefix.text), self._prefix), self._text]))

    @property
    def text(self) -> str:
        return self._prefix.text + self._text.text


class MessageList(urwid.ListBox):
    """The lines of one conversation, oldest first, at most ``limit`` of them."""

    def __init__(self, limit: int = 5000) -> None:
        self.limit = limit
        self.following = True  # the newest line is in view and new ones scroll it up
        self.unseen = 0        # lines that arrived below the view while scrolled back
        self._size: tuple[int, int] = (80, 20)  # the last rendered size, for scrolling by keys
        super().__init__(urwid.SimpleFocusListWalker([]))

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
        self._invalidate()

    def texts(self) -> list[str]:
        """The text of every line (for tests and captures)."""
        return [w.text for w in self.body]


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
        self._marker.set_text(f"── more below{new}: {self.more_key} ──")
        self._frame.footer = self._marker_map

    def mouse_event(self, size, event, button, col, row, focus):
        handled = super().mouse_event(size, event, button, col, row, focus)
        self.refresh_marker()  # the wheel scrolls the list
        return handled

    @property
    def marker(self) -> str:
        """The marker's text, empty when it is hidden (for tests)."""
        return self._marker.text if self._frame.footer is not None else ""
