"""The ring's calls, each as a pair: what a node serves beside how it calls another.

For every verb, ``rpc_<verb>`` runs on the node that is called and ``call_<verb>`` makes
that call on another node: it encodes the arguments and decodes the reply, so the wire's
shape of each call is written in one place. ``@serves`` declares a handler, and with it
its verb (the name after ``rpc_``) and whether it is answered at once; ``VERBS``,
``SERVED`` and ``IMMEDIATE`` are read from those declarations. On the wire, addresses
are "host:port" and keys hex strings. Rectify (Zave 2017), the decision a notification
asks for, sits beside ``rpc_notify``.
"""

from __future__ import annotations

import inspect
import ipaddress
from collections.abc import Callable, Iterable
from typing import ClassVar, NamedTuple

from .address import Address, AddressError
from .errors import RemoteError, RpcError
from .ids import in_open
from .routing import Routing
from .tasks import TaskSet
from .transport import CALLER_HOST, LATER, Transport


class Verb(NamedTuple):
    """A served verb: its handler ``rpc_<verb>``, and whether it is answered at once."""

    handler: Callable
    immediate: bool


def serves(*, immediate: bool = False) -> Callable[[Callable], Callable]:
    """Declare the method ``rpc_<verb>`` the handler of calls of ``<verb>``.

    ``immediate``: it never waits (a plain function), so a transport may answer it as the
    request arrives (``serve_now``); any other handler is a coroutine function, run in a
    task of its own.
    """
    def declare(handler: Callable) -> Callable:
        if not handler.__name__.startswith("rpc_"):
            raise TypeError(f"a handler is named rpc_<verb>, not {handler.__name__}")
        if inspect.iscoroutinefunction(handler) == immediate:
            raise TypeError(f"{handler.__name__}: an immediate handler is a plain function, "
                            "any other a coroutine function")
        handler.served_immediately = immediate
        return handler
    return declare


