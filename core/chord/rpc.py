"""Request/response calls between nodes: the transport interface and its TCP implementation.

A node reaches the network only through a ``Transport``: ``listen`` to serve calls,
``call`` to make one. ``TcpTransport`` speaks the framed JSON of ``wire``, one reused
connection per peer, request ids, a timeout on every call, and suspicion of peers that
fail. ``core.chord.sim`` provides the same interface in memory.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from . import wire
from .address import Address
from .errors import ListenError, PeerUnreachable, RemoteError, RpcError

__all__ = ["CALLER_HOST", "DEFAULT_TIMEOUT", "ListenError", "PeerUnreachable", "RemoteError",
           "RpcError", "Serve", "Suspicion", "TcpTransport", "Transport", "guarded_call",
           "serve_one"]

log = logging.getLogger(__name__)

Serve = Callable[[str, dict], Awaitable[object]]

DEFAULT_TIMEOUT = 3.0

CALLER_HOST: contextvars.ContextVar[str | None] = contextvars.ContextVar("caller_host",
                                                                         default=None)
"""While a request is served: the host it came from, as this node saw it (the source
address of the connection), so a node behind a wildcard listen can learn its address."""


class Transport(Protocol):
    calls: int

    async def listen(self, address: Address, serve: Serve) -> Address: ...

    async def call(self, address: Address, method: str, args: dict,
                   timeout: float | None = None) -> object: ...

    def is_suspected(self, address: Address) -> bool: ...

    async def close(self) -> None: ...


class Suspicion:
    """Peers that failed recently; cleared by the next successful call.

    Time is the running loop's clock, so a simulated network's virtual clock ages
    suspicions too.
    """

    def __init__(self, memory: float = 30.0) -> None:
        self._since: dict[Address, float] = {}
        self._memory = memory

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def suspect(self, address: Address) -> None:
        self._since[address] = self._now()

    def clear(self, address: Address) -> None:
        self._since.pop(address, None)

    def __contains__(self, address: Address) -> bool:
        since = self._since.get(address)
        if since is None:
            return False
        if self._now() - since > self._memory:
            del self._since[address]
            return False
        return True


async def guarded_call(suspects: Suspicion, address: Address, method: str, timeout: float,
                       request: Callable[[], Awaitable[object]],
                       broken: Callable[[], None] | None = None) -> object:
    """Await ``request()`` within ``timeout``; what any transport's ``call`` does around it.

    A reply clears suspicion of ``address`` (an error reply too: the peer is alive); no
    reply in time, or a broken connection, suspects it and becomes ``PeerUnreachable``
    (``broken`` runs first on a broken connection, to forget it).
    """
    try:
        async with asyncio.timeout(timeout):
            result = await request()
    except RemoteError:
        suspects.clear(address)
        raise
    except TimeoutError:
        suspects.suspect(address)
        raise PeerUnreachable(f"{address} did not answer {method} within {timeout:g} s") from None
    except (OSError, asyncio.IncompleteReadError) as e:
        suspects.suspect(address)
        if broken is not None:
            broken()
        raise PeerUnreachable(f"{address} is unreachable: {e}") from None
    suspects.clear(address)
    return result


async def serve_one(serve: Serve, rid: int, method: str, args: dict) -> bytes:
    """Run one request and return its reply frame. A handler's exception, or a result that
    cannot go on the wire, becomes an error reply: the caller learns why, we keep serving."""
    try:
        reply = {"id": rid, "result": await serve(method, args)}
    except RpcError as e:
        reply = {"id": rid, "error": str(e)}
    except Exception as e:
        log.debug("request %s failed", method, exc_info=True)
        reply = {"id": rid, "error": f"{type(e).__name__}: {e}"}
    try:
        return wire.encode(reply)
    except (wire.FrameError, TypeError, ValueError) as e:
        return wire.encode({"id": rid, "error": f"reply could not be sent: {e}"})


class _Connection:
    """One outgoing connection: requests go out, replies are matched by id."""

    def __init__(self, address: Address, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, body_timeout: float) -> None:
        self.address = address
        self._writer = writer
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._reader_task = asyncio.create_task(self._read_replies(reader, body_timeout))

    @property
    def open(self) -> bool:
        return not self._reader_task.done()

    async def request(self, method: str, args: dict) -> object:
        rid = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            self._writer.write(wire.encode({"id": rid, "method": method, "args": args}))
            await self._writer.drain()
            return await future
        finally:
            self._pending.pop(rid, None)

    async def _read_replies(self, reader: asyncio.StreamReader, body_timeout: float) -> None:
        error: Exception = ConnectionResetError(f"connection to {self.address} closed")
        try:
            while True:
                message = await wire.read_frame(reader, body_timeout)
                if message is None:
                    break
                rid, ok, value = wire.check_reply(message)
                future = self._pending.get(rid)
                if future is None or future.done():
                    continue  # the caller timed out and left
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(RemoteError(value))
        except wire.FrameError as e:
            log.warning("bad reply from %s: %s; closing the connection", self.address, e)
            error = ConnectionResetError(f"bad reply from {self.address}: {e}")
        except (OSError, asyncio.IncompleteReadError) as e:
            error = e
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)
            self._writer.close()

    async def close(self) -> None:
        self._reader_task.cancel()
        self._writer.close()
        try:
            await self._reader_task
        except (asyncio.CancelledError, Exception):
            pass


class TcpTransport:
    """The default transport: framed JSON over TCP, one reused connection per peer."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, body_timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.body_timeout = body_timeout
        self.calls = 0
        self._suspects = Suspicion()
        self._connections: dict[Address, _Connection] = {}
        self._connecting: dict[Address, asyncio.Lock] = {}
        self._server: asyncio.Server | None = None
        self._served: set[asyncio.StreamWriter] = set()
        self._serve: Serve | None = None

    # -- serving ---------------------------------------------------------------------------

    async def listen(self, address: Address, serve: Serve) -> Address:
        self._serve = serve
        try:
            self._server = await asyncio.start_server(self._on_connection, address.host,
                                                      address.port, reuse_address=True)
        except OSError as e:
            reason = "the port is already in use" if e.errno == errno.EADDRINUSE else e.strerror
            raise ListenError(e.errno, f"cannot listen on {address}: {reason}") from None
        port = self._server.sockets[0].getsockname()[1]
        return Address(address.host, port)

    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if peer:
            CALLER_HOST.set(peer[0])  # the tasks made below for its requests inherit it
        self._served.add(writer)
        tasks: set[asyncio.Task] = set()
        try:
            while True:
                message = await wire.read_frame(reader, self.body_timeout)
                if message is None:
                    break
                rid, method, args = wire.check_request(message)
                task = asyncio.create_task(self._answer(writer, rid, method, args))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except wire.FrameError as e:
            log.warning("closing connection from %s: %s", peer, e)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._served.discard(writer)
            for task in tasks:
                task.cancel()
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, rid: int, method: str,
                      args: dict) -> None:
        assert self._serve is not None
        frame = await serve_one(self._serve, rid, method, args)
        if not writer.is_closing():
            writer.write(frame)
            try:
                await writer.drain()
            except OSError:
                pass

    # -- calling ---------------------------------------------------------------------------

    def is_suspected(self, address: Address) -> bool:
        return address in self._suspects

    async def call(self, address: Address, method: str, args: dict,
                   timeout: float | None = None) -> object:
        self.calls += 1

        async def request() -> object:
            connection = await self._connection(address)
            return await connection.request(method, args)

        return await guarded_call(self._suspects, address, method,
                                  self.timeout if timeout is None else timeout, request,
                                  broken=lambda: self._drop(address))

    async def _connection(self, address: Address) -> _Connection:
        connection = self._connections.get(address)
        if connection is not None and connection.open:
            return connection
        lock = self._connecting.setdefault(address, asyncio.Lock())
        async with lock:
            connection = self._connections.get(address)
            if connection is None or not connection.open:
                reader, writer = await asyncio.open_connection(address.host, address.port)
                connection = _Connection(address, reader, writer, self.body_timeout)
                self._connections[address] = connection
            return connection

    def _drop(self, address: Address) -> None:
        connection = self._connections.pop(address, None)
        if connection is not None:
            asyncio.ensure_future(connection.close())

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._served):
            writer.close()
        connections, self._connections = list(self._connections.values()), {}
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            except TimeoutError:
                pass
            self._server = None
