"""Two rings become one after a partition heals (ring unification, Shafaat et al.), on the
simulated network and its virtual clock: the real node code, partitions without sockets."""

import asyncio
import random

from core.chord import Address
from core.chord.peers import Peers
from core.chord.testing import (
    converged,
    network,
    start_node,
    start_ring,
    stop_all,
    virtual_time,
    wait_converged,
    wait_until,
)

MERGE = dict(probe_interval=0.5)


def halves(nodes, seed=1):
    """Two interleaved halves of a ring (by a seeded shuffle): the hardest split to zip."""
    order = list(nodes)
    random.Random(seed).shuffle(order)
    return order[:len(order) // 2], order[len(order) // 2:]


async def split(net, nodes) -> tuple[list, list]:
    """Once ``nodes`` are one ring, cut it into two interleaved halves and wait until each
    half is a ring of its own; returns the halves."""
    await wait_converged(nodes)
    left, right = halves(nodes)
    net.partition([n.address for n in left], [n.address for n in right])
    await wait_until(lambda: converged(left) and converged(right), 60,
                     what="each side its own ring")
    return left, right


class TestPeers:
    def test_peers__lost_ones_come_first_and_outlive_the_live_when_full(self):
        me = Address("10.0.0.1", 1)
        a, b, c, d = (Address(f"10.0.0.{i}", 1) for i in range(2, 6))
        peers = Peers(me, limit=3)
        peers.saw([a, b, None, me], now=0.0)
        peers.lost(c, now=1.0)
        assert me not in peers and len(peers) == 3
        assert peers.candidates([a], 5, random.Random(1)) == [c, b]
        peers.saw([d], now=2.0)            # full: the live one seen longest ago goes
        assert c in peers and d in peers and len(peers) == 3
        peers.saw([c], now=3.0)            # answered again: no longer lost
        assert peers.entries[c].lost_at is None

    def test_peers__forgets_the_lost_after_a_while(self):
        me, a = Address("10.0.0.1", 1), Address("10.0.0.2", 1)
        peers = Peers(me, forget_lost=10.0)
        peers.lost(a, now=0.0)
        peers.saw([], now=11.0)
        assert a not in peers


class TestMerge:
    @virtual_time
    async def test_merge__a_ring_split_in_two_interleaved_halves_is_one_again_after_heal(self):
        net = network()
        nodes = await start_ring(12, network=net, **MERGE)
        try:
            left, right = await split(net, nodes)
            # each node remembers nodes of the other side (some dropped as dead, others
            # just gone from its view when it took a successor's list)
            assert all(any(r.address in n.peers for r in right) for n in left)
            assert any(n.peers.entries[r.address].lost_at is not None
                       for r in right for n in left if r.address in n.peers)
            merges = []
            for n in nodes:
                n.add_listener(lambda kind, detail: kind == "merge" and merges.append(detail))
            net.heal()
            await wait_converged(nodes, timeout=60)
            assert merges   # the rings were spliced by merge steps, not by chance
        finally:
            await stop_all(nodes)

    @virtual_time
    async def test_merge__without_probes_the_halves_stay_two_rings(self):
        net = network()
        nodes = await start_ring(8, network=net, probe_interval=None)
        try:
            left, right = await split(net, nodes)
            net.heal()
            # the control: nothing to wait for, as nothing should happen; 30 s of virtual
            # time are 60 stabilize rounds and 6 probe intervals of the other test
            await asyncio.sleep(30)
            assert converged(left) and converged(right) and not converged(nodes)
        finally:
            await stop_all(nodes)

    @virtual_time
    async def test_merge__two_rings_that_never_met_merge_through_one_remembered_peer(self):
        net = network()
        a = await start_ring(5, network=net, **MERGE)
        b = await start_ring(5, network=net, **MERGE)
        try:
            await wait_converged(a)
            await wait_converged(b)
            a[2].peers.lost(b[3].address, now=0.0)   # one node of one ring knows one of the other
            await wait_converged(a + b, timeout=60)
        finally:
            await stop_all(a + b)

    @virtual_time
    async def test_merge__a_lone_node_and_a_ring_merge(self):
        net = network()
        ring = await start_ring(4, network=net, **MERGE)
        alone = await start_node(network=net, **MERGE)
        try:
            await wait_converged(ring)
            alone.peers.lost(ring[1].address, now=0.0)
            await wait_converged([*ring, alone], timeout=60)
        finally:
            await stop_all([*ring, alone])

    @virtual_time
    async def test_merge__a_walk_with_a_node_of_our_own_ring_changes_nothing(self):
        net = network()
        nodes = await start_ring(6, network=net, probe_interval=None)
        try:
            await wait_converged(nodes)
            events = []
            for n in nodes:
                n.add_listener(lambda kind, detail: events.append(kind))
            before = {n.address: [s.address for s in n.successors()] for n in nodes}
            await nodes[0].merge(nodes[3].address)
            await nodes[0].probe()   # nothing remembered outside the view
            assert "merge" not in events
            assert {n.address: [s.address for s in n.successors()] for n in nodes} == before
        finally:
            await stop_all(nodes)
