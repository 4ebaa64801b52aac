"""An in-memory network for the node code: the ``Transport`` interface without sockets.

``SimNetwork`` delivers requests and replies in memory with a chosen one-way latency
and loss, and can be split into islands (``partition``) and made whole (``heal``);
``network.transport()`` gives each node its own endpoint, so
``Local(address, transport=network.transport())`` runs the very same node code as over
TCP. Messages go through the wire codec both ways, so a node sees exactly what the wire
would give it (and an oversized or unencodable payload fails the same way).

``run`` runs a simulation on ``virtualtime.VirtualClockLoop``, whose clock jumps to the
next timer whenever nothing is ready: rounds, latencies and timeouts cost no wall time.
``converged_ring`` builds, directly, the state that a converged ring would have, so the
large simulations need not run thousands of stabilization rounds first.
"""

from __future__ import annotations

import asyncio
import bisect
import errno
import itertools
import random
from collections.abc import Callable
from typing import Any

from . import wire
from .address import Address
from .errors import ListenError, PeerUnreachable, RemoteError
from .routing import FingerTable, Routing
from .transport import (
    CALLER_HOST,
    CALLER_LINK,
    DEFAULT_TIMEOUT,
    Failed,
    Immediate,
    Serve,
    Suspicion,
    Transport,
    guarded_call,
    serve_one,
)
from .virtualtime import VirtualClockLoop, run

__all__ = ["Latency", "SimNetwork", "SimTransport", "VirtualClockLoop", "converged_ring",
           "ideal_state", "run", "sim_addresses"]

Latency = float | Callable[[Address | None, Address | None], float]


# -- the network -------------------------------------------------------------------------

class SimNetwork:
    """Endpoints that exchange framed messages in memory.

    Args:
        latency: one-way delay of every message in seconds, or a function
            ``(source, destination) -> seconds`` (source is None for a caller that
            does not listen).
        loss: probability that any one message (request or reply) is lost; the
            caller then times out, as over a real network.
        seed: for the loss draws, so runs repeat.
        timeout: the default call timeout of the transports made here.
    """

    def __init__(self, latency: Latency = 0.0, loss: float = 0.0, seed: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"loss must be a probability, not {loss!r}")
        if not callable(latency) and latency < 0:
            raise ValueError(f"latency must be >= 0, not {latency!r}")
        self.latency = latency
        self.loss = loss
        self.timeout = timeout
        self.random = random.Random(seed)
        self.messages = 0   # every message sent, requests and replies
        self.dropped = 0    # of which lost
        self.refused = 0    # requests that found nobody listening
        self._endpoints: dict[Address, SimTransport] = {}
        self._ports: dict[str, itertools.count] = {}
        self._island: dict[str, int] = {}   # host -> island; empty: one network
        self._cuts: set[frozenset[str]] = set()   # pairs of hosts that do not reach each other

    def transport(self, timeout: float | None = None) -> SimTransport:
        """A new endpoint on this network, for one node."""
        return SimTransport(self, self.timeout if timeout is None else timeout)

    def alive(self, address: Address) -> bool:
        return address in self._endpoints

    def partition(self, *groups) -> None:
        """Split the network into islands: the hosts (addresses or host names) of each
        group reach only each other; hosts in no group are with the first. A message
        across islands is lost, so its call times out, as over a cut cable."""
        self._island = {}
        for i, group in enumerate(groups):
            for member in group:
                self._island[member.host if isinstance(member, Address) else member] = i

    def heal(self) -> None:
        """One network again (cuts between two hosts stay: ``uncut``)."""
        self._island = {}

    def cut(self, a: Address | str, b: Address | str) -> None:
        """``a`` and ``b`` (addresses or host names) stop reaching each other; every other
        pair is unchanged: connectivity that is not transitive."""
        self._cuts.add(frozenset(x.host if isinstance(x, Address) else x for x in (a, b)))

    def uncut(self) -> None:
        self._cuts = set()

    def reachable(self, source: Address | None, destination: Address | None) -> bool:
        if source is None or destination is None:
            return True
        if self._cuts and frozenset((source.host, destination.host)) in self._cuts:
            return False
        if not self._island:
            return True
        return self._island.get(source.host, 0) == self._island.get(destination.host, 0)

    def kill(self, address: Address) -> None:
        """Make ``address`` vanish at once, as a crashed process would."""
        endpoint = self._endpoints.get(address)
        if endpoint is not None:
            endpoint.crash()

    # -- delivery (the transports call these) ----------------------------------------------

    def _free_port(self, host: str) -> int:
        ports = self._ports.setdefault(host, itertools.count(20000))
        while True:
            port = next(ports)
            if port > 65535:
                raise ListenError(errno.EADDRNOTAVAIL, f"no free simulated port left on {host}")
            if Address(host, port) not in self._endpoints:
                return port

    def _delay(self, source: Address | None, destination: Address | None) -> float | None:
        """The one-way delay of a message, or None if it is lost."""
        self.messages += 1
        if not self.reachable(source, destination):
            self.dropped += 1
            return None
        if self.loss and self.random.random() < self.loss:
            self.dropped += 1
            return None
        return self.latency(source, destination) if callable(self.latency) else self.latency

    @staticmethod
    def _later(delay: float, callback: Callable, *args: object) -> None:
        loop = asyncio.get_running_loop()
        if delay > 0:
            loop.call_later(delay, callback, *args)
        else:
            loop.call_soon(callback, *args)

    def _send_request(self, source: Address | None, destination: Address, frame: bytes,
                      reply: asyncio.Future) -> None:
        delay = self._delay(source, destination)
        if delay is not None:
            self._later(delay, self._arrive, source, destination, frame, reply)

    def _arrive(self, source: Address | None, destination: Address, frame: bytes,
                reply: asyncio.Future) -> None:
        endpoint = self._endpoints.get(destination)
        if endpoint is None:
            # Nobody listens: the refusal comes back after a one-way delay, like a reset.
            self.refused += 1
            back = self.latency(destination, source) if callable(self.latency) else self.latency
            self._later(back, _fail, reply,
                        ConnectionRefusedError(f"connection to {destination} refused"))
            return
        endpoint._accept(source, frame, reply)

    def _send_reply(self, source: Address, destination: Address | None, frame: bytes,
                    reply: asyncio.Future) -> None:
        delay = self._delay(source, destination)
        if delay is not None:
            self._later(delay, _deliver_reply, frame, reply)


