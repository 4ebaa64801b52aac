"""The ring's calls, each as a pair: what a node serves beside how it calls another.

For every verb, ``rpc_<verb>`` runs on the node that is called and ``call_<verb>`` makes
that call on another node: it encodes the arguments and decodes the reply, so the wire's
shape of each call is written in one place. ``@serves`` declares a handler, and with it
its verb (the name after ``rpc_``) and whether it is answered at once; ``VERBS``,
``SERVED`` and ``IMMEDIATE`` are read from those declarations. On the wire, addresses
are "host:port" and keys hex strings. Rectify (Zave 2017), the decision a notification
asks for, sits beside ``rpc_notify``.

A claim about a node is believed only from that node (docs/security.md): a frame
saying that a node leaves, or may be our predecessor, must come from that node's host
(``from_host``, the connection's source address), and the node is asked at its address
before anything changes (``leaving``: it says it leaves, naming the same neighbours;
``state``: a notifier names us as its successor). A node named to take a leaver's place is
adopted only after it answers too. A stranger's frame moves no key range; one that names
our real neighbour costs one call to that neighbour.

Every verb served to another host takes a token of that host's bucket first (``RING_RATE``;
the relay's commands their own, ``RELAY_RATE``); an empty bucket is a RemoteError
("busy") and no handler runs. Honest maintenance of a converged 32-node ring asks one node
at most 5 requests a second from one host (22 at the tests' fast timers; 25 and 82 from
all hosts together): the limits leave room for lookups, joins and many nodes behind one
address.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable
from typing import ClassVar, NamedTuple

from .address import Address, AddressError, ip_of
from .bucket import HostBuckets
from .errors import RemoteError, RpcError
from .ids import in_open
from .routing import Routing
from .tasks import TaskSet
from .transport import CALLER_HOST, LATER, Transport

MAX_LISTED = 64          # successors a leave may name (a node keeps r of them)
RECTIFY_AT_ONCE = 64     # notifiers being checked at once (more wait for the next round)
RECTIFY_PER_HOST = 4     # of which on one host: a host's stalling listeners block no other
RING_RATE = (200.0, 1000.0)      # ring verbs per caller host: a second, burst
RELAY_RATE = (1000.0, 4000.0)    # relay commands (relay.reserve, .release, .forward) per host
RELAY_PREFIX = "relay."


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
        # set by a node that leaves: (predecessor, successors) it names to its neighbours,
        # what it answers ``leaving`` with while they check its word
        self.departure: tuple[Address | None, list[Address]] | None = None
        self._rectifying: set[Address] = set()   # notifiers being asked now
        self.dial_backs = None   # reachability.DialBacks: dial_back and dialled (the node's)
        self.rates = HostBuckets(*RING_RATE)          # ring verbs per caller host
        self.relay_rates = HostBuckets(*RELAY_RATE)   # relay commands per caller host

    def _admit(self, method: str, args: dict) -> None:
        """The caller host's bucket (``RING_RATE``; relay commands: ``RELAY_RATE``);
        RemoteError ("busy") when it is empty. The chat's own verbs (``user`` of any other
        type) are limited by the chat (core/chat/wire/rate.py); a node's calls to itself
        are not limited."""
        host = CALLER_HOST.get()
        if host is None:
            return
        buckets = self.rates
        if method == "user":
            kind = args.get("type") if isinstance(args, dict) else None
            if not (isinstance(kind, str) and kind.startswith(RELAY_PREFIX)):
                return
            buckets = self.relay_rates
        if not buckets.take(_ip(host) or host.lower(), asyncio.get_running_loop().time()):
            raise RemoteError(f"busy: more than {buckets.rate:g} requests a second from "
                              f"{host}")

    async def serve(self, method: str, args: dict) -> object:
        """Answer a call from another node (the ``Serve`` a transport listens with)."""
        verb = self.VERBS.get(method)
        if verb is None or self.routing is None:
            raise RemoteError(f"unknown method {method!r}")
        self._admit(method, args)
        if verb.immediate:
            return verb.handler(self, **args)
        return await verb.handler(self, **args)

    def serve_now(self, method: str, args: dict) -> object:
        """The answer to a call that needs no waiting, or ``LATER`` (the transport's
        ``Immediate``): an immediate verb never awaits, so no task is needed."""
        verb = self.VERBS.get(method)
        if verb is None or not verb.immediate or self.routing is None:
            return LATER
        self._admit(method, args)
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
        predecessor = routing.predecessor
        # "alive": the predecessor answered our last ping (a node between a caller and us
        # that the caller cannot reach is alive only on this word: Routing.hidden)
        alive = (predecessor is not None and not routing.predecessor_suspected
                 and not self.transport.is_suspected(predecessor))
        return {"predecessor": _text(predecessor),
                "successors": [str(s) for s in routing.successors],
                "id": f"{routing.me.id:x}", "alive": alive}

    async def call_state(self, address: Address) -> tuple[Address | None, list[Address]]:
        predecessor, successors, _ = await self.call_state_alive(address)
        return predecessor, successors

    async def call_state_alive(self, address: Address
                               ) -> tuple[Address | None, list[Address], bool]:
        """``call_state``, and whether the node's predecessor answered its last ping."""
        state = await self._call(address, "state", {})
        return (_optional_address(state["predecessor"]), _addresses(state["successors"]),
                state.get("alive") is True)

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
        routing = self.routing
        predecessor, me = routing.predecessor, routing.me
        if candidate in (me, predecessor):
            return {}
        if not from_host(candidate):
            raise RemoteError(f"a notify naming {candidate} comes from {candidate.host} only")
        routing.notified_by(candidate)   # told too when we leave (routing.notifiers)
        if predecessor is None or in_open(candidate.id, predecessor.id, me.id):
            await self.rectify(candidate)
        else:
            self.tasks.spawn(self.rectify(candidate))  # needs a ping: answer now, decide later
        return {}

    async def call_notify(self, address: Address) -> None:
        await self._call(address, "notify", {"node": str(self.routing.me)})

    async def rectify(self, node: Address) -> None:
        """Zave 2017: adopt ``node`` as predecessor if it lies in (predecessor, me);
        otherwise only if the current predecessor is dead (suspected, or silent to a ping).
        Rectify replaces the paper's notify, check_predecessor's reset, and flush.

        Either way only once ``node`` answered at its address naming us as its successor:
        a notification is a claim about the notifier, believed from the notifier only."""
        routing = self.routing
        if node in (routing.me, routing.predecessor) or not await self._names_us_next(node):
            return
        predecessor = routing.predecessor            # (it may have changed while we asked)
        if node == predecessor:
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

    async def _names_us_next(self, node: Address) -> bool:
        """Whether ``node`` answers at its address with us as its first successor (one
        check per notifier at a time, ``RECTIFY_PER_HOST`` per host, ``RECTIFY_AT_ONCE``
        in all; a notifier left out now notifies again next round)."""
        if (node in self._rectifying or len(self._rectifying) >= RECTIFY_AT_ONCE
                or sum(a.host == node.host for a in self._rectifying) >= RECTIFY_PER_HOST):
            return False
        self._rectifying.add(node)
        try:
            _, successors = await self.call_state(node)
        except (RpcError, AddressError, ValueError, KeyError, TypeError):
            return False
        finally:
            self._rectifying.discard(node)
        return successors[:1] == [self.routing.me]

    # -- a graceful leave (ToN'03 §IV.E.4): each neighbour hears of the other --------------
    #
    # Believed only from the leaver: the frame comes from the leaver's host, the leaver
    # answers ``leaving`` at its address naming the same neighbours, and the node named to
    # take its place answers too. Anything less changes nothing: a leaver that vanishes is
    # the failure detector's to notice.

    @serves(immediate=True)
    def rpc_leaving(self) -> dict:
        """Whether we are leaving, and the neighbours we named (the check of a leave)."""
        if self.departure is None:
            return {"leaving": False}
        predecessor, successors = self.departure
        return {"leaving": True, "predecessor": _text(predecessor),
                "successors": [str(s) for s in successors]}

    async def call_leaving(self, address: Address
                           ) -> tuple[Address | None, list[Address]] | None:
        """What ``address`` says it named when leaving; None if it says it is not leaving."""
        reply = await self._call(address, "leaving", {})
        if not reply.get("leaving"):
            return None
        return _optional_address(reply["predecessor"]), _addresses(reply["successors"])

    async def _left(self, leaver: Address) -> tuple[Address | None, list[Address]]:
        """The neighbours ``leaver`` named, in its own words, or RemoteError: the frame
        is not from its host, or the leaver, asked at its address, does not say it leaves."""
        if not from_host(leaver):
            raise RemoteError(f"a leave of {leaver} comes from {leaver.host} only")
        try:
            said = await self.call_leaving(leaver)
        except (RpcError, AddressError, ValueError, KeyError, TypeError) as e:
            raise RemoteError(f"{leaver} could not confirm it leaves: {e}") from None
        if said is None:
            raise RemoteError(f"{leaver} says it is not leaving")
        return said

    @serves()
    async def rpc_predecessor_leaving(self, leaver: str, predecessor: str | None) -> dict:
        routing = self.routing
        gone, named = _address(leaver), _optional_address(predecessor)
        if routing.predecessor != gone:
            return {}                  # not our predecessor: nothing to check, no change
        said, _ = await self._left(gone)
        if said != named:
            raise RemoteError(f"{gone} names {said} as its predecessor, not {named}")
        if named is not None and named != routing.me and not await self._follows(named, gone):
            named = None               # silent, or it disagrees: not adopted
        if routing.predecessor != gone:
            return {}
        if named is not None or routing.successor == routing.me:
            routing.predecessor_leaves(gone, named)     # (us: a ring of one again)
        else:
            # keep the leaver's range until the next notifier takes its place (rectify
            # replaces a suspected predecessor at once): no range is left without owner
            routing.predecessor_answered(gone, False)
        return {}

    async def _follows(self, node: Address, leaver: Address) -> bool:
        """Whether ``node`` answers at its address with the leaver or us as its successor."""
        try:
            _, successors = await self.call_state(node)
        except (RpcError, AddressError, ValueError, KeyError, TypeError):
            return False
        return successors[:1] in ([leaver], [self.routing.me])

    async def call_predecessor_leaving(self, successor: Address,
                                       predecessor: Address | None) -> None:
        """Tell our ``successor`` we leave, and that ``predecessor`` takes our place."""
        await self._call(successor, "predecessor_leaving",
                         {"leaver": str(self.routing.me), "predecessor": _text(predecessor)})

    @serves()
    async def rpc_successor_leaving(self, leaver: str, successors: list) -> dict:
        routing = self.routing
        if not isinstance(successors, list) or len(successors) > MAX_LISTED:
            raise RemoteError(f"a leave names at most {MAX_LISTED} successors")
        gone, theirs = _address(leaver), _addresses(successors)
        if gone not in routing.successors or gone == routing.me:
            return {}                  # not one of our successors: nothing to check
        _, said = await self._left(gone)
        if said != theirs:
            raise RemoteError(f"{gone} names other successors than this frame")
        rest = [s for s in theirs if s != gone]
        first = rest[0] if rest else routing.me
        if first != routing.me and not await self._precedes(first, gone):
            routing.drop(gone)         # its successor does not answer as one: just drop it
            return {}
        routing.splice(gone, theirs)
        return {}

    async def _precedes(self, node: Address, leaver: Address) -> bool:
        """Whether ``node`` answers at its address with the leaver or us as predecessor."""
        try:
            predecessor, _ = await self.call_state(node)
        except (RpcError, AddressError, ValueError, KeyError, TypeError):
            return False
        return predecessor in (leaver, self.routing.me)

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
        ip = ip_of(host)   # an IPv4 caller on our dual-stack listen as IPv4
        try:
            if ip is None:
                raise ValueError(f"{host.partition('%')[0]!r} does not appear to be an IPv4 "
                                 "or IPv6 address")
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

    # -- dial_back: "can you reach me?" (reachability.py: what is dialled, bounds, verdict) --

    @serves()
    async def rpc_dial_back(self, ports: object = None, nonce: object = None) -> dict:
        """Dial the caller's own host (never another) at ``ports``, asking ``dialled``."""
        if self.dial_backs is None:
            raise RemoteError("this node does not dial back")
        return await self.dial_backs.serve(CALLER_HOST.get(), ports, nonce)

    async def call_dial_back(self, address: Address, ports: list[int], nonce: str,
                             timeout: float | None = None) -> dict:
        reply = await self._call(address, "dial_back", {"ports": ports, "nonce": nonce},
                                 timeout)
        if not isinstance(reply, dict):
            raise RemoteError("a dial_back reply is an object")
        return reply

    @serves(immediate=True)
    def rpc_dialled(self, nonce: object = None) -> dict:
        """A helper reached us: is ``nonce`` one our own check handed out?"""
        return {"ok": self.dial_backs is not None and self.dial_backs.expects(nonce)}

    async def call_dialled(self, address: Address, nonce: str,
                           timeout: float | None = None) -> bool:
        """Through the transport (``reachability.dial_tcp`` dials the same verb on a new
        connection, which a pooling transport cannot promise)."""
        reply = await self._call(address, "dialled", {"nonce": nonce}, timeout)
        return isinstance(reply, dict) and reply.get("ok") is True

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


def from_host(address: Address) -> bool:
    """Whether the request being served may come from ``address``: its connection comes
    from that address's host. A caller the transport cannot place, or an address given by
    name, passes: the call back to the address decides."""
    host = CALLER_HOST.get()
    if host is None:
        return True
    seen, claimed = _ip(host), _ip(address.host)
    return seen is None or claimed is None or seen == claimed


def _ip(host: str) -> str | None:
    """``host`` as a canonical IP (IPv4-mapped IPv6 as IPv4, no zone); None for a name."""
    ip = ip_of(host.strip("[]"))
    return None if ip is None else ip.compressed


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
