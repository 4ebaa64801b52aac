"""``Local``: this node, the facade of the Chord layer (configuration and lifecycle).

The node owns its routing state (``routing.Routing``), serves and makes the ring's
calls through ``protocol.RingProtocol``, and keeps its place in the ring with
``maintenance.Maintenance`` (Stoica et al. 2001 as corrected by Zave 2017). Lookups are
iterative and count hops. The node reaches the network only through its ``Transport``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import secrets
from collections.abc import Callable, Iterable

from .address import Address, AddressError
from .client import ClientMode, ClientProtocol, ClientSettings
from .detour import Detours
from .errors import JoinError, ListenError, LookupFailed, PeerUnreachable, RemoteError, RpcError
from .ids import M, short_id
from .maintenance import Maintenance
from .merges import MergeGate
from .peers import Peers
from .punching import Punching
from .reachability import (
    BOOTSTRAP_TRIES,
    DialBacks,
    NotReachable,
    Verdict,
    dial_tcp,
    pick_helpers,
    unchecked,
)
from .reachability import check as check_reachable
from .recursive import RecursiveRoute, RouteProtocol
from .relay import (
    FORWARD,
    PUNCH,
    RELEASE,
    RESERVE,
    Relay,
    RelayedAddress,
    RelayLimits,
    answer,
    reachable,
)
from .remote import Remote
from .routing import Routing
from .tasks import TaskSet
from .tcp import TcpTransport
from .transport import CALLER_HOST, CALLER_LINK, DEFAULT_TIMEOUT, Transport

__all__ = ["JoinError", "Local", "LookupFailed", "NotReachable", "Remote"]

log = logging.getLogger(__name__)


class Local(RecursiveRoute):
    """This node: it serves the ring, keeps its successor list and predecessor, routes.

    Args:
        address: where to listen; port 0 picks a free port (the id follows the real one).
        bootstrap: any member of the ring to join through; None creates a new ring.
        advertise: the address other nodes dial (the id is its hash), for a node that
            listens on a wildcard address or behind a port mapping. Without it, a node
            listening on 0.0.0.0 or :: learns its address from the bootstrap (the address
            the bootstrap sees it call from, once a call back there reached it).
        successors: r, the length of the successor list.
        stabilize_interval, fix_fingers_interval, check_predecessor_interval: seconds.
        probe_interval: seconds between probes of remembered peers outside our ring (for
            a merge after a partition); None: never probe.
        probes: remembered peers probed per round.
        timeout: the default timeout of every call to another node, in seconds.
        transport: the network; TCP unless given (the simulator passes its own).
        client: start in client mode (core/chord/client.py): a node nobody can dial, in
            no successor list, reached through a relay; None: a full member.
        relay: serve as a relay for client nodes within these limits (core/chord/relay.py;
            the layer above says which user commands it forwards); None: no relaying.
        check_reachability: before joining, ask ring nodes to dial this node back
            (reachability.py); a node they cannot reach does not join (``start`` raises
            ``NotReachable``). The verdict is kept in ``reachability``. Off by default
            for library callers that build rings (simulations, benchmarks); the runtime
            turns it on.
        reachability_gap: seconds between the check's rounds (None: the stabilize interval).
    """

    def __init__(self, address: Address, bootstrap: Address | None = None, *,
                 advertise: Address | None = None, successors: int = 8,
                 stabilize_interval: float = 0.5,
                 fix_fingers_interval: float = 1.0, check_predecessor_interval: float = 0.5,
                 probe_interval: float | None = 5.0, probes: int = 2,
                 timeout: float = DEFAULT_TIMEOUT, transport: Transport | None = None,
                 client: ClientSettings | None = None,
                 relay: RelayLimits | None = None,
                 check_reachability: bool = False,
                 reachability_gap: float | None = None) -> None:
        if successors < 1:
            raise ValueError("the successor list needs at least one entry")
        if advertise is not None and (advertise.is_wildcard or advertise.port == 0):
            raise AddressError(f"cannot advertise {advertise}: other nodes must be able to "
                               "dial it (a host address and a port)")
        self.address = address
        self.listen_address = address
        self.advertise = advertise
        self.bootstrap = bootstrap
        self.r = successors
        self.stabilize_interval = stabilize_interval
        self.fix_fingers_interval = fix_fingers_interval
        self.check_predecessor_interval = check_predecessor_interval
        self.probe_interval = probe_interval
        self.probes = probes
        self.timeout = timeout
        self.transport: Transport = transport or TcpTransport(timeout=timeout)
        self._commands: dict[str, Callable] = {}
        self._notify_handler: Callable | None = None
        self._listeners: list[Callable[[str, dict], None]] = []
        self._background = TaskSet()
        self._running = False
        self._token = ""
        self.client = ClientMode(self, client) if client is not None else None
        self._maintain_client = True
        self.relay = Relay(self, relay) if relay is not None and client is None else None
        # calls through a neighbour when the target is out of our reach (detour.py); the
        # layer above says which user commands may take one
        self.detours = Detours(self)
        # client id -> an address a hole-punched connection reaches that client at
        # (core/chord/holepunch.py fills it); calls to the client try it before its relay
        self.punched: dict[str, Address] = {}
        self.punching = Punching(self) if client is not None else None
        if client is not None and isinstance(self.transport, TcpTransport):
            self.transport.share_port = True   # the relay sees the port a punch leaves from
        self.check_reachability = check_reachability
        self.moving = False   # True while ``relocate`` takes the node to a new address
        self._idle_relay: Relay | None = None   # a member's relay while it is a client
        self.reachability_gap = (stabilize_interval if reachability_gap is None
                                 else reachability_gap)
        self.reachability: Verdict | None = None   # set by start() when checked
        dial = dial_tcp if isinstance(self.transport, TcpTransport) else self._dial_by_call
        self._dial_backs = DialBacks(dial, self._loop_time)
        self._build(address)

    def _build(self, address: Address) -> None:
        """The routing state, calls and maintenance of a node at ``address``, alone."""
        self._routing = Routing(address, self.r, self._changed)
        protocol = RouteProtocol if self.client is None else ClientProtocol
        self._calls = protocol(self.transport, self._routing, self._commands,
                               self._background)
        self._calls.token = self._token
        self._calls.dial_backs = self._dial_backs
        self._maintenance = Maintenance(self._routing, self._calls, self._lookup,
                                        Peers(address), self._changed, self.probes)
        # a peer's merge request: bounded, so strangers cannot make us dial at will
        self._calls.on_merge = MergeGate(self._maintenance.start_merge, self._loop_time)

    # -- what it knows ---------------------------------------------------------------------

    @property
    def id(self) -> int:
        return self.address.id

    @property
    def running(self) -> bool:
        return self._running

    def successor(self) -> Remote:
        return self._remote(self._routing.successor)

    def successors(self) -> list[Remote]:
        return [self._remote(a) for a in self._routing.successors]

    def predecessor(self) -> Remote | None:
        return self._remote_or_none(self._routing.predecessor)

    def fingers(self) -> list[Remote]:
        """The distinct fingers, in the order of their starts n + 2**i (§4.2)."""
        return [self._remote(a) for a in self._routing.fingers]

    def is_ours(self, key: int) -> bool:
        """True when ``key`` lies in (predecessor, self]; a node alone owns everything.
        A client node owns nothing."""
        return self.client is None and self._routing.is_ours(key)

    @property
    def reach(self) -> str:
        """How others reach this node: "direct", or "relayed via HOST:PORT"."""
        if isinstance(self.address, RelayedAddress):
            return f"relayed via {self.address.relay}"
        return "direct"

    @property
    def protocol(self) -> RouteProtocol:
        """The object that makes this node's ring calls and serves its verbs (a
        ``RouteProtocol``, or a ``ClientProtocol`` in client mode; its class names the
        verbs in ``VERBS`` and ``SERVED``). For test doubles that make a node lie
        (``hostile.py``) and tests that list the verbs; the node's own methods are the
        way to call others."""
        return self._calls

    def closest_preceding_node(self, key: int, avoid: Iterable[Address] = ()) -> Address:
        """The known node that most closely precedes ``key`` (§4.3), skipping suspects
        (where the robust lookup's disjoint paths start, ``robust.RobustLookup``)."""
        return self._routing.closest_preceding_node(key, set(avoid), self.transport.is_suspected)

    # -- the layer above -------------------------------------------------------------------

    def register_command(self, type: str, handler: Callable) -> None:
        """Serve user commands of ``type``: ``handler(payload)``, maybe async, returns the reply."""
        self._commands[type] = handler

    def set_notify_handler(self, handler: Callable | None) -> None:
        """Call ``handler(old, new)`` (Remote or None each) whenever the predecessor changes."""
        self._notify_handler = handler

    def add_listener(self, listener: Callable[[str, dict], None]) -> None:
        """Call ``listener(kind, detail)`` on ring events, for logs and the UI."""
        self._listeners.append(listener)

    async def user_command(self, address: Address | Remote, type: str, payload: object = None,
                           timeout: float | None = None) -> object:
        """Send a user command to ``address`` (this node included) and return its reply."""
        if isinstance(address, Remote):
            address = address.address
        if address == self.address:
            # a call to ourselves comes from nobody else, even made while serving a peer
            # (or by a task started then: it inherits that peer's host and connection)
            host, link = CALLER_HOST.set(None), CALLER_LINK.set(None)
            try:
                return await self._calls.run_command(type, payload)
            finally:
                CALLER_LINK.reset(link)
                CALLER_HOST.reset(host)
        if isinstance(address, RelayedAddress):
            return await self._relayed(address, type, payload, timeout)
        if type not in self.detours.types:
            return await self._calls.call_user(address, type, payload, timeout)
        if self.detours.remembered(address):   # lately reachable only by a detour
            with contextlib.suppress(PeerUnreachable):
                return await self.detours.call(address, type, payload, timeout)
        try:
            return await self._calls.call_user(address, type, payload, timeout)
        except PeerUnreachable:
            # alive to others, maybe, though not to us (a firewall between the two of us):
            # through a neighbour (detour.py)
            return await self.detours.call(address, type, payload, timeout)

    async def _relayed(self, address: RelayedAddress, type: str, payload: object,
                       timeout: float | None) -> object:
        """A user command to a client node: over a hole-punched connection if there is
        one, else through its relay (``relay.forward``)."""
        direct = self.punched.get(address.client)
        if direct is not None and not self._still_connected(direct):
            self.punched.pop(address.client, None)   # it closed: not dialled through a NAT
            direct = None
        if direct is not None:
            try:
                return await self._calls.call_user(direct, type, payload, timeout)
            except PeerUnreachable:
                self.punched.pop(address.client, None)
        forward = {"to": address.client, "type": type, "payload": payload}
        if self.relay is not None and address.relay == self.address:
            # our own call to our own client comes from us, also when a task started while
            # serving a peer makes it (the context still holds that peer's host and link:
            # the relay would stamp the peer's host as the origin, and the client refuse)
            host, link = CALLER_HOST.set(None), CALLER_LINK.set(None)
            try:
                return answer(address, await self.relay.forward(address.client, type, payload))
            finally:
                CALLER_LINK.reset(link)
                CALLER_HOST.reset(host)
        reply = answer(address, await self._calls.call_user(address.relay, "relay.forward",
                                                            forward, timeout))
        if self.punching is not None:
            self.punching.want(address)   # a direct connection, if the routers allow
        return reply

    def _still_connected(self, address: Address) -> bool:
        is_connected = getattr(self.transport, "is_connected", None)
        return is_connected is None or is_connected(address)

    def reach_of(self, address: str) -> str:
        """How this node reaches a user at ``address``: "direct", "direct (hole-punched)"
        or "relayed via HOST:PORT"."""
        try:
            parsed = reachable(address)
        except ValueError:
            return "unreachable (a malformed address)"
        if not isinstance(parsed, RelayedAddress):
            return "direct"
        direct = self.punched.get(parsed.client)
        if direct is not None and self._still_connected(direct):
            return "direct (hole-punched)"
        return f"relayed via {parsed.relay}"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, *, maintain: bool = True) -> None:
        """Listen, then join the ring through ``bootstrap`` or create a new one.

        Args:
            maintain: run stabilize, fix_fingers and check_predecessor on their intervals.
                False leaves them to the caller: a benchmark that drives the rounds
                itself, or a simulation that builds a converged ring with ``adopt``.

        Raises ListenError if the address cannot be bound, JoinError if the bootstrap
        cannot be reached or answers nonsense, or if a wildcard listen has neither an
        address to advertise nor a bootstrap to learn one from; NotReachable (a
        JoinError) if ``check_reachability`` and the ring cannot dial this node.
        """
        if self.client is not None:
            await self._start_client(maintain)
            return
        if self.listen_address.is_wildcard and not (self.advertise or self.bootstrap):
            raise JoinError(_needs_advertise(self.listen_address, "there is no bootstrap to "
                                                                  "learn it from"))
        listening = await self.transport.listen(self.listen_address, self._serve,
                                                self._serve_now)
        self.address = self.advertise or listening
        self._running = True
        if self.check_reachability:
            self.reachability = await self._check_reachability(listening)
            if not self.reachability.reachable:
                await self._shutdown()
                raise NotReachable(self.reachability)
            self.address = self.reachability.address
        elif self.address.is_wildcard:
            try:
                self.address = await self._learn_address(listening)
            except (RpcError, AddressError, ValueError, KeyError, TypeError) as e:
                await self._shutdown()
                raise JoinError(_needs_advertise(listening, f"{self.bootstrap} could not tell "
                                                            f"it: {e}")) from None
        self._build(self.address)
        if self.bootstrap is not None:
            try:
                await self._maintenance.join(self.bootstrap)
            except (RpcError, AddressError, ValueError, KeyError, TypeError) as e:
                await self._shutdown()
                raise JoinError(f"cannot join the ring through {self.bootstrap}: {e}") from None
            self._maintenance.peers.saw([self.bootstrap], self._loop_time())
        if maintain:
            self.start_maintenance()
        self._emit("started", {"address": str(self.address), "id": self.id,
                               "bootstrap": str(self.bootstrap) if self.bootstrap else None})

    async def relocate(self, listen: Address, entries: Iterable[Address],
                       client: ClientSettings | None = None) -> None:
        """This full member's address is gone (a laptop carried to another network): start
        again, in place, at ``listen`` as a new node at another position (docs/nat.md, "A
        full member that moves"). The old position is left without a word (its neighbours
        cannot be reached from here, nor it from there): they drop it as they drop a dead
        node and serve its keys from the replicas. Tries ``entries`` in order as the
        bootstrap: the fresh dial-back decides (a full member if the ring reaches it at the
        new address, else a client through relays, with ``client``'s settings). The
        layer above hears ``moved`` (old and new address), and keeps its handlers, its
        users and their state. JoinError if no entry lets it in (it is then stopped);
        ListenError if ``listen`` cannot be bound. With no ``entries`` (a node alone in
        its ring) it starts a new ring there."""
        if self.client is not None and self._running:
            raise JoinError("a client moves by itself (client.py): relocate a full member")
        if self.client is not None:
            self._become_member()   # a move that ended as a client and failed: afresh
        old = self.address
        through: list[Address | None] = [
            e for e in dict.fromkeys(entries)
            if isinstance(e, Address) and not isinstance(e, RelayedAddress) and e != old]
        if not through:
            through = [None]   # it knew nobody (it started the ring): a new ring there
        self.moving = True
        try:
            await self._maintenance.stop()
            await self._shutdown()
            self.punched.clear()
            failures = []
            for entry in through:
                self._reset(listen, entry)
                try:
                    try:
                        await self.start()
                    except NotReachable as e:
                        log.info("%s: %s", listen, e)
                        self._become_client(client or ClientSettings())
                        self._reset(listen, entry)
                        await self.start()
                        self.reachability = e.verdict   # why it is a client now
                except ListenError:
                    raise
                except JoinError as e:
                    failures.append(f"{entry}: {e}")
                    continue
                break
            else:
                if self.client is not None:
                    self._become_member()
                self._reset(listen, None)
                raise JoinError("could not join again from the new address: "
                                + ("; ".join(failures) or "no node to join through"))
        finally:
            self.moving = False
        self._emit("moved", {"old": str(old), "new": str(self.address),
                             "client": self.client is not None})

    def _reset(self, listen: Address, bootstrap: Address | None) -> None:
        """Back to a node that has not started: listening at ``listen``, joining through
        ``bootstrap``, alone."""
        self.listen_address = self.address = listen
        if self.advertise is not None and self.advertise.host != listen.host \
                and not listen.is_wildcard:
            self.advertise = None   # it named the old network
        self.bootstrap = bootstrap
        self.reachability = None
        self._build(listen)

    def _become_client(self, settings: ClientSettings) -> None:
        """A full member that nobody can dial any more turns client (it relays no more)."""
        self.client = ClientMode(self, settings)
        for command in (RESERVE, RELEASE, FORWARD):
            self._commands.pop(command, None)
        self._idle_relay, self.relay = self.relay, None
        self.punching = Punching(self)
        if isinstance(self.transport, TcpTransport):
            self.transport.share_port = True

    def _become_member(self) -> None:
        """Undo ``_become_client`` (a stopped node only): a full member, relaying as before."""
        self.client, self.punching = None, None
        self._commands.pop(PUNCH, None)
        self.relay, self._idle_relay = self._idle_relay, None
        if self.relay is not None:
            self.register_command(RESERVE, self.relay.rpc_reserve)
            self.register_command(RELEASE, self.relay.rpc_release)
            self.register_command(FORWARD, self.relay.rpc_forward)
        if isinstance(self.transport, TcpTransport):
            self.transport.share_port = False
            self.transport.shared_ports.clear()

    async def _start_client(self, maintain: bool) -> None:
        """Client mode: no listening (unless asked), no join; a relay, and a routing state
        of our own to look keys up from (core/chord/client.py)."""
        if self.bootstrap is None and not self.client.settings.relays:
            raise JoinError("a client node needs a bootstrap or a relay to reach the ring")
        self._running = True
        self._maintain_client = maintain
        try:
            await self.client.start()
        except (RpcError, AddressError, ValueError, KeyError, TypeError, OSError) as e:
            await self._shutdown()
            raise JoinError(f"cannot reach the ring as a client: {e}") from None
        self._emit("started", {"address": str(self.address), "id": self.id,
                               "bootstrap": str(self.bootstrap) if self.bootstrap else None,
                               "client": True})

    async def _rebase(self, address: Address, entry: Address) -> None:
        """A client takes ``address`` (a new relay): its routing state is built again from
        outside through ``entry``, without a word to any node; the layer above hears
        ``moved`` if the address changed."""
        old = self.address
        await self._maintenance.stop()
        self.address = address
        self._build(address)
        await self._maintenance.join(entry)
        if self._maintain_client:
            self._maintenance.start(self.stabilize_interval, self.fix_fingers_interval,
                                    self.check_predecessor_interval, None)
        if old != address and isinstance(old, RelayedAddress):
            self._emit("moved", {"old": str(old), "new": str(address)})

    async def _near(self, entry: Address, key: int) -> list[Address]:
        """The owner of ``key`` and its successors, asked through ``entry`` (a client
        choosing a relay near its own id)."""
        owner, _ = await self._lookup(entry, key, set())
        _, successors = await self._calls.call_state(owner)
        return [owner, *successors]

    def start_maintenance(self) -> None:
        """Run the maintenance rounds on their intervals (``start`` does, unless told not
        to; a simulation that adopted a converged state starts them here)."""
        self._maintenance.start(self.stabilize_interval, self.fix_fingers_interval,
                                self.check_predecessor_interval, self.probe_interval)

    @property
    def peers(self) -> Peers:
        """The peers this node remembers (successors, fingers, and the lost ones)."""
        return self._maintenance.peers

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    async def _learn_address(self, listening: Address) -> Address:
        """Ask the bootstrap where it sees us; it calls back there to confirm it is us."""
        assert self.bootstrap is not None
        self._token = self._calls.token = secrets.token_hex(16)
        try:
            seen = await self._calls.call_observe(self.bootstrap, listening.port, self._token)
        finally:
            self._token = self._calls.token = ""
        log.info("%s: the bootstrap %s sees this node at %s", listening, self.bootstrap, seen)
        return seen

    async def _check_reachability(self, listening: Address) -> Verdict:
        """Ask the bootstrap and nodes of its successor list to dial us back
        (reachability.py); a JoinError if the bootstrap itself does not answer."""
        claimed = self.advertise or listening
        if self.bootstrap is None:
            return unchecked(claimed, "nobody to ask: it starts the ring")
        for attempt in range(1, BOOTSTRAP_TRIES + 1):
            # the first call of a start: a lost SYN or two (a router just up, a busy
            # bootstrap) must not end it, so a bootstrap that does not answer is asked again
            # (one that answers nonsense is not)
            try:
                predecessor, successors = await self._calls.call_state(self.bootstrap)
                break
            except PeerUnreachable as e:
                if attempt < BOOTSTRAP_TRIES:
                    log.info("%s: the bootstrap %s did not answer (%s): asking again",
                             listening, self.bootstrap, e)
                    continue
                await self._shutdown()
                raise JoinError(f"cannot join the ring through {self.bootstrap} "
                                f"({BOOTSTRAP_TRIES} tries): {e}") from None
            except (RpcError, AddressError, ValueError, KeyError, TypeError) as e:
                await self._shutdown()
                raise JoinError(f"cannot join the ring through {self.bootstrap}: {e}") from None
        candidates = [self.bootstrap, *successors, *([predecessor] if predecessor else [])]
        helpers = pick_helpers(candidates, [claimed, listening])
        timeout = self._dial_backs.dial_timeout + self.timeout

        async def ask(helper: Address, ports: list[int], nonce: str) -> dict:
            return await self._calls.call_dial_back(helper, ports, nonce, timeout)

        verdict = await check_reachable(ask, helpers, self._dial_backs, claimed=claimed,
                                        listen_port=listening.port,
                                        advertised=self.advertise is not None,
                                        gap=self.reachability_gap)
        log.info("%s: %s", listening, verdict.text())
        return verdict

    async def _dial_by_call(self, address: Address, nonce: str, timeout: float) -> bool:
        return await self._calls.call_dialled(address, nonce, timeout)

    def adopt(self, state: Routing) -> None:
        """Take ``state``'s successor list, predecessor and fingers as this node's own.

        For simulations that build a converged ring directly (``sim.converged_ring``)
        instead of running it to convergence: no checks, no events, no notify handler.
        Call it after ``start`` (which begins from a ring of one).
        """
        self._routing.adopt(state)

    async def leave(self) -> None:
        """Leave gracefully: splice predecessor and successor together, then close."""
        if not self._running:
            return
        if self.client is not None:
            await self.client.stop()
        await self._maintenance.stop()
        await self._maintenance.leave()
        self._emit("left", {})
        await self._shutdown()

    async def stop(self) -> None:
        """Stop abruptly, as a crash would: no goodbyes, sockets closed."""
        if self._running:
            if self.client is not None:
                await self.client.stop(release=False)
            await self._maintenance.stop()
            await self._shutdown()

    async def _shutdown(self) -> None:
        self._running = False
        await self._background.cancel_all()
        await self.transport.close()

    # -- maintenance rounds, for callers that drive them (start(maintain=False)) -----------

    async def stabilize(self) -> None:
        """One stabilize round (see ``Maintenance.stabilize``)."""
        await self._maintenance.stabilize()

    async def fix_fingers(self) -> None:
        """Recompute the distinct fingers: finger i is successor(n + 2**i) (§4.2)."""
        await self._maintenance.fix_fingers()

    async def probe(self) -> None:
        """One probe round of remembered peers outside our view (see ``Maintenance.probe``)."""
        await self._maintenance.probe()

    async def merge(self, candidate: Address) -> None:
        """Run a merge walk with ``candidate`` from here to its end (see
        ``Maintenance.merge``); a node of our own ring changes nothing."""
        await self._maintenance.merge(candidate)

    # -- lookups (§4.3, iterative) ---------------------------------------------------------

    async def find_successor(self, key: int, avoid: Iterable[Address] = ()) -> tuple[Remote, int]:
        """The owner of ``key`` and the number of hops it took (iterative, §4.3).

        The owner is named by its predecessor and not contacted, so right after a crash it
        may be dead: a caller whose call to it fails looks up again with it in ``avoid``
        (nodes the caller knows to be dead), and is routed around it.
        """
        start = self.address
        if self.client is not None and self._routing.successor == self.address:
            start = self.client.relay or self.bootstrap   # no routing state (yet)
        owner, hops = await self._lookup(start, key, set(avoid))
        return self._remote(owner), hops

    async def _lookup(self, start: Address, key: int, avoid: set[Address]) -> tuple[Address, int]:
        hops = 0
        path: list[Address] = []
        current = start
        for _ in range(4 * M):
            try:
                if current == self.address and self._running:
                    done, node = self._routing.next_hop(key, avoid, self.transport.is_suspected)
                else:
                    done, node = await self._calls.call_next_hop(current, key, avoid)
                    hops += 1
            except (PeerUnreachable, RemoteError, LookupFailed):
                # dead, or alive but with no live successor left to name: back up a step
                avoid.add(current)
                if not path:
                    raise
                current = path.pop()
                continue
            if done:
                return node, hops
            path.append(current)
            current = node
        raise LookupFailed(f"no owner found for key {key:x} after {4 * M} steps")

    # -- plumbing --------------------------------------------------------------------------

    async def _serve(self, method: str, args: dict) -> object:
        return await self._calls.serve(method, args)

    def _serve_now(self, method: str, args: dict) -> object:
        return self._calls.serve_now(method, args)

    def _remote(self, address: Address) -> Remote:
        return Remote(address, self.transport)

    def _remote_or_none(self, address: Address | None) -> Remote | None:
        return None if address is None else self._remote(address)

    def _changed(self, kind: str, old: object, new: object) -> None:
        """The routing state changed: tell the listeners (and the notify handler)."""
        if kind == "fingers":
            self._emit(kind, {"count": len(new)})
        elif kind == "predecessor_suspected":
            self._emit(kind, {"predecessor": str(old)})
        else:
            self._emit(kind, {"old": _text(old), "new": _text(new)})
        if kind == "predecessor" and self._notify_handler is not None:
            try:
                result = self._notify_handler(self._remote_or_none(old),
                                              self._remote_or_none(new))
                if inspect.isawaitable(result):
                    self._background.spawn(result)
            except Exception:
                log.exception("%s: the notify handler failed", self)

    def _emit(self, kind: str, detail: dict) -> None:
        for listener in self._listeners:
            try:
                listener(kind, detail)
            except Exception:
                log.exception("%s: a ring listener failed", self)

    def __repr__(self) -> str:
        return f"Local({self.address}, {short_id(self.id)})"


def _needs_advertise(listening: Address, why: str) -> str:
    return (f"{listening} is a wildcard address that no other node can dial, and {why}: "
            f"name the address others reach this node at with --advertise HOST:PORT")


def _text(address: object) -> str | None:
    return None if address is None else str(address)
