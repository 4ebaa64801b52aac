"""Real ``chordchat --headless --json`` processes for tests: start, talk, wait, kill.

Each ``Proc`` is one node in its own process (``python -m tui``). A reader thread
collects its stdout JSON lines into ``proc.events`` (dicts, in order, each with ``_t``,
the ``time.monotonic()`` at which it was read); stderr goes to a file whose tail is shown
when a wait fails. Everything that waits has a deadline.

    with Cluster(tmp_path) as cluster:
        a = cluster.start("alice")                  # returns once "ready" is printed
        b = cluster.start("bob", bootstrap=a)
        b.send("join #general")
        b.wait_for(kind("joined", channel="general"), what="bob in #general")
        mark = a.mark()                             # wait only for events after this point
        b.send("send general hi")
        a.wait_for(kind("channel", text="hi"), since=mark)   # (a is not a member: times out)
        a.kill()                                    # SIGKILL: no exit sequence
        assert b.stop() == 0                        # "exit", waits for "bye" and the exit code

Each node gets its own fresh ``--data-dir`` (``proc.data_dir``); pass ``data_dir=`` to
start a node again with the same one, as a restart does. ``Cluster.start`` passes fast
ring settings (``FAST_ARGS``) unless ``fast=False``;
``ports.port_with_id_in(lo, hi)`` picks a free loopback port whose node id lies in (lo, hi],
to place a node exactly on the ring. ``wrapper`` is an argv put before the node's own (e.g.
``ip netns exec NS``, to run it inside a network namespace: see tests/support/hosts.py; it must
exec the node, so that signals reach it). On leaving the ``with`` block every process still
running is killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .ports import HOST

FAST_ARGS = ("--ring-interval", "0.1", "--timeout", "1.5", "--maintenance-interval", "0.3",
             "--quiet")
ROOT = Path(__file__).resolve().parents[2]

Event = dict
Predicate = Callable[[Event], bool]


def kind(name: str, **fields) -> Predicate:
    """A predicate: an event named ``name`` whose listed fields have the given values."""
    def matches(event: Event) -> bool:
        return event.get("event") == name and all(event.get(k) == v for k, v in fields.items())
    matches.__name__ = f"{name}{fields or ''}"
    return matches


class Proc:
    """One chordchat node process and the events it printed."""

    def __init__(self, nick: str, args: list[str], log_dir: Path,
                 wrapper: Sequence[str] = (), data_dir: Path | None = None) -> None:
        self.nick = nick
        self.args = args
        self.data_dir = data_dir
        self.stderr_path = log_dir / f"{nick}-{os.getpid()}-{time.monotonic_ns()}.stderr"
        self.events: list[Event] = []
        self.lines: list[str] = []
        self._changed = threading.Condition()
        with open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [*wrapper, sys.executable, "-m", "tui", *args], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=err, cwd=ROOT, text=True, bufsize=1,
                env={**os.environ, "PYTHONUNBUFFERED": "1",
                     "CHORDCHAT_LOG": str(self.stderr_path.with_suffix(".log"))})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.address: str | None = None
        self.id: str | None = None

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            with self._changed:
                self.lines.append(line)
                try:
                    event = json.loads(line)
                except ValueError:
                    event = {"event": "unparsed", "line": line}
                event["_t"] = time.monotonic()  # when the harness read it (for latencies)
                self.events.append(event)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    # -- talking to it -----------------------------------------------------------------------

    def send(self, line: str) -> None:
        """Type one command line into the node."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def close_stdin(self) -> None:
        """End of input: the node runs its exit sequence."""
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()

    # -- waiting on what it prints ----------------------------------------------------------

    def mark(self) -> int:
        """The number of events so far; pass as ``since`` to wait only for later ones."""
        with self._changed:
            return len(self.events)

    def matching(self, predicate: Predicate, since: int = 0) -> list[Event]:
        with self._changed:
            return [e for e in self.events[since:] if predicate(e)]

    def wait_for(self, predicate: Predicate, timeout: float = 30.0, since: int = 0,
                 what: str | None = None, count: int = 1) -> Event:
        """Wait until ``count`` events after ``since`` match; return the last of them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [e for e in self.events[since:] if predicate(e)]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    break
                self._changed.wait(min(left, 0.2))
        raise AssertionError(
            f"{self.nick}: no {what or getattr(predicate, '__name__', 'matching event')} "
            f"(wanted {count}, got {len(found)}) within {timeout} s; exit code "
            f"{self.process.poll()}; last events: {self.events[-8:]}; stderr: {self.stderr()}")

    def stderr(self, tail: int = 1500) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    # -- ending it ------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the node vanishes without its exit sequence, as in a crash."""
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> None:
        """SIGTERM: the node runs its graceful exit sequence."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float = 60.0) -> int:
        """Wait for the process to end and return its exit code."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.nick} did not exit within {timeout} s; "
                                 f"last events {self.events[-8:]}") from None
        self._reader.join(5)
        return code

    def stop(self, timeout: float = 60.0) -> int:
        """Type ``exit``, wait for ``bye`` and for the process to end; return its exit code."""
        if self.alive:
            try:
                self.send("exit")
            except (BrokenPipeError, OSError):
                pass
            self.close_stdin()
        return self.wait_exit(timeout)

    def __repr__(self) -> str:
        return f"Proc({self.nick}, {self.address})"


