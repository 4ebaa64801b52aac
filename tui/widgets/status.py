"""The status bar: who and where this node is, its ring neighbours, what it maintains.

One row at any width: it says as much as fits, dropping the least needed first (the
address, then the words, then the neighbours) rather than cutting words in half.
"""

from __future__ import annotations

from dataclasses import dataclass

import urwid


@dataclass(frozen=True)
class Status:
    nick: str = ""
    id: str = ""           # short id
    address: str = ""
    predecessor: str = ""
    successor: str = ""
    channels: int = 0
    names: int = 0
    state: str = "joining the ring"  # then "" (in the ring), at the end "leaving"


def variants(s: Status) -> list[list]:
    """The bar's markup from the fullest to the shortest."""
    me = ("status key", f" {s.nick or '?'}")
    node = f" {s.id or '--------'}"
    if s.state:
        return [[me, f"{node} {s.address} │ {s.state}…"], [me, f"{node} │ {s.state}…"],
                [me, f" │ {s.state}…"], [me]]
    pred, succ = s.predecessor or "-", s.successor or "-"
    names = f"{s.names} name{'' if s.names == 1 else 's'}"   # "1 name", not "1 names"
    keeps = f"keeps {s.channels} ch {names}"
    return [
        [me, f"{node} {s.address} │ pred {pred} succ {succ} │ {keeps}"],
        [me, f"{node} │ pred {pred} succ {succ} │ {keeps}"],
        [me, f"{node} │ ←{pred} →{succ} │ {s.channels} ch {names}"],
        [me, f" │ ←{pred[:4]} →{succ[:4]} │ {s.channels}ch {s.names}n"],
        [me, f" │ {s.channels}ch {s.names}n"],
        [me],
    ]


def _length(markup: list) -> int:
    return sum(len(m[1] if isinstance(m, tuple) else m) for m in markup)


class StatusBar(urwid.WidgetWrap):
    def __init__(self) -> None:
        self._text = urwid.Text("", wrap="clip")
        self._variants: list[list] = []
        self._width = 0
        super().__init__(urwid.AttrMap(self._text, "status"))
        self.update(Status())

    def update(self, s: Status) -> None:
        self._variants = variants(s)
        self._fit(self._width)

    def _fit(self, width: int) -> None:
        self._width = width
        chosen = next((v for v in self._variants if width and _length(v) <= width),
                      self._variants[0] if not width else self._variants[-1])
        if self._text.get_text()[0] != "".join(
                m[1] if isinstance(m, tuple) else m for m in chosen):
            self._text.set_text(chosen)

    def rows(self, size, focus: bool = False) -> int:
        return 1

    def render(self, size, focus: bool = False):
        if size[0] != self._width:
            self._fit(size[0])
        return super().render(size, focus)

    @property
    def text(self) -> str:
        """The fullest form (for tests); ``shown`` is what the last width allowed."""
        return "".join(m[1] if isinstance(m, tuple) else m for m in self._variants[0])

    @property
    def shown(self) -> str:
        return self._text.text
