"""A real IRC client (the ``irc`` package's asyncio client) for the gateway's tests, and
everything the server sent it; a ring of in-process nodes, each with a gateway (``ring``).
Importing this skips the importing test module when the ``irc`` package is not installed."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import pytest

from core import events as ev
from core.chat.service import ChatService
from core.chord import Address, Local
from core.chord.testing import FAST, converged, stop_all, wait_until
from core.irc import IrcGateway
from core.irc.message import parse

irc_client_aio = pytest.importorskip("irc.client_aio")


class Client:
    """A real IRC client and everything the server sent it (raw lines and library events)."""

    def __init__(self) -> None:
        self.reactor = irc_client_aio.AioReactor(loop=asyncio.get_running_loop())
        self.reactor.add_global_handler("all_events", self._on, -20)
        self.lines: list[str] = []
        self.events: list = []
        self.conn = None

    def _on(self, conn, event) -> None:
        if event.type == "all_raw_messages":
            self.lines.append(event.arguments[0])
        else:
            self.events.append(event)

    async def connect(self, box, nick: str, password: str | None = None) -> Client:
        """Connect to ``box.gateway.address`` (a node serving IRC) and register as ``nick``."""
        host, port = box.gateway.address
        self.conn = await self.reactor.server().connect(host, port, nick, password=password,
                                                        username=nick.lower(), ircname=nick)
        return self

    def of(self, type_: str, **fields) -> list:
        def match(e) -> bool:
            return all((str(e.source.nick) if k == "nick" else getattr(e, k)) == v
                       for k, v in fields.items() if k != "text") and (
                "text" not in fields or (e.arguments and e.arguments[-1] == fields["text"]))
        return [e for e in self.events if e.type == type_ and match(e)]

    async def wait(self, type_: str, timeout: float = 30.0, **fields):
        await wait_until(lambda: self.of(type_, **fields), timeout,
                         what=f"{type_} {fields} (got {self.lines[-5:]})")
        return self.of(type_, **fields)[-1]

    def numerics(self) -> list[str]:
        return [parse(line).command for line in self.lines]

    async def wait_line(self, command: str, since: int = 0, timeout: float = 30.0):
        """The first line with ``command`` after line ``since``, parsed."""
        def found():
            return [m for m in map(parse, self.lines[since:]) if m.command == command]
        await wait_until(lambda: found(), timeout,
                         what=f"{command} (got {self.lines[since:][-5:]})")
        return found()[0]

    def raw(self, data: bytes) -> int:
        """Write bytes as they are (past the library's checks); returns the line count so far."""
        mark = len(self.lines)
        self.conn.transport.write(data)
        return mark

    def close(self) -> None:
        if self.conn is not None and self.conn.connected:
            self.conn.transport.close()


@dataclass
class Node:
    """A node with its chat service and its IRC gateway, and the node-wide events."""
    node: Local
    service: ChatService
    gateway: IrcGateway | None = None
    events: list = field(default_factory=list)

    def post(self, event: ev.Event) -> None:
        self.events.append(event)
        if self.gateway is not None:
            self.gateway.node_event(event)


async def start(bootstrap: Node | None = None, password: str | None = None) -> Node:
    node = Local(Address("127.0.0.1", 0), bootstrap.node.address if bootstrap else None, **FAST)
    box = Node(node, None)  # type: ignore[arg-type]
    box.service = ChatService(node, box.post)
    await node.start()
    await box.service.start()
    box.gateway = IrcGateway(box.service, "127.0.0.1", 0, password=password)
    await box.gateway.start()
    return box


@contextlib.asynccontextmanager
async def ring(n: int = 2, password: str | None = None):
    nodes: list[Node] = []
    clients: list[Client] = []
    try:
        for _ in range(n):
            nodes.append(await start(nodes[0] if nodes else None, password))
        await wait_until(lambda: converged([b.node for b in nodes]), what="the ring")
        yield nodes, clients
    finally:
        for c in clients:
            c.close()
        for b in nodes:
            if b.gateway is not None:
                await b.gateway.stop(quit_users=False)
            await b.service.stop()
        await stop_all([b.node for b in nodes])
