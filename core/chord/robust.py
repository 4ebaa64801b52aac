"""Lookups that survive lying nodes: several paths, every answer checked.

A plain iterative lookup (``Local.find_successor``) believes each hop: one hostile node
on the path that answers "done: the owner is me" (or a colluder) ends the lookup at the
wrong node. ``RobustLookup`` asks over several paths and checks what it is told, after
Castro, Druschel, Ganesh, Rowstron and Wallach, "Secure routing for structured
peer-to-peer overlay networks" (OSDI 2002: the density test, redundant routing) and
Kapadia and Triandopoulos, "Halo" (NDSS 2008: lookups that start from different places):

- **Paths.** Up to ``paths`` lookups run at once, each starting at a different node of
  our own routing state (the closest preceding nodes of the key, one per path), sharing
  what they learn (dead nodes, caught liars).
- **Every hop is checked.** A next hop must lie strictly between the node that named it
  and the key (it makes progress, Chord §4.3); an owner must lie plausibly close after
  the key: within ``slack`` times the mean gap between nodes, as our own successor list
  measures it (Castro et al.'s density test). Ids are hashes of addresses, so a node
  cannot choose the id it claims; a lying node before the key cannot pass for its owner.
  A node caught lying is avoided (by every path) and the lookup backs up a step, as it
  does around a dead node.
- **The owner is confirmed.** The candidate's own predecessor must precede the key, and
  that predecessor, asked in turn, must name the candidate as its successor; a closer
  node it names instead becomes a candidate. Of the confirmed candidates the one closest
  after the key wins (any live node a liar names lies further from the key than the true
  owner), else the closest plausible one, else the closest found at all (a lookup never
  fails where a plain one would have answered).
- **Holders.** ``Found.holders(r)``: the owner and the next r nodes after it, gathered
  from the successor lists of the owner and of its predecessor (a liar's list cannot hide
  closer nodes that an honest list names), within the per-prefix quota
  (``placement.within_quota``), for reading a record from its replicas too.

The price: about ``paths`` times the hops of a plain lookup, plus two ``state`` calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .address import Address
from .errors import LookupFailed, RpcError
from .ids import M, distance, in_half_open, in_open
from .placement import within_quota
from .protocol import RingProtocol

if TYPE_CHECKING:
    from .node import Local

PATHS = 3        # lookups run at once, from different first hops
SLACK = 10.0     # an owner further than this many mean gaps after the key is not believed
MAX_HOPS = 2 * M
_BAD_REPLY = (RpcError, ValueError, KeyError, TypeError)   # dead, or a nonsense answer


@dataclass
class Found:
    """The outcome of a robust lookup of ``key``."""
    key: int
    owner: Address
    confirmed: bool                    # the owner's predecessor named it as its successor
    hops: int                          # calls made: next_hop on every path, and state calls
    liars: set[Address] = field(default_factory=set)   # nodes caught lying
    known: set[Address] = field(default_factory=set)   # nodes seen after the owner
    per_prefix: int | None = None

    def holders(self, r: int) -> list[Address]:
        """The owner, then up to ``r`` of the closest nodes after it (its replicas), within
        the per-prefix quota; known liars left out."""
        after = sorted((a for a in self.known if a != self.owner and a not in self.liars),
                       key=lambda a: distance(self.owner.id, a.id))
        return [self.owner, *within_quota(after, r, self.per_prefix, held=[self.owner])]


class RobustLookup:
    """Robust lookups made by ``node`` (see the module docstring).

    Args:
        paths: lookups run at once from different first hops.
        slack: the density test: how many mean gaps after the key an owner may lie.
        per_prefix: the placement quota applied to ``Found.holders`` (None: none).
    """

    def __init__(self, node: Local, paths: int = PATHS, slack: float = SLACK,
                 per_prefix: int | None = None) -> None:
        if paths < 1:
            raise ValueError("a robust lookup needs at least one path")
        self.node = node
        self.paths = paths
        self.slack = slack
        self.per_prefix = per_prefix

    @property
    def _calls(self) -> RingProtocol:
        return RingProtocol(self.node.transport)

    # -- the checks ------------------------------------------------------------------------

    def gap(self) -> float | None:
        """The mean gap between nodes, from our successor list; None on a ring too small
        to tell (fewer than two other nodes)."""
        me = self.node.address
        successors = [s.address for s in self.node.successors() if s.address != me]
        if len(successors) < 2:
            return None
        return distance(me.id, successors[-1].id) / len(successors)

    def plausible(self, key: int, owner: Address) -> bool:
        """Castro et al.'s density test: ``owner`` lies at most ``slack`` gaps after ``key``."""
        gap = self.gap()
        return gap is None or distance(key, owner.id) <= self.slack * gap

    # -- the lookup ------------------------------------------------------------------------

    async def find(self, key: int, avoid: Iterable[Address] = ()) -> Found:
        """The owner of ``key``, found over several paths and checked; LookupFailed if no
        path gave an answer."""
        node, me = self.node, self.node.address
        if node.is_ours(key):
            return Found(key, me, True, 0, known={s.address for s in node.successors()},
                         per_prefix=self.per_prefix)
        avoid = set(avoid)
        liars: set[Address] = set()
        candidates: set[Address] = set()
        successor = next((s.address for s in node.successors()
                          if s.address not in avoid and s.address != me), None)
        if successor is not None and in_half_open(key, me.id, successor.id):
            candidates.add(successor)   # our own state says so: no path needed
            starts: list[Address] = []
        else:
            starts = self._first_hops(key, avoid)
        doubtful: set[Address] = set()   # owners that failed the density test
        results = await asyncio.gather(*(self._path(key, s, avoid, liars, doubtful)
                                         for s in starts))
        hops = sum(h for _, h in results)
        candidates.update(owner for owner, _ in results if owner is not None)
        candidates -= liars
        if not candidates:
            # perhaps our successor list misjudges the gaps (a small or young ring): the
            # doubtful answers are still confirmed or refuted one by one below
            candidates = doubtful - liars - avoid
        if not candidates:
            raise LookupFailed(f"no path found an owner of {key:x} "
                               f"({len(liars)} nodes caught lying)")
        return await self._choose(key, candidates, liars, avoid, hops)

    def _first_hops(self, key: int, avoid: set[Address]) -> list[Address]:
        """Where the paths start: the ``paths`` closest preceding nodes we know."""
        me, skip, starts = self.node.address, set(avoid), []
        while len(starts) < self.paths:
            hop = self.node.closest_preceding_node(key, skip)
            if hop == me:
                break
            starts.append(hop)
            skip.add(hop)
        return starts

    async def _path(self, key: int, start: Address, avoid: set[Address],
                    liars: set[Address], doubtful: set[Address]) -> tuple[Address | None, int]:
        """One iterative lookup from ``start``; (the owner it found or None, hops)."""
        calls, path, current, hops = self._calls, [], start, 0
        for _ in range(MAX_HOPS):
            try:
                if current == self.node.address:
                    done, named = self._next_hop_here(key, avoid | liars)
                else:
                    done, named = await calls.call_next_hop(current, key, avoid | liars)
                    hops += 1
            except _BAD_REPLY:
                avoid.add(current)
                named, done = None, False
            else:
                if named in liars or named in avoid:
                    liars.add(current)   # it was told to avoid that node
                elif done and not self.plausible(key, named):
                    liars.add(current)   # an owner far after the key (or before it)
                    doubtful.add(named)
                elif not done and not in_open(named.id, current.id, key):
                    liars.add(current)   # a next hop that makes no progress
                elif done:
                    return named, hops
                else:
                    path.append(current)
                    current = named
                    continue
            if not path:
                return None, hops
            current = path.pop()   # back up a step, around the dead or lying node
        return None, hops

    async def holders(self, found: Found, r: int) -> list[Address]:
        """The owner of ``found`` and the next ``r`` nodes after it (within the quota),
        asked for: every node among the closest ones known is asked for its state, and the
        predecessors and successors it names join the known ones, until the closest r
        have all been asked. A liar's successor list cannot hide a closer node whose
        successor (or an honest node's list) names it."""
        owner, asked = found.owner, {found.owner}
        known = {a for a in found.known if a not in found.liars}
        calls = self._calls
        for _ in range(r + 2):
            closest = Found(found.key, owner, found.confirmed, 0, found.liars, known,
                            self.per_prefix).holders(r)[1:]
            fresh = [a for a in closest if a not in asked and a != self.node.address]
            if not fresh:
                break
            asked.update(fresh)
            replies = await asyncio.gather(*(calls.call_state(a) for a in fresh),
                                           return_exceptions=True)
            for a, reply in zip(fresh, replies, strict=True):
                if isinstance(reply, BaseException):
                    known.discard(a)   # dead or broken: not a holder
                    continue
                predecessor, successors = reply
                known.update(s for s in successors if s != owner)
                if predecessor is not None and predecessor != owner and in_open(
                        predecessor.id, owner.id, a.id):
                    known.add(predecessor)
        found.known = known
        return found.holders(r)

    def _next_hop_here(self, key: int, avoid: set[Address]) -> tuple[bool, Address]:
        """A path came through this node: answer from our own state, as a peer would."""
        me = self.node.address
        successor = next((s.address for s in self.node.successors()
                          if s.address not in avoid), me)
        if successor != me and in_half_open(key, me.id, successor.id):
            return True, successor
        hop = self.node.closest_preceding_node(key, avoid)
        if hop == me:
            raise LookupFailed(f"{me} knows no node closer to {key:x}")
        return False, hop

    async def _choose(self, key: int, candidates: set[Address], liars: set[Address],
                      avoid: set[Address], hops: int) -> Found:
        """Confirm candidates, closest after the key first; the first confirmed wins."""
        known: set[Address] = set()
        pending = set(candidates)
        tried: set[Address] = set()
        plausible_ones: list[Address] = []
        calls = self._calls
        me = self.node.address
        while pending and len(tried) < 4 * self.paths + 4:
            candidate = min(pending, key=lambda a: distance(key, a.id))
            pending.discard(candidate)
            tried.add(candidate)
            if candidate == me:   # our own state needs no asking, and is no lie
                own = self.node.predecessor()
                predecessor = None if own is None else own.address
                successors = [s.address for s in self.node.successors()]
            else:
                try:
                    predecessor, successors = await calls.call_state(candidate)
                    hops += 1
                except _BAD_REPLY:
                    avoid.add(candidate)
                    continue
            known.update(successors)
            if self.plausible(key, candidate):
                plausible_ones.append(candidate)
            if predecessor is None:
                continue
            if not in_half_open(key, predecessor.id, candidate.id):
                # its predecessor lies after the key too: closer to it, so a better
                # candidate (walking back along predecessors ends at the owner)
                if (predecessor not in tried and predecessor not in liars
                        and predecessor not in avoid):
                    pending.add(predecessor)
                continue
            if predecessor == me:
                theirs = [s.address for s in self.node.successors()]
            else:
                try:
                    _, theirs = await calls.call_state(predecessor)
                    hops += 1
                except _BAD_REPLY:
                    continue
            known.update(theirs)
            closer = [s for s in theirs if distance(key, s.id) < distance(key, candidate.id)
                      and s not in liars and s not in avoid and s not in tried]
            if theirs and theirs[0] == candidate:
                known.add(candidate)
                return Found(key, candidate, True, hops, liars, known, self.per_prefix)
            pending.update(closer)
        best = min(plausible_ones or tried - avoid or candidates,
                   key=lambda a: distance(key, a.id))
        return Found(key, best, False, hops, liars, known, self.per_prefix)
