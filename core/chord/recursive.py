"""Recursive routes: a user command carried hop by hop to the owner of a key, which
answers the one who asked directly (§4.3's alternative to iterative lookups).

One one-way ``route`` message per hop, along the next hops a lookup would take, and one
``routed`` back: half the messages of ``find_successor`` followed by ``user_command``.
Only the benchmarks use them (``bench/kad.py`` sets them beside Kademlia); the chat looks
up and calls. A node serves the two verbs with ``RouteProtocol`` and offers
``Local.route`` from ``RecursiveRoute``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Callable

from .address import Address
from .errors import LookupFailed, PeerUnreachable, RemoteError, RpcError
from .ids import M
from .protocol import RingProtocol, key_from_wire, serves
from .remote import Remote
from .routing import Routing
from .tasks import TaskSet
from .transport import Transport

__all__ = ["RecursiveRoute", "RouteFailed", "RouteProtocol"]

log = logging.getLogger(__name__)


class RouteFailed(PeerUnreachable):
    """A routed command found no owner, or met a node it could not reach."""


class RecursiveRoute:
    """``route``, for ``Local``: a user command run at a key's owner, recursively.

    Mixed into ``Local``, whose ``_calls`` is a ``RouteProtocol``.
    """

    async def route(self, key: int, type: str, payload: object = None,
                    timeout: float | None = None) -> tuple[object, Remote, int]:
        """Run user command ``type`` at the owner of ``key``; (its reply, the owner, hops).

        Recursive: the command travels from node to node to the owner, which answers us
        directly (one message per hop and one back, half the messages of
        ``find_successor`` followed by ``user_command``). If the route breaks (a node on
        it unreachable, no answer within ``timeout``), falls back to exactly that:
        an iterative lookup, which routes around dead nodes, and a call.
        """
        timeout = self.timeout if timeout is None else timeout
        try:
            result, owner, hops = await self._calls.call_route(key, type, payload, timeout)
            return result, self._remote(owner), hops
        except RouteFailed as e:
            log.debug("%s: route to %x failed (%s); looking up instead", self, key, e)
        owner, hops = await self.find_successor(key)
        return await self.user_command(owner, type, payload, timeout), owner, hops


class RouteProtocol(RingProtocol):
    """The ring's calls and the two verbs of recursive routes, ``route`` and ``routed``."""

    def __init__(self, transport: Transport, routing: Routing | None = None,
                 commands: dict[str, Callable] | None = None, tasks: TaskSet | None = None
                 ) -> None:
        super().__init__(transport, routing, commands, tasks)
        self._routes: dict[int, asyncio.Future] = {}  # our routed commands awaiting answers

    async def call_route(self, key: int, type: str, payload: object,
                         timeout: float) -> tuple[object, Address, int]:
        """Run user command ``type`` at the owner of ``key``: (its reply, owner, hops).

        One message per hop and one back, half of an iterative lookup and a call. Raises
        RemoteError for the handler's own error, RouteFailed if the route broke (a hop
        unreachable, no owner found) or no answer came within ``timeout``.
        """
        rid = random.getrandbits(62)   # not guessable: only the owner's answer resolves it
        loop = asyncio.get_running_loop()
        future = self._routes[rid] = loop.create_future()
        timer = loop.call_later(timeout, self.rpc_routed, rid, "",
                                None, None, f"no answer to a routed {type!r} within {timeout:g} s")
        try:
            self.rpc_route(f"{key:x}", type, payload, str(self.routing.me), rid, 0)
            return await future
        finally:
            timer.cancel()
            self._routes.pop(rid, None)

    @serves(immediate=True)
    def rpc_route(self, key: str, type: str, payload: object, origin: str, rid: int,
                  hops: int, owner: bool = False) -> None:
        """One step of a route: run it here if we are the owner (or our predecessor named
        us, as a lookup's answer would), else send it on to the next hop."""
        routing = self.routing
        try:
            if owner:
                done, node = True, routing.me
            else:
                done, node = routing.next_hop(key_from_wire(key), (), self.transport.is_suspected)
        except LookupFailed as e:
            self._answer_origin(origin, rid, failed=str(e))
            return
        if node == routing.me:
            self._run_routed(type, payload, origin, rid, hops)
        elif hops >= 2 * M:
            self._answer_origin(origin, rid, failed=f"no owner of {key} within {hops} hops")
        else:
            self.transport.send(node, "route",
                                {"key": key, "type": type, "payload": payload,
                                 "origin": origin, "rid": rid, "hops": hops + 1,
                                 "owner": done},
                                failed=lambda e: self._answer_origin(origin, rid,
                                                                     failed=str(e)))

    def _run_routed(self, type: str, payload: object, origin: str, rid: int,
                    hops: int) -> None:
        handler = self.commands.get(type)
        try:
            if handler is None:
                raise RemoteError(f"no handler for user command {type!r}")
            result = handler(payload)
        except Exception as e:
            self._answer_origin(origin, rid, error=_error_text(e), hops=hops)
            return
        if inspect.isawaitable(result):
            self.tasks.spawn(self._finish_routed(result, origin, rid, hops))
        else:
            self._answer_origin(origin, rid, result=result, hops=hops)

    async def _finish_routed(self, result, origin: str, rid: int, hops: int) -> None:
        try:
            value = await result
        except Exception as e:
            self._answer_origin(origin, rid, error=_error_text(e), hops=hops)
        else:
            self._answer_origin(origin, rid, result=value, hops=hops)

    def _answer_origin(self, origin: str, rid: int, **answer: object) -> None:
        answer = {"rid": rid, "owner": str(self.routing.me), **answer}
        if origin == str(self.routing.me):
            self.rpc_routed(**answer)
        else:
            self.transport.send(Address.from_wire(origin), "routed", answer)

    @serves(immediate=True)
    def rpc_routed(self, rid: int, owner: str, result: object = None,
                   error: str | None = None, failed: str | None = None,
                   hops: int = 0) -> None:
        """The answer to one of our routes, from its owner (or from where it broke)."""
        future = self._routes.get(rid)
        if future is None or future.done():
            return  # we gave up on it
        if failed is not None:
            future.set_exception(RouteFailed(failed))
        elif error is not None:
            future.set_exception(RemoteError(error))
        else:
            future.set_result((result, Address.from_wire(owner), hops))


def _error_text(error: Exception) -> str:
    return str(error) if isinstance(error, RpcError) else f"{type(error).__name__}: {error}"
