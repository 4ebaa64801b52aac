"""How often a peer's ``merge`` may make this node dial an address it was only told of.

A ``merge`` request names a candidate node of another ring; the walk's first step toward
it is one small ``state`` call (does it answer as a ring node?), and only an answer leads
to more (``notify``, ``merge``). So one request costs the named address at most one
request, no larger than the one that caused it; this gate bounds how many such dials
strangers can cause: one walk per candidate per ``QUIET`` seconds, ``RATE`` walks a second
in all (``BURST`` at once). The node's own probes start walks without passing here.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from .address import Address

QUIET = 5.0
RATE = 20.0
BURST = 100.0
REMEMBERED = 4096


class MergeGate:
    """Passes a peer's merge request on to ``start(candidate, steps)`` within the limits."""

    def __init__(self, start: Callable[[Address, int], None],
                 clock: Callable[[], float]) -> None:
        self._start = start
        self._clock = clock
        self._tokens = BURST
        self._at: float | None = None
        self._recent: collections.OrderedDict[Address, float] = collections.OrderedDict()
        self.dropped = 0

    def __call__(self, candidate: Address, steps: int = 0) -> None:
        now = self._clock()
        if self._at is not None:
            self._tokens = min(BURST, self._tokens + (now - self._at) * RATE)
        self._at = now
        last = self._recent.get(candidate)
        if (last is not None and now - last < QUIET) or self._tokens < 1:
            self.dropped += 1
            return
        self._tokens -= 1
        self._recent[candidate] = now
        self._recent.move_to_end(candidate)
        while len(self._recent) > REMEMBERED:
            self._recent.popitem(last=False)
        self._start(candidate, steps)
