"""The TCP transport leaves no failure for asyncio to print: a connect attempt whose every
caller gave up still has its exception retrieved (no "Task exception was never retrieved"
on a headless node's stdout after a partition heals)."""

import asyncio
import gc
import socket

from core.chord import Address
from core.chord.tcp import TcpTransport


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connect__a_failed_attempt_nobody_waits_for_is_never_reported_unretrieved():
    async def main() -> list[dict]:
        reported: list[dict] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, c: reported.append(c))
        transport = TcpTransport(timeout=2.0)
        address = Address("127.0.0.1", closed_port())
        for _ in range(5):
            caller = asyncio.create_task(transport.call(address, "ping", {}))
            await asyncio.sleep(0)      # the shared attempt is under way …
            caller.cancel()             # … and its only caller gives up
            await asyncio.gather(caller, return_exceptions=True)
        deadline = asyncio.get_running_loop().time() + 5
        while transport.is_connecting(address):   # the attempts end (refused)
            assert asyncio.get_running_loop().time() < deadline, "the attempt never ended"
            await asyncio.sleep(0.01)
        gc.collect()                    # an unretrieved exception is reported here
        await asyncio.sleep(0)
        await transport.close()
        return reported

    reported = asyncio.run(main())
    assert reported == [], [c.get("message") for c in reported]
