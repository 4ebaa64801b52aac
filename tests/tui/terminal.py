"""A real process in a pseudo-terminal, its screen read with pyte: for tests of the real UI."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable

import pyte

from tests.support.procs import FAST_ARGS

UI_ARGS = [a for a in FAST_ARGS if a != "--quiet"]  # --quiet is for headless output


class TerminalProcess:
    """Runs ``args`` on a fresh pty of ``cols`` x ``rows``; ``lines()`` is what it shows."""

    def __init__(self, args: list[str], cols: int = 80, rows: int = 24,
                 env: dict[str, str] | None = None) -> None:
        self.master, self.slave = os.openpty()
        self.set_size(cols, rows)
        self.tty_before = termios.tcgetattr(self.slave)
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.output = bytearray()  # everything the process wrote, for checks on escapes
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified on every read
        self._stop = threading.Event()
        self.proc = subprocess.Popen(
            args, stdin=self.slave, stdout=self.slave, stderr=self.slave,
            env={**os.environ, "TERM": "xterm", **(env or {})},
            start_new_session=True, close_fds=True)
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    def set_size(self, cols: int, rows: int) -> None:
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def resize(self, cols: int, rows: int) -> None:
        """Resize as a terminal window does: new size on the pty, then SIGWINCH."""
        with self._lock:
            self.screen.resize(rows, cols)
        self.set_size(cols, rows)
        # the pty is not the child's controlling terminal, so the kernel does not signal it
        self.proc.send_signal(signal.SIGWINCH)

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._changed:
                self.output += data
                self.stream.feed(data)
                self._changed.notify_all()

    def lines(self) -> list[str]:
        with self._lock:
            return list(self.screen.display)

    def text(self) -> str:
        return "\n".join(self.lines())

    def type(self, keys: str | bytes) -> None:
        data = keys.encode() if isinstance(keys, str) else keys
        while data:  # a long paste may not fit the pty's buffer in one write
            data = data[os.write(self.master, data):]

    def enter(self, line: str) -> None:
        self.type(line + "\r")

    def wait_for(self, condition: Callable[[list[str]], bool] | str, timeout: float = 30.0,
                 what: str | None = None) -> list[str]:
        """Wait until ``condition`` (or the substring) holds on the screen, re-checking on
        every change; fail after ``timeout`` seconds, or when the process ends, with the screen."""
        check = (lambda lines: any(condition in line for line in lines)) \
            if isinstance(condition, str) else condition
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                lines = list(self.screen.display)
                if check(lines):
                    return lines
                ended = self.proc.poll() is not None
                left = deadline - time.monotonic()
                if ended or left <= 0:
                    why = (f"the process ended ({self.proc.returncode})" if ended
                           else f"timed out after {timeout} s")
                    raise AssertionError(f"{why} waiting for {what or condition!r}; "
                                         "the screen:\n" + "\n".join(lines))
                self._changed.wait(min(left, 0.5))

    def wait_exit(self, timeout: float = 30.0) -> int:
        """The exit code, once the process has ended and its last output has been read."""
        code = self.proc.wait(timeout)
        deadline = time.monotonic() + 5
        with self._changed:
            while select.select([self.master], [], [], 0)[0] and time.monotonic() < deadline:
                self._changed.wait(0.1)
        return code

    def tty_now(self) -> list:
        return termios.tcgetattr(self.slave)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._stop.set()
        self._reader.join(5)
        os.close(self.slave)
        os.close(self.master)


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports that nobody listens on now."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def assert_terminal_restored(ui: TerminalProcess) -> None:
    out = bytes(ui.output)
    assert out.rfind(b"\x1b[?1049l") > out.rfind(b"\x1b[?1049h") >= 0  # normal screen again
    assert out.rfind(b"\x1b[?25h") > out.rfind(b"\x1b[?25l")  # cursor shown
    assert ui.tty_now() == ui.tty_before  # echo, line mode and Ctrl+C as they were
    assert b"Traceback" not in out
