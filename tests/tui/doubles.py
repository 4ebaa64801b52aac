"""A stand-in for the runtime in widget-level tests: it records what the UI asks of it.

Only for tests of what the UI does with keys and lines; everything that needs a ring
uses the real runtime (tests/tui/test_pty.py).
"""

from __future__ import annotations

import concurrent.futures

from core.chat.model.commands import Command, Where


def _done(value=None) -> concurrent.futures.Future:
    f: concurrent.futures.Future = concurrent.futures.Future()
    f.set_result(value)
    return f


class RecordingRuntime:
    """Answers execute/submit/shutdown with finished futures and remembers the calls.

    ``executed`` holds the chat's commands; the runtime's own (exit) count as shutdowns,
    as in the real runtime."""

    def __init__(self) -> None:
        self.executed: list[Command] = []
        self.shutdowns = 0
        self.searched: list[str] = []

    def execute(self, command: Command) -> concurrent.futures.Future:
        assert command.where is not Where.FRONT_END, f"{command} sent to the runtime"
        if command.where is Where.RUNTIME:
            return self.shutdown()
        self.executed.append(command)
        return _done()

    def search(self, text: str) -> concurrent.futures.Future:
        self.searched.append(text)
        return _done()

    def submit(self, coro) -> concurrent.futures.Future:
        coro.close()
        return _done()

    def shutdown(self) -> concurrent.futures.Future:
        self.shutdowns += 1
        return _done()

    @property
    def stopping(self) -> bool:
        return self.shutdowns > 0
