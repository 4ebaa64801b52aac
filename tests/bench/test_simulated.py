"""The benchmark's own yardsticks: the paper's routing replay, the failure floor, percentiles."""

from __future__ import annotations

import random

import pytest

from bench.simulated import _keys_behind_long_gaps, fingers_only_hops
from bench.stats import half_log2, percentile
from core.chord.ids import RING
from core.chord.sim import SimNetwork, converged_ring, ideal_state, run, sim_addresses


def test_fingers_only_hops__equals_our_routing_when_the_successor_list_is_one_long():
    # With r = 1 the successor list adds nothing to the fingers, so the node's own routing
    # must take exactly the paper's path: this checks the replay the bench compares with.
    async def main():
        addresses = sim_addresses(200)
        state = ideal_state(addresses, 1)
        nodes = await converged_ring(SimNetwork(), addresses, r=1, state=state)
        rng = random.Random(1)
        compared = 0
        for _ in range(300):
            node, key = rng.choice(nodes), rng.getrandbits(160)
            if node.is_ours(key):
                continue  # we answer at once; the paper's loop would walk round the ring
            _, hops = await node.find_successor(key)
            assert hops == fingers_only_hops(state, node.address, key)
            compared += 1
        assert compared > 250

    run(main())


def test_fingers_only_hops__is_about_half_log2_n_on_a_large_ring():
    addresses = sim_addresses(2000)
    state = ideal_state(addresses, 8)
    rng = random.Random(2)
    hops = [fingers_only_hops(state, rng.choice(addresses), rng.getrandbits(160))
            for _ in range(2000)]
    assert sum(hops) / len(hops) == pytest.approx(half_log2(2000), rel=0.1)


def test_keys_behind_long_gaps__counts_the_arc_before_an_owner_no_list_names():
    addresses = sorted(sim_addresses(40), key=lambda a: a.id)
    # kill the 3 nodes just before the 10th: with r = 3, nobody's list names the 10th
    dead = set(addresses[6:9])
    share = _keys_behind_long_gaps(addresses, dead, 3)
    arc = (addresses[9].id - addresses[5].id) % RING
    assert share == pytest.approx(arc / RING)
    assert _keys_behind_long_gaps(addresses, dead, 4) == 0.0
    assert _keys_behind_long_gaps(addresses, set(), 1) == 0.0


def test_percentile__interpolates_and_handles_the_ends():
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([7], 99) == 7
    assert percentile([5, 1, 9], 0) == 1 and percentile([5, 1, 9], 100) == 9
