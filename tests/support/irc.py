"""A real IRC client (the ``irc`` package's asyncio client) for the gateway's tests, and
everything the server sent it. Importing this skips the importing test module when the
``irc`` package is not installed."""

from __future__ import annotations

import asyncio

import pytest

from core.chord.testing import wait_until
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
