"""The terminal while the UI owns it: Ctrl+C as a key, signals as a graceful exit, stderr
to the log file. Main thread only; nothing here knows the chat."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable

import urwid


class Screen(urwid.display.raw.Screen):
    """The terminal screen, with Ctrl+C and Ctrl+\\ delivered as keys, not signals, and
    bracketed paste on (ESC[?2004h at the start, off at the end): a paste arrives as the
    keys "begin paste" … "end paste" (tui.widgets.screen keeps it as text).

    Set in ``_start`` so that ``stop`` puts the original keys back with the rest of the tty.
    """

    def __init__(self, *args, **kwargs) -> None:
        # forced on, not probed: a terminal that does not know the mode ignores it
        kwargs.setdefault("bracketed_paste_mode", True)
        super().__init__(*args, **kwargs)

    def _start(self, *args, **kwargs):
        result = super()._start(*args, **kwargs)
        self.tty_signal_keys(intr="undefined", quit="undefined")
        return result


@contextlib.contextmanager
def signals_to(on_signal: Callable[[], None]):
    """SIGINT/SIGTERM/SIGHUP call ``on_signal`` (which must not block: it runs in a signal
    handler) instead of killing the process."""
    wanted = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    previous = {s: signal.signal(s, lambda *_: on_signal()) for s in wanted}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def stderr_to(path: str):
    """Send fd 2 to the log file while the UI owns the terminal: nothing may print over it."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "a", encoding="utf-8") as target:
        os.dup2(target.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
