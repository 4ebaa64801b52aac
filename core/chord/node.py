"""The Chord node: ``Local`` (this node) and ``Remote`` (a reference to another one).

Ring maintenance follows Stoica et al. (SIGCOMM 2001, §4) with P. Zave's corrections
("Reasoning about identifier spaces: how to make Chord correct", TSE 2017): a successor
list of length r, nothing adopted without checking it is alive, rectify in place of
notify + flush, and the graceful leave of ToN 2003 §IV.E.4. Lookups are iterative and
count hops. The node reaches the network only through its ``Transport``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import weakref
from collections.abc import Callable, Iterable

from .address import Address, AddressError
from .ids import RING, M, finger_start, in_half_open, in_open, short_id
from .rpc import DEFAULT_TIMEOUT, PeerUnreachable, RemoteError, RpcError, TcpTransport, Transport

log = logging.getLogger(__name__)

_default_transports: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class JoinError(RpcError):
    """The node could not join the ring through its bootstrap."""


class LookupFailed(RpcError):
    """No live owner could be found for a key."""


def _default_transport() -> Transport:
    """One TCP transport per event loop, for ``Remote`` objects made without a node."""
    loop = asyncio.get_running_loop()
    transport = _default_transports.get(loop)
    if transport is None:
        transport = _default_transports[loop] = TcpTransport()
    return transport


class Remote:
    """Another node, as this one knows it: its address, its id, and calls on it."""

    __slots__ = ("address", "_transport")

    def __init__(self, address: Address, transport: Transport | None = None) -> None:
        self.address = address
        self._transport = transport

    @property
    def id(self) -> int:
        return self.address.id

    @property
    def transport(self) -> Transport:
        return self._transport or _default_transport()

    async def user_command(self, type: str, payload: object = None,
                           timeout: float | None = None) -> object:
        """Deliver a user command to this node's handler for ``type``; its reply comes back."""
        return await self.transport.call(self.address, "user",
                                         {"type": type, "payload": payload}, timeout)

    async def ping(self, timeout: float | None = None) -> bool:
        try:
            await self.transport.call(self.address, "ping", {}, timeout)
        except RpcError:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Remote) and other.address == self.address

    def __hash__(self) -> int:
        return hash(self.address)

    def __repr__(self) -> str:
        return f"Remote({self.address}, {short_id(self.id)})"


def _address(value: object) -> Address:
    return Address.from_wire(value)


def _optional_address(value: object) -> Address | None:
    return None if value is None else _address(value)


def _key(value: object) -> int:
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("a key on the wire is a hex string of at most 40 digits")
    return int(value, 16)


