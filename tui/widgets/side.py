"""The side pane: one line per conversation with its number, unread count and mention mark."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import urwid


@dataclass(frozen=True)
class Entry:
    """What the side pane shows of one conversation."""
    title: str
    unread: int = 0
    mention: bool = False
    joined: bool = True


class _Line(urwid.Text):
    """One conversation; a click on it asks for it to be shown."""

    def __init__(self, pane: SidePane, index: int, markup) -> None:
        super().__init__(markup, wrap="clip")
        self._pane, self._index = pane, index

    def mouse_event(self, size, event, button, col, row, focus) -> bool:
        if urwid.util.is_mouse_press(event) and button == 1:
            urwid.emit_signal(self._pane, "select", self._index)
            return True
        return False


class SidePane(urwid.WidgetWrap):
    """Lists conversations; emits ``select(index)`` when one is clicked."""

    signals = ["select"]

    def __init__(self, width: int = 18) -> None:
        self.width = width
        self._walker = urwid.SimpleFocusListWalker([])
        self._shown: tuple[Sequence[Entry], int] = ((), 0)
        super().__init__(urwid.ListBox(self._walker))

    def set_width(self, width: int) -> None:
        """Lay the lines out again for a new width (titles cut to fit, or whole again)."""
        if width != self.width:
            self.width = width
            self.update(*self._shown)

    def update(self, entries: Sequence[Entry], current: int) -> None:
        self._shown = (tuple(entries), current)
        self._walker[:] = [self._line(i, e, i == current) for i, e in enumerate(entries)]
        if entries:
            self._walker.set_focus(current)

    def _line(self, index: int, entry: Entry, current: bool) -> urwid.Widget:
        number = f"{index + 1}" if index < 9 else " "
        mark = "!" if entry.mention else " "
        count = str(entry.unread) if entry.unread else ""
        room = self.width - len(number) - len(mark) - len(count) - 3
        title = entry.title if len(entry.title) <= room else entry.title[:room - 1] + "…"
        text = f"{number} {title.ljust(room)} {count}{mark}"
        if current:
            attr = "side current"
        elif entry.mention:
            attr = "side mention"
        elif entry.unread:
            attr = "side unread"
        elif not entry.joined:
            attr = "side left"
        else:
            attr = "side"
        return urwid.AttrMap(_Line(self, index, text), attr)

    def lines(self) -> list[str]:
        """The text of each line, as shown (for tests and captures)."""
        return [w.base_widget.text for w in self._walker]
