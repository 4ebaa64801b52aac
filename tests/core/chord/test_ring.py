"""Rings of nodes: joins, convergence, lookups, failures, leaves.

On the simulated network and its virtual clock (the same node code, in milliseconds),
except ``TestTcpRing``: a ring on loopback TCP whose members really crash.
"""

import asyncio
import random

import pytest

from core.chord import Address, Local
from core.chord.ids import in_open
from core.chord.sim import SimNetwork, converged_ring, sim_addresses
from core.chord.testing import (
    FAST,
    assert_lookups_agree,
    converged,
    network,
    start_node,
    start_ring,
    stop_all,
    true_owner,
    virtual_time,
    wait_converged,
    wait_until,
)


class TestRing:
    @pytest.mark.parametrize("size", [1, 2, 5, 32])
    @pytest.mark.parametrize("concurrent", [False, True], ids=["sequential", "concurrent"])
    @virtual_time
    async def test_ring__converges_and_lookups_find_true_owner(self, size, concurrent):
        nodes = await start_ring(size, concurrent=concurrent, network=network())
        try:
            await wait_converged(nodes)
            await assert_lookups_agree(nodes, 200 if size <= 5 else 25, seed=size)
        finally:
            await stop_all(nodes)

    @virtual_time
    async def test_ring__200_keys_from_every_node_of_32(self):
        nodes = await start_ring(32, network=network(), concurrent=True)
        try:
            await wait_converged(nodes)
            assert await assert_lookups_agree(nodes, 200, seed=32) == 6400
        finally:
            await stop_all(nodes)

    @virtual_time
    async def test_ring__four_of_sixteen_crash_and_the_ring_reconverges(self):
        net = network()
        nodes = await start_ring(16, network=net)
        try:
            await wait_converged(nodes)
            victims = random.Random(4).sample(nodes, 4)
            for victim in victims:
                net.kill(victim.address)  # gone at once, mid-round, as a crash is
            await asyncio.gather(*(v.stop() for v in victims))
            await wait_converged(nodes)
            await assert_lookups_agree(nodes, 50, seed=16)
        finally:
            await stop_all(nodes)

    @virtual_time
    async def test_ring__adjacent_crashes_are_survived_with_successor_lists(self):
        nodes = await start_ring(10, network=network())
        try:
            await wait_converged(nodes)
            ordered = sorted(nodes, key=lambda n: n.id)
            await asyncio.gather(*(v.stop() for v in ordered[2:5]))  # three in a row
            await wait_converged(nodes)
            await assert_lookups_agree(nodes, 30, seed=10)
        finally:
            await stop_all(nodes)

    @virtual_time
    async def test_leave__neighbours_splice_at_once(self):
        # A converged ring that runs no maintenance: only the leave itself can splice it.
        nodes = await converged_ring(SimNetwork(), sim_addresses(5), r=3)
        try:
            ordered = sorted(nodes, key=lambda n: n.id)
            leaver, before, after = ordered[2], ordered[1], ordered[3]
            await leaver.leave()
            assert not leaver.running
            assert before.successor().address == after.address
            assert after.predecessor().address == before.address
            assert leaver.address not in [s.address for s in before.successors()]
            assert [s.address for s in before.successors()] == [
                n.address for n in (ordered[3], ordered[4], ordered[0])]
        finally:
            await stop_all(nodes)

    @virtual_time
    async def test_leave__right_after_two_joins_leaves_no_node_alone(self):
        # No maintenance runs: the first node leaves before any stabilize round, its list
        # still only itself, while both joiners point at it and only the later one is its
        # predecessor (issue 23: a mailbox dropped as "no live successor" by the orphan).
        net = SimNetwork(latency=0.001, seed=1)
        b_at, c_at, a_at = sorted(sim_addresses(3, port=4100), key=lambda a: a.id)
        a = Local(a_at, None, transport=net.transport(), **FAST)
        b = Local(b_at, a_at, transport=net.transport(), **FAST)
        c = Local(c_at, a_at, transport=net.transport(), **FAST)
        try:
            for node in (a, b, c):
                await node.start(maintain=False)
            assert a.successor().address == a.address        # a has not stabilized
            assert a.predecessor().address == c.address      # c notified last
            await a.leave()
            assert b.successor().address == c.address
            assert c.successor().address == b.address
            assert c.predecessor().address == b.address
        finally:
            await stop_all([a, b, c])

    @virtual_time
    async def test_leave__of_every_node_in_turn_down_to_one(self):
        nodes = await start_ring(5, network=network())
        try:
            await wait_converged(nodes)
            while len([n for n in nodes if n.running]) > 1:
                leaver = next(n for n in nodes if n.running)
                await leaver.leave()
                await wait_converged(nodes)
                await assert_lookups_agree(nodes, 20, seed=len(nodes))
            last = next(n for n in nodes if n.running)
            assert last.successor().address == last.address
            assert last.predecessor() is None
            assert last.is_ours(12345)
        finally:
            await stop_all(nodes)


class TestNotifyHandler:
    @virtual_time
    async def test_notify_handler__fires_with_old_and_new_when_a_node_joins_before(self):
        net = network()
        a = await start_node(network=net)
        b = await start_node(a, network=net)
        c = None
        try:
            await wait_converged([a, b])
            changes = []
            b.set_notify_handler(lambda old, new: changes.append((old, new)))
            # An address whose id falls between a and b, so that c becomes b's predecessor.
            between = next(address for address in candidates()
                           if in_open(address.id, a.id, b.id))
            c = Local(between, a.address, transport=net.transport(), **FAST)
            await c.start()
            await wait_converged([a, b, c])
            await wait_until(lambda: changes, 10, what="the notify handler")
            old, new = changes[-1]
            assert old.address == a.address
            assert new.address == c.address
        finally:
            await stop_all([a, b] + ([c] if c else []))


def candidates():
    """Addresses on the simulated network, each with its own id."""
    return (Address(f"10.8.{(i >> 8) & 255}.{i & 255}", 4000) for i in range(1, 65536))


class TestRouting:
    @virtual_time
    async def test_find_successor__routes_around_nodes_the_caller_names_dead(self):
        nodes = await converged_ring(SimNetwork(), sim_addresses(10), r=4)
        try:
            ordered = sorted(nodes, key=lambda n: n.id)
            victim = ordered[5]
            key = victim.id  # owned by the victim while it lives
            owner, _ = await ordered[0].find_successor(key, avoid=[victim.address])
            assert owner.address == ordered[6].address  # the owner once the victim is gone
        finally:
            await stop_all(nodes)


class TestTcpRing:
    """Real sockets: what only they show, a ring over TCP whose members really crash."""

    async def test_ring__on_tcp_converges_survives_crashes_and_lookups_agree(self):
        nodes = await start_ring(6)
        try:
            await wait_until(lambda: converged(nodes), 60, what="the TCP ring")
            await asyncio.gather(*(v.stop() for v in random.Random(6).sample(nodes, 2)))
            await wait_until(lambda: converged(nodes), 60, what="the TCP ring to heal")
            live = [n for n in nodes if n.running]
            ids = [n.id for n in live]
            for node in live:
                for key in (random.Random(node.id).getrandbits(160) for _ in range(20)):
                    owner, _ = await node.find_successor(key)
                    assert owner.id == true_owner(ids, key)
        finally:
            await stop_all(nodes)
