"""The TCP transport's failure detector: a silent peer is given up on, a slow one is not."""

from __future__ import annotations

import asyncio

import pytest

from core.chord import Address, Local, PeerUnreachable
from core.chord.tcp import TcpTransport


async def silent_server() -> tuple[asyncio.Server, Address]:
    """Accepts connections and reads, never answers: a frozen process, as TCP sees it."""
    async def silent(reader, writer):
        await reader.read()
    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    return server, Address("127.0.0.1", server.sockets[0].getsockname()[1])


class TestFailureDetector:
    async def test_call__to_a_silent_peer_fails_as_silent_long_before_its_timeout(self):
        server, address = await silent_server()
        transport = TcpTransport(timeout=60.0, silent_after=0.05)
        try:
            with pytest.raises(PeerUnreachable, match="silent"):
                await asyncio.wait_for(transport.call(address, "ping", {}), 30)
            assert transport.is_suspected(address)
        finally:
            server.close()
            await transport.close()

    async def test_call__a_slow_handler_on_a_live_peer_is_waited_for(self):
        node = Local(Address("127.0.0.1", 0))
        await node.start()

        async def slow(payload):
            await asyncio.sleep(0.3)   # six silent periods of the caller's detector
            return payload

        node.register_command("slow", slow)
        transport = TcpTransport(timeout=30.0, silent_after=0.05)
        try:
            reply = await transport.call(node.address, "user",
                                         {"type": "slow", "payload": "done"})
            assert reply == "done"
            assert not transport.is_suspected(node.address)
        finally:
            await transport.close()
            await node.stop()
