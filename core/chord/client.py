"""Client mode: a node that nobody can dial uses the ring without being part of it.

A node behind a NAT or firewall that drops inbound connections can still dial out. In
client mode (``Local(..., client=ClientSettings(...))``) it

- joins no successor list and no finger table: it never notifies, never answers a ring
  call, owns no key (``Local.is_ours`` is False) and is told nothing to keep;
- keeps a routing state of its own, built from outside (a passive join: its successor's
  list, fingers by lookups), so its lookups and calls go straight out over its own
  connections, the robust lookups included;
- holds a reservation at one relay (core/chord/relay.py), a full member near its own id
  or one the user named (``--relay``), renewed every ``renew`` seconds; its address is the
  relayed one, ``relay-host:port/<client id>``, and what others send it comes over the
  connection it opened to the relay;
- when the relay dies, leaves or refuses a renewal, attaches to another within a few
  seconds and tells the layer above (the ring event ``moved``, with the old and new
  address), which registers its users again and resumes their channels there.

The hook for the reachability decision (core/chord/reachability.py, another part):
``ClientSettings`` is what a node is started with when it cannot be reached; a runtime
that decides at start passes it to ``Local``. Hole punching: ``Local.punched`` maps a
client id to an address a punched connection reaches it at; calls to that client go
there first (and to the relay if that fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from .address import Address
from .errors import RemoteError, RpcError
from .recursive import RouteProtocol
from .relay import RELEASE, RESERVE, RelayedAddress, new_client
from .tasks import TaskSet
from .transport import LATER

log = logging.getLogger(__name__)


@dataclass
class ClientSettings:
    """How a client node reaches the ring.

    Args:
        relays: relays to try first, in order (``--relay HOST:PORT``); then the nodes
            after the client's own id, then the bootstrap.
        renew: seconds between two renewals of the reservation (also how soon a dead
            relay is noticed: a renewal that fails moves the client to another).
        listen: listen as well (the simulator, where a call back needs an address); a
            real client only dials out.
    """
    relays: tuple[Address, ...] = ()
    renew: float = 1.0
    listen: bool = False


class NoRelay(RpcError):
    """No relay would take this client."""


class ClientProtocol(RouteProtocol):
    """A client's calls: a ring node's, less every call that would put it in the ring
    (notify, merge, the goodbyes of a leave); it serves only user commands and pings."""

    async def serve(self, method: str, args: dict) -> object:
        if method not in ("user", "ping"):
            raise RemoteError(f"a client node does not serve {method!r}")
        return await super().serve(method, args)

    def serve_now(self, method: str, args: dict) -> object:
        if method != "ping":
            return LATER
        return super().serve_now(method, args)

    async def call_notify(self, address: Address) -> None:
        return None

    async def call_merge(self, address: Address, candidate: Address, steps: int) -> None:
        return None

    async def call_predecessor_leaving(self, successor: Address,
                                       predecessor: Address | None) -> None:
        return None

    async def call_successor_leaving(self, predecessor: Address,
                                     successors: list[Address]) -> None:
        return None


class ClientMode:
    """The relay side of a client node: which relay, the reservation, moving on."""

    def __init__(self, node, settings: ClientSettings) -> None:
        self.node = node
        self.settings = settings
        self.client, self._secret = new_client()
        self.relay: Address | None = None
        self.seen: Address | None = None   # where our relay sees us (its word, at reserve)
        self.moves = 0                   # relays changed after the first
        self._tasks = TaskSet()
        self._dead: dict[Address, float] = {}   # relays that failed lately, when

    # -- start and stop --------------------------------------------------------------------

    async def start(self) -> None:
        """Serve calls back over our own connections, attach to a relay, keep it."""
        node = self.node
        if self.settings.listen:
            await node.transport.listen(node.listen_address, node._serve, node._serve_now)
        else:
            await node.transport.answer(node._serve, node._serve_now)
        await self.attach()
        self._tasks.spawn(self._keep())

    async def stop(self, release: bool = True) -> None:
        await self._tasks.cancel_all()
        if release and self.relay is not None:
            with contextlib.suppress(RpcError):
                await self.node.transport.call(self.relay, "user",
                                               {"type": RELEASE,
                                                "payload": {"secret": self._secret}},
                                               timeout=1.0)

    # -- the reservation -------------------------------------------------------------------

    async def reserve(self, relay: Address) -> dict:
        """Ask ``relay`` for (or renew) our slot; its answer (``ok``, or ``refused``)."""
        timeout = min(self.node.timeout, max(1.0, self.settings.renew))
        reply = await self.node.transport.call(
            relay, "user", {"type": RESERVE,
                            "payload": {"client": self.client, "secret": self._secret}},
            timeout)
        if not isinstance(reply, dict):
            return {"ok": False, "error": "nonsense"}
        if reply.get("ok") is True:
            try:
                self.seen = Address.from_wire(reply.get("seen"))
            except (ValueError, TypeError):
                self.seen = None
        return reply

    async def attach(self, avoid: frozenset[Address] = frozenset()) -> Address:
        """Take a slot at the first relay that gives one; become reachable through it.
        NoRelay if none does."""
        why = []
        for relay in await self.candidates(avoid):
            try:
                reply = await self.reserve(relay)
            except RpcError as e:
                self._dead[relay] = _now()
                why.append(f"{relay}: {e}")
                continue
            if reply.get("ok") is not True:
                why.append(f"{relay}: {reply.get('error', reply)}")
                log.info("the relay %s refused us: %s", relay, reply.get("error", reply))
                continue
            try:
                await self.node._rebase(RelayedAddress(relay.host, relay.port, self.client),
                                        relay)
            except RpcError as e:
                why.append(f"{relay}: {e}")
                continue
            old, self.relay = self.relay, relay
            if old is not None:
                self.moves += 1
            log.info("client %s: reachable through the relay %s", self.client[:8], relay)
            return relay
        raise NoRelay("no relay took this client: " + ("; ".join(why) or "none known"))

    async def switch(self, relay: Address) -> None:
        """Move to ``relay`` now (a user's choice; also how a test moves a client)."""
        reply = await self.reserve(relay)
        if reply.get("ok") is not True:
            raise NoRelay(f"{relay}: {reply.get('error', reply)}")
        old = self.relay
        await self.node._rebase(RelayedAddress(relay.host, relay.port, self.client), relay)
        self.relay = relay
        self.moves += 1
        if old is not None and old != relay:
            with contextlib.suppress(RpcError):
                await self.node.transport.call(old, "user", {
                    "type": RELEASE, "payload": {"secret": self._secret}}, timeout=1.0)

    async def candidates(self, avoid: frozenset[Address] = frozenset()) -> list[Address]:
        """Relays to try, best first: those the user named, then the nodes after our own
        id (from our routing state, or a lookup through any node we know), then the
        bootstrap and our fingers. Ones that failed in the last 30 s go last."""
        node = self.node
        out: list[Address] = []

        def add(addresses) -> None:
            for a in addresses:
                if isinstance(a, Address) and not isinstance(a, RelayedAddress) \
                        and a not in out and a not in avoid:
                    out.append(a)

        add(self.settings.relays)
        mine = [s.address for s in node.successors() if s.address != node.address]
        if mine:
            add(mine)
        else:
            for entry in [*self.settings.relays, node.bootstrap]:
                if entry is None or entry in avoid:
                    continue
                try:
                    near = await node._near(entry, RelayedAddress(
                        entry.host, entry.port, self.client).id)
                except RpcError:
                    continue
                add(near)
                break
        add([node.bootstrap])
        add(f.address for f in node.fingers())
        recent = {a for a, at in self._dead.items() if _now() - at < 30.0}
        return [a for a in out if a not in recent] + [a for a in out if a in recent]

    async def _keep(self) -> None:
        """Renew the reservation; when that fails, move to another relay."""
        while True:
            await asyncio.sleep(self.settings.renew)
            relay = self.relay
            try:
                reply = await self.reserve(relay)
                if reply.get("ok") is True:
                    continue
                log.info("the relay %s refused the renewal: %s", relay, reply.get("error"))
            except RpcError as e:
                log.info("the relay %s is gone: %s", relay, e)
            self._dead[relay] = _now()
            try:
                await self.attach(frozenset({relay}))
            except NoRelay as e:
                log.warning("client %s: %s; trying again", self.client[:8], e)


def _now() -> float:
    return asyncio.get_running_loop().time()
