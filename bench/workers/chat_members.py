"""A benchmark worker process: a few chat nodes that join one channel and time deliveries.

Run by bench.chat, not by hand:
``python -m bench.workers.chat_members BOOTSTRAP COUNT CHANNEL TAG``.
Protocol on stdin/stdout, one JSON object per line: it prints ``{"ready": [...]}`` once
its members have joined; then for each ``{"phase": P, "count": C}`` it reads, it answers
``{"phase": P, "armed": true}`` and later ``{"phase": P, "latencies": [...], "last": t}``
once every one of its members has received C messages of that phase (texts carry the
send time, ``P <time.time()> ...``). End of stdin stops the nodes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from core import events as ev
from core import loops
from core.chat.service import ChatService
from core.chord import Address, Local

from ..chat_shared import sample_entry, sent_at
from ..settings import CHAT_CHORD, CHAT_SERVICE


class Member:
    def __init__(self, tag: str, index: int, bootstrap: Address) -> None:
        self.node = Local(Address("127.0.0.1", 0), bootstrap, **CHAT_CHORD)
        self.nick = f"{tag}m{index}"
        self.service = ChatService(self.node, lambda e: None, **CHAT_SERVICE)
        self.phase: str | None = None
        self.latencies: list[float] = []
        self.last = 0.0
        self.verify: object = None   # a signed entry to check per delivery, or None

    def post(self, event: ev.Event) -> None:
        if isinstance(event, ev.ChannelMessage) and not event.history and self.phase:
            now = time.time()
            sent = sent_at(event.text, self.phase)
            if sent is not None:
                if self.verify is not None and not self.verify.valid():
                    raise RuntimeError("a good signature did not verify")
                self.latencies.append(now - sent)
                self.last = now


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main(bootstrap: str, count: int, channel: str, tag: str) -> None:
    address = Address.parse(bootstrap)
    members = []
    for i in range(count):
        member = Member(tag, i, address)
        await member.node.start()
        await member.service.start()
        user = await member.service.add_user(member.nick, member.post)
        await user.join(channel)
        members.append(member)
    emit({"ready": [str(m.node.address) for m in members]})
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            order = json.loads(line)
            phase, expect = order["phase"], int(order["count"])
            signed = sample_entry() if order.get("verify") else None
            for m in members:
                m.phase, m.latencies, m.last, m.verify = phase, [], 0.0, signed
            emit({"phase": phase, "armed": True})
            while any(len(m.latencies) < expect for m in members):
                await asyncio.sleep(0.01)
            emit({"phase": phase, "latencies": [x for m in members for x in m.latencies],
                  "last": max(m.last for m in members)})
    finally:
        for m in members:
            await m.service.stop()
            await m.node.stop()


if __name__ == "__main__":
    loops.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))
