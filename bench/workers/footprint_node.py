"""A node maintaining many channels, in its own process, for its memory (bench.footprint).

``python -m bench.workers.footprint_node CHANNELS MEMBERS MESSAGES [STEPS...]``: one chat node
alone in its ring maintains CHANNELS channels of MEMBERS members and MESSAGES messages
each, built through the chat's own handlers (join, send) from entries the members sign,
as a maintainer receives them; the members are nicks at one sink address in this process
that acknowledges every delivery, so the feeds run as they would. After each step (a
channel count) it prints the RSS as one JSON line.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys

from core import loops
from core.chat.model.entries import sign_entry
from core.chat.model.identity import Identity
from core.chat.model.ids import channel_key
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
    people = [Identity.generate(f"m{m}") for m in range(members)]
    at = str(sink_address)

    def signed(name: str, kind: str, who: int, msg_id: str, text: str = "") -> dict:
        return {"key": f"{channel_key(name):x}",
                "entry": sign_entry(people[who], name, kind, msg_id, address=at,
                                    text=text).to_wire()}

    made = 0
    for step in steps + [channels]:
        while made < min(step, channels):
            name = f"fp-{made}"
            for m in range(members):
                reply = await service.channels.rpc_join(
                    signed(name, "join", m, f"{made:08x}{m:08x}" + "1" * 16))
                assert reply.get("ok"), reply
            for i in range(messages):
                reply = await service.channels.rpc_send(
                    signed(name, "msg", i % members, f"{made:08x}{i:08x}" + "0" * 16,
                           f"message {i} " + "x" * 60))
                assert reply.get("ok"), reply
                await asyncio.sleep(0)   # messages arrive over time: the feeds keep up
            made += 1
        while any(len(service.holdings.deliverable(f"fp-{c}", (f"m{m}", str(sink_address))))
                  for c in range(0, made, max(1, made // 20)) for m in range(members)):
            await asyncio.sleep(0.05)   # the feeds have delivered (a sample of them)
        gc.collect()
        print(json.dumps({"channels": made, "rss": rss_bytes(),
                          "feeds": service.feeds.count}), flush=True)
        if made >= channels:
            break
    await service.stop()
    await node.stop()
    await sink.close()


if __name__ == "__main__":
    loops.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                     [int(x) for x in sys.argv[4:]]))
