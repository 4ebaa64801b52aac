"""Client nodes on loopback TCP (core/chord/client.py, relay.py): real nodes, real sockets.

Three full members and two client nodes, which never listen (they only dial out): private
messages between every pair, one channel of all, mail for a client that is away, a relay
killed while the channel is busy, a client moving to another relay, and over every run:
no client in any full member's successor list, predecessor or fingers, none owning a key.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time

from core import events as ev
from core.chord.client import ClientSettings
from core.chord.relay import RelayedAddress
from core.chord.testing import wait_until
from tests.support.clients import LoopRing, Node, loop_ring


def _clients_outside_the_ring(ring: LoopRing) -> list[str]:
    """What is wrong: a client a full member routes to, or a client that owns a key."""
    problems = []
    client_ids = {n.node.client.client for n in ring.nodes if n.node.client is not None}
    for n in ring.full:
        known = [s.address for s in n.node.successors()] + [f.address for f in n.node.fingers()]
        predecessor = n.node.predecessor()
        if predecessor is not None:
            known.append(predecessor.address)
        for a in known:
            if isinstance(a, RelayedAddress) or a.id in {c.node.id for c in ring.clients}:
                problems.append(f"{n.node.address} routes to the client {a}")
    for c in ring.clients:
        if any(c.node.is_ours(k) for k in (0, c.node.id, 2**159, 2**160 - 1)):
            problems.append(f"the client {c.node.address} owns a key")
        if c.service.holdings.maintained.channels() or c.service.holdings.maintained.names():
            problems.append(f"the client {c.node.address} maintains something")
    assert len(client_ids) == len([n for n in ring.nodes if n.node.client is not None])
    return problems


@contextlib.asynccontextmanager
async def watched(ring: LoopRing):
    """Check the ring every 50 ms while the block runs; fail with what was wrong."""
    problems: list[str] = []

    async def watch() -> None:
        while True:
            problems.extend(_clients_outside_the_ring(ring))
            await asyncio.sleep(0.05)

    task = asyncio.create_task(watch())
    try:
        yield problems
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert not problems, problems[:5]


async def _start(ring: LoopRing, full=("ann", "bob", "cy"), clients=("xena", "yan")):
    fulls = [await ring.add(nick) for nick in full]
    await wait_until(lambda: all(len({s.address for s in n.node.successors()}) == len(fulls) - 1
                                 for n in fulls), 10, what="the full members' ring")
    return fulls, [await ring.add(nick, ClientSettings()) for nick in clients]


def _once_each(n: Node, channel: str, texts: list[str]) -> list[str]:
    """What is wrong with what ``n`` showed of ``texts`` in ``channel``."""
    counts = collections.Counter(n.texts(channel))
    return ([f"{n.nick} missed {t}" for t in texts if counts[t] == 0]
            + [f"{n.nick} showed {t} {c} times" for t, c in counts.items() if c > 1])


async def test_clients__private_messages_and_a_channel_between_every_pair():
    async with loop_ring() as ring:
        fulls, clients = await _start(ring)
        async with watched(ring):
            for c in clients:
                assert isinstance(c.node.address, RelayedAddress)
                assert c.user.record.address == str(c.node.address)
                assert c.node.reach.startswith("relayed via ")
            everyone = fulls + clients
            for a in everyone:
                for b in everyone:
                    if a is not b:
                        await a.user.msg(b.nick, f"{a.nick} to {b.nick}")
            for b in everyone:
                await wait_until(lambda b=b: all(b.private(a.nick) == [f"{a.nick} to {b.nick}"]
                                                 for a in everyone if a is not b),
                                 10, what=f"{b.nick}'s private messages")
            for n in everyone:
                await n.user.join("all")
            texts = []
            for i, n in enumerate(everyone * 3):
                await n.user.send("all", f"{n.nick} says {i}")
                texts.append(f"{n.nick} says {i}")
            others = {n.nick: [t for t in texts if not t.startswith(n.nick + " ")]
                      for n in everyone}
            await wait_until(lambda: all(set(others[n.nick]) <= set(n.texts("all"))
                                         for n in everyone), 10, what="every message")
            await asyncio.sleep(0.5)   # a repeat would come now
            assert [p for n in everyone for p in _once_each(n, "all", others[n.nick])] == []
            seen_from_full = await fulls[0].user.whois("xena")
            assert seen_from_full.reach == f"relayed via {clients[0].node.client.relay}"
            assert (await clients[0].user.whois("ann")).reach == "direct"


async def test_clients__mail_for_a_client_away_arrives_once_when_it_returns():
    async with loop_ring() as ring:
        (ann, *_), (xena,) = await _start(ring, clients=("xena",))
        async with watched(ring):
            await ann.user.msg("xena", "hello")          # pins xena's key at ann
            await wait_until(lambda: xena.private("ann") == ["hello"], 10)
            await xena.service.exit()                    # away: its record is withdrawn
            await ann.user.msg("xena", "while you were away")
            assert any("offline" in e.text for e in ann.of(ev.Info))
            back = await ring.add("xena", ClientSettings(), data="node-3")
            await wait_until(lambda: back.private("ann") == ["while you were away"], 10,
                             what="the letter")
            await asyncio.sleep(1.0)
            assert back.private("ann") == ["while you were away"]


async def test_clients__relay_killed_while_a_channel_is_busy():
    async with loop_ring() as ring:
        fulls, clients = await _start(ring)
        for n in ring.nodes:
            await n.user.join("busy")
        x = clients[0]
        relay = next(n for n in fulls if n.node.address == x.node.client.relay)
        senders = [n for n in ring.nodes if n is not relay]
        stopping = asyncio.Event()

        async def pace(n: Node) -> None:
            i = 0
            while not stopping.is_set():
                await n.user.send("busy", f"{n.nick}-{i}")
                i += 1
                await asyncio.sleep(0.05)

        async with watched(ring):
            tasks = [asyncio.create_task(pace(n)) for n in senders]
            await asyncio.sleep(1.0)
            old, started = x.node.address, time.monotonic()
            await ring.stop(relay)                     # abruptly: sockets closed, no goodbye
            await wait_until(lambda: x.user.moved_count >= 1, 5.0, what="the client moving")
            took = time.monotonic() - started
            assert x.node.address != old and x.node.client.relay != relay.node.address
            witness = next(n for n in fulls if n is not relay)
            assert (await witness.user.whois("xena")).address == str(x.node.address)
            await asyncio.sleep(1.5)
            stopping.set()
            await asyncio.gather(*tasks)
            acknowledged = [e.text for n in senders for e in n.of(ev.Sent, channel="busy")]
            assert len(acknowledged) > 40
            live = [n for n in ring.nodes if n is not relay]
            await wait_until(lambda: all(set(acknowledged) <= set(n.texts("busy"))
                                         for n in live),
                             20, what="every acknowledged message at every member")
            await asyncio.sleep(1.0)
            assert [p for n in live for p in _once_each(n, "busy", acknowledged)] == []
            # and private messages find it at its new relay
            await witness.user.msg("xena", "found you")
            await wait_until(lambda: "found you" in [e.text for e in x.of(ev.PrivateMessage)],
                             10)
        assert took < 5.0


async def test_clients__a_client_that_moves_keeps_its_channels_and_mail():
    async with loop_ring() as ring:
        fulls, (x,) = await _start(ring, clients=("xena",))
        for n in ring.nodes:
            await n.user.join("move")
        await fulls[0].user.msg("xena", "before")
        await wait_until(lambda: x.private("ann") == ["before"], 10)
        async with watched(ring):
            other = next(n for n in fulls if n.node.address != x.node.client.relay)
            old = x.node.address
            await x.node.client.switch(other.node.address)
            assert x.node.address != old and x.node.address.relay == other.node.address
            # a letter and messages sent while the new address is being registered
            await fulls[0].user.send("move", "during the move")
            await wait_until(lambda: x.user.moved_count == 1, 10, what="the move taken up")
            assert (await fulls[1].user.whois("xena")).address == str(x.node.address)
            await fulls[1].user.send("move", "after the move")
            await fulls[0].user.msg("xena", "after")
            await wait_until(lambda: {"during the move", "after the move"} <= set(x.texts("move"))
                             and x.private("ann") == ["before", "after"], 10)
            await x.user.send("move", "from the new place")
            await wait_until(lambda: all("from the new place" in n.texts("move") for n in fulls),
                             10)
            await asyncio.sleep(0.5)
            assert _once_each(x, "move", ["during the move", "after the move"]) == []
