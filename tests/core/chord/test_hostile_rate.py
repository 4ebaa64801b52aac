"""A flood of ring verbs from one host (docs/security.md): each host has a bucket of ring
requests at every node (``protocol.RING_RATE``), relay commands another
(``RELAY_RATE``). The attacker pipelines real frames over its own connection from
127.0.0.2 to a node of a loopback ring (every node on 127.0.0.1); past its bucket it is
answered "busy" and no handler runs, while the ring stays converged and another host's
lookups are answered."""

from __future__ import annotations

import asyncio
import struct
import time

from core.chord import Address, wire
from core.chord.protocol import RELAY_RATE, RING_RATE
from core.chord.relay import FORWARD
from core.chord.testing import ring_problems, start_ring, stop_all, wait_converged


async def flood(host: str, to: Address, frames: list[tuple[str, dict]]) -> list[dict]:
    """Send every frame at once over one connection from ``host``; the replies."""
    reader, writer = await asyncio.open_connection(to.host, to.port, local_addr=(host, 0))
    try:
        for rid, (method, args) in enumerate(frames, 1):
            writer.write(wire.encode({"id": rid, "method": method, "args": args}))
        await writer.drain()
        replies = []
        async with asyncio.timeout(30):
            while len(replies) < len(frames):
                (length,) = struct.unpack(">I", await reader.readexactly(4))
                replies.append(wire.decode_body(await reader.readexactly(length)))
        return replies
    finally:
        writer.close()


def busy(replies: list[dict]) -> int:
    return sum("busy" in str(r.get("error", "")) for r in replies)


async def test_ring_verbs__a_flood_from_one_host_is_refused_and_the_ring_serves_others():
    nodes = await start_ring(6)
    try:
        await wait_converged(nodes)
        target = nodes[2]
        key = f"{nodes[4].id:x}"
        frames = [("ping", {}), ("state", {}), ("next_hop", {"key": key})] * 1000
        started = time.monotonic()
        replies = await flood("127.0.0.2", target.address, frames)
        took = time.monotonic() - started
        rate, burst = RING_RATE
        answered = len(replies) - busy(replies)
        assert answered <= burst + rate * took + 1, (answered, took)
        assert busy(replies) >= len(frames) - burst - rate * took - 1
        # another host is served meanwhile: a lookup step and a ping
        other = await flood("127.0.0.3", target.address, [("next_hop", {"key": key}),
                                                           ("ping", {})])
        assert busy(other) == 0 and all("result" in r for r in other), other
        # the relay's commands have their own bucket: the flooder's is not empty (this node
        # runs no relay: "no handler", but not "busy")
        reply = await flood("127.0.0.2", target.address, [("user", {
            "type": FORWARD, "payload": {"to": "f" * 32, "type": "x", "payload": {}}})])
        assert busy(reply) == 0 and "no handler" in reply[0]["error"], reply
        # ... and a flood of them is refused in turn
        n = int(RELAY_RATE[1]) + 500
        replies = await flood("127.0.0.2", target.address, [("user", {
            "type": FORWARD, "payload": {"to": "f" * 32, "type": "x", "payload": {}}})] * n)
        assert busy(replies) >= 500 - RELAY_RATE[0] * 2
        # the ring stayed one ring, and lookups through the target find the owner
        assert not ring_problems(nodes)
        owner, _ = await nodes[0].find_successor(nodes[4].id)
        assert owner.address == nodes[4].address
    finally:
        await stop_all(nodes)
