"""Rings of real nodes on loopback TCP: joins, convergence, lookups, failures, leaves."""

import asyncio
import random

import pytest

from core.chord import Address, Local, LookupFailed
from tests.ring import (
    FAST,
    converged,
    ring_problems,
    start_node,
    start_ring,
    stop_all,
    true_owner,
    wait_until,
)


async def assert_lookups_agree(nodes: list[Local], keys_per_node: int, seed: int) -> None:
    rng = random.Random(seed)
    live = [n for n in nodes if n.running]
    ids = [n.id for n in live]
    for node in live:
        for _ in range(keys_per_node):
            key = rng.getrandbits(160)
            owner, hops = await node.find_successor(key)
            assert owner.id == true_owner(ids, key), f"{node} routed {key:x} to {owner}"
            assert 0 <= hops <= len(live)


async def wait_converged(nodes: list[Local], timeout: float = 60.0) -> None:
    try:
        await wait_until(lambda: converged(nodes), timeout, what="the ring to converge")
    except AssertionError:
        raise AssertionError("\n".join(ring_problems(nodes)[:20])) from None


class TestRing:
    @pytest.mark.parametrize("size", [1, 2, 5, 32])
    @pytest.mark.parametrize("concurrent", [False, True], ids=["sequential", "concurrent"])
    async def test_ring__converges_and_lookups_find_true_owner(self, size, concurrent):
        nodes = await start_ring(size, concurrent=concurrent)
        try:
            await wait_converged(nodes)
            await assert_lookups_agree(nodes, 200 if size <= 5 else 25, seed=size)
        finally:
            await stop_all(nodes)

    async def test_ring__200_keys_from_every_node_of_32(self):
        nodes = await start_ring(32, concurrent=True)
        try:
            await wait_converged(nodes)
            await assert_lookups_agree(nodes, 200, seed=32)
        finally:
            await stop_all(nodes)

    async def test_ring__four_of_sixteen_crash_and_the_ring_reconverges(self):
        nodes = await start_ring(16)
        try:
            await wait_converged(nodes)
            victims = random.Random(4).sample(nodes, 4)
            await asyncio.gather(*(v.stop() for v in victims))
            await wait_converged(nodes)
            await assert_lookups_agree(nodes, 50, seed=16)
        finally:
            await stop_all(nodes)

    async def test_ring__adjacent_crashes_are_survived_with_successor_lists(self):
        nodes = await start_ring(10)
        try:
            await wait_converged(nodes)
            ordered = sorted(nodes, key=lambda n: n.id)
            await asyncio.gather(*(v.stop() for v in ordered[2:5]))  # three in a row
            await wait_converged(nodes)
            await assert_lookups_agree(nodes, 30, seed=10)
        finally:
            await stop_all(nodes)

    async def test_leave__neighbours_splice_at_once(self):
        first = await start_node(**FAST)
        nodes = [first] + [await start_node(first, **FAST) for _ in range(4)]
        try:
            await wait_converged(nodes)
            # From now on no maintenance runs: only the leave itself can splice the ring.
            for n in nodes:
                await n._stop_maintenance()
            ordered = sorted(nodes, key=lambda n: n.id)
            leaver, before, after = ordered[2], ordered[1], ordered[3]
            await leaver.leave()
            assert not leaver.running
            assert before.successor().address == after.address
            assert after.predecessor().address == before.address
            assert leaver.address not in [s.address for s in before.successors()]
        finally:
            await stop_all(nodes)

    async def test_leave__of_every_node_in_turn_down_to_one(self):
        nodes = await start_ring(5)
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
    async def test_notify_handler__fires_with_old_and_new_when_a_node_joins_before(self):
        a = await start_node()
        b = await start_node(a)
        try:
            await wait_converged([a, b])
            changes = []
            # An address whose id falls between a and b, so that c becomes b's predecessor.
            c = Local(await _address_between(a.id, b.id), a.address, **FAST)
            b.set_notify_handler(lambda old, new: changes.append((old, new)))
            await c.start()
            nodes = [a, b, c]
            await wait_converged(nodes)
            await wait_until(lambda: changes, 10, what="the notify handler")
            old, new = changes[-1]
            assert old.address == a.address
            assert new.address == c.address
        finally:
            await stop_all([a, b] + ([c] if c.running else []))


async def _address_between(low: int, high: int) -> Address:
    """A free loopback address whose id lies in (low, high)."""
    from core.chord.ids import in_open
    for _ in range(2000):
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        address = Address("127.0.0.1", port)
        if in_open(address.id, low, high):
            return address
    raise AssertionError("no free port with an id in the interval")


class TestRouting:
    async def test_next_hop__with_every_successor_dead_never_claims_the_key(self):
        nodes = await start_ring(12, successors=3)
        try:
            await wait_converged(nodes)
            await wait_until(lambda: all(n.fingers() for n in nodes), 30, what="fingers")
            node = nodes[0]
            dead = [s.address for s in node.successors()]
            rng = random.Random(7)
            for _ in range(50):
                key = rng.getrandbits(160)
                if node.is_ours(key):
                    continue
                try:
                    done, hop = node._next_hop(key, set(dead))
                except LookupFailed:
                    continue
                assert not done, "a node with no live successor named an owner"
                assert hop not in dead and hop != node.address
        finally:
            await stop_all(nodes)

    async def test_find_successor__routes_around_nodes_the_caller_names_dead(self):
        nodes = await start_ring(10, successors=4)
        try:
            await wait_converged(nodes)
            ordered = sorted(nodes, key=lambda n: n.id)
            victim = ordered[5]
            key = victim.id  # owned by the victim while it lives
            owner, _ = await ordered[0].find_successor(key, avoid=[victim.address])
            assert owner.address == ordered[6].address  # the owner once the victim is gone
        finally:
            await stop_all(nodes)
