"""The core → UI thread crossing: a SimpleQueue plus one wake-up byte to urwid's watch pipe.

``post`` is called on the core's thread (or any thread); ``handle`` runs on the UI thread.
urwid coalesces wake-ups, so each wake-up drains the whole queue, and one failing
handler is logged without stopping the others or the main loop.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Callable

import urwid

log = logging.getLogger(__name__)


class FromCore:
    """Carries events from the core thread to the UI thread, in order, none lost."""

    def __init__(self, handle: Callable[[object], None],
                 on_error: Callable[[object, Exception], None] | None = None,
                 settle: Callable[[], None] | None = None) -> None:
        self._handle = handle
        self._on_error = on_error
        self._settle = settle  # once after each batch: work that need not be done per event
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._fd: int | None = None
        # set by a post that wrote a wake-up byte, cleared by the drain before it drains:
        # at most a few bytes sit in the pipe, so post never blocks on a full pipe
        self._woken = False

    def post(self, event: object) -> None:
        """Queue ``event`` for the UI thread; safe from any thread, never blocks."""
        self._queue.put(event)
        self._wake()

    def attach(self, loop: urwid.MainLoop) -> None:
        """Start delivering on ``loop``'s thread; events posted before now are delivered too."""
        self._fd = loop.watch_pipe(self._drain)
        self._woken = False
        self._wake()

    def drain(self) -> int:
        """Handle every queued event now (on the UI thread); returns how many."""
        self._woken = False
        count = 0
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                break
            count += 1
            try:
                self._handle(event)
            except urwid.ExitMainLoop:
                raise
            except Exception as exc:
                # an exception escaping a watch_pipe callback would end the main loop
                log.exception("handling %r failed", event)
                if self._on_error is not None:
                    try:
                        self._on_error(event, exc)
                    except Exception:
                        log.exception("reporting that failure failed too")
        if count and self._settle is not None:
            try:
                self._settle()
            except Exception:
                log.exception("settling after %d events failed", count)
        return count

    def _wake(self) -> None:
        fd = self._fd
        if fd is None or self._woken:
            return
        self._woken = True
        try:
            os.write(fd, b"!")
        except OSError:  # the UI is closing; what is queued is dropped with it
            pass

    def _drain(self, _data: bytes) -> bool:
        self.drain()
        return True