class RingProtocol:
    """The calls between nodes of the ring, served from ``routing`` and ``commands``.

    Made with a transport only, it can call but not serve (``Remote`` does that).
    A subclass declares more verbs with ``@serves``.
    """

    VERBS: ClassVar[dict[str, Verb]]        # every served verb and its handler
    SERVED: ClassVar[frozenset[str]]        # the verbs served
    IMMEDIATE: ClassVar[frozenset[str]]     # the verbs answered at once (never waiting)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls._declare_verbs()

    @classmethod
    def _declare_verbs(cls) -> None:
        verbs = {}
        for klass in reversed(cls.__mro__):
            for name, handler in vars(klass).items():
                if hasattr(handler, "served_immediately"):
                    verbs[name.removeprefix("rpc_")] = Verb(handler, handler.served_immediately)
        cls.VERBS = verbs
        cls.SERVED = frozenset(verbs)
        cls.IMMEDIATE = frozenset(verb for verb, v in verbs.items() if v.immediate)

    def __init__(self, transport: Transport, routing: Routing | None = None,
                 commands: dict[str, Callable] | None = None, tasks: TaskSet | None = None
                 ) -> None:
        self.transport = transport
        self.routing = routing
        self.commands = {} if commands is None else commands
        self.tasks = tasks or TaskSet()
        self.token = ""   # what ``confirm`` answers to: set by a node learning its address
        self.on_merge: Callable[[Address, int], None] | None = None   # the maintenance's

    async def serve(self, method: str, args: dict) -> object:
        """Answer a call from another node (the ``Serve`` a transport listens with)."""
        verb = self.VERBS.get(method)
        if verb is None or self.routing is None:
            raise RemoteError(f"unknown method {method!r}")
        if verb.immediate:
            return verb.handler(self, **args)
        return await verb.handler(self, **args)

    def serve_now(self, method: str, args: dict) -> object:
        """The answer to a call that needs no waiting, or ``LATER`` (the transport's
        ``Immediate``): an immediate verb never awaits, so no task is needed."""
        verb = self.VERBS.get(method)
        if verb is None or not verb.immediate or self.routing is None:
            return LATER
        return verb.handler(self, **args)

    async def _call(self, address: Address, method: str, args: dict,
                    timeout: float | None = None) -> object:
        return await self.transport.call(address, method, args, timeout)

    # -- ping: are you alive? (always answered at once: Zave's rule 2) ----------------------

    @serves(immediate=True)
    def rpc_ping(self) -> dict:
        return {}

    async def call_ping(self, address: Address, timeout: float | None = None) -> bool:
        try:
            await self._call(address, "ping", {}, timeout)
        except RpcError:
            return False
        return True

    # -- state: your predecessor and successor list (join, stabilize) ----------------------

    @serves(immediate=True)
    def rpc_state(self) -> dict:
        routing = self.routing
        return {"predecessor": _text(routing.predecessor),
                "successors": [str(s) for s in routing.successors],
                "id": f"{routing.me.id:x}"}

    async def call_state(self, address: Address) -> tuple[Address | None, list[Address]]:
        state = await self._call(address, "state", {})
        return _optional_address(state["predecessor"]), _addresses(state["successors"])

    # -- next_hop: one step of an iterative lookup (§4.3) ----------------------------------

    @serves(immediate=True)
    def rpc_next_hop(self, key: str, avoid: list | None = None) -> dict:
        done, node = self.routing.next_hop(key_from_wire(key), set(_addresses(avoid or [])),
                                           self.transport.is_suspected)
        return {"done": done, "node": str(node)}

    async def call_next_hop(self, address: Address, key: int,
                            avoid: Iterable[Address]) -> tuple[bool, Address]:
        reply = await self._call(address, "next_hop",
                                 {"key": f"{key:x}", "avoid": [str(a) for a in avoid]})
        return bool(reply["done"]), _address(reply["node"])

    # -- notify: "I might be your predecessor" (§4.4), answered by rectify -----------------

    @serves()
    async def rpc_notify(self, node: str) -> dict:
        candidate = _address(node)
        self.routing.notified_by(candidate)
        predecessor, me = self.routing.predecessor, self.routing.me
        if predecessor is None or in_open(candidate.id, predecessor.id, me.id):
            await self.rectify(candidate)
        elif candidate != predecessor:
            self.tasks.spawn(self.rectify(candidate))  # needs a ping: answer now, decide later
        return {}

    async def call_notify(self, address: Address) -> None:
        await self._call(address, "notify", {"node": str(self.routing.me)})

    async def rectify(self, node: Address) -> None:
        """Zave 2017: adopt ``node`` as predecessor if it lies in (predecessor, me);
        otherwise only if the current predecessor is dead (suspected, or silent to a ping).
        Rectify replaces the paper's notify, check_predecessor's reset, and flush."""
        routing = self.routing
        predecessor = routing.predecessor
        if node == routing.me or node == predecessor:
            return
        if predecessor is None or in_open(node.id, predecessor.id, routing.me.id):
            routing.set_predecessor(node)
            return
        # a predecessor our transport already saw fail (a call timed out, the failure
        # detector gave up on it) is not pinged again: that would cost another timeout
        if (routing.predecessor_suspected or self.transport.is_suspected(predecessor)
                or not await self.call_ping(predecessor)):
            if routing.predecessor == predecessor:
                routing.set_predecessor(node)

    # -- a graceful leave (ToN'03 §IV.E.4): each neighbour hears of the other --------------

    @serves()
    async def rpc_predecessor_leaving(self, leaver: str, predecessor: str | None) -> dict:
        self.routing.predecessor_leaves(_address(leaver), _optional_address(predecessor))
        return {}

    async def call_predecessor_leaving(self, successor: Address,
                                       predecessor: Address | None) -> None:
        """Tell our ``successor`` we leave, and that ``predecessor`` takes our place."""
        await self._call(successor, "predecessor_leaving",
                         {"leaver": str(self.routing.me), "predecessor": _text(predecessor)})

    @serves()
    async def rpc_successor_leaving(self, leaver: str, successors: list) -> dict:
        self.routing.splice(_address(leaver), _addresses(successors))
        return {}

    async def call_successor_leaving(self, predecessor: Address,
                                     successors: list[Address]) -> None:
        """Tell our ``predecessor`` we leave, and that our ``successors`` take our place."""
        await self._call(predecessor, "successor_leaving",
                         {"leaver": str(self.routing.me),
                          "successors": [str(s) for s in successors]})

    # -- observe: "where do you see me?" (a node listening on a wildcard learns its address) --

    @serves()
    async def rpc_observe(self, port: int, token: str) -> dict:
        """The caller's address as we see it (the connection's source host, its listening
        ``port``), once a call back there has reached the caller (it knows ``token``)."""
        host = CALLER_HOST.get()
        if host is None:
            raise RemoteError("cannot tell where this call came from")
        without_zone = host.partition("%")[0]
        try:
            ip = ipaddress.ip_address(without_zone)
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped   # an IPv4 caller on our dual-stack listen
            seen = Address(ip.compressed, int(port))
        except (ValueError, AddressError) as e:
            raise RemoteError(f"cannot use {host}:{port} as an address: {e}") from None
        try:
            confirmed = await self.call_confirm(seen, token)
        except RpcError as e:
            raise RemoteError(f"you call from {seen}, but a call back there failed: {e}") from None
        if not confirmed:
            raise RemoteError(f"you call from {seen}, but another node answers there")
        return {"address": str(seen)}

    async def call_observe(self, bootstrap: Address, port: int, token: str) -> Address:
        reply = await self._call(bootstrap, "observe", {"port": port, "token": token})
        return _address(reply["address"])

    @serves()
    async def rpc_confirm(self, token: str) -> dict:
        return {"ok": bool(self.token) and token == self.token}

    async def call_confirm(self, address: Address, token: str) -> bool:
        reply = await self._call(address, "confirm", {"token": token})
        return bool(reply.get("ok"))

    # -- merge: "this node of another ring may belong after you" (ring unification) -------

    @serves()
    async def rpc_merge(self, candidate: str, steps: int = 0) -> dict:
        if self.on_merge is not None:
            self.on_merge(_address(candidate), int(steps))   # runs on; answered at once
        return {}

    async def call_merge(self, address: Address, candidate: Address, steps: int) -> None:
        await self._call(address, "merge", {"candidate": str(candidate), "steps": steps})

    # -- user: a command for the layer above (the chat) ------------------------------------

    @serves()
    async def rpc_user(self, type: str, payload: object = None) -> object:
        return await self.run_command(type, payload)

    async def call_user(self, address: Address, type: str, payload: object = None,
                        timeout: float | None = None) -> object:
        return await self._call(address, "user", {"type": type, "payload": payload}, timeout)

    async def run_command(self, type: str, payload: object) -> object:
        handler = self.commands.get(type)
        if handler is None:
            raise RemoteError(f"no handler for user command {type!r}")
        result = handler(payload)
        if inspect.isawaitable(result):
            result = await result
        return result


def _text(address: Address | None) -> str | None:
    return None if address is None else str(address)


def _address(value: object) -> Address:
    return Address.from_wire(value)


def _optional_address(value: object) -> Address | None:
    return None if value is None else _address(value)


def _addresses(values: Iterable[object]) -> list[Address]:
    return [_address(v) for v in values]


def key_from_wire(value: object) -> int:
    """A ring key from its hex text on the wire."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("a key on the wire is a hex string of at most 40 digits")
    return int(value, 16)


RingProtocol._declare_verbs()
