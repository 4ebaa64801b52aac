"""A user's lanes: commands to one destination in the order given, others alongside."""

from __future__ import annotations

import asyncio

from core.chat.users.lanes import Lanes
from core.chord.testing import wait_until


def test_lanes__one_destination_in_order_others_alongside():
    """Pure logic: a slow first command to #a holds up the later ones to #a, in order, and
    nothing to #b or without a destination."""
    async def scenario() -> list[str]:
        lanes, done, slow = Lanes(), [], asyncio.Event()

        async def command(destination: str | None, label: str, wait: bool = False) -> None:
            async with lanes.turn(destination):
                if wait:
                    await slow.wait()
                # a2 is slower than a3: only the lane keeps them in order (not a wait)
                await asyncio.sleep(0.01 * (label == "a2"))
                done.append(label)

        tasks = [asyncio.create_task(command("#a", "a1", wait=True)),
                 asyncio.create_task(command("#a", "a2")),
                 asyncio.create_task(command("#a", "a3")),
                 asyncio.create_task(command("#b", "b1")),
                 asyncio.create_task(command(None, "status"))]
        await wait_until(lambda: len(done) >= 2, timeout=10, what="two commands done")
        assert sorted(done) == ["b1", "status"] and len(lanes) == 1
        slow.set()
        async with asyncio.timeout(10):
            await asyncio.gather(*tasks)
        assert len(lanes) == 0
        return done

    assert asyncio.run(scenario())[2:] == ["a1", "a2", "a3"]


def test_lanes__a_place_is_taken_when_asked_not_when_awaited():
    """A command may do something quick (commit a line) between taking its place and
    waiting for it; one cancelled while waiting still keeps the ones after it waiting."""
    async def scenario() -> list[str]:
        lanes, done, waiting = Lanes(), [], []
        first = lanes.turn("#a")
        second = lanes.turn("#a")
        third = lanes.turn("#a")

        async def run(turn, label):
            waiting.append(label)       # and, with no await in between, waits for its turn
            async with turn:
                done.append(label)

        async with first:
            late = asyncio.create_task(run(third, "third"))
            cancelled = asyncio.create_task(run(second, "second"))
            await wait_until(lambda: len(waiting) == 2, timeout=10, what="both waiting")
            cancelled.cancel()
            await wait_until(cancelled.done, timeout=10, what="the cancellation")
            # the first turn is held a while longer, so that a lane that let "third" in
            # early would show it here (not a wait)
            await asyncio.sleep(0.01)
            assert done == []
            done.append("first")
        async with asyncio.timeout(10):
            await late
        return done

    assert asyncio.run(scenario()) == ["first", "third"]
