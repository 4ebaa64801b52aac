"""Who may move state to or from this node: the nodes that could hold it now, by this
node's own view of the ring (its successor list, its predecessor and the predecessors
before that), never by a frame's word.

A frame that moves state (``chat.migrate``, ``chat.replicate``, ``chat.handoff``) names
the node it comes from; that claim is believed only if the connection it arrived on comes
from that address's host (``CALLER_HOST``, the transport's source address) and the node
is where this node expects a sender of such a frame to be:

- a migration comes from a node whose range held the keys: one of our successors (a
  join's rebalance, a hand-off) or one of our predecessors (an exit);
- a copy (replica) comes from one of the r nodes before us, whose replica set we are in;
- a hand-off is asked for by one of the r nodes before us, for keys of its own range.

The predecessors beyond the first are learned by asking each for its own (the overlay's
``state``), at most ``depth`` steps, and kept for ``ttl`` seconds: a stranger's frame
costs at most one walk per ``ttl`` / 4. A sender the cached walk does not show (a node
that joined a moment ago) gets one walk at once before it is refused: at most
``RECHECKS`` per claimed sender per second and ``RECHECKS_IN_ALL`` per second in all, so
the replicas a join makes right after it are not refused (and the senders retry a
refusal after a short pause, ``Replication``).
"""

from __future__ import annotations

import asyncio
import logging
import socket

from core.chord import Address, AddressError, Local, RpcError, in_open
from core.chord.address import ip_of
from core.chord.bucket import Bucket
from core.chord.protocol import RingProtocol
from core.chord.transport import CALLER_HOST

from ..wire import verbs as p
from ..wire.calls import now

log = logging.getLogger(__name__)

RECHECKS = 4           # walks at once for one claimed sender not in our walk, per second
RECHECKS_IN_ALL = 10   # the same, all senders together, per second
MAX_SENDERS = 1_000    # senders whose recheck bucket is remembered


def _ip(host: str) -> str | None:
    """``host`` as a canonical IP (an IPv4-mapped IPv6 one as IPv4); None for a name."""
    ip = ip_of(host)
    return None if ip is None else ip.compressed


