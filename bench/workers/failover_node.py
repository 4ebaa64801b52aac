"""One chat node in its own process, for the failover benchmark (run by bench.failover).

``python -m bench.workers.failover_node BOOTSTRAP|- NICK``; default settings. Orders on stdin, one
JSON object per line, each answered with one line on stdout:
``{"join": CH}``; ``{"send": CH, "every": S}`` (a send every S seconds, each its own
task, text "SEQ TIME"); ``{"stop": CH}`` (stop sending, wait for the sends in flight,
answer with the acknowledged seqs); ``{"report": CH}`` (what arrived: [seq, time] each);
``{"suspects": true}`` (every peer this node's transport suspected, with the time).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from core import events as ev
from core import loops
from core.chat.service import ChatService
from core.chord import Address, Local, hex_id


class Node:
    def __init__(self, bootstrap: Address | None, nick: str) -> None:
        self.node = Local(Address("127.0.0.1", 0), bootstrap)
        self.service = ChatService(self.node, lambda e: None)
        self.nick = nick
        self.received: dict[str, list] = {}
        self.sending: dict[str, asyncio.Task] = {}
        self.acked: dict[str, list[int]] = {}
        self.flight: set[asyncio.Task] = set()
        self.suspected: list = []
        # recorded, for "no live node declared dead"
        self.node.transport.suspicion.add_listener(
            lambda address: self.suspected.append([str(address), time.time()]))
        self.events: list = []
        self.node.add_listener(lambda kind, detail: self.events.append(
            [time.time(), kind, {k: v for k, v in detail.items() if k in ("old", "new")}]))

    def post(self, event: ev.Event) -> None:
        if isinstance(event, ev.ChannelMessage) and not event.history:
            seq = event.text.split(" ", 1)[0]
            if seq.isdigit():
                self.received.setdefault(event.channel, []).append([int(seq), time.time()])

    async def start(self) -> None:
        await self.node.start()
        await self.service.start()
        self.user = await self.service.add_user(self.nick, self.post)

    async def _send_every(self, channel: str, every: float) -> None:
        seq = 0
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            seq += 1
            task = asyncio.ensure_future(self._send(channel, seq))
            self.flight.add(task)
            task.add_done_callback(self.flight.discard)
            next_at += every
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def _send(self, channel: str, seq: int) -> None:
        try:
            await self.user.send(channel, f"{seq} {time.time()}")
        except Exception:
            return
        self.acked.setdefault(channel, []).append(seq)

    async def order(self, o: dict) -> dict:
        if "join" in o:
            await self.user.join(o["join"])
            return {"joined": o["join"]}
        if "send" in o:
            self.sending[o["send"]] = asyncio.ensure_future(self._send_every(o["send"],
                                                                             o["every"]))
            return {"sending": o["send"]}
        if "stop" in o:
            task = self.sending.pop(o["stop"], None)
            if task is not None:
                task.cancel()
            if self.flight:
                await asyncio.wait(list(self.flight), timeout=30)
            return {"acked": sorted(self.acked.get(o["stop"], []))}
        if "report" in o:
            return {"received": self.received.get(o["report"], [])}
        if "suspects" in o:
            return {"suspected": self.suspected}
        if "events" in o:
            return {"events": self.events, "address": str(self.node.address)}
        return {"error": f"unknown order {o}"}


async def main(bootstrap: str, nick: str) -> None:
    node = Node(None if bootstrap == "-" else Address.parse(bootstrap), nick)
    await node.start()
    print(json.dumps({"ready": str(node.node.address), "id": hex_id(node.node.id)}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        print(json.dumps(await node.order(json.loads(line))), flush=True)
    await node.service.stop()
    await node.node.stop()


if __name__ == "__main__":
    loops.run(main(sys.argv[1], sys.argv[2]))
