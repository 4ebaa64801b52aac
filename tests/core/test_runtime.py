"""The runtime: the core loop in one thread, commands in, events out, the exit sequence."""

from __future__ import annotations

import queue
import socket
import subprocess
import sys
import threading
import time

import pytest

from core import events as ev
from core.chord import Address
from core.runtime import Options, Runtime, StartupError

FAST_CHORD = dict(stabilize_interval=0.05, fix_fingers_interval=0.1,
                  check_predecessor_interval=0.1, timeout=1.0)


class Collector:
    def __init__(self) -> None:
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.events: list = []
        self.threads: set[str] = set()

    def post(self, event) -> None:
        self.threads.add(threading.current_thread().name)
        self.queue.put(event)

    def wait(self, cls, timeout: float = 20.0, **fields):
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events:
                if isinstance(e, cls) and all(getattr(e, k) == v for k, v in fields.items()):
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {cls.__name__} {fields} in {self.events[-10:]}")
            try:
                self.events.append(self.queue.get(timeout=min(left, 0.2)))
            except queue.Empty:
                pass


def options(nick: str, bootstrap: Address | None = None, port: int = 0) -> Options:
    return Options(nick, Address("127.0.0.1", port), bootstrap, FAST_CHORD,
                   chat={"maintenance_interval": 0.2})


def test_runtime__start_execute_shutdown_posts_on_the_core_thread():
    first, second = Collector(), Collector()
    a = Runtime(options("ann"), first.post)
    ready = a.start().result(20)
    assert isinstance(ready, ev.Ready) and ready.nick == "ann" and len(ready.id) == 40
    b = Runtime(options("bo", Address.parse(ready.address)), second.post)
    b.start().result(20)
    b.execute("join #lobby").result(20)
    second.wait(ev.Joined, channel="lobby")
    a.execute("send lobby hello").result(20)
    second.wait(ev.ChannelMessage, channel="lobby", text="hello")
    a.execute("msg bo hi bo").result(20)
    second.wait(ev.PrivateMessage, text="hi bo")
    a.execute("frobnicate").result(20)
    assert "unknown command" in first.wait(ev.Error).message
    a.execute("help").result(20)
    assert "join <channel>" in first.wait(ev.Info).text
    b.shutdown().result(30)
    second.wait(ev.Bye)
    assert isinstance(second.events[-1], ev.Bye) or second.queue.empty()
    assert b.join(10)
    a.execute("exit").result(30)
    first.wait(ev.Bye)
    assert a.join(10)
    assert first.threads == {"chordchat-core"} and second.threads == {"chordchat-core"}
    assert a.shutdown().done()  # a second shutdown is harmless


def test_runtime__port_in_use_and_bad_nick_are_startup_errors():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = Runtime(options("ann", port=port), Collector().post)
        with pytest.raises(StartupError) as e:
            r.start().result(20)
        assert f"127.0.0.1:{port}" in e.value.message and e.value.code == 2
        r.shutdown().result(10)
    r = Runtime(options("9x"), Collector().post)
    with pytest.raises(StartupError, match="invalid nick"):
        r.start().result(20)
    r.shutdown().result(10)


def test_core__never_imports_urwid_or_tui():
    code = ("import sys; sys.modules['urwid'] = None; import core.runtime, core.headless, "
            "core.chat.service; assert not any(m == 'tui' or m.startswith('tui.') "
            "for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
