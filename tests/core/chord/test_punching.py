"""Hole punches between two client nodes on loopback TCP (core/chord/punching.py): real
nodes, a real relay, real sockets. Loopback has no router to open, so whether the
simultaneous open itself connects is not the point here (tests/net/test_holepunch.py and
tests/net/test_nat.py show it through real routers); what is: a busy responder puts a
punch off, and the initiator tries again instead of giving up for ``RETRY_AFTER``."""

from __future__ import annotations

import asyncio
import contextlib
import time

from core.chord import Address, Local
from core.chord.client import ClientSettings
from core.chord.holepunch import ATTEMPT_TIMEOUT
from core.chord.punching import BUSY_WAITS, CONCURRENT
from core.chord.relay import PUNCH, RelayLimits
from core.chord.testing import FAST, wait_until


@contextlib.asynccontextmanager
async def two_clients():
    relay = Local(Address("127.0.0.1", 0), relay=RelayLimits(), **FAST)
    await relay.start()
    relay.relay.types = frozenset({PUNCH})
    clients = []
    try:
        for _ in range(2):
            c = Local(Address("127.0.0.1", 0), relay.address,
                      client=ClientSettings(relays=(relay.address,)), **FAST)
            await c.start()
            clients.append(c)
        yield clients
    finally:
        for x in (*clients, relay):
            await x.stop()


def steps_seen(node: Local) -> list[str]:
    """Record the steps of every coordination message ``node`` is sent, and its answers."""
    seen: list[str] = []
    serve = node.punching.serve

    async def recording(d: object) -> dict:
        reply = await serve(d)
        seen.append(f"{d.get('step')}:{'busy' if reply.get('busy') else reply.get('ok')}")
        return reply

    node.register_command(PUNCH, recording)
    return seen


async def test_punch__a_responder_busy_at_connect_puts_it_off_and_it_runs_once_free():
    async with two_clients() as (a, b):
        seen = steps_seen(b)
        b.punching._running = CONCURRENT   # b runs as many punches as it may (say, to
        started = time.monotonic()          # peers behind randomising NATs)
        task = asyncio.ensure_future(a.punching.punch(b.address))
        await wait_until(lambda: a.punching.busy == 1, 5, what="the punch put off")
        assert seen == ["connect:busy"] and not task.done()
        b.punching._running = 0             # b's punches end
        await asyncio.wait_for(task, 10)
        # tried again after the first wait, and this time b took part (connect, sync)
        assert time.monotonic() - started >= BUSY_WAITS[0]
        assert seen[:3] == ["connect:busy", "connect:True", "sync:True"], seen
        assert a.punching.busy == 1 and a.punching.failed + a.punching.direct >= 1


async def test_punch__a_responder_busy_at_sync_stops_the_connects_at_once_and_again_later():
    async with two_clients() as (a, b):
        seen = steps_seen(b)
        serve = b._commands[PUNCH]

        async def busy_after_connect(d: object) -> dict:
            reply = await serve(d)
            if d.get("step") == "connect" and seen == ["connect:True"]:
                b.punching._running = CONCURRENT   # others' punches started meanwhile
            return reply

        b.register_command(PUNCH, busy_after_connect)
        started = time.monotonic()
        task = asyncio.ensure_future(a.punching.punch(b.address))
        await wait_until(lambda: a.punching.busy == 1, 5, what="the punch put off")
        assert seen == ["connect:True", "sync:busy"]
        assert time.monotonic() - started < ATTEMPT_TIMEOUT   # not after its TRIES connects
        b.punching._running = 0
        await asyncio.wait_for(task, 10)
        assert seen[2:4] == ["connect:True", "sync:True"], seen
        assert a.punching.busy == 1


async def test_punch__busy_every_time_gives_up_after_its_waits():
    async with two_clients() as (a, b):
        seen = steps_seen(b)
        b.punching._running = CONCURRENT
        started = time.monotonic()
        assert await asyncio.wait_for(a.punching.punch(b.address), 30) is False
        assert time.monotonic() - started >= sum(BUSY_WAITS)
        assert seen == ["connect:busy"] * (len(BUSY_WAITS) + 1)
        assert a.punching.failed == 1 and a.punching.busy == len(BUSY_WAITS)
