"""Routed user commands: carried hop by hop to the key's owner, answered straight back."""

from __future__ import annotations

import asyncio

import pytest

from core.chord import Address, Local, RemoteError
from core.chord.sim import SimNetwork, converged_ring, sim_addresses
from core.chord.testing import converged, start_ring, stop_all, true_owner, virtual_time, wait_until


def where(node: Local):
    """A handler that says which node ran it."""
    return lambda payload: {"at": str(node.address), "payload": payload}


async def slowly(payload):
    """A handler that really suspends: the reply must wait for it (not a wait on anything)."""
    await asyncio.sleep(0.01)
    return payload * 2


async def where_ring(n: int, seed: int = 3) -> tuple[SimNetwork, list[Local]]:
    """A converged simulated ring of ``n`` nodes, each serving "where"."""
    net = SimNetwork(latency=0.001, seed=seed)
    nodes = await converged_ring(net, sim_addresses(n))
    for node in nodes:
        node.register_command("where", where(node))
    return net, nodes


class TestRouteSim:
    @virtual_time
    async def test_route__runs_at_the_true_owner_of_every_key(self):
        _, nodes = await where_ring(50)
        ids = [n.id for n in nodes]
        for i in range(200):
            key = (i * 7919 << 140) % (1 << 160)
            start = nodes[i % len(nodes)]
            reply, owner, _ = await start.route(key, "where", i)
            assert owner.id == true_owner(ids, key)
            assert reply == {"at": str(owner.address), "payload": i}

    @virtual_time
    async def test_route__takes_one_message_per_hop_and_one_back(self):
        net, nodes = await where_ring(64)
        for i in range(50):
            key = (i * 104729 << 130) % (1 << 160)
            start = nodes[i]
            _, owner, hops = await start.route(key, "where", None)
            before = net.messages
            await start.route(key, "where", None)
            routed = net.messages - before
            found, _ = await start.find_successor(key)
            assert found == owner
            sent = 0 if owner.address == start.address else hops + 1
            assert routed == sent

    @virtual_time
    async def test_route__async_handlers_and_handler_errors_reach_the_origin(self):
        net = SimNetwork(latency=0.001, seed=3)
        nodes = await converged_ring(net, sim_addresses(20))
        for node in nodes:
            node.register_command("double", slowly)
            node.register_command("broken", lambda p: {}["missing"])
        for i, node in enumerate(nodes):
            assert (await node.route(i << 150, "double", i))[0] == 2 * i
            with pytest.raises(RemoteError, match="KeyError"):
                await node.route(i << 150, "broken", None)
            with pytest.raises(RemoteError, match="no handler"):
                await node.route(i << 150, "nobody serves this", None)

    @virtual_time
    async def test_route__a_dead_hop_falls_back_to_a_lookup_that_routes_around_it(self):
        net, nodes = await where_ring(40, seed=5)
        live = nodes[:]
        for dead in nodes[5:40:6]:
            net.kill(dead.address)
            live.remove(dead)
        ids = [n.id for n in live]
        for i in range(100):
            key = (i * 7919 << 140) % (1 << 160)
            reply, owner, _ = await live[i % len(live)].route(key, "where", None, timeout=0.5)
            if owner.id == true_owner(ids, key):
                assert reply["at"] == str(owner.address)


class TestRouteTcp:
    async def test_route__over_tcp_runs_at_the_owner(self):
        nodes = await start_ring(6)
        try:
            await wait_until(lambda: converged(nodes), what="a converged ring")
            for node in nodes:
                node.register_command("where", where(node))
            ids = [n.id for n in nodes]
            for i, node in enumerate(nodes * 3):
                key = (i * 7919 << 140) % (1 << 160)
                reply, owner, _ = await node.route(key, "where", i)
                assert owner.id == true_owner(ids, key)
                assert reply == {"at": str(owner.address), "payload": i}
        finally:
            await stop_all(nodes)

    async def test_send__one_way_message_is_served_and_a_dead_address_reported(self):
        a, b = await start_ring(2)
        got = asyncio.Event()
        failures: list[Exception] = []
        b.register_command("note", lambda payload: got.set())
        dead = Local(Address("127.0.0.1", 0))
        await dead.start()
        gone = dead.address
        await dead.stop()
        try:
            a.transport.send(b.address, "user", {"type": "note", "payload": None})
            await asyncio.wait_for(got.wait(), 5)
            a.transport.send(gone, "ping", {}, failed=failures.append)
            await wait_until(lambda: failures, 5, what="the failure of the send to a dead address")
            assert str(gone.port) in str(failures[0])
        finally:
            await stop_all([a, b])
