"""Real ``chordchat --headless --json`` processes around the UI under test, and free ports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

# fast ring upkeep so that joins and migrations show within seconds on a loaded machine
FAST_ARGS = ["--ring-interval", "0.1", "--timeout", "2", "--maintenance-interval", "0.3"]


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports that nobody listens on now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def chordchat_args(nick: str, port: int, bootstrap: int | None = None) -> list[str]:
    args = [sys.executable, "-m", "tui", "--nick", nick, "--listen", f"127.0.0.1:{port}",
            *FAST_ARGS]
    return args + (["--bootstrap", f"127.0.0.1:{bootstrap}"] if bootstrap else [])


class HeadlessPeer:
    """A headless node; ``events`` are its JSON lines as they come."""

    def __init__(self, nick: str, port: int, bootstrap: int | None = None) -> None:
        self.nick, self.port = nick, port
        self.proc = subprocess.Popen(
            [*chordchat_args(nick, port, bootstrap), "--headless", "--json"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, start_new_session=True)
        self.events: list[dict] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, name=f"peer-{nick}", daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_event(self, match: Callable[[dict], bool], timeout: float = 30.0,
                   what: str = "an event") -> dict:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((e for e in self.events if match(e)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"peer {self.nick}: no {what} in {timeout} s; "
                                         f"events: {self.events[-10:]}")
                self._changed.wait(min(left, 0.5))

    def ready(self, timeout: float = 30.0) -> dict:
        return self.wait_event(lambda e: e["event"] == "ready", timeout, "ready event")

    def say(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def exit(self, timeout: float = 30.0) -> int:
        """The graceful exit (end of input); kills the process if it does not end in time."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(10)
