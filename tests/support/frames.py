"""A hostile peer's frames: one ``user`` request over a fresh TCP connection from a host
of the attacker's choosing (127.0.0.2 on loopback, where every node of a test ring is on
127.0.0.1), past every check a node of the ring would make before sending."""

from __future__ import annotations

import asyncio
import itertools
import struct

from core.chord import wire

ATTACKER = "127.0.0.2"
_ids = itertools.count(1)


async def frame_from(host: str, to, user_type: str, payload: dict) -> object:
    """One ``user`` request over a fresh connection from ``host``; its result."""
    reader, writer = await asyncio.open_connection(to.host, to.port, local_addr=(host, 0))
    try:
        rid = next(_ids)
        writer.write(wire.encode({"id": rid, "method": "user",
                                  "args": {"type": user_type, "payload": payload}}))
        await writer.drain()
        async with asyncio.timeout(5):
            (length,) = struct.unpack(">I", await reader.readexactly(4))
            reply = wire.decode_body(await reader.readexactly(length))
        assert reply["id"] == rid, reply
        return reply.get("result", reply)
    finally:
        writer.close()
