"""Churn: joins, crashes and leaves interleaved, with Zave's invariant checked at every
poll in between, not only once the ring has settled (simulated network, virtual clock)."""

import asyncio
import random

from core.chord.testing import (
    converged,
    invariant_problems,
    network,
    ring_problems,
    start_node,
    start_ring,
    stop_all,
    true_owner,
    virtual_time,
    wait_until,
)


class TestChurn:
    @virtual_time
    async def test_churn__invariant_holds_throughout_and_the_ring_settles(self):
        rng = random.Random(2001)
        net = network()
        nodes = await start_ring(8, network=net, successors=4)
        seen: list[str] = []

        def settled_and_sound() -> bool:
            seen.extend(invariant_problems(nodes))
            return converged(nodes)

        try:
            # A ring grown from one node has fewer than r + 1 principal members until it
            # settles; Zave's guarantee starts from there.
            await wait_until(lambda: converged(nodes), 60, what="the first ring to settle")
            for step in range(16):
                live = [n for n in nodes if n.running]
                action = rng.choice(["join", "crash", "leave"]) if len(live) > 6 else "join"
                if action == "join":
                    nodes.append(await start_node(rng.choice(live), network=net, successors=4))
                elif action == "crash":
                    await rng.choice(live).stop()
                else:
                    await rng.choice(live).leave()
                try:
                    await wait_until(settled_and_sound, 60, what=f"settling after {action}")
                except AssertionError:
                    raise AssertionError("\n".join(ring_problems(nodes)[:10])) from None
                assert not seen, f"invariant broken during step {step} ({action}): {seen[:5]}"
            live = [n for n in nodes if n.running]
            ids = [n.id for n in live]
            for node in live:
                for _ in range(10):
                    key = rng.getrandbits(160)
                    owner, _ = await node.find_successor(key)
                    assert owner.id == true_owner(ids, key)
        finally:
            await stop_all(nodes)

    @virtual_time
    async def test_concurrent_joins_and_a_crash__settle_into_one_ring(self):
        net = network()
        nodes = await start_ring(6, network=net, successors=3)
        try:
            await wait_until(lambda: converged(nodes), 60, what="the first ring")
            victim, bootstraps = nodes[3], nodes[:3] + nodes[4:]
            joiners = asyncio.gather(*(start_node(bootstraps[i % 5], network=net, successors=3)
                                       for i in range(6)))
            await victim.stop()
            nodes.extend(await joiners)
            await wait_until(lambda: converged(nodes), 60, what="the ring after joins and a crash")
            assert not invariant_problems(nodes)
        finally:
            await stop_all(nodes)
