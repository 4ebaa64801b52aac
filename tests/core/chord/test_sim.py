"""The simulated network: the real node code on it, and latency, loss and failures as set."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from core.chord import Address, ListenError, Local, PeerUnreachable, RemoteError, TcpTransport, wire
from core.chord.sim import (
    SimNetwork,
    VirtualClockLoop,
    converged_ring,
    ideal_state,
    run,
    sim_addresses,
)
from core.chord.testing import ring_problems, sim_node, true_owner, wait_until

SLOW_FINGERS = dict(stabilize_interval=0.5, fix_fingers_interval=5.0,
                    check_predecessor_interval=2.0)


async def grow_ring(network: SimNetwork, n: int, rng: random.Random, **settings) -> list[Local]:
    """Join ``n`` nodes in waves (each wave as large as the ring), through random members,
    letting each wave converge before the next, as a growing ring would."""
    first = sim_node(network, "10.9.0.1", **settings)
    await first.start()
    nodes = [first]
    while len(nodes) < n:
        wave = [sim_node(network, f"10.9.{(len(nodes) + j) // 200}.{(len(nodes) + j) % 200 + 1}",
                         rng.choice(nodes), **settings)
                for j in range(min(len(nodes), n - len(nodes)))]
        await asyncio.gather(*(node.start() for node in wave))
        nodes.extend(wave)
        await wait_until(lambda ring=nodes: not ring_problems(ring), 60, 0.25,
                         what=f"a ring of {len(nodes)} to converge")
    return nodes


def fingers(node: Local) -> list[Address]:
    return [finger.address for finger in node.fingers()]


async def lookup_live(node: Local, key: int) -> tuple[Address, int]:
    """find_successor as a user of it does: an answer that turns out dead is avoided."""
    avoid: set[Address] = set()
    while True:
        owner, hops = await node.find_successor(key, avoid)
        if owner.address == node.address or await owner.ping():
            return owner.address, hops
        avoid.add(owner.address)


class TestSimRing:
    def test_sim__concurrent_joins_converge_and_lookups_are_right(self):
        async def main():
            network = SimNetwork(latency=0.002, seed=1, timeout=1.0)
            first = sim_node(network, "10.0.0.1")
            await first.start()
            rest = [sim_node(network, f"10.0.1.{i}", first) for i in range(1, 24)]
            await asyncio.gather(*(node.start() for node in rest))
            nodes = [first, *rest]
            await wait_until(lambda: not ring_problems(nodes), 30, 0.25, what="convergence")
            ids = [node.id for node in nodes]
            rng = random.Random(7)
            for node in nodes:
                for _ in range(10):
                    key = rng.getrandbits(160)
                    owner, hops = await node.find_successor(key)
                    assert owner.id == true_owner(ids, key)
                    assert 0 <= hops <= len(nodes)
            await asyncio.gather(*(node.stop() for node in nodes))

        run(main())

    def test_sim__ring_heals_after_leaves_and_crashes(self):
        async def main():
            network = SimNetwork(latency=0.001, seed=2, timeout=0.5)
            nodes = await grow_ring(network, 16, random.Random(2), **SLOW_FINGERS)
            leaving, crashing = nodes[3:5], nodes[8:10]
            await asyncio.gather(*(node.leave() for node in leaving))
            await asyncio.gather(*(node.stop() for node in crashing))
            live = [n for n in nodes if n.running]
            assert len(live) == 12
            await wait_until(lambda: not ring_problems(live), 30, 0.25, what="healing")
            ids = [n.id for n in live]
            for key in (random.Random(3).getrandbits(160) for _ in range(50)):
                owner, _ = await live[0].find_successor(key)
                assert owner.id == true_owner(ids, key)
            await asyncio.gather(*(node.stop() for node in live))

        run(main())

    def test_sim__three_hundred_nodes_converge_in_seconds(self):
        async def main():
            network = SimNetwork(latency=0.001, seed=3, timeout=1.0)
            nodes = await grow_ring(network, 300, random.Random(3), **SLOW_FINGERS)
            assert not ring_problems(nodes)
            ids = [n.id for n in nodes]
            rng = random.Random(4)
            for _ in range(200):
                key = rng.getrandbits(160)
                owner, _ = await rng.choice(nodes).find_successor(key)
                assert owner.id == true_owner(ids, key)
            await asyncio.gather(*(node.stop() for node in nodes))

        started = time.monotonic()
        run(main())
        # Not a target, a sanity bound: the point of the simulator is that this is cheap.
        assert time.monotonic() - started < 120

    def test_sim__converged_ring_matches_what_the_protocol_reaches(self):
        async def main():
            network = SimNetwork(seed=4, timeout=1.0)
            nodes = await grow_ring(network, 20, random.Random(4), stabilize_interval=0.5,
                                    fix_fingers_interval=1.0, check_predecessor_interval=1.0)
            want = ideal_state([n.address for n in nodes], 8)
            await wait_until(lambda: all(fingers(n) == want[n.address].fingers for n in nodes), 30,
                             0.5, what="fingers to settle")
            for node in nodes:
                assert [s.address for s in node.successors()] == want[node.address].successors
                assert node.predecessor().address == want[node.address].predecessor
            await asyncio.gather(*(node.stop() for node in nodes))

            built = await converged_ring(SimNetwork(), [n.address for n in nodes])
            for a, b in zip(sorted(nodes, key=lambda n: n.id), sorted(built, key=lambda n: n.id),
                            strict=True):
                assert a.address == b.address
                assert [s.address for s in a.successors()] == [s.address for s in b.successors()]
                assert a.predecessor() == b.predecessor()
                assert fingers(a) == fingers(b)
            assert not ring_problems(built)

        run(main())

    def test_sim__lookups_route_around_a_failed_node(self):
        async def main():
            network = SimNetwork(seed=5, timeout=0.5)
            nodes = await converged_ring(network, sim_addresses(64))
            # the node that appears most often in others' fingers: many routes pass it
            counts: dict[Address, int] = {}
            for node in nodes:
                for finger in fingers(node):
                    counts[finger] = counts.get(finger, 0) + 1
            dead_address = max(counts, key=counts.get)
            dead = next(n for n in nodes if n.address == dead_address)
            await dead.stop()
            live = [n for n in nodes if n.running]
            ids = [n.id for n in live]
            rng = random.Random(6)
            keys = [rng.getrandbits(160) for _ in range(20)] + [dead.id, dead.id - 1]
            for node in live:
                for key in keys:
                    owner, _ = await lookup_live(node, key)
                    assert owner.id == true_owner(ids, key)
            assert network.refused > 0  # routes did run into the dead node, and got past it
            await asyncio.gather(*(n.stop() for n in live))

        run(main())


class TestDrivenRounds:
    def test_start__without_maintenance_runs_no_rounds_until_the_caller_does(self):
        async def main():
            network = SimNetwork(latency=0.001, timeout=1.0)
            a = sim_node(network, "10.0.0.1")
            await a.start(maintain=False)
            b = sim_node(network, "10.0.0.2", a)
            await b.start(maintain=False)
            # the join itself: b knows its successor, a hears of b by b's notify
            assert b.successor().address == a.address
            assert a.predecessor().address == b.address
            await asyncio.sleep(60)
            assert a.successor().address == a.address  # nobody ran stabilize
            await a.stabilize()
            await b.stabilize()
            await asyncio.gather(a.fix_fingers(), b.fix_fingers())
            assert not ring_problems([a, b])
            assert [f.address for f in a.fingers()] == [b.address]
            await asyncio.gather(a.stop(), b.stop())

        run(main())


class TestSimTransport:
    def test_sim__latency_is_as_configured(self):
        async def main():
            network = SimNetwork(latency=0.05)
            server, client = network.transport(), network.transport()

            async def serve(method, args):
                return {"at": asyncio.get_running_loop().time()}

            address = await server.listen(Address("10.0.0.1", 0), serve)
            loop = asyncio.get_running_loop()
            sent = loop.time()
            reply = await client.call(address, "ping", {})
            assert reply["at"] - sent == pytest.approx(0.05)
            assert loop.time() - sent == pytest.approx(0.10)

            # a latency function per pair: far away costs more
            def latency(src, dst):  # either end may be None: a caller that does not listen
                return 0.2 if any(e and e.host == "10.0.0.9" for e in (src, dst)) else 0.01

            far = SimNetwork(latency=latency)
            a, b, c = far.transport(), far.transport(), far.transport()
            near_address = await a.listen(Address("10.0.0.2", 0), serve)
            far_address = await b.listen(Address("10.0.0.9", 0), serve)
            sent = loop.time()
            await c.call(near_address, "x", {})
            assert loop.time() - sent == pytest.approx(0.02)
            sent = loop.time()
            await c.call(far_address, "x", {})
            assert loop.time() - sent == pytest.approx(0.4)

        run(main())

    def test_sim__virtual_time_costs_no_wall_time(self):
        async def main():
            loop = asyncio.get_running_loop()
            assert isinstance(loop, VirtualClockLoop)
            before = loop.time()
            await asyncio.sleep(3600)
            assert loop.time() - before == pytest.approx(3600)

        started = time.monotonic()
        run(main())
        assert time.monotonic() - started < 5

    def test_sim__loss_drops_messages_at_the_configured_rate(self):
        async def main():
            network = SimNetwork(loss=0.3, seed=11, timeout=0.2)
            server, client = network.transport(), network.transport()

            async def serve(method, args):
                return args

            address = await server.listen(Address("10.0.0.1", 0), serve)
            failed = 0
            for i in range(1000):
                try:
                    assert await client.call(address, "echo", {"i": i}) == {"i": i}
                except PeerUnreachable as e:
                    assert "did not answer" in str(e)
                    failed += 1
            assert network.dropped / network.messages == pytest.approx(0.3, abs=0.04)
            # a call needs both its request and its reply: 1 - 0.7**2 = 0.51 of calls fail
            assert failed / 1000 == pytest.approx(0.51, abs=0.05)
            assert client.calls == 1000

            total = SimNetwork(loss=1.0, timeout=0.5)
            s, c = total.transport(), total.transport()
            where = await s.listen(Address("10.0.0.2", 0), serve)
            started = asyncio.get_running_loop().time()
            with pytest.raises(PeerUnreachable):
                await c.call(where, "echo", {})
            assert asyncio.get_running_loop().time() - started == pytest.approx(0.5)
            assert c.is_suspected(where)

            lossless = SimNetwork(loss=0.0)
            s, c = lossless.transport(), lossless.transport()
            where = await s.listen(Address("10.0.0.3", 0), serve)
            for i in range(200):
                await c.call(where, "echo", {"i": i})
            assert lossless.dropped == 0

        run(main())

    def test_sim__dead_or_unknown_addresses_are_unreachable(self):
        async def main():
            network = SimNetwork(latency=0.01, timeout=1.0)
            server, client = network.transport(), network.transport()

            async def serve(method, args):
                return {}

            address = await server.listen(Address("10.0.0.1", 0), serve)
            await client.call(address, "ping", {})
            with pytest.raises(PeerUnreachable, match="refused"):
                await client.call(Address("10.0.0.77", 4000), "ping", {})
            assert client.is_suspected(Address("10.0.0.77", 4000))
            network.kill(address)
            assert not network.alive(address)
            with pytest.raises(PeerUnreachable):
                await client.call(address, "ping", {})
            assert client.is_suspected(address)

        run(main())

    def test_sim__a_crash_fails_calls_in_progress(self):
        async def main():
            network = SimNetwork(timeout=10.0)
            server, client = network.transport(), network.transport()
            started = asyncio.Event()

            async def serve(method, args):
                started.set()
                await asyncio.sleep(100)

            address = await server.listen(Address("10.0.0.1", 0), serve)
            call = asyncio.ensure_future(client.call(address, "slow", {}))
            await started.wait()
            await server.close()
            with pytest.raises(PeerUnreachable, match="reset"):
                await call

        run(main())

    def test_sim__listen_assigns_free_ports_and_refuses_a_taken_one(self):
        async def main():
            network = SimNetwork()

            async def serve(method, args):
                return {}

            a = await network.transport().listen(Address("10.0.0.1", 0), serve)
            b = await network.transport().listen(Address("10.0.0.1", 0), serve)
            assert a != b and a.port and b.port
            with pytest.raises(ListenError, match="in use"):
                await network.transport().listen(a, serve)
            fixed = await network.transport().listen(Address("10.0.0.1", 4000), serve)
            assert fixed.port == 4000

        run(main())

    def test_sim__invalid_settings_are_refused(self):
        with pytest.raises(ValueError, match="probability"):
            SimNetwork(loss=1.5)
        with pytest.raises(ValueError, match="latency"):
            SimNetwork(latency=-1)


class TestSimLikeTcp:
    """The same calls on both transports give the same results and the same errors."""

    @staticmethod
    async def exercise(server, client, host: str) -> list:
        async def serve(method, args):
            if method == "echo":
                return args
            if method == "mutate":
                args["x"].append(1)
                return args
            if method == "boom":
                raise KeyError("nope")
            if method == "unsendable":
                return {"set": {1, 2}}
            raise RemoteError(f"unknown method {method!r}")

        address = await server.listen(Address(host, 0), serve)
        outcomes: list = []
        payload = {"t": (1, 2), "n": 2**70, "s": "é", "d": {"k": None}}
        outcomes.append(await client.call(address, "echo", payload))
        original = {"x": [0]}
        outcomes.append(await client.call(address, "mutate", original))
        outcomes.append(original)  # the server got a copy, never our object
        for method in ("boom", "nothing", "unsendable"):
            with pytest.raises(RemoteError) as e:
                await client.call(address, method, {})
            outcomes.append(str(e.value))
        with pytest.raises(wire.FrameError):
            await client.call(address, "echo", {"big": "x" * (wire.MAX_FRAME + 1)})
        with pytest.raises(TypeError):
            await client.call(address, "echo", {"bad": object()})
        outcomes.append(client.calls)
        await client.close()
        await server.close()
        return outcomes

    def test_sim__answers_and_errors_match_tcp(self):
        tcp = asyncio.run(self.exercise(TcpTransport(timeout=2.0), TcpTransport(timeout=2.0),
                                        "127.0.0.1"))
        network = SimNetwork()
        sim = run(self.exercise(network.transport(), network.transport(), "10.0.0.1"))
        assert sim == tcp
        assert tcp[0] == {"t": [1, 2], "n": 2**70, "s": "é", "d": {"k": None}}
        assert tcp[2] == {"x": [0]}

