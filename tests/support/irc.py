"""A real IRC client (the ``irc`` package's asyncio client) for the gateway's tests, and
everything the server sent it; a ring of in-process nodes, each with a gateway (``ring``).
Importing this skips the importing test module when the ``irc`` package is not installed.

The library's asyncio client registers at once (NICK, USER) and knows no CAP: ``Client``
opens with ``CAP LS 302`` itself (through the library's ``connect_factory``, so it is the
first line on the wire, as a real client sends it), asks for the capabilities it was given
and logs in with SASL PLAIN when given a password, then ends with ``CAP END``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core import events as ev
from core.chat.service import ChatService
from core.chord import Address, Local
from core.chord.testing import FAST, converged, stop_all, wait_until
from core.datadir import DataDir
from core.irc import IrcGateway
from core.irc.message import parse

irc_client_aio = pytest.importorskip("irc.client_aio")
irc_connection = pytest.importorskip("irc.connection")


class Client:
    """A real IRC client and everything the server sent it (raw lines and library events)."""

    def __init__(self) -> None:
        self.reactor = irc_client_aio.AioReactor(loop=asyncio.get_running_loop())
        self.reactor.add_global_handler("all_events", self._on, -20)
        self.lines: list[str] = []
        self.events: list = []
        self.conn = None
        self.caps: set[str] = set()          # the capabilities the server acknowledged
        self.sasl: str | None = None         # "903" or "904": how the SASL login ended
        self._want: tuple[str, ...] = ()
        self._login: tuple[str, str] | None = None

    def _on(self, conn, event) -> None:
        if event.type == "all_raw_messages":
            self.lines.append(event.arguments[0])
            return
        self.events.append(event)
        if self._want or self._login:
            self._negotiate(event)

    def _negotiate(self, event) -> None:
        """CAP LS → CAP REQ → (AUTHENTICATE PLAIN → + → the login → 903/904) → CAP END."""
        sub = event.arguments[0] if event.type == "cap" and event.arguments else None
        if sub == "LS":
            offered = {c.split("=")[0] for c in event.arguments[-1].split()}
            wanted = [c for c in self._want if c in offered]
            if self._login and "sasl" in offered:
                wanted.append("sasl")
            if wanted:
                self.conn.cap("REQ", *wanted)
            else:
                self._end_negotiation()
        elif sub in ("ACK", "NAK"):
            if sub == "ACK":
                self.caps |= set(event.arguments[-1].split())
            if self._login and "sasl" in self.caps:
                self.conn.send_items("AUTHENTICATE", "PLAIN")
            else:
                self._end_negotiation()
        elif event.type == "authenticate" and event.target == "+" and self._login:
            account, password = self._login
            self.conn.send_items("AUTHENTICATE", base64.b64encode(
                f"\0{account}\0{password}".encode()).decode())
        elif event.type in ("saslsuccess", "saslfail"):
            self.sasl = "903" if event.type == "saslsuccess" else "904"
            self._end_negotiation()

    def _end_negotiation(self) -> None:
        self._want, self._login = (), None
        self.conn.cap("END")

    async def connect(self, box, nick: str, password: str | None = None,
                      caps: tuple[str, ...] = (), sasl: str | None = None,
                      account: str | None = None) -> Client:
        """Connect to ``box.gateway.address`` (a node serving IRC) and register as ``nick``;
        with ``caps`` (or ``sasl``, a password: a SASL PLAIN login as ``account``, by
        default the nick) after negotiating them first."""
        host, port = box.gateway.address
        factory = irc_connection.AioFactory()
        if caps or sasl is not None:
            self._want = tuple(caps)
            self._login = (account or nick, sasl) if sasl is not None else None

            async def opening_with_cap_ls(protocol, address):
                transport, protocol = await factory(protocol, address)
                transport.write(b"CAP LS 302\r\n")
                return transport, protocol
            connect_factory = opening_with_cap_ls
        else:
            connect_factory = factory
        self.conn = await self.reactor.server().connect(
            host, port, nick, password=password, username=nick.lower(), ircname=nick,
            connect_factory=connect_factory)
        return self

    def tags(self, event) -> dict[str, str]:
        """An event's IRCv3 message tags."""
        return {t["key"]: t["value"] for t in (event.tags or [])}

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


async def start(bootstrap: Node | None = None, password: str | None = None,
                data_dir: Path | None = None) -> Node:
    """A node with a gateway; with ``data_dir`` (its own folder) it offers SASL and history."""
    node = Local(Address("127.0.0.1", 0), bootstrap.node.address if bootstrap else None, **FAST)
    box = Node(node, None)  # type: ignore[arg-type]
    box.service = ChatService(node, box.post,
                              data_dir=DataDir(data_dir) if data_dir is not None else None)
    await node.start()
    await box.service.start()
    box.gateway = IrcGateway(box.service, "127.0.0.1", 0, password=password)
    await box.gateway.start()
    return box


@contextlib.asynccontextmanager
async def ring(n: int = 2, password: str | None = None, data_dir: Path | None = None):
    """``n`` nodes with gateways; with ``data_dir``, node i keeps its data in
    ``data_dir/node-i`` (SASL logins and their history)."""
    nodes: list[Node] = []
    clients: list[Client] = []
    try:
        for i in range(n):
            nodes.append(await start(nodes[0] if nodes else None, password,
                                     data_dir / f"node-{i}" if data_dir else None))
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
