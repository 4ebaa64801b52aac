"""Keeping a node's place in the ring: join, stabilize, fix_fingers, check_predecessor, leave,
and probe / merge, which make two rings one again after a partition.

Stoica et al. (SIGCOMM 2001, §4.4) with P. Zave's corrections ("Reasoning about
identifier spaces: how to make Chord correct", TSE 2017): a successor list of length r,
nothing adopted without checking it is alive, and the graceful leave of ToN'03 §IV.E.4.
Rectify, the answer to notify, is in ``protocol`` beside ``rpc_notify``. Ring unification
after Shafaat, Ghodsi and Haridi (P2P 2007; PPNA 2009): remembered peers (``peers``) are
probed now and then; one that answers from another ring starts a merge walk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from .address import Address, AddressError
from .errors import JoinError, LookupFailed, PeerUnreachable, RemoteError, RpcError
from .ids import RING, in_open
from .peers import Peers
from .protocol import RingProtocol
from .routing import FingerTable, OnChange, Routing
from .tasks import TaskSet

log = logging.getLogger(__name__)

Lookup = Callable[[Address, int, set[Address]], Awaitable[tuple[Address, int]]]

MERGE_STEPS = 4096   # a merge walk ends after this many steps (the next probe starts another)


def _ignore(kind: str, old: object, new: object) -> None:
    pass


def _now() -> float:
    return asyncio.get_running_loop().time()


class Maintenance:
    """The node's part in keeping the ring: changes ``routing`` from what ``calls`` learn.

    ``lookup(start, key, avoid)`` is the node's iterative find_successor; ``peers`` the
    remembered peers; ``on_change(kind, old, new)`` hears a merge step ("merge": our successor
    moved from ``old`` to ``new``, a node of another ring).
    """

    def __init__(self, routing: Routing, calls: RingProtocol, lookup: Lookup,
                 peers: Peers | None = None, on_change: OnChange = _ignore, probes: int = 2,
                 seed: int | None = None) -> None:
        self.routing = routing
        self.calls = calls
        self.lookup = lookup
        self.peers = peers if peers is not None else Peers(routing.me)
        self.on_change = on_change
        self.probes = probes
        self.random = random.Random(seed if seed is not None else routing.me.id)
        self._rounds = TaskSet()
        self._walks = TaskSet()
        self._asked_hidden = 0   # rounds that found a node between us and s1
        self._since: dict[str, tuple[Address | None, float]] = {}   # _lasting

    # -- join and leave --------------------------------------------------------------------

    async def join(self, bootstrap: Address) -> None:
        """Join(n) (Zave 2017): find our successor s through ``bootstrap``, take
        ``L := ([s] + s.L)[:r]`` and notify s; our predecessor comes by being notified."""
        me = self.routing.me
        avoid: set[Address] = set()
        for _ in range(self.routing.r + 1):
            try:
                successor, _ = await self.lookup(bootstrap, me.id, set(avoid))
            except (LookupFailed, RemoteError):
                if not avoid or bootstrap in avoid:
                    raise
                # every node the ring knows of between us and the bootstrap is out of our
                # reach though alive to the others (a firewall between us and them, not a
                # crash: connectivity need not be transitive): start just before the
                # bootstrap; stabilize moves us on to the closest successor we can reach
                successor = bootstrap
            if successor == me:
                # our own address, from before a restart (the ring has not noticed the old
                # process is gone), or others spliced us in already while we started: no
                # other live node can listen here, so route on past it
                if me in avoid:
                    raise JoinError(f"{bootstrap} says this address is already in the ring")
                avoid.add(me)
                continue
            try:
                _, their_list = await self.calls.call_state(successor)
                break
            except PeerUnreachable:
                avoid.add(successor)  # the ring has not noticed this crash yet: route around it
        else:
            raise JoinError(f"every successor {bootstrap} named for us was dead "
                            f"({', '.join(sorted(map(str, avoid)))})")
        self.routing.take_successors(successor, their_list)
        with contextlib.suppress(RpcError):
            await self.calls.call_notify(successor)

    async def leave(self) -> None:
        """Splice predecessor and successor together (ToN'03 §IV.E.4): the successor
        adopts our predecessor, the predecessor takes our successor list. Each asks us
        (``leaving``) before it believes it, so we keep answering until both replied.

        One stabilize round first: right after joins our list may still be only
        ourselves, or skip a node that joined just before us; leaving from it would
        splice our neighbours around the wrong nodes and leave some alone."""
        with contextlib.suppress(RpcError):
            await self.stabilize()
        me = self.routing.me
        predecessor, successors = self.routing.predecessor, list(self.routing.successors)
        successor = next((s for s in successors if s != me), None)
        heir = predecessor
        calls = []
        if successor is not None:
            # our successor's new predecessor: the closest before it of our predecessor and
            # the nodes that lately notified us (one that joined a moment ago may be closer
            # than the predecessor we kept); told none, it would think itself alone
            heirs = [c for c in (predecessor, *self.routing.notifiers)
                     if c is not None and c not in (me, successor)]
            heir = min(heirs, key=lambda c: (successor.id - c.id) % RING, default=predecessor)
            if heir != predecessor and not await self.calls.call_ping(heir):
                heir = predecessor   # a notifier gone meanwhile
            calls.append(self.calls.call_predecessor_leaving(successor, heir))
        # what we answer ``leaving`` with while the neighbours check this is our word
        self.calls.departure = (heir, successors)
        if predecessor is not None and predecessor != me:
            calls.append(self.calls.call_successor_leaving(predecessor, successors))
        # and every node that lately took us for its successor (``Routing.notified_by``):
        # each splices our list in only if we still are in its own
        for other in self.routing.notifiers:
            if other not in (me, predecessor):
                calls.append(self.calls.call_successor_leaving(other, successors))
        for result in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(result, Exception):
                log.info("%s: a neighbour missed our leave: %s", me, result)

    # -- the periodic rounds ---------------------------------------------------------------

    def start(self, stabilize_interval: float, fix_fingers_interval: float,
              check_predecessor_interval: float, probe_interval: float | None = None) -> None:
        """Run stabilize, fix_fingers, check_predecessor and probe, each on its interval
        (no probes if ``probe_interval`` is None)."""
        rounds = [(stabilize_interval, self.stabilize),
                  (fix_fingers_interval, self.fix_fingers),
                  (check_predecessor_interval, self.check_predecessor)]
        if probe_interval is not None:
            rounds.append((probe_interval, self.probe))
        for interval, step in rounds:
            self._rounds.spawn(self._every(interval, step))

    async def stop(self) -> None:
        await self._rounds.cancel_all()
        await self._walks.cancel_all()

    async def _every(self, interval: float, step: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(random.uniform(0, interval))  # spread the nodes' rounds
        while True:
            try:
                await step()
            except (RpcError, AddressError, ValueError, KeyError, TypeError) as e:
                log.debug("%s: %s failed: %s", self.routing.me, step.__name__, e)
            except Exception:
                log.exception("%s: %s failed", self.routing.me, step.__name__)
            await asyncio.sleep(interval)

    async def stabilize(self) -> None:
        """Refresh the successor list from the first live successor and notify it.

        When that turns up a closer successor, go on from it at once rather than a round
        later: after a flash crowd of joins, a node walks the chain of new predecessors in
        one round instead of one link per round.
        """
        routing = self.routing
        for _ in range(routing.r):
            before = routing.successor
            await self.stabilize_from_successor()
            after = routing.successor
            if after in (before, routing.me) or not in_open(after.id, routing.me.id, before.id):
                return

    async def stabilize_from_successor(self) -> None:
        """Zave 2017: ask s1 for (its predecessor p, its list); a dead s1 is dropped and
        the next one asked. ``L := ([s1] + s1.L)[:r]``; if p lies in (me, s1) and is alive,
        ``L := ([p] + p.L)[:r]``. Then notify the first successor."""
        routing, me = self.routing, self.routing.me
        for _ in range(len(routing.successors) + 1):
            s1 = routing.successor
            vouched = False
            if s1 == me:
                predecessor, new_list = routing.predecessor, [me]
            else:
                try:
                    predecessor, their_list, vouched = await self.calls.call_state_alive(s1)
                except PeerUnreachable:
                    routing.drop(s1)
                    self.peers.lost(s1, _now())
                    continue
                new_list = routing.successor_list(s1, their_list)
            # (a p our transport saw fail is not asked again every round: after a crash s1
            # still names the dead node a moment, and asking it would cost a timeout)
            hidden = None
            if (predecessor is not None and predecessor != me
                    and in_open(predecessor.id, me.id, s1.id)):
                self._asked_hidden += 1
                hidden = predecessor if vouched else None   # (s1 cannot reach it either:
                #                                              dead, or a partition)
                if (not self.calls.transport.is_suspected(predecessor)
                        or self._asked_hidden % 8 == 0):
                    with contextlib.suppress(PeerUnreachable):
                        _, their_list = await self.calls.call_state(predecessor)
                        new_list = routing.successor_list(predecessor, their_list)
                        hidden = None
            # alive to s1 (its predecessor, which it pings) but not to us: the owner of the
            # keys up to its id all the same (``Routing.hidden``) — once s1 has named it
            # for a while: a node that crashed, s1 drops within a timeout or two
            routing.hidden = hidden if self._lasting("hidden", hidden) else None
            routing.set_successors(new_list)
            if routing.successor != me:
                with contextlib.suppress(RpcError):
                    await self.calls.call_notify(routing.successor)
            return

    async def _behind_predecessor(self, predecessor: Address) -> None:
        """A node between our predecessor and us that we cannot reach (nor it us, so it
        never notifies us): our predecessor's first successor, by its word. It is our
        predecessor in the ring's order, owning the keys up to its id (it takes us as its
        ``Routing.hidden``); keeping the old one would make us own its keys too."""
        routing = self.routing
        try:
            _, theirs = await self.calls.call_state(predecessor)
        except RpcError:
            return
        behind = next((s for s in theirs if s != predecessor), None)
        if (behind is None or behind == routing.me or routing.predecessor != predecessor
                or not in_open(behind.id, predecessor.id, routing.me.id)):
            self._lasting("behind", None)
            return
        if not self._lasting("behind", behind):
            return   # named for a while first: a crashed one our predecessor drops soon
        if not await self.calls.call_ping(behind) and routing.predecessor == predecessor:
            log.info("%s: %s is out of our reach, alive to %s: our predecessor",
                     routing.me, behind, predecessor)
            routing.set_predecessor(behind)

    def _lasting(self, what: str, node: Address | None) -> bool:
        """Whether ``node`` has been the answer to ``what`` for at least three call
        timeouts without a break (None: no answer, which starts over)."""
        now = _now()
        since = self._since.get(what)
        if node is None or since is None or since[0] != node:
            self._since[what] = (node, now)
            return False
        return now - since[1] >= 3 * getattr(self.calls.transport, "timeout", 1.0)

    async def fix_fingers(self) -> None:
        """Recompute the distinct fingers: finger i is successor(n + 2**i) (§4.2)."""
        me = self.routing.me
        table = FingerTable(me)
        while (start := table.next_start()) is not None:
            try:
                owner, _ = await self.lookup(me, start, set())
            except RpcError:
                break
            table.found(owner)
        self.routing.set_fingers(table.fingers)

    async def check_predecessor(self) -> None:
        """Ping the predecessor; a dead one is suspected, so the next notifier replaces it."""
        routing = self.routing
        predecessor = routing.predecessor
        if predecessor is None or predecessor == routing.me:
            return
        was_suspected = routing.predecessor_suspected
        alive = await self.calls.call_ping(predecessor)
        routing.predecessor_answered(predecessor, alive)
        if alive:
            await self._behind_predecessor(predecessor)
        if not alive:
            self.peers.lost(predecessor, _now())
        if (not alive and was_suspected and predecessor == routing.predecessor
                and routing.successors == [routing.me]):
            # alone in the ring: nobody will ever notify us, so a dead predecessor would
            # keep part of the ring owned by no one; a node alone owns everything. (Only
            # after a second failed ping: a slow new joiner must not be dropped.)
            routing.set_predecessor(None)

    # -- ring unification (Shafaat, Ghodsi, Haridi) ----------------------------------------

    def view(self) -> list[Address | None]:
        routing = self.routing
        return [*routing.successors, routing.predecessor, *routing.fingers]

    async def probe(self) -> None:
        """Ping a few remembered peers that are not in our view (lost ones first); one that
        answers but is not the owner of its own id in our ring lives in another ring:
        start a merge with it. (A probe of a node of our own ring costs a ping and a lookup
        and clears it from the lost.)"""
        me = self.routing.me
        view = self.view()
        self.peers.saw(view, _now())
        for peer in self.peers.candidates(view, self.probes, self.random):
            if not await self.calls.call_ping(peer):
                self.peers.lost(peer, _now())
                continue
            try:
                owner, _ = await self.lookup(me, peer.id, set())
            except RpcError:
                continue   # says nothing; the next round tries again
            self.peers.saw([peer], _now())
            if owner != peer:
                log.info("%s: %s answers but is not in our ring (we route its id to %s): "
                         "merging", me, peer, owner)
                self.start_merge(peer)

    def start_merge(self, candidate: Address, steps: int = 0) -> None:
        """Run a merge walk from here (in the background) with ``candidate``."""
        self._walks.spawn(self.merge(candidate, steps))

    async def merge(self, candidate: Address, steps: int = 0) -> None:
        """One node's part of a merge walk: splice ``candidate`` (a node of another ring)
        in after us if it lies between us and our successor, then hand the walk on.

        - ``candidate`` is us or our successor: the rings are zipped here; stop.
        - it lies in (us, successor) and answers (Zave's rule 1): it becomes our successor,
          we notify it, and the walk goes on at the candidate with our old successor, which
          now has to find its place in the candidate's ring;
        - else the walk goes on at the node that should precede the candidate (the
          predecessor of its id's owner in our ring); if that owner is the candidate
          itself, it is already in our ring: stop.
        Each step only moves a successor closer, after a liveness check, so walks that
        cross each other (every node that notices the other ring starts one) do no harm.
        """
        routing, me = self.routing, self.routing.me
        if steps >= MERGE_STEPS or candidate == me:
            return
        s = routing.successor
        if candidate == s:
            return
        if s == me or in_open(candidate.id, me.id, s.id):
            try:
                _, their_list = await self.calls.call_state(candidate)
            except RpcError:
                return
            if routing.successor != s:      # changed meanwhile: decide again
                return self.start_merge(candidate, steps + 1)
            routing.take_successors(candidate, their_list)
            self.peers.saw([candidate], _now())
            self.on_change("merge", s, candidate)
            with contextlib.suppress(RpcError):
                await self.calls.call_notify(candidate)
            if s != me:
                with contextlib.suppress(RpcError):
                    await self.calls.call_merge(candidate, s, steps + 1)
            return
        try:
            owner, _ = await self.lookup(me, candidate.id, set())
            if owner == candidate:
                return
            predecessor, _ = await self.calls.call_state(owner)
        except RpcError:
            return
        if predecessor is None or predecessor == me:
            return   # our view is behind; stabilize catches up and the next probe retries
        with contextlib.suppress(RpcError):
            await self.calls.call_merge(predecessor, candidate, steps + 1)