def _fail(reply: asyncio.Future, error: Exception) -> None:
    if not reply.done():
        reply.set_exception(error)


def _deliver_reply(frame: bytes, reply: asyncio.Future) -> None:
    if reply.done():
        return  # the caller timed out and left
    try:
        rid, ok, value = wire.check_reply(wire.decode_body(frame[4:]))
    except wire.FrameError as e:
        reply.set_exception(ConnectionResetError(f"bad reply: {e}"))
        return
    if ok:
        reply.set_result(value)
    else:
        reply.set_exception(RemoteError(value))


class SimTransport(Transport):
    """One node's endpoint on a ``SimNetwork``: a ``Transport`` in memory."""

    def __init__(self, network: SimNetwork, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.network = network
        self.timeout = timeout
        self.calls = 0
        self.address: Address | None = None
        self._serve: Serve | None = None
        self._suspects = Suspicion()
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        self._replies: set[asyncio.Future] = set()  # replies we still owe, failed if we die

    # -- serving ---------------------------------------------------------------------------

    async def listen(self, address: Address, serve: Serve,
                     immediate: Immediate | None = None) -> Address:
        # ``immediate`` is TCP's shortcut past a task; in memory every request gets one.
        network = self.network
        if address.port == 0:
            address = Address(address.host, network._free_port(address.host))
        elif network.alive(address):
            raise ListenError(errno.EADDRINUSE,
                              f"cannot listen on {address}: the port is already in use")
        self.address, self._serve = address, serve
        network._endpoints[address] = self
        return address

    def _accept(self, source: Address | None, frame: bytes, reply: asyncio.Future) -> None:
        try:
            message = wire.decode_body(frame[4:])
            if "id" not in message:  # one-way: served in a task, nothing sent back
                method, args = wire.check_oneway(message)
                reply.set_result(None)
                self._spawn(self._serve_oneway(source, method, args))
                return
            rid, method, args = wire.check_request(message)
        except wire.FrameError as e:  # TCP would close the connection: the call fails
            _fail(reply, ConnectionResetError(f"{self.address} closed the connection: {e}"))
            return
        self._replies.add(reply)
        self._spawn(self._answer(source, rid, method, args, reply))

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_oneway(self, source: Address | None, method: str, args: dict) -> None:
        assert self._serve is not None
        CALLER_HOST.set(source.host if source is not None else None)
        try:
            await self._serve(method, args)
        except Exception:
            pass  # nobody waits for an answer

    async def _answer(self, source: Address | None, rid: int, method: str, args: dict,
                      reply: asyncio.Future) -> None:
        assert self._serve is not None and self.address is not None
        CALLER_HOST.set(source.host if source is not None else None)
        CALLER_LINK.set(None if source is None else _Back(self, source))
        try:
            frame = await serve_one(self._serve, rid, method, args)
        finally:
            self._replies.discard(reply)
        if self.network._endpoints.get(self.address) is self:
            self.network._send_reply(self.address, source, frame, reply)

    # -- calling ---------------------------------------------------------------------------

    def is_suspected(self, address: Address) -> bool:
        return address in self._suspects

    async def call(self, address: Address, method: str, args: dict,
                   timeout: float | None = None) -> object:
        self.calls += 1
        frame = wire.encode({"id": next(self._ids), "method": method, "args": args})
        reply = asyncio.get_running_loop().create_future()
        self.network._send_request(self.address, address, frame, reply)
        return await guarded_call(self._suspects, address, method,
                                  self.timeout if timeout is None else timeout, lambda: reply)

    def send(self, address: Address, method: str, args: dict,
             failed: Failed | None = None) -> None:
        """A one-way message; ``failed(error)`` if nobody listens at ``address``."""
        self.calls += 1
        frame = wire.encode({"method": method, "args": args})
        sent = asyncio.get_running_loop().create_future()

        def done(future: asyncio.Future) -> None:
            if not future.cancelled() and future.exception() is not None:
                self._suspects.suspect(address)
                if failed is not None:
                    failed(PeerUnreachable(f"{address} is unreachable: {future.exception()}"))

        sent.add_done_callback(done)
        self.network._send_request(self.address, address, frame, sent)

    # -- ending ----------------------------------------------------------------------------

    def crash(self) -> None:
        """Stop listening at once; calls being served fail as a reset connection would."""
        if self.address is not None and self.network._endpoints.get(self.address) is self:
            del self.network._endpoints[self.address]
        for task in list(self._tasks):
            task.cancel()
        for reply in list(self._replies):
            _fail(reply, ConnectionResetError(f"connection to {self.address} reset"))
        self._replies.clear()

    async def close(self) -> None:
        self.crash()
        tasks = list(self._tasks)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class _Back:
    """The way back to a caller while its request is served (``CALLER_LINK``): in memory
    every endpoint is addressable, so a call back is a call to the caller's address."""

    def __init__(self, endpoint: SimTransport, source: Address) -> None:
        self._endpoint = endpoint
        self._source = source

    @property
    def closed(self) -> bool:
        return not self._endpoint.network.alive(self._source)

    async def request(self, method: str, args: dict, timeout: float) -> object:
        try:
            return await self._endpoint.call(self._source, method, args, timeout)
        except PeerUnreachable as e:
            raise ConnectionResetError(str(e)) from None


# -- converged state, built directly -----------------------------------------------------

def sim_addresses(n: int, port: int = 4000) -> list[Address]:
    """``n`` distinct addresses 10.x.y.z:port (their ids are their hashes, as ever)."""
    return [Address(f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", port)
            for i in range(1, n + 1)]


def ideal_state(addresses: list[Address], r: int) -> dict[Address, Routing]:
    """For each address, the routing state of a converged ring: successor list,
    predecessor, and fingers as ``Local.fix_fingers`` finds them (``FingerTable``)."""
    ring = sorted(addresses, key=lambda a: a.id)
    ids = [a.id for a in ring]
    count = len(ring)

    def successor_of(key: int) -> Address:
        return ring[bisect.bisect_left(ids, key) % count]

    return {node: Routing(node, r,
                          successors=[ring[(i + k) % count]
                                      for k in range(1, min(r, count - 1) + 1)],
                          predecessor=ring[i - 1] if count > 1 else None,
                          fingers=FingerTable.build(node, successor_of))
            for i, node in enumerate(ring)}


async def converged_ring(network: SimNetwork, addresses: list[Address], r: int = 8,
                         state: dict[Address, Routing] | None = None, **settings: Any):
    """Nodes with the state of a converged ring, listening on ``network``, no maintenance.

    The large simulations use this instead of thousands of stabilization rounds: each
    ``Local`` starts without maintenance and adopts the state a converged ring reaches
    (``ideal_state``); the routing itself is then the real node code. The state stays as
    built until the caller changes it (``tests/core/chord/test_sim.py`` checks it matches
    a ring converged by the real protocol). ``state`` may pass a precomputed
    ``ideal_state(addresses, r)``; nodes take copies of it.
    """
    from .node import Local  # node does not import us; keep it that way

    state = state or ideal_state(addresses, r)
    nodes = []
    for address in addresses:
        node = Local(address, successors=r, transport=network.transport(), **settings)
        await node.start(maintain=False)
        node.adopt(state[address])
        nodes.append(node)
    return nodes
