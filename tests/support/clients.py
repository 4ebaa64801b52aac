"""Chat nodes on loopback TCP in this process, full members and client nodes (core/chord/
client.py): real sockets, real timers, each node's events kept."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from core import events as ev
from core.chat.service import ChatService
from core.chat.users.user import LocalUser
from core.chord import Address, Local
from core.chord.client import ClientSettings
from core.chord.relay import RelayLimits
from core.chord.testing import FAST
from core.datadir import DataDir

CHORD = dict(stabilize_interval=0.1, fix_fingers_interval=0.3, check_predecessor_interval=0.2,
             timeout=1.0)
CHAT = dict(maintenance_interval=0.3, retry_for=15.0, prune_grace=3.0)


@dataclass(eq=False)
class Node:
    node: Local
    service: ChatService
    user: LocalUser | None = None
    events: list = field(default_factory=list)

    @property
    def nick(self) -> str:
        return self.user.nick

    def of(self, cls, **fields) -> list:
        return [e for e in self.events if isinstance(e, cls)
                and all(getattr(e, k) == v for k, v in fields.items())]

    def texts(self, channel: str) -> list[str]:
        return [e.text for e in self.of(ev.ChannelMessage, channel=channel)]

    def private(self, from_: str) -> list[str]:
        return [e.text for e in self.of(ev.PrivateMessage, from_=from_)
                if e.to == self.nick]


class LoopRing:
    """Full members and client nodes of one ring on 127.0.0.1."""

    def __init__(self, relay: RelayLimits | None = None, **chat) -> None:
        self.relay = relay or RelayLimits()
        self.chat = {**CHAT, **chat}
        self.nodes: list[Node] = []
        self._data = tempfile.TemporaryDirectory(prefix="loopring-")

    @property
    def full(self) -> list[Node]:
        return [n for n in self.nodes if n.node.client is None and n.node.running]

    @property
    def clients(self) -> list[Node]:
        return [n for n in self.nodes if n.node.client is not None and n.node.running]

    async def add(self, nick: str, client: ClientSettings | None = None,
                  via: Node | None = None, data: str | None = None) -> Node:
        """Start a node serving ``nick``: a full member, or a client with ``client``."""
        bootstrap = (via or (self.full[0] if self.full else None))
        node = Local(Address("127.0.0.1", 0), bootstrap.node.address if bootstrap else None,
                     client=client, relay=None if client else self.relay, **CHORD)
        events: list = []
        data_dir = DataDir(Path(self._data.name) / (data or f"node-{len(self.nodes)}"))
        service = ChatService(node, events.append, data_dir=data_dir, **self.chat)
        n = Node(node, service, events=events)
        self.nodes.append(n)
        await node.start()
        await service.start()
        n.user = await service.add_user(nick, events.append)
        return n

    async def stop(self, n: Node, gracefully: bool = False) -> None:
        if gracefully:
            await n.service.exit()
        else:
            await n.service.stop()
            await n.node.stop()
            if n.user is not None:
                n.user.keys.release()

    async def close(self) -> None:
        for n in self.nodes:
            with contextlib.suppress(Exception):
                await n.service.stop()
            with contextlib.suppress(Exception):
                await n.node.stop()
            if n.user is not None:
                n.user.keys.release()
        self._data.cleanup()


async def start_chat_node(data: Path, nick: str, bootstrap: Address | None,
                          **chat) -> tuple[Local, ChatService, list]:
    """A full member on 127.0.0.1 with the ``FAST`` timers, serving ``nick`` from the data
    directory ``data / nick``: the node, its service and the list of what both post."""
    node = Local(Address("127.0.0.1", 0), bootstrap, **FAST)
    events: list = []
    service = ChatService(node, events.append, data_dir=DataDir(data / nick), **chat)
    await node.start()
    await service.start()
    await service.add_user(nick, events.append)
    return node, service, events


async def stop_chat_node(node: Local, service: ChatService) -> None:
    """A test's clean-up: stop ``service`` and ``node`` (a failure of either is ignored)
    and let go of the locks on its users' keys."""
    with contextlib.suppress(Exception):
        await service.stop()
    with contextlib.suppress(Exception):
        await node.stop()
    for user in service.users.values():
        user.keys.release()


@contextlib.asynccontextmanager
async def loop_ring(**settings):
    ring = LoopRing(**settings)
    try:
        yield ring
    finally:
        await ring.close()
