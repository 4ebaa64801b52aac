"""In-process chat nodes on real loopback sockets, for service tests (no subprocesses)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import dataclass, field

from core import events as ev
from core.chat.service import ChatService
from core.chord import Address, Local
from tests.ring import FAST, wait_until

CHAT_FAST = dict(maintenance_interval=0.2, retry_for=15.0, prune_grace=2.0)


@dataclass
class ChatNode:
    node: Local
    chat: ChatService
    events: list = field(default_factory=list)

    @property
    def nick(self) -> str:
        return self.chat.nick

    def of(self, cls, **fields) -> list:
        return [e for e in self.events if isinstance(e, cls)
                and all(getattr(e, k) == v for k, v in fields.items())]

    def texts(self, channel: str) -> list[str]:
        return [e.text for e in self.of(ev.ChannelMessage, channel=channel)]


async def start_chat(nick: str, bootstrap: ChatNode | None = None, port: int = 0,
                     **settings) -> ChatNode:
    node = Local(Address("127.0.0.1", port), bootstrap.node.address if bootstrap else None,
                 **FAST)
    events: list = []
    chat = ChatService(node, nick, events.append, **{**CHAT_FAST, **settings})
    await node.start()
    try:
        await chat.start()
    except Exception:
        await chat.depart()   # as the runtime does: a refused node hands on and leaves
        raise
    return ChatNode(node, chat, events)


async def start_chat_ring(nicks: list[str], **settings) -> list[ChatNode]:
    nodes = [await start_chat(nicks[0], **settings)]
    for nick in nicks[1:]:
        nodes.append(await start_chat(nick, nodes[len(nodes) // 2], **settings))
    return nodes


async def settle(nodes: list[ChatNode], timeout: float = 20.0) -> None:
    from tests.ring import converged
    await wait_until(lambda: converged([n.node for n in nodes if n.node.running]), timeout,
                     what="ring convergence")


async def stop_chat(nodes: list[ChatNode]) -> None:
    for n in nodes:
        with contextlib.suppress(Exception):
            await n.chat.stop()
        with contextlib.suppress(Exception):
            await n.node.stop()


def owner(nodes: list[ChatNode], key: int) -> ChatNode:
    live = sorted((n for n in nodes if n.node.running), key=lambda n: n.node.id)
    return next((n for n in live if n.node.id >= key), live[0])


def async_test(timeout: float = 120.0):
    """Run an ``async def`` test in a fresh event loop with an overall deadline."""
    def wrap(fn):
        @functools.wraps(fn)
        def runner(*args, **kwargs):
            return asyncio.run(asyncio.wait_for(fn(*args, **kwargs), timeout))
        return runner
    return wrap


def where(nodes: list[ChatNode], kind: str, name: str) -> str:
    """Who holds ``kind``/``name`` (maintained or as a replica), for failure messages."""
    lines = []
    for n in nodes:
        pred = n.node.predecessor()
        lines.append(f"{n.nick} {n.node.id:040x}"[:20] + f" pred {pred.address if pred else '-'}"
                     f" succ {n.node.successor().address}"
                     f" primary {n.chat.primary.get(kind, name)}"
                     f" replica {n.chat.replicas.get(kind, name)}")
    return "\n".join(lines)
