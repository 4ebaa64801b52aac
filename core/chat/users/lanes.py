"""One queue per destination: a user's commands to one channel or one nick run one after the
other in the order given; commands to different destinations run at the same time, so a
message retried to a crashed node holds up nothing else.

A place in a lane is taken when ``turn`` is *called*, not when it is awaited, so a caller can
do something quick in between (commit the line to the outbox) without losing its place.
"""

from __future__ import annotations

import asyncio


class Turn:
    """A place in one lane: ``async with`` waits for the commands before it to finish."""

    def __init__(self, lanes: Lanes | None, destination: str | None,
                 before: asyncio.Future | None) -> None:
        self._lanes = lanes
        self._destination = destination
        self._before = before
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()

    async def __aenter__(self) -> Turn:
        if self._before is not None and not self._before.done():
            try:
                await asyncio.shield(self._before)
            except asyncio.CancelledError:
                # not run, but the commands after this one still wait for those before it
                self._before.add_done_callback(lambda _: self._finish())
                raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)
        if self._lanes is not None:
            self._lanes._finished(self._destination, self)


class Lanes:
    """The lanes of one user's commands, by destination (forgotten when empty)."""

    def __init__(self) -> None:
        self._last: dict[str, Turn] = {}

    def turn(self, destination: str | None) -> Turn:
        """Take the next place in ``destination``'s lane now (None: no order to keep)."""
        if destination is None:
            return Turn(None, None, None)
        last = self._last.get(destination)
        turn = Turn(self, destination, last.done if last is not None else None)
        self._last[destination] = turn
        return turn

    def _finished(self, destination: str | None, turn: Turn) -> None:
        if self._last.get(destination) is turn:   # nobody waits behind it: forget the lane
            del self._last[destination]

    def __len__(self) -> int:
        return len(self._last)