class Cluster:
    """Starts node processes and kills whatever is still running at the end."""

    def __init__(self, log_dir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.extra_args = extra_args
        self.procs: list[Proc] = []
        self._data_dirs = 0

    def start(self, nick: str, bootstrap: Proc | str | None = None, listen: str = f"{HOST}:0",
              args: tuple[str, ...] = (), fast: bool = True, wait_ready: bool = True,
              timeout: float = 30.0, wrapper: Sequence[str] = (),
              data_dir: Path | None = None) -> Proc:
        if data_dir is None:
            self._data_dirs += 1
            data_dir = self.log_dir / f"data-{nick}-{self._data_dirs}"
        argv = ["--nick", nick, "--listen", listen, "--headless", "--json"]
        if "--data-dir" not in args:
            argv += ["--data-dir", str(data_dir)]
        if bootstrap is not None:
            argv += ["--bootstrap", bootstrap if isinstance(bootstrap, str) else bootstrap.address]
        argv += [*(FAST_ARGS if fast else ()), *self.extra_args, *args]
        proc = Proc(nick, argv, self.log_dir, wrapper, data_dir)
        self.procs.append(proc)
        if wait_ready:
            ready = proc.wait_for(kind("ready"), timeout=timeout, what="ready")
            proc.address, proc.id = ready["address"], ready["id"]
        return proc

    def start_ring(self, nicks: list[str]) -> list[Proc]:
        """Start a node per nick, one after the other, each joining through an earlier one
        (node i through node (i - 1) // 2, so bootstraps are spread, as users' would be)."""
        procs = [self.start(nicks[0])]
        for i, nick in enumerate(nicks[1:]):
            procs.append(self.start(nick, bootstrap=procs[i // 2]))
        return procs

    def live(self) -> list[Proc]:
        return [p for p in self.procs if p.alive]

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.alive:
                proc.process.send_signal(signal.SIGKILL)
        for proc in self.procs:
            try:
                proc.process.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.kill_all()


# -- behind routers (tests/net/test_nat.py, test_nat6.py) ----------------------------------

def relay_of(address: str) -> str | None:
    relay, slash, _ = address.partition("/")
    return relay if slash else None


def whois_until(asker, nick: str, wanted: str, timeout: float = 15.0) -> str:
    """Ask ``whois nick`` until its reach starts with ``wanted``; the last reach said."""
    deadline = time.monotonic() + timeout
    reach = ""
    while time.monotonic() < deadline:
        mark = asker.mark()
        asker.send(f"whois {nick}")
        reach = asker.wait_for(kind("whois", nick=nick), since=mark, timeout=10,
                               what=f"whois {nick}")["reach"]
        if reach.startswith(wanted):
            return reach
        time.sleep(0.3)   # the punch runs in the background: ask again, within the deadline
    return reach