class Local:
    """This node: it serves the ring, keeps its successor list and predecessor, routes.

    Args:
        address: where to listen; port 0 picks a free port (the id follows the real one).
        bootstrap: any member of the ring to join through; None creates a new ring.
        successors: r, the length of the successor list.
        stabilize_interval, fix_fingers_interval, check_predecessor_interval: seconds.
        timeout: the default timeout of every call to another node, in seconds.
        transport: the network; TCP unless given (the simulator passes its own).
    """

    def __init__(self, address: Address, bootstrap: Address | None = None, *,
                 successors: int = 8, stabilize_interval: float = 0.5,
                 fix_fingers_interval: float = 1.0, check_predecessor_interval: float = 1.0,
                 timeout: float = DEFAULT_TIMEOUT, transport: Transport | None = None) -> None:
        if successors < 1:
            raise ValueError("the successor list needs at least one entry")
        self.address = address
        self.bootstrap = bootstrap
        self.r = successors
        self.stabilize_interval = stabilize_interval
        self.fix_fingers_interval = fix_fingers_interval
        self.check_predecessor_interval = check_predecessor_interval
        self.timeout = timeout
        self.transport: Transport = transport or TcpTransport(timeout=timeout)
        self._successors: list[Address] = [address]
        self._predecessor: Address | None = None
        self._predecessor_suspected = False
        self._fingers: list[Address] = []
        self._commands: dict[str, Callable] = {}
        self._notify_handler: Callable | None = None
        self._listeners: list[Callable[[str, dict], None]] = []
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        self._running = False
        self._rpc = {name[4:]: getattr(self, name) for name in dir(self)
                     if name.startswith("rpc_")}

    # -- the public surface ----------------------------------------------------------------

    @property
    def id(self) -> int:
        return self.address.id

    @property
    def running(self) -> bool:
        return self._running

    def successor(self) -> Remote:
        return self._remote(self._successors[0])

    def successors(self) -> list[Remote]:
        return [self._remote(a) for a in self._successors]

    def predecessor(self) -> Remote | None:
        return None if self._predecessor is None else self._remote(self._predecessor)

    def fingers(self) -> list[Remote]:
        return [self._remote(a) for a in self._fingers]

    def is_ours(self, key: int) -> bool:
        """True when ``key`` lies in (predecessor, self]; a node alone owns everything."""
        if self._predecessor is None:
            return self._successors[0] == self.address
        return in_half_open(key, self._predecessor.id, self.id)

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
            return await self._run_command(type, payload)
        return await self.transport.call(address, "user", {"type": type, "payload": payload},
                                         timeout)

    async def start(self) -> None:
        """Listen, then join the ring through ``bootstrap`` or create a new one.

        Raises ListenError if the address cannot be bound, JoinError if the bootstrap
        cannot be reached or answers nonsense.
        """
        self.address = await self.transport.listen(self.address, self._serve)
        self._successors = [self.address]
        self._running = True
        if self.bootstrap is not None:
            try:
                await self._join(self.bootstrap)
            except (RpcError, AddressError, ValueError, KeyError, TypeError) as e:
                await self._shutdown()
                raise JoinError(f"cannot join the ring through {self.bootstrap}: {e}") from None
        self._tasks = [
            asyncio.create_task(self._every(self.stabilize_interval, self.stabilize)),
            asyncio.create_task(self._every(self.fix_fingers_interval, self.fix_fingers)),
            asyncio.create_task(self._every(self.check_predecessor_interval,
                                            self.check_predecessor)),
        ]
        self._emit("started", {"address": str(self.address), "id": self.id,
                               "bootstrap": str(self.bootstrap) if self.bootstrap else None})

    async def leave(self) -> None:
        """Leave gracefully: splice predecessor and successor together, then close."""
        if not self._running:
            return
        await self._stop_maintenance()
        predecessor, successors = self._predecessor, self._successors
        successor = next((s for s in successors if s != self.address), None)
        calls = []
        if successor is not None:
            calls.append(self._call(successor, "predecessor_leaving", {
                "leaver": str(self.address),
                "predecessor": str(predecessor) if predecessor else None}))
        if predecessor is not None and predecessor != self.address:
            calls.append(self._call(predecessor, "successor_leaving", {
                "leaver": str(self.address),
                "successors": [str(s) for s in successors]}))
        for result in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(result, Exception):
                log.info("%s: a neighbour missed our leave: %s", self, result)
        self._emit("left", {})
        await self._shutdown()

    async def stop(self) -> None:
        """Stop abruptly, as a crash would: no goodbyes, sockets closed."""
        if self._running:
            await self._stop_maintenance()
            await self._shutdown()

    async def find_successor(self, key: int, avoid: Iterable[Address] = ()) -> tuple[Remote, int]:
        """The owner of ``key`` and the number of hops it took (iterative, §4.3).

        The owner is named by its predecessor and not contacted, so right after a crash it
        may be dead: a caller whose call to it fails looks up again with it in ``avoid``
        (nodes the caller knows to be dead), and is routed around it.
        """
        owner, hops = await self._lookup(self.address, key, set(avoid))
        return self._remote(owner), hops

    # -- ring maintenance (Zave 2017) ------------------------------------------------------

    async def _join(self, bootstrap: Address) -> None:
        avoid: set[Address] = set()
        for _ in range(self.r + 1):
            owner, _ = await self._lookup(bootstrap, self.id, avoid)
            if owner == self.address:
                raise JoinError(f"{bootstrap} says this address is already in the ring")
            try:
                state = await self._call(owner, "state", {})
                break
            except PeerUnreachable:
                avoid.add(owner)  # the ring has not noticed this crash yet: route around it
        else:
            raise JoinError(f"every successor {bootstrap} named for us was dead")
        self._set_successors(self._successor_list(owner, _addresses(state["successors"])))
        with contextlib.suppress(RpcError):
            await self._call(owner, "notify", {"node": str(self.address)})

    async def stabilize(self) -> None:
        """Refresh the successor list from the first live successor and notify it.

        When that turns up a closer successor, go on from it at once rather than a round
        later: after a flash crowd of joins, a node walks the chain of new predecessors in
        one round instead of one link per round.
        """
        for _ in range(self.r):
            before = self._successors[0]
            await self._stabilize_once()
            after = self._successors[0]
            if after == before or after == self.address or not in_open(after.id, self.id,
                                                                         before.id):
                return

    async def _stabilize_once(self) -> None:
        for _ in range(len(self._successors) + 1):
            s1 = self._successors[0]
            if s1 == self.address:
                predecessor, their_list = self._predecessor, list(self._successors)
            else:
                try:
                    state = await self._call(s1, "state", {})
                except PeerUnreachable:
                    self._drop_successor(s1)
                    continue
                predecessor = _optional_address(state["predecessor"])
                their_list = _addresses(state["successors"])
            new_list = self._successor_list(s1, their_list) if s1 != self.address else [s1]
            if (predecessor is not None and predecessor != self.address
                    and in_open(predecessor.id, self.id, s1.id)):
                try:
                    state = await self._call(predecessor, "state", {})
                    new_list = self._successor_list(predecessor, _addresses(state["successors"]))
                except PeerUnreachable:
                    pass
            self._set_successors(new_list)
            first = self._successors[0]
            if first != self.address:
                with contextlib.suppress(RpcError):
                    await self._call(first, "notify", {"node": str(self.address)})
            return

    async def fix_fingers(self) -> None:
        """Recompute the distinct fingers: finger i is successor(n + 2**i) (§4.2)."""
        fingers: list[Address] = []
        owner: Address | None = None
        for i in range(M):
            start = finger_start(self.id, i)
            if owner is not None and in_half_open(start, self.id, owner.id):
                continue
            try:
                owner, _ = await self._lookup(self.address, start, set())
            except RpcError:
                break
            if owner == self.address:
                break
            if owner not in fingers:
                fingers.append(owner)
        if fingers != self._fingers:
            self._fingers = fingers
            self._emit("fingers", {"count": len(fingers)})

    async def check_predecessor(self) -> None:
        """Ping the predecessor; a dead one is suspected, so the next notifier replaces it."""
        predecessor = self._predecessor
        if predecessor is None or predecessor == self.address:
            return
        was_suspected = self._predecessor_suspected
        alive = await self._ping(predecessor)
        if predecessor == self._predecessor and self._predecessor_suspected == alive:
            self._predecessor_suspected = not alive
            if not alive:
                self._emit("predecessor_suspected", {"predecessor": str(predecessor)})
        if (not alive and was_suspected and predecessor == self._predecessor
                and self._successors == [self.address]):
            # alone in the ring: nobody will ever notify us, so a dead predecessor would
            # keep part of the ring owned by no one; a node alone owns everything. (Only
            # after a second failed ping: a slow new joiner must not be dropped.)
            self._set_predecessor(None)

    def _successor_list(self, first: Address, rest: list[Address]) -> list[Address]:
        """``([first] + rest)[:r]``, cut where it comes back round to us, without repeats."""
        out: list[Address] = []
        for a in [first, *rest]:
            if a == self.address:
                break
            if a not in out:
                out.append(a)
                if len(out) == self.r:
                    break
        return out or [self.address]

    def _set_successors(self, successors: list[Address]) -> None:
        old = self._successors
        self._successors = successors
        if old[0] != successors[0]:
            self._emit("successor", {"old": str(old[0]), "new": str(successors[0])})

    def _drop_successor(self, dead: Address) -> None:
        rest = [s for s in self._successors if s != dead]
        self._fingers = [f for f in self._fingers if f != dead]
        if not rest and self._predecessor is not None and self._predecessor != dead:
            rest = [self._predecessor]  # the last one left we know of; stabilize checks it
        self._set_successors(rest or [self.address])

    def _set_predecessor(self, new: Address | None) -> None:
        old = self._predecessor
        if new == self.address:
            new = None
        if new == old:
            return
        self._predecessor = new
        self._predecessor_suspected = False
        self._emit("predecessor", {"old": str(old) if old else None,
                                   "new": str(new) if new else None})
        if self._notify_handler is not None:
            try:
                result = self._notify_handler(self._remote_or_none(old), self._remote_or_none(new))
                if inspect.isawaitable(result):
                    self._spawn(result)
            except Exception:
                log.exception("%s: the notify handler failed", self)

    async def _rectify(self, node: Address) -> None:
        predecessor = self._predecessor
        if node == self.address or node == predecessor:
            return
        if predecessor is None or in_open(node.id, predecessor.id, self.id):
            self._set_predecessor(node)
            return
        if self._predecessor_suspected or not await self._ping(predecessor):
            if self._predecessor == predecessor:
                self._set_predecessor(node)

    # -- routing ---------------------------------------------------------------------------

    def _next_hop(self, key: int, avoid: set[Address]) -> tuple[bool, Address]:
        """(True, owner) if this node knows the owner of ``key``, else (False, next node)."""
        if self.is_ours(key):
            return True, self.address
        successor = next((s for s in self._successors
                          if s not in avoid and not self.transport.is_suspected(s)), None)
        if successor is None:
            successor = next((s for s in self._successors if s not in avoid), None)
        if successor is None:
            # Every successor we know is dead. (n, n] would make us the owner of every key:
            # a wrong answer from a live node that nobody could catch. Route on by a finger.
            closest = self.closest_preceding_node(key, avoid)
            if closest == self.address:
                raise LookupFailed(f"{self.address} knows no live successor")
            return False, closest
        if in_half_open(key, self.id, successor.id):
            return True, successor
        closest = self.closest_preceding_node(key, avoid)
        if closest == self.address:
            return True, successor
        return False, closest

    def closest_preceding_node(self, key: int, avoid: set[Address] = frozenset()) -> Address:
        """The known node that most closely precedes ``key`` (§4.3), skipping suspects."""
        # This runs once per hop on every node a lookup passes: plain arithmetic on the
        # clockwise distance, the cheap test first. Strictly inside (n, key) means
        # 0 < d < distance(n, key), where (n, n) is the whole ring but n.
        me = self.id
        limit = (key - me) % RING or RING
        best, best_distance = self.address, 0
        suspected = self.transport.is_suspected
        for node in (*self._fingers, *self._successors):
            d = (node.id - me) % RING
            if best_distance < d < limit and node not in avoid and not suspected(node):
                best, best_distance = node, d
        return best

    async def _lookup(self, start: Address, key: int, avoid: set[Address]) -> tuple[Address, int]:
        hops = 0
        path: list[Address] = []
        current = start
        for _ in range(4 * M):
            try:
                if current == self.address and self._running:
                    done, node = self._next_hop(key, avoid)
                else:
                    reply = await self._call(current, "next_hop", {
                        "key": f"{key:x}", "avoid": [str(a) for a in avoid]})
                    hops += 1
                    done, node = bool(reply["done"]), _address(reply["node"])
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

    # -- served calls (rpc_<verb>) and their callers ---------------------------------------

    async def _serve(self, method: str, args: dict) -> object:
        handler = self._rpc.get(method)
        if handler is None:
            raise RemoteError(f"unknown method {method!r}")
        return await handler(**args)

    async def _call(self, address: Address, method: str, args: dict,
                    timeout: float | None = None) -> object:
        return await self.transport.call(address, method, args, timeout)

    async def _ping(self, address: Address) -> bool:
        try:
            await self._call(address, "ping", {})
        except RpcError:
            return False
        return True

    async def rpc_ping(self) -> dict:
        return {}

    async def rpc_state(self) -> dict:
        return {"predecessor": str(self._predecessor) if self._predecessor else None,
                "successors": [str(s) for s in self._successors],
                "id": f"{self.id:x}"}

    async def rpc_next_hop(self, key: str, avoid: list | None = None) -> dict:
        done, node = self._next_hop(_key(key), set(_addresses(avoid or [])))
        return {"done": done, "node": str(node)}

    async def rpc_notify(self, node: str) -> dict:
        candidate = _address(node)
        if self._predecessor is None or in_open(candidate.id, self._predecessor.id, self.id):
            await self._rectify(candidate)
        elif candidate != self._predecessor:
            self._spawn(self._rectify(candidate))  # needs a ping: answer now, decide later
        return {}

    async def rpc_predecessor_leaving(self, leaver: str, predecessor: str | None) -> dict:
        if self._predecessor == _address(leaver):
            self._set_predecessor(_optional_address(predecessor))
        return {}

    async def rpc_successor_leaving(self, leaver: str, successors: list) -> dict:
        gone = _address(leaver)
        if gone in self._successors:
            i = self._successors.index(gone)
            theirs = [s for s in _addresses(successors) if s != gone]
            candidates = self._successors[:i] + theirs + self._successors[i + 1:]
            self._fingers = [f for f in self._fingers if f != gone]
            self._set_successors(self._successor_list(candidates[0], candidates[1:])
                                 if candidates else [self.address])
        return {}

    async def rpc_user(self, type: str, payload: object = None) -> object:
        return await self._run_command(type, payload)

    async def _run_command(self, type: str, payload: object) -> object:
        handler = self._commands.get(type)
        if handler is None:
            raise RemoteError(f"no handler for user command {type!r}")
        result = handler(payload)
        if inspect.isawaitable(result):
            result = await result
        return result

    # -- plumbing --------------------------------------------------------------------------

    def _remote(self, address: Address) -> Remote:
        return Remote(address, self.transport)

    def _remote_or_none(self, address: Address | None) -> Remote | None:
        return None if address is None else self._remote(address)

    def _emit(self, kind: str, detail: dict) -> None:
        for listener in self._listeners:
            try:
                listener(kind, detail)
            except Exception:
                log.exception("%s: a ring listener failed", self)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _every(self, interval: float, step: Callable) -> None:
        await asyncio.sleep(random.uniform(0, interval))  # spread the nodes' rounds
        while True:
            try:
                await step()
            except (RpcError, AddressError, ValueError, KeyError, TypeError) as e:
                log.debug("%s: %s failed: %s", self, step.__name__, e)
            except Exception:
                log.exception("%s: %s failed", self, step.__name__)
            await asyncio.sleep(interval)

    async def _stop_maintenance(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _shutdown(self) -> None:
        self._running = False
        for task in list(self._background):
            task.cancel()
        await self.transport.close()

    def __repr__(self) -> str:
        return f"Local({self.address}, {short_id(self.id)})"


def _addresses(values: Iterable[object]) -> list[Address]:
    return [_address(v) for v in values]
