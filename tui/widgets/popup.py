"""A pane over the screen (help, search hits): a framed list that keeps the keys while it
is open. Up/Down/PgUp/PgDn move in it, Enter opens the chosen line, Esc closes it."""

from __future__ import annotations

import urwid

from .conversation import HitLine


class Popup(urwid.WidgetWrap):
    """A titled list of lines; a HitLine among them is chosen with the arrows and opened
    with Enter. ``hint`` is the bottom line (how to close it)."""

    def __init__(self, title: str, lines: list[urwid.Widget], hint: str = "Esc closes") -> None:
        self.title = title
        self.list = urwid.ListBox(urwid.SimpleFocusListWalker(lines))
        first = next((i for i, w in enumerate(lines) if isinstance(w, HitLine)), None)
        if first is not None:
            self.list.set_focus(first)
        framed = urwid.LineBox(urwid.Frame(self.list, footer=urwid.AttrMap(
            Hint(hint), "time")), title=title)
        super().__init__(urwid.AttrMap(framed, "popup"))

    def texts(self) -> list[str]:
        """The text of every line (for tests and captures)."""
        return [w.text for w in self.list.body]


class Hint(urwid.Text):
    """The popup's key hint, parts separated by " · ": on a narrow screen the first parts
    give way, whole, so that the last (how to close it) is never cut."""

    def __init__(self, hint: str) -> None:
        self.parts = hint.split(" · ")
        super().__init__(hint, align="center", wrap="clip")

    def render(self, size, focus=False):
        fits = next((" · ".join(self.parts[i:]) for i in range(len(self.parts))
                     if len(" · ".join(self.parts[i:])) <= size[0]), self.parts[-1])
        if self.text != fits:
            self.set_text(fits)
        return super().render(size, focus)
