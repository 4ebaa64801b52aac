"""The core → UI bridge on a real MainLoop: a burst posted from another thread while the
UI thread is busy arrives whole and in order, and a failing handler stops nothing."""

from __future__ import annotations

import fcntl
import os
import struct
import termios
import threading
import time

import pytest
import urwid

from core import events as ev
from tests.tui.doubles import RecordingRuntime
from tui.app import ChatApp
from tui.bridge import FromCore

BURST = 1000


@pytest.fixture
def terminal(monkeypatch):
    """A real pseudo-terminal of 80x24 for urwid's raw screen; its output is read and dropped."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    stop = threading.Event()

    def drain():  # a pty whose output nobody reads would block urwid's writes
        while not stop.is_set():
            try:
                if not os.read(master, 65536):
                    return
            except OSError:
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    term_in = open(slave, "rb", buffering=0, closefd=False)
    term_out = open(slave, "w", closefd=False)
    monkeypatch.setenv("TERM", "xterm")
    yield urwid.display.raw.Screen(input=term_in, output=term_out)
    stop.set()
    term_out.close()
    term_in.close()
    os.close(slave)  # the reader then sees the end of the terminal and stops
    reader.join(timeout=5)
    os.close(master)


@pytest.fixture(autouse=True)
def wake_pipes(monkeypatch):
    """Closes the wake-up pipe of every MainLoop the test made, once it is done (the app
    never closes its own: its main loop ends with the process)."""
    opened = []
    watch_pipe = urwid.MainLoop.watch_pipe

    def watching(loop, callback):
        fd = watch_pipe(loop, callback)
        opened.append((loop, fd))
        return fd

    monkeypatch.setattr(urwid.MainLoop, "watch_pipe", watching)
    yield
    for loop, fd in opened:
        loop.remove_watch_pipe(fd)
        os.close(fd)


def run_until(loop, condition, timeout=30.0):
    """Run ``loop`` until ``condition()`` holds (checked every 20 ms) or the deadline passes."""
    deadline = time.monotonic() + timeout

    def check(_loop, _data):
        if condition() or time.monotonic() > deadline:
            raise urwid.ExitMainLoop
        loop.set_alarm_in(0.02, check)

    loop.set_alarm_in(0, check)
    loop.run()


class TestFromCore:
    def test_bridge__a_burst_from_another_thread_while_the_ui_is_busy_arrives_whole(
            self, terminal):
        app = ChatApp(RecordingRuntime(), "alice", bell=False)
        app.handle(ev.Joined("general", ()))
        loop = app.create(screen=terminal)
        wakeups = []
        drain = app.bridge.drain
        app.bridge.drain = lambda: wakeups.append(drain())  # count the wake-ups
        ui_busy, half_posted = threading.Event(), threading.Event()

        def busy(_loop, _data):
            # the UI thread is stuck in work of its own while the core posts
            ui_busy.set()
            half_posted.wait(timeout=20)

        def core():
            ui_busy.wait(timeout=20)
            for i in range(BURST):
                app.bridge.post(ev.ChannelMessage("general", "bob", f"n{i}", f"id{i}"))
                if i == BURST // 2:
                    half_posted.set()

        loop.set_alarm_in(0, busy)
        poster = threading.Thread(target=core, name="core")
        poster.start()
        messages = app.conversation_view.messages("#general")
        run_until(loop, lambda: len(messages.texts()) >= BURST + 1)
        poster.join(timeout=10)
        got = [t.split("<bob> ", 1)[1] for t in messages.texts() if "<bob>" in t]
        assert got == [f"n{i}" for i in range(BURST)]
        print(f"{BURST} events in {len(wakeups)} wake-ups")
        assert sum(wakeups) == BURST
        assert len(wakeups) < BURST  # wake-ups were coalesced, not one per event

    def test_bridge__a_failing_handler_does_not_stop_the_others_or_the_loop(self, terminal):
        seen = []

        def handle(event):
            if event == "bad":
                raise ValueError("boom")
            seen.append(event)

        bridge = FromCore(handle)
        loop = urwid.MainLoop(urwid.SolidFill("x"), screen=terminal)
        bridge.attach(loop)
        threading.Thread(target=lambda: [bridge.post(e) for e in ("a", "bad", "b")]).start()
        run_until(loop, lambda: len(seen) == 2, timeout=10)
        bridge.post("c")
        run_until(loop, lambda: len(seen) == 3, timeout=10)
        assert seen == ["a", "b", "c"]

    def test_bridge__events_posted_before_the_loop_exists_are_delivered(self, terminal):
        seen = []
        bridge = FromCore(seen.append)
        bridge.post(1)
        bridge.post(2)
        loop = urwid.MainLoop(urwid.SolidFill("x"), screen=terminal)
        bridge.attach(loop)
        run_until(loop, lambda: len(seen) == 2, timeout=10)
        assert seen == [1, 2]
