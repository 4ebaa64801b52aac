"""A node's runtime (``core.runtime``) driven from a test: its options with fast ring timers
and a data directory of its own, a collector of the events it posts, and the first chat
between two runtimes."""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time

from core import events as ev
from core.chat.model.commands import parse
from core.chord import Address
from core.runtime import Options, Runtime

FAST_CHORD = dict(stabilize_interval=0.05, fix_fingers_interval=0.1,
                  check_predecessor_interval=0.1, timeout=1.0)


class Collector:
    """What a runtime posts (from its core thread), kept in order, and waits on it."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.events: list = []
        self.threads: set[str] = set()

    def post(self, event) -> None:
        self.threads.add(threading.current_thread().name)
        self.queue.put(event)

    def drain(self) -> list:
        """Take every event posted so far (all of them, once the core thread has ended)."""
        while not self.queue.empty():
            self.events.append(self.queue.get_nowait())
        return self.events

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


def bo_hears_ann(ann: Runtime, bo: Runtime, bo_events: Collector) -> None:
    """bo joins #lobby; ann's line there and her private message reach bo."""
    bo.execute(parse("join #lobby")).result(20)
    bo_events.wait(ev.Joined, channel="lobby")
    ann.execute(parse("send lobby hello")).result(20)
    bo_events.wait(ev.ChannelMessage, channel="lobby", text="hello")
    ann.execute(parse("msg bo hi bo")).result(20)
    bo_events.wait(ev.PrivateMessage, text="hi bo")


def options(nick: str, bootstrap: Address | None = None, port: int = 0) -> Options:
    """A node's options, with a data directory of its own (its user's key and pins)."""
    return Options(nick, Address("127.0.0.1", port), bootstrap, FAST_CHORD,
                   chat={"maintenance_interval": 0.2},
                   data_dir=tempfile.mkdtemp(prefix=f"{nick}-", dir=os.environ["XDG_DATA_HOME"]))
