"""Raw IRC clients on plain sockets against a real gateway of a real one-node ring: the
lines a client sends as written, every line it gets (the conformance tests use these)."""

from __future__ import annotations

import asyncio
import contextlib

from core.chord.testing import wait_until
from core.datadir import DataDir
from core.irc import accounts
from core.irc.message import LineBuffer, Message, parse
from tests.support.irc import ring


class Raw:
    """A client on a plain socket: the lines it sends as written, every line it gets."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.raw: list[bytes] = []
        self.lines: list[Message] = []
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, box) -> Raw:
        host, port = box.gateway.address
        return cls(*await asyncio.open_connection(host, port))

    async def _read(self) -> None:
        buffer = LineBuffer(max_line=1 << 16)
        while data := await self.reader.read(4096):
            self.raw.append(data)
            self.lines += [parse(line) for line in buffer.feed(data)]

    def send(self, *lines: str) -> int:
        mark = len(self.lines)
        self.writer.write("".join(f"{line}\r\n" for line in lines).encode())
        return mark

    async def wait(self, command: str, since: int = 0, timeout: float = 20.0) -> Message:
        await wait_until(lambda: self.got(command, since), timeout,
                         what=f"{command} (got {[str(m) for m in self.lines[since:]][-6:]})")
        return self.got(command, since)[0]

    def got(self, command: str, since: int = 0) -> list[Message]:
        return [m for m in self.lines[since:] if m.command == command]

    async def register(self, nick: str, realname: str | None = None) -> Raw:
        self.send(f"NICK {nick}", f"USER {nick}u 0 * :{realname or 'Real ' + nick}")
        await self.wait("001")
        return self

    async def joined(self, channel: str) -> Raw:
        mark = self.send(f"JOIN {channel}")
        await self.wait("366", mark)
        return self

    def close(self) -> None:
        self._task.cancel()
        self.writer.close()


@contextlib.asynccontextmanager
async def _clients(box):
    """``client(nick)``: a new client of ``box``'s gateway, registered as ``nick`` (or not,
    without one); every one closed at the end."""
    opened: list[Raw] = []

    async def client(nick: str | None = None) -> Raw:
        c = await Raw.connect(box)
        opened.append(c)
        return await c.register(nick) if nick else c
    try:
        yield client
    finally:
        for c in opened:
            c.close()


def served(test):
    """The test runs with ``gateway(nick)``: a new client of a one-node ring's gateway,
    registered as ``nick`` (or not, without one)."""
    async def run() -> None:
        async with ring(1) as ((box,), _), _clients(box) as client:
            await test(client)
    run.__name__ = test.__name__
    run.__doc__ = test.__doc__
    return run


def operated(test):
    """As ``served``, with a data directory whose owner made ``boss`` (password
    ``bosspw``) an IRC operator of the gateway (``chordchat --set-irc-oper``)."""
    async def run(tmp_path) -> None:
        accounts.set_oper(DataDir(tmp_path / "node-0"), "boss", "bosspw")
        async with ring(1, data_dir=tmp_path) as ((box,), _), _clients(box) as client:
            await test(client)
    run.__name__ = test.__name__
    run.__doc__ = test.__doc__
    return run
