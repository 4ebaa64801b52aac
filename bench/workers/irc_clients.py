"""A benchmark worker process: K IRC clients of one gateway in one channel (run by bench.irc).

``python -m bench.workers.irc_clients HOST:PORT K CHANNEL``: the clients register and join
``#CHANNEL``, it prints ``{"ready": K}``; at the first line on stdin it prints the latencies
of every bench message the clients received, ``{"latencies": [...]}``, and ends.
"""

from __future__ import annotations

import asyncio
import json
import sys

from ..irc import RawClient, latency_of
from ..settings import IRC_MAX_CLIENTS


async def worker(address: str, k: int, channel: str) -> None:
    """K clients in one channel; prints ready, then the latencies when told 'done'."""
    host, _, port = address.rpartition(":")
    clients = [RawClient(f"{channel}c{i}") for i in range(k)]
    await asyncio.gather(*(c.connect(host, int(port)) for c in clients))
    await asyncio.gather(*(c.join(f"#{channel}") for c in clients))
    latencies: list[float] = []
    def on_text(text: str) -> None:
        if text.startswith("b "):
            latencies.append(latency_of(text))

    readers = [asyncio.create_task(c.messages(on_text)) for c in clients]
    print(json.dumps({"ready": k}), flush=True)
    stdin = asyncio.StreamReader()   # read on the loop: no thread beside the clients
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await stdin.readline()
    print(json.dumps({"latencies": latencies}), flush=True)
    for c in clients:
        c.close()
    for r in readers:
        r.cancel()


if __name__ == "__main__":
    asyncio.run(worker(sys.argv[1], min(int(sys.argv[2]), IRC_MAX_CLIENTS), sys.argv[3]))
