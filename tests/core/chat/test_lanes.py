"""A user's lanes: commands to one destination in the order given, others alongside."""

from __future__ import annotations

import asyncio

from core.chat.lanes import Lanes


def test_lanes__one_destination_in_order_others_alongside():
    """Pure logic: a slow first command to #a holds up the later ones to #a, in order, and
    nothing to #b or without a destination."""
    async def scenario() -> list[str]:
        lanes, done, slow = Lanes(), [], asyncio.Event()

        async def command(destination: str | None, label: str, wait: bool = False) -> None:
            async with lanes.turn(destination):
                if wait:
                    await slow.wait()
                await asyncio.sleep(0.01 * (label == "a2"))  # a later one is quicker
                done.append(label)

        tasks = [asyncio.create_task(command("#a", "a1", wait=True)),
                 asyncio.create_task(command("#a", "a2")),
                 asyncio.create_task(command("#a", "a3")),
                 asyncio.create_task(command("#b", "b1")),
                 asyncio.create_task(command(None, "status"))]
        async with asyncio.timeout(10):
            while len(done) < 2:
                await asyncio.sleep(0.01)
        assert sorted(done) == ["b1", "status"] and len(lanes) == 1
        slow.set()
        await asyncio.gather(*tasks)
        assert len(lanes) == 0
        return done

    assert asyncio.run(scenario())[2:] == ["a1", "a2", "a3"]


def test_lanes__a_place_is_taken_when_asked_not_when_awaited():
    """A command may do something quick (commit a line) between taking its place and
    waiting for it; one cancelled while waiting still keeps the ones after it waiting."""
    async def scenario() -> list[str]:
        lanes, done = Lanes(), []
        first = lanes.turn("#a")
        second = lanes.turn("#a")
        third = lanes.turn("#a")

        async def run(turn, label):
            async with turn:
                done.append(label)

        async with first:
            late = asyncio.create_task(run(third, "third"))
            cancelled = asyncio.create_task(run(second, "second"))
            await asyncio.sleep(0.01)
            cancelled.cancel()
            await asyncio.sleep(0.01)
            assert done == []
            done.append("first")
        await late
        return done

    assert asyncio.run(scenario()) == ["first", "third"]
