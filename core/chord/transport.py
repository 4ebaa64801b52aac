"""The transport interface: how a node reaches the network, and what every transport shares.

A node reaches the network only through a ``Transport``: ``listen`` to serve calls,
``call`` to make one, with a timeout, suspecting peers that fail, ``send`` a one-way
message. A call that produces no result raises an ``errors.RpcError``:
``PeerUnreachable`` (no answer in time, or no connection) or ``RemoteError`` (the peer
answered with an error); ``listen`` raises ``ListenError``. ``tcp.TcpTransport`` speaks
the framed JSON of ``wire`` over TCP; ``sim.SimTransport`` provides the same interface
in memory. Both suspect peers with ``Suspicion`` and answer requests through
``serve_one``/``reply_frame``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from . import wire
from .address import Address
from .errors import PeerUnreachable, RemoteError, RpcError

__all__ = ["CALLER_HOST", "CALLER_LINK", "DEFAULT_TIMEOUT", "LATER", "Failed", "Immediate", "Serve",
           "Suspicion", "Transport", "guarded_call", "reply_frame", "serve_one"]

log = logging.getLogger(__name__)

Serve = Callable[[str, dict], Awaitable[object]]
# Answers a request at once, inside the transport's read callback, or returns LATER for
# ``Serve`` to answer it in a task. Only for handlers that never wait (ping, state, ...).
Immediate = Callable[[str, dict], object]
LATER = object()
Failed = Callable[[Exception], None]   # told that a one-way message could not be sent

DEFAULT_TIMEOUT = 3.0

CALLER_HOST: contextvars.ContextVar[str | None] = contextvars.ContextVar("caller_host",
                                                                         default=None)
"""While a request is served: the host it came from, as this node saw it (the source
address of the connection), so a node behind a wildcard listen can learn its address."""

CALLER_LINK: contextvars.ContextVar[object | None] = contextvars.ContextVar("caller_link",
                                                                           default=None)
"""While a request is served: the connection it came over, as an object with
``async request(method, args, timeout)`` and ``closed``: a call back to the caller over
the connection *it* opened (a relay reaches a client that cannot be dialled this way,
core/chord/relay.py). None for a call a node makes to itself."""


class Transport(ABC):
    """The network as a node sees it. ``calls`` counts the calls and one-way messages made."""

    calls: int

    @abstractmethod
    async def listen(self, address: Address, serve: Serve,
                     immediate: Immediate | None = None) -> Address:
        """Serve calls to ``address`` with ``serve`` (and ``immediate``, if the transport
        answers some at once); returns the address listened on (port 0: the one chosen).
        Raises ListenError if it cannot be bound."""

    async def answer(self, serve: Serve, immediate: Immediate | None = None) -> None:
        """Serve requests that come over connections this node opened, without listening
        (a client node that nobody can dial: core/chord/client.py)."""
        raise NotImplementedError(f"{type(self).__name__} cannot serve without listening")

    @abstractmethod
    async def call(self, address: Address, method: str, args: dict,
                   timeout: float | None = None) -> object:
        """One request/reply with ``address`` within ``timeout`` (the transport's default).

        A reply clears suspicion of the peer (an error reply too: it is alive; it raises
        RemoteError); no reply in time, or a broken connection, suspects it and raises
        PeerUnreachable."""

    @abstractmethod
    def send(self, address: Address, method: str, args: dict,
             failed: Failed | None = None) -> None:
        """A one-way message to ``address``; ``failed(error)`` if it cannot be sent."""

    @abstractmethod
    def is_suspected(self, address: Address) -> bool:
        """True while ``address`` failed recently (and no call to it succeeded since)."""

    @abstractmethod
    async def close(self) -> None:
        """Stop listening and close every connection."""


class Suspicion:
    """Peers that failed recently; cleared by the next successful call.

    Time is the running loop's clock, so a simulated network's virtual clock ages
    suspicions too.
    """

    def __init__(self, memory: float = 30.0) -> None:
        self._since: dict[Address, float] = {}
        self._memory = memory
        self._listeners: list[Callable[[Address], None]] = []

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def add_listener(self, listener: Callable[[Address], None]) -> None:
        """Call ``listener(address)`` each time a peer is suspected (for measurements:
        the failover benchmark counts the live nodes declared dead)."""
        self._listeners.append(listener)

    def suspect(self, address: Address) -> None:
        self._since[address] = self._now()
        for listener in self._listeners:
            listener(address)

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
        result = await serve(method, args)
    except Exception as e:
        return reply_frame(rid, error=e)
    return reply_frame(rid, result=result)


def reply_frame(rid: int, result: object = None, error: Exception | None = None) -> bytes:
    """The reply frame to request ``rid``: its result, or the error it raised."""
    if error is None:
        try:
            return wire.encode({"id": rid, "result": result})
        except (wire.FrameError, TypeError, ValueError) as e:
            return wire.encode({"id": rid, "error": f"reply could not be sent: {e}"})
    if isinstance(error, RpcError):
        return wire.encode({"id": rid, "error": str(error)})
    log.debug("a request failed", exc_info=error)
    return wire.encode({"id": rid, "error": f"{type(error).__name__}: {error}"})

