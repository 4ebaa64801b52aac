"""The ring log pane: migration steps and ring changes, each with its time, newest last."""

from __future__ import annotations

import urwid


class LogPane(urwid.WidgetWrap):
    """A titled list that always shows its newest lines; keeps at most ``limit``."""

    def __init__(self, limit: int = 2000) -> None:
        self.limit = limit
        self._walker = urwid.SimpleFocusListWalker([])
        self._list = urwid.ListBox(self._walker)
        title = urwid.AttrMap(urwid.Text(" ring log (F2 hides)", wrap="clip"), "title")
        super().__init__(urwid.Frame(self._list, header=title))

    def add(self, markup) -> None:
        self._walker.append(urwid.Text(markup))
        if len(self._walker) > self.limit:
            del self._walker[0]
        self._walker.set_focus(len(self._walker) - 1)
        self._list.set_focus_valign("bottom")

    def texts(self) -> list[str]:
        return [w.text for w in self._walker]
