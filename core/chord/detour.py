"""Detours: a user command to a ring node this node cannot reach directly, made through a
common neighbour that can.

Connectivity need not be transitive: A reaches B, B reaches C, and a firewall rule or a
broken route keeps A from C. The ring routes around C for A's lookups, but a call that must
reach C itself (a maintainer's delivery to a member on C, a private message to a user on
C, a request to the key's owner C) would fail after its timeout and be retried until its
deadline. ``Local.user_command`` instead asks a neighbour of its own (successors, then the
predecessor, then fingers; the one that worked last time first) to make the call
(``detour.call {to, type, payload}``) and hands back the target's reply.

What a via does, bounded so that it is no open proxy:

- **types**: only the user command types the layer above allows (``Detours.types``; the
  chat's: its user-signed requests and its deliveries, never a frame that moves state,
  which the receiver checks against the connection's source host);
- **targets**: only a node of the ring: one in the via's own routing state or among the
  peers it saw in the ring lately (``peers.Peers``), or one that a lookup of its id names
  as the owner of that id (believed for ``ttl`` seconds) — never an address of the
  caller's choosing elsewhere;
- **one hop**: the via calls the target directly, never through a detour of its own;
- **per caller host**: a token bucket of calls (``rate``, ``burst``) and at most
  ``in_flight`` calls at once.

The via neither reads nor changes the payload and vouches for nothing: the target checks
what comes as if it came directly (the users' signatures, sealed private messages). Each
refusal says why (``{"ok": false, "refused": reason, "error": …}``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from .address import Address, AddressError
from .errors import PeerUnreachable, RemoteError, RpcError
from .transport import CALLER_HOST

log = logging.getLogger(__name__)

DETOUR = "detour.call"
VIAS = 3   # neighbours asked, one after the other, before the call is given up


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class DetourStats:
    served: int = 0           # calls made for others
    refused: dict = field(default_factory=dict)
    taken: int = 0            # our own calls that went through a via


DETOUR_ORIGIN = "detour_origin"   # the host a detoured call came from, stamped by the hop


def detour_origin(payload: object, caller_host: str | None, ring_hosts: set[str]) -> str | None:
    """The host a call came from: the connection's (``caller_host``), or, when that is a ring
    node we know (a detour hop: a node of our successor list, fingers or predecessor), the
    host the hop stamped. A stamp from any other caller is ignored."""
    if caller_host is None or caller_host not in ring_hosts or not isinstance(payload, dict):
        return caller_host
    stamped = payload.get(DETOUR_ORIGIN)
    return stamped if isinstance(stamped, str) and stamped else caller_host


def ring_hosts(node) -> set[str]:
    """The hosts of the ring nodes ``node`` knows: its successors, fingers and predecessor,
    and the peers it saw in its view lately and has not found dead (the nodes a detour
    through them is believed from). The peers count too because views change under a
    detour in use: after a partition healed, a member's successor of the time apart was a
    successor no more, and the maintainer's deliveries through it were refused as coming
    from it (tests/net/test_partition.py's three and three, 2 runs in 14)."""
    return {r.address.host for r in (*node.successors(), *node.fingers(), node.predecessor())
            if r is not None} | {a.host for a in node.peers.seen()}


def _now() -> float:
    return asyncio.get_running_loop().time()


class Detours:
    """This node's detours: the calls it makes for others, and its own through others.

    Args:
        node: the ``Local`` (its routing state, lookups, transport and commands).
        types: the user command types that may take a detour (empty: none).
        rate, burst: calls per second served for one caller host, saved up to ``burst``.
        in_flight: calls served at once for one caller host.
        ttl: seconds a target found by lookup is believed to be a ring node.
        remember: seconds a target reached only by detour is called by detour first.
    """

    def __init__(self, node, types: frozenset[str] = frozenset(), *, rate: float = 50.0,
                 burst: float = 200.0, in_flight: int = 32, ttl: float = 30.0,
                 remember: float = 10.0) -> None:
        self.node = node
        self.types = frozenset(types)
        self.rate, self.burst, self.in_flight = rate, burst, in_flight
        self.ttl, self.remember = ttl, remember
        self.stats = DetourStats()
        self._members: dict[Address, float] = {}     # target -> believed until
        self._buckets: dict[str, _Bucket] = {}
        self._busy: dict[str, int] = {}
        self._via: dict[Address, tuple[Address, float]] = {}   # target -> (via, until)
        self._probed: dict[Address, float] = {}   # target -> when last pinged directly
        self._answered: dict[Address, float] = {}   # target -> when it last answered so
        node.register_command(DETOUR, self.rpc_detour)

    # -- the via's side ------------------------------------------------------------------

    def _refuse(self, reason: str, error: str) -> dict:
        self.stats.refused[reason] = self.stats.refused.get(reason, 0) + 1
        return {"ok": False, "refused": reason, "error": error}

    async def rpc_detour(self, d: object) -> dict:
        if not isinstance(d, dict) or not isinstance(d.get("to"), str) \
                or not isinstance(d.get("type"), str):
            raise RemoteError("detour.call needs 'to' and 'type' (strings) and 'payload'")
        type_ = d["type"]
        if type_ not in self.types:
            return self._refuse("type", f"no detours for {type_[:40]!r}")
        try:
            to = Address.from_wire(d["to"])
        except (AddressError, ValueError) as e:
            return self._refuse("address", f"not a node's address: {e}")
        if self.node.client is not None or to == self.node.address:
            return self._refuse("self", "ask the node itself")
        host = CALLER_HOST.get() or ""
        now = _now()
        bucket = self._buckets.get(host)
        if bucket is None:
            if len(self._buckets) > 4096:   # forget idle hosts, so strangers cannot grow it
                self._buckets = {h: b for h, b in self._buckets.items() if now - b.at < 60}
            bucket = self._buckets[host] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens < 1 or self._busy.get(host, 0) >= self.in_flight:
            return self._refuse("busy", f"too many detours from {host}: try again later")
        bucket.tokens -= 1
        self._busy[host] = self._busy.get(host, 0) + 1
        try:
            if not await self._in_ring(to):
                return self._refuse("unknown", f"{to} is no node of this ring")
            try:
                payload = d.get("payload")
                if isinstance(payload, dict):   # who asked for the detour, for the receiver
                    payload = {**payload, DETOUR_ORIGIN: host}   # (any caller's claim replaced)
                reply = await self.node._calls.call_user(to, type_, payload)
            except RemoteError as e:
                return {"ok": False, "refused": "remote", "error": str(e)[:300]}
            except PeerUnreachable as e:
                return self._refuse("unreachable", str(e)[:300])
        finally:
            self._busy[host] -= 1
            if not self._busy[host]:
                del self._busy[host]
        self.stats.served += 1
        return {"ok": True, "reply": reply}

    async def _in_ring(self, to: Address) -> bool:
        """Whether ``to`` is a node of the ring: in our routing state, or the owner of its
        own id by a lookup (cached)."""
        routing = self.node._routing
        if to in routing.successors or to == routing.predecessor or to in routing.fingers \
                or to in self.node._maintenance.peers:   # seen in the ring lately
            return True
        now = _now()
        if self._members.get(to, 0.0) > now:
            return True
        try:
            owner, _ = await self.node.find_successor(to.id)
        except RpcError:
            return False
        if owner.address != to:
            return False
        if len(self._members) > 1024:
            self._members = {a: t for a, t in self._members.items() if t > now}
        self._members[to] = now + self.ttl
        return True

    # -- the caller's side ----------------------------------------------------------------

    def remembered(self, target: Address) -> bool:
        """True if ``target`` was lately reached only by a detour (call by detour first).
        While it is, the target is pinged directly now and then in the background
        (``_recheck``): one call that timed out on a busy moment must not keep a pair that
        can reach each other on a detour for as long as they talk."""
        via = self._via.get(target)
        if via is None or via[1] <= _now():
            return False
        self._recheck(target)
        return True

    def _recheck(self, target: Address) -> None:
        """At most once per ``remember`` seconds, a direct ping of ``target``; an answer
        ends the detour (the next call goes directly)."""
        now = _now()
        if self._probed.get(target, float("-inf")) + self.remember > now:
            return
        if len(self._probed) > 1024:
            self._probed = {t: at for t, at in self._probed.items()
                            if at + self.remember > now}
            self._answered = {t: at for t, at in self._answered.items() if t in self._probed}
        self._probed[target] = now
        self.node._background.spawn(self._probe(target))   # cancelled with the node

    async def _probe(self, target: Address) -> None:
        answered = await self.node._calls.call_ping(target, self.node.timeout)
        if answered:
            self._answered[target] = _now()   # a detour in flight does not bring it back
        if answered and self._via.pop(target, None) is not None:
            log.info("%s: %s answers directly again: no more detour", self.node.address,
                     target)

    def vias(self, target: Address) -> list[Address]:
        """Neighbours to ask, the one that worked last time first, then successors, the
        predecessor and fingers; neither ourselves nor the target, not a suspect."""
        routing, me = self.node._routing, self.node.address
        last = self._via.get(target)
        candidates = [*([last[0]] if last else []), *routing.successors,
                      *([routing.predecessor] if routing.predecessor else []),
                      *routing.fingers]
        if self.node.client is not None and self.node.client.relay is not None:
            candidates.insert(0, self.node.client.relay)
        chosen: list[Address] = []
        for c in candidates:
            if c in (me, target) or c in chosen or not isinstance(c, Address) \
                    or self.node.transport.is_suspected(c):
                continue
            chosen.append(c)
        return chosen[:VIAS]

    async def call(self, target: Address, type_: str, payload: object,
                   timeout: float | None) -> object:
        """``type_`` on ``target`` through a neighbour; the target's reply. RemoteError if
        the target's handler failed, PeerUnreachable if no neighbour got through."""
        timeout = (timeout or self.node.timeout) * 2   # the via waits on the target too
        tried, started = [], _now()
        for via in self.vias(target):
            try:
                reply = await self.node._calls.call_user(
                    via, DETOUR, {"to": str(target), "type": type_, "payload": payload},
                    timeout)
            except (PeerUnreachable, RemoteError) as e:   # gone, or a node without detours
                tried.append(f"{via}: {e}")
                continue
            if not isinstance(reply, dict):
                tried.append(f"{via}: nonsense")
                continue
            if reply.get("ok") is True:
                self.stats.taken += 1
                if self._via.get(target, (None,))[0] != via:
                    log.info("%s: %s %s reached through %s (%s)", self.node.address, type_,
                             target, via, "; ".join(tried) or "not directly")
                if self._answered.get(target, float("-inf")) < started:
                    self._via[target] = (via, _now() + self.remember)
                if len(self._via) > 1024:
                    now = _now()
                    self._via = {t: v for t, v in self._via.items() if v[1] > now}
                return reply.get("reply")
            if reply.get("refused") == "remote":
                raise RemoteError(str(reply.get("error", ""))[:300])
            tried.append(f"{via} refused ({reply.get('refused')}): "
                         f"{str(reply.get('error', ''))[:200]}")
        self._via.pop(target, None)
        raise PeerUnreachable(f"{target} is unreachable, directly and through "
                              f"{len(tried)} neighbours ({'; '.join(tried) or 'none known'})")
