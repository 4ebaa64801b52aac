"""Virtual time for asyncio: a loop whose clock jumps to the next timer when nothing is ready.

Stabilization rounds, latencies and timeouts then cost no wall time, so the simulator
(``core.chord.sim``) runs the real node code through hours of ring time in seconds.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0


class _VirtualSelector(selectors.DefaultSelector):
    """Polls the real selector without waiting; instead of sleeping, moves the clock on."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None):
        if timeout is None:  # nothing scheduled at all: only another thread can wake us
            return super().select(None)
        events = super().select(0)
        if not events and timeout > 0:
            self._clock.now += timeout
        return events


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on simulated time: sleeping and timeouts take no wall-clock time.

    Meant for the simulator only: real sockets would see their timeouts fire early.
    """

    def __init__(self) -> None:
        self._clock = _Clock()
        super().__init__(_VirtualSelector(self._clock))

    def time(self) -> float:
        return self._clock.now


def run(main: Coroutine[Any, Any, Any], virtual_time: bool = True) -> Any:
    """Run ``main`` to completion, on a ``VirtualClockLoop`` unless told otherwise."""
    factory = VirtualClockLoop if virtual_time else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
