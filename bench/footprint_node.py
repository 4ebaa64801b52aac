"""A node maintaining many channels, in its own process, for its memory (bench.footprint).

``python -m bench.footprint_node CHANNELS MEMBERS MESSAGES [STEPS...]``: one chat node
alone in its ring maintains CHANNELS channels of MEMBERS members and MESSAGES messages
each, built through the chat's own handlers (join, send); the members are nicks at one
sink address in this process that acknowledges every delivery, so the feeds run as
they would. After each step (a channel count) it prints the RSS as one JSON line.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys

from core import loops
from core.chat.service import ChatService
from core.chord import Address, Local, TcpTransport


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def main(channels: int, members: int, messages: int, steps: list[int]) -> None:
    sink = TcpTransport()

    async def acknowledge(method: str, args: dict) -> object:
        return {"member": True, "last_seq": 0}

    sink_address = await sink.listen(Address("127.0.0.1", 0), acknowledge)
    node = Local(Address("127.0.0.1", 0))
    service = ChatService(node, lambda e: None)
    await node.start()
    await service.start()
    gc.collect()
    print(json.dumps({"channels": 0, "rss": rss_bytes()}), flush=True)
    made = 0
    for step in steps + [channels]:
        while made < min(step, channels):
            name = f"fp-{made}"
            for m in range(members):
                await service.channels.rpc_join({"channel": name, "nick": f"m{m}",
                                                 "address": str(sink_address)})
            for i in range(messages):
                await service.channels.rpc_send({"channel": name, "nick": f"m{i % members}",
                                                 "msg_id": f"{made:06d}-{i:04d}-" + "0" * 16,
                                                 "text": f"message {i} " + "x" * 60})
                await asyncio.sleep(0)   # messages arrive over time: the feeds keep up
            made += 1
        while any(len(service.holdings.deliverable(f"fp-{c}", (f"m{m}", str(sink_address))))
                  for c in range(0, made, max(1, made // 20)) for m in range(members)):
            await asyncio.sleep(0.05)   # the feeds have delivered (a sample of them)
        gc.collect()
        print(json.dumps({"channels": made, "rss": rss_bytes(),
                          "feeds": len(service.feeds._feeds)}), flush=True)
        if made >= channels:
            break
    await service.stop()
    await node.stop()
    await sink.close()


if __name__ == "__main__":
    loops.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                     [int(x) for x in sys.argv[4:]]))
