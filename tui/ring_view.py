"""What the status bar and the ring log pane show: where this node is in the ring, and one
line for each change to it (the lines' text is tui.ring_log's).

UI thread only: everything here changes widgets, and nothing waits on the core.
"""

from __future__ import annotations

import dataclasses
import time

from core import events as ev
from core.chord import hash_string, short_id
from tui.conversation_view import clock
from tui.ring_log import LogLine, RingLog
from tui.widgets.screen import ChatScreen
from tui.widgets.status import Status


def short(value: str | None) -> str:
    """An id as the UI shows it (8 hex digits); other values as they are."""
    if value and len(value) == 40 and all(c in "0123456789abcdef" for c in value.lower()):
        return value[:8]
    return value or ""


def _node(address: str | None) -> str:
    """A node given by its address, shown by its short id (the hash of the address)."""
    return short_id(hash_string(address)) if address else ""


class RingView:
    """Owns what the status bar says and what the ring log remembers; writes both panes."""

    def __init__(self, screen: ChatScreen, nick: str) -> None:
        self.screen = screen
        self.status = Status(nick=nick)
        self.ring_log = RingLog()

    def ready(self, e: ev.Ready) -> None:
        self.set_status(nick=e.nick, id=short(e.id), address=e.address, state="")
        self.show(self.ring_log.ready(e), e.at)

    def ring_status(self, e: ev.RingStatus) -> None:
        # the changes themselves reach the log pane as RingChange events
        self.set_status(id=short(e.id), address=e.address, predecessor=_node(e.predecessor),
                        successor=_node(e.successor), channels=e.channels, names=e.names)

    def change(self, e: ev.RingChange) -> None:
        self.show(self.ring_log.change(e), e.at)

    def log(self, e: ev.Log | ev.MigrationStep | ev.Gap) -> None:
        self.show(self.ring_log.line(e), e.at)

    def set_status(self, **changes) -> None:
        self.status = dataclasses.replace(self.status, **changes)
        self.screen.status.update(self.status)

    def note(self, text: str, attr: str = "log", at: float | None = None) -> None:
        """A line of the UI's own in the ring log pane."""
        self.show(LogLine(text, attr), at)

    def show(self, line: LogLine | None, at: float | None = None) -> None:
        """Add one line to the ring log pane (None: nothing new to say)."""
        if line is None:
            return
        markup: list = [(line.attr, line.text)]
        if line.tag:
            markup[:0] = [(line.attr + " tag", f" {line.tag} "), " "]
        self.screen.log.add([("log time", clock(at or time.time(), seconds=True) + " ")],
                            markup)
