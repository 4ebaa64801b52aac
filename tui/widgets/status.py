"""The status bar: who and where this node is, its ring neighbours, what it maintains."""

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


class StatusBar(urwid.WidgetWrap):
    def __init__(self) -> None:
        self._text = urwid.Text("", wrap="clip")
        super().__init__(urwid.AttrMap(self._text, "status"))
        self.update(Status())

    def update(self, s: Status) -> None:
        parts: list = [("status key", f" {s.nick or '?'}"), f" {s.id or '--------'} {s.address}"]
        if s.state:
            parts.append(f" │ {s.state}…")
        else:
            parts.append(f" │ pred {s.predecessor or '-'} succ {s.successor or '-'}"
                         f" │ keeps {s.channels} ch {s.names} names")
        self._text.set_text(parts)

    @property
    def text(self) -> str:
        return self._text.text