class Neighbours:
    """This node's neighbourhood, and the check of a frame's claimed sender.

    Args:
        replicas: r, how many successors hold a copy of what a node maintains.
        depth: how many predecessors to know (at least r).
        ttl: how long a walk of the predecessors is believed.
    """

    def __init__(self, node: Local, replicas: int, depth: int | None = None,
                 ttl: float = 1.0) -> None:
        self.node = node
        self.replicas = replicas
        self.depth = max(depth or replicas + 1, 1)
        self.ttl = ttl
        self._chain: list[Address] = []
        self._walked = float("-inf")
        self._walks = 0   # walks begun
        self._lock = asyncio.Lock()
        self._names: dict[str, set[str]] = {}   # host name -> its IPs (resolved once)
        self._rechecks: dict[Address, Bucket] = {}
        self._rechecks_in_all = Bucket(RECHECKS_IN_ALL, RECHECKS_IN_ALL, RECHECKS_IN_ALL,
                                       float("-inf"))
        self.rechecks = 0   # walks made at once for a sender not in the cached walk

    # -- the claimed sender ----------------------------------------------------------------

    async def sender(self, d: dict, field: str = "from") -> Address:
        """The address ``d[field]`` claims, if the frame came from that host (Refused
        otherwise). A call this node made to itself has no caller host and must name us."""
        try:
            claimed = Address.from_wire(d.get(field))
        except (AddressError, ValueError, TypeError):
            raise p.Refused("bad_sender", f"{field!r} is not a node address") from None
        host = CALLER_HOST.get()
        if host is None:
            if claimed != self.node.address:
                raise p.Refused("bad_sender", f"a local call names another node ({claimed})")
            return claimed
        seen = _ip(host) or host.lower()
        if not await self._is_host(claimed.host, seen):
            raise p.Refused("bad_sender", f"{field} {claimed} but the frame came from {host}")
        return claimed

    async def _is_host(self, claimed: str, seen: str) -> bool:
        ip = _ip(claimed)
        if ip is not None:
            return ip == seen
        if claimed not in self._names:   # a host name: its addresses, looked up once
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    claimed, None, type=socket.SOCK_STREAM)
                self._names[claimed] = {_ip(str(i[4][0])) or "" for i in infos}
            except OSError:
                return False
        return seen in self._names[claimed]

    # -- our view --------------------------------------------------------------------------

    def successors(self) -> list[Address]:
        return [s.address for s in self.node.successors() if s.address != self.node.address]

    def replica_set(self) -> list[Address]:
        """The nodes that hold our copies: our first r successors."""
        return self.successors()[:self.replicas]

    async def predecessors(self, sender: Address | None = None) -> list[Address]:
        """Our predecessor, its predecessor, … (``depth`` of them at most), nearest first.

        Walked again if older than ``ttl``, or if ``sender`` is not in it and the walk is
        older than ``ttl`` / 4 (a node that just became a predecessor's predecessor)."""
        pred = self.node.predecessor()
        if pred is None:
            return []
        fresh = now() - self._walked
        stale = (not self._chain or self._chain[0] != pred.address or fresh > self.ttl
                 or (sender is not None and sender not in self._chain
                     and fresh > self.ttl / 4))
        if stale and self.depth > 1:
            async with self._lock:
                if now() - self._walked > self.ttl / 4 or not self._chain \
                        or self._chain[0] != pred.address:
                    await self._walk(pred.address)
        elif stale:
            self._chain, self._walked = [pred.address], now()
        return list(self._chain)

    async def recheck(self, sender: Address) -> list[Address]:
        """Walk our predecessors again at once for ``sender``, which the cached walk does
        not show (bounded: ``RECHECKS`` per sender and ``RECHECKS_IN_ALL`` per second);
        the walk as it is when the bound is reached."""
        started, begun = now(), self._walks
        bucket = self._rechecks.get(sender)
        if bucket is None:
            if len(self._rechecks) >= MAX_SENDERS:
                self._rechecks.clear()
            bucket = self._rechecks[sender] = Bucket(RECHECKS, RECHECKS, RECHECKS, started)
        if not bucket.take(1, started) or not self._rechecks_in_all.take(1, started):
            return list(self._chain)
        pred = self.node.predecessor()
        if pred is None:
            return []
        async with self._lock:
            if self._walks == begun:   # else a walk began after we asked: it will do
                self.rechecks += 1
                await self._walk(pred.address)
        return list(self._chain)

    async def _walk(self, first: Address) -> None:
        self._walks += 1
        chain = [first]
        protocol = RingProtocol(self.node.transport)
        while len(chain) < self.depth:
            try:
                before, _ = await protocol.call_state(chain[-1])
            except (RpcError, ValueError, KeyError, TypeError):
                break
            if before is None or before == self.node.address or before in chain:
                break
            chain.append(before)
        self._chain, self._walked = chain, now()

    async def is_predecessor(self, sender: Address, within: int | None = None) -> bool:
        """Whether ``sender`` is one of our first ``within`` (default r) predecessors."""
        within = within or self.replicas
        chain = await self.predecessors(sender)
        if sender not in chain[:within]:
            chain = await self.recheck(sender)
        return sender in chain[:within]

    async def is_copier(self, sender: Address) -> bool:
        """Whether ``sender`` may send us copies of its range: one of our first r
        predecessors, or the node our rectify is about to adopt as the first (it lies
        between our predecessor and us, or we have none, and names us as its successor)."""
        if await self.is_predecessor(sender):
            return True
        return await self.becoming_predecessor(sender)

    async def becoming_predecessor(self, sender: Address) -> bool:
        """Whether rectify would adopt ``sender`` as our predecessor now (its notify may be
        in flight): it lies in (predecessor, us), or we have none, and asked at its address
        it names us as its first successor."""
        me, pred = self.node.address, self.node.predecessor()
        if sender == me or (pred is not None and not in_open(sender.id, pred.id, me.id)):
            return False
        try:
            _, successors = await RingProtocol(self.node.transport).call_state(sender)
        except (RpcError, ValueError, KeyError, TypeError):
            return False
        return successors[:1] == [me]

    async def copier_before(self, sender: Address) -> Address | None:
        """The node before ``sender``, a copier (``is_copier``): from our walk of the
        predecessors, else (it is becoming our predecessor) our current predecessor."""
        before = await self.before(sender)
        if before is not None or sender in await self.predecessors(sender):
            return before
        pred = self.node.predecessor()
        return None if pred is None or pred.address == sender else pred.address

    async def is_neighbour(self, sender: Address) -> bool:
        """Whether ``sender`` is in our successor list or among our predecessors."""
        return sender in self.successors() or await self.is_predecessor(sender, self.depth)

    async def before(self, sender: Address) -> Address | None:
        """The node before ``sender`` in our walk of the predecessors (None: unknown)."""
        chain = await self.predecessors(sender)
        if sender in chain and chain.index(sender) + 1 < len(chain):
            return chain[chain.index(sender) + 1]
        return None
