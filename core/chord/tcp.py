"""The TCP transport: framed JSON (``wire``) over one reused connection per peer.

Each connection is an ``asyncio.Protocol`` that cuts frames out of the bytes as they
arrive (``wire.Frames``), resolves the future of the call a reply answers, and serves
requests. A request the node can answer at once (``immediate``: ping, state, next_hop)
is answered inside the read callback; any other runs in a task of its own, so a handler
that calls back over the same connection cannot block it. Compared with streams and a
reader task per connection, this takes two loop iterations less per call on each end
(docs/performance.md).
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging

from . import wire
from .address import Address
from .errors import ListenError, PeerUnreachable, RemoteError
from .tasks import TaskSet
from .transport import (
    CALLER_HOST,
    CALLER_LINK,
    DEFAULT_TIMEOUT,
    LATER,
    Failed,
    Immediate,
    Serve,
    Suspicion,
    Transport,
    reply_frame,
    serve_one,
)

__all__ = ["TcpTransport"]

log = logging.getLogger(__name__)

SILENT_AFTER = 0.5


class _Link(asyncio.Protocol):
    """One TCP connection, either end: frames in, replies matched to calls, requests served."""

    def __init__(self, endpoint: TcpTransport, name: str) -> None:
        self._endpoint = endpoint   # the transport this connection belongs to
        self.name = name
        self._frames = wire.Frames()
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        self._body_timer: asyncio.TimerHandle | None = None
        self._paused: asyncio.Future | None = None
        self._heard = 0.0                      # when the peer last sent us anything
        self._watchdog: asyncio.TimerHandle | None = None
        self._probed_at: float | None = None
        self.peer_host: str | None = None      # the source address the peer's frames come from
        self.closed = False

    # -- the connection's life -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer_host = peer[0]
        self._heard = self._loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(ConnectionResetError(f"connection to {self.name} closed")
                   if exc is None else exc)

    def _lost(self, error: Exception) -> None:
        self.closed = True
        self._endpoint._forget(self)
        for timer in (self._body_timer, self._watchdog):
            if timer is not None:
                timer.cancel()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)
        for task in self._tasks:
            task.cancel()
        if self._paused is not None and not self._paused.done():
            self._paused.set_result(None)

    def close(self, error: Exception | None = None) -> None:
        if self._transport is not None:
            self._transport.abort() if error is not None else self._transport.close()
        self._lost(error or ConnectionResetError(f"connection to {self.name} closed"))

    def pause_writing(self) -> None:
        self._paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._paused is not None and not self._paused.done():
            self._paused.set_result(None)
        self._paused = None

    # -- bytes in --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._heard = self._loop.time()
        try:
            for body in self._frames.feed(data):
                message = wire.decode_body(body)
                if "method" in message and "id" not in message:
                    self._oneway(*wire.check_oneway(message))
                elif "method" in message:
                    self._request(*wire.check_request(message))
                else:
                    self._reply(*wire.check_reply(message))
        except wire.FrameError as e:
            log.warning("closing the connection with %s: %s", self.name, e)
            self.close(ConnectionResetError(f"bad frame from {self.name}: {e}"))
            return
        self._watch_body()

    def eof_received(self) -> bool:
        if self._frames.partial:
            log.warning("%s closed the connection inside a frame", self.name)
        return False

    def _watch_body(self) -> None:
        """Half a frame followed by silence must not hold the connection forever."""
        if self._frames.partial and self._body_timer is None:
            self._body_timer = asyncio.get_running_loop().call_later(
                self._endpoint.body_timeout, self._body_late)
        elif not self._frames.partial and self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_late(self) -> None:
        self._body_timer = None
        if self._frames.partial and not self.closed:
            log.warning("closing the connection with %s: frame body not received within %s s",
                        self.name, self._endpoint.body_timeout)
            self.close(ConnectionResetError(f"frame body from {self.name} not received"))

    # -- the failure detector: a peer silent while we wait for it is probed, then dropped --

    def _watch_peer(self) -> None:
        """Start watching: silence counts from now (or from the peer's last frame)."""
        if self._watchdog is None and not self.closed:
            self._heard = max(self._heard, self._loop.time())
            self._watchdog = self._loop.call_at(self._heard + self._endpoint.silent_after,
                                                self._check_peer)

    def _check_peer(self) -> None:
        """Calls are pending: has the peer said anything lately? If it has been silent for
        ``silent_after``, ping it; silent as long again, it is gone (frozen, or its host
        vanished: no reset ever comes). A slow handler does not count: the ping is
        answered as it arrives, and any frame from the peer counts as a sign of life."""
        self._watchdog = None
        if self.closed or not self._pending:
            self._probed_at = None
            return
        now, silent_after = self._loop.time(), self._endpoint.silent_after
        if self._probed_at is not None and self._heard >= self._probed_at:
            self._probed_at = None  # it answered the probe: alive, only slow to reply
        if now - self._heard < silent_after:
            self._watchdog = self._loop.call_at(self._heard + silent_after, self._check_peer)
        elif self._probed_at is None:
            self._probed_at = now
            self._transport.write(wire.encode({"id": 0, "method": "ping", "args": {}}))
            self._watchdog = self._loop.call_at(now + silent_after, self._check_peer)
        else:
            silence = now - self._heard
            log.info("%s silent for %.2f s with calls pending: dropping the connection",
                     self.name, silence)
            self.close(ConnectionAbortedError(f"silent for {silence:.2f} s"))

    def _reply(self, rid: int, ok: bool, value: object) -> None:
        future = self._pending.pop(rid, None)
        if future is None or future.done():
            return  # the caller timed out and left
        if ok:
            future.set_result(value)
        else:
            future.set_exception(RemoteError(value))

    # -- serving ---------------------------------------------------------------------------

    def _now(self, method: str, args: dict) -> object:
        """The immediate answer (or LATER), with ``CALLER_HOST`` set as for any request: a
        handler answered in the read callback, or a task it starts, knows who asked too."""
        token = CALLER_HOST.set(self.peer_host)
        try:
            return self._endpoint._immediate(method, args)
        finally:
            CALLER_HOST.reset(token)

    def _request(self, rid: int, method: str, args: dict) -> None:
        immediate = self._endpoint._immediate
        if immediate is not None:
            try:
                result = self._now(method, args)
            except Exception as e:
                self._send(reply_frame(rid, error=e))
                return
            if result is not LATER:
                self._send(reply_frame(rid, result=result))
                return
        task = asyncio.get_running_loop().create_task(self._answer(rid, method, args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _oneway(self, method: str, args: dict) -> None:
        """A message that wants no reply: served like a request, its result dropped."""
        immediate = self._endpoint._immediate
        try:
            if immediate is not None and self._now(method, args) is not LATER:
                return
        except Exception:
            log.debug("one-way %s from %s failed", method, self.name, exc_info=True)
            return
        task = asyncio.get_running_loop().create_task(self._answer(None, method, args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, rid: int | None, method: str, args: dict) -> None:
        serve = self._endpoint._serve
        assert serve is not None
        CALLER_HOST.set(self.peer_host)   # this task's own context: seen by the handler only
        CALLER_LINK.set(self)
        if rid is None:
            try:
                await serve(method, args)
            except Exception:
                log.debug("one-way %s from %s failed", method, self.name, exc_info=True)
            return
        self._send(await serve_one(serve, rid, method, args))

    def _send(self, frame: bytes) -> None:
        if not self.closed and self._transport is not None:
            self._transport.write(frame)

    # -- calling ---------------------------------------------------------------------------

    def post(self, frame: bytes) -> None:
        if self.closed:
            raise ConnectionResetError(f"connection to {self.name} closed")
        self._transport.write(frame)

    async def request(self, method: str, args: dict, timeout: float) -> object:
        """Send a request and wait for its reply; TimeoutError after ``timeout`` seconds."""
        if self.closed:
            raise ConnectionResetError(f"connection to {self.name} closed")
        rid = next(self._ids)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        frame = wire.encode({"id": rid, "method": method, "args": args})
        self._pending[rid] = future
        # a timer on the future itself: cheaper than asyncio.timeout on every call
        timer = loop.call_later(timeout, _expire, future)
        try:
            self._transport.write(frame)
            if self._watchdog is None:
                self._watch_peer()
            if self._paused is not None:  # the kernel's buffer is full: let it drain first
                await asyncio.wait((self._paused, future), return_when=asyncio.FIRST_COMPLETED)
            return await future
        finally:
            timer.cancel()
            self._pending.pop(rid, None)


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class TcpTransport(Transport):
    """The default transport: framed JSON over TCP, one reused connection per peer.

    Args:
        timeout: the default time a call may take, in seconds.
        body_timeout: how long the rest of a frame may take once its length has come.
        silent_after: the failure detector (docs/performance.md, "Failover"): a peer that
            sends nothing for this long while calls to it are pending is pinged, and
            declared unreachable (its calls fail at once) after as long again; a peer
            that answers the ping keeps its calls waiting until their own timeouts.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, body_timeout: float = 10.0,
                 silent_after: float = SILENT_AFTER) -> None:
        self.timeout = timeout
        self.body_timeout = body_timeout
        self.silent_after = silent_after
        self.calls = 0
        self._suspects = Suspicion()
        self._connections: dict[Address, _Link] = {}
        self._connecting: dict[Address, asyncio.Future] = {}
        self._inbound: set[_Link] = set()   # connections peers opened to us
        self._server: asyncio.Server | None = None
        self._serve: Serve | None = None
        self._immediate: Immediate | None = None
        self._sending = TaskSet()

    # -- serving ---------------------------------------------------------------------------

    async def listen(self, address: Address, serve: Serve,
                     immediate: Immediate | None = None) -> Address:
        self._serve, self._immediate = serve, immediate
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._accepted, address.host, address.port,
                                                    reuse_address=True)
        except OSError as e:
            reason = "the port is already in use" if e.errno == errno.EADDRINUSE else e.strerror
            raise ListenError(e.errno, f"cannot listen on {address}: {reason}") from None
        port = self._server.sockets[0].getsockname()[1]
        return Address(address.host, port)

    async def answer(self, serve: Serve, immediate: Immediate | None = None) -> None:
        self._serve, self._immediate = serve, immediate

    def _accepted(self) -> _Link:
        link = _Link(self, "a peer")
        self._inbound.add(link)
        return link

    def _forget(self, link: _Link) -> None:
        self._inbound.discard(link)
        for address, known in list(self._connections.items()):
            if known is link:
                del self._connections[address]

    # -- calling ---------------------------------------------------------------------------

    def is_suspected(self, address: Address) -> bool:
        return address in self._suspects

    async def call(self, address: Address, method: str, args: dict,
                   timeout: float | None = None) -> object:
        """One request/reply with ``address`` within ``timeout`` (the transport's default).

        A reply clears suspicion of the peer (an error reply too: it is alive); no reply in
        time, or a broken connection, suspects it and raises ``PeerUnreachable``.
        """
        self.calls += 1
        if timeout is None:
            timeout = self.timeout
        try:
            link = self._connections.get(address)
            if link is None:
                async with asyncio.timeout(timeout):  # the rare path: its own deadline
                    link = await self._connect(address)
            result = await link.request(method, args, timeout)
        except RemoteError:
            self._suspects.clear(address)
            raise
        except TimeoutError:
            self._suspects.suspect(address)
            raise PeerUnreachable(f"{address} did not answer {method} within "
                                  f"{timeout:g} s") from None
        except OSError as e:
            self._suspects.suspect(address)
            self._drop(address)
            raise PeerUnreachable(f"{address} is unreachable: {e}") from None
        self._suspects.clear(address)
        return result

    def send(self, address: Address, method: str, args: dict,
             failed: Failed | None = None) -> None:
        """A one-way message to ``address``, written now if connected, else once connected.

        No reply comes back. ``failed(error)`` runs if it cannot be written (no connection,
        or the connection broke); a message written but lost goes unnoticed.
        """
        self.calls += 1
        frame = wire.encode({"method": method, "args": args})
        link = self._connections.get(address)
        if link is not None:
            try:
                link.post(frame)
                return
            except OSError as e:
                self._unreachable(address, e, failed)
                return
        self._sending.spawn(self._send_later(address, frame, failed))

    async def _send_later(self, address: Address, frame: bytes, failed: Failed | None) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                link = await self._connect(address)
            link.post(frame)
        except (OSError, TimeoutError) as e:
            self._unreachable(address, e, failed)

    def _unreachable(self, address: Address, error: Exception, failed: Failed | None) -> None:
        self._suspects.suspect(address)
        self._drop(address)
        if failed is not None:
            failed(PeerUnreachable(f"{address} is unreachable: {error}"))

    async def _connect(self, address: Address) -> _Link:
        """The one connection to ``address``; concurrent callers share one attempt."""
        connecting = self._connecting.get(address)
        if connecting is None:
            loop = asyncio.get_running_loop()
            connecting = self._connecting[address] = loop.create_task(self._open(address))
            connecting.add_done_callback(lambda t: self._opened(address, t))
        return await asyncio.shield(connecting)

    def _opened(self, address: Address, attempt: asyncio.Task) -> None:
        """An attempt ended: forget it, and take its failure, which no caller may be left
        waiting for (each gave up at its own deadline): else asyncio logs "Task exception
        was never retrieved" with a traceback, for a peer that merely did not answer."""
        self._connecting.pop(address, None)
        if not attempt.cancelled():
            attempt.exception()

    async def _open(self, address: Address) -> _Link:
        """Connect, within the transport's timeout. Not longer: an attempt whose SYNs go
        unanswered (a host cut off) is retried by the kernel at growing intervals, so one
        shared attempt kept alive across a partition would answer seconds after the heal;
        a fresh one goes out at once."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.timeout):
            _, link = await loop.create_connection(lambda: _Link(self, str(address)),
                                                   address.host, address.port)
        self._connections[address] = link
        return link

    def _drop(self, address: Address) -> None:
        link = self._connections.pop(address, None)
        if link is not None:
            link.close()

    async def close(self) -> None:
        await self._sending.cancel_all()
        if self._server is not None:
            self._server.close()
        for link in [*self._inbound, *self._connections.values()]:
            link.close()
        self._connections.clear()
        for connecting in list(self._connecting.values()):
            connecting.cancel()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            except TimeoutError:
                pass
            self._server = None

