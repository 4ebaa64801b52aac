"""Real nodes on loopback TCP, many in this one process: hops, latency and convergence."""

from __future__ import annotations

import asyncio
import random
import time

from core.chord import Address, Local
from core.chord.sim import ideal_state
from tests.ring import ring_problems, true_owner

from .settings import CONVERGE, QUIET
from .simulated import fingers_only_hops
from .stats import half_log2, mean, percentile


async def _start(bootstrap: Local | None, settings: dict, maintain: bool = True) -> Local:
    node = Local(Address("127.0.0.1", 0), bootstrap.address if bootstrap else None, **settings)
    await node.start(maintain=maintain)
    return node


async def build_quiet_ring(n: int, rng: random.Random) -> tuple[list[Local], int]:
    """A converged ring of ``n`` real nodes with complete fingers; the bench runs the rounds.

    Nodes join in waves (each as large as the ring so far) through random members; after
    each wave the bench runs stabilize on every node, round by round, until the ring
    checks out. Then every node runs fix_fingers once. Returns the nodes and the number
    of stabilize rounds it took.
    """
    nodes = [await _start(None, QUIET, maintain=False)]
    rounds = 0
    while len(nodes) < n:
        wave = min(len(nodes), n - len(nodes))
        nodes += await asyncio.gather(*(_start(rng.choice(nodes), QUIET, maintain=False)
                                        for _ in range(wave)))
        while ring_problems(nodes):
            await asyncio.gather(*(node.stabilize() for node in nodes))
            rounds += 1
            if rounds > 20 * n:
                raise RuntimeError(f"a ring of {len(nodes)} did not converge")
    await asyncio.gather(*(node.fix_fingers() for node in nodes))
    want = ideal_state([node.address for node in nodes], nodes[0].r)
    wrong = [node for node in nodes if _fingers(node) != want[node.address].fingers]
    if wrong:
        raise RuntimeError(f"{len(wrong)} nodes have wrong fingers after fix_fingers")
    return nodes, rounds


def lookup_plan(nodes: list[Local], count: int, rng: random.Random) -> list[tuple[Local, int]]:
    """``count`` (start node, key) pairs, drawn at random."""
    return [(rng.choice(nodes), rng.getrandbits(160)) for _ in range(count)]


async def measure_lookups(nodes: list[Local], plan: list[tuple[Local, int]]) -> dict:
    """The lookups of ``plan``, one at a time; every answer checked against the true owner.

    Run a plan twice to time it warm: the second time every connection on every path is
    already open, as it is between long-lived nodes.
    """
    ids = [node.id for node in nodes]
    state = ideal_state([node.address for node in nodes], nodes[0].r)
    hops, with_last, paper_hops, latency, calls = [], [], [], [], []
    for node, key in plan:
        before = node.transport.calls
        start = time.perf_counter()
        owner, h = await node.find_successor(key)
        latency.append(time.perf_counter() - start)
        calls.append(node.transport.calls - before)
        if owner.id != true_owner(ids, key):
            raise RuntimeError(f"wrong owner for {key:x} from {node}")
        hops.append(h)
        # We never contact the owner (its predecessor names it): counting that last step
        # too gives the number of node-to-node steps up to the owner.
        with_last.append(h + (owner.address != node.address))
        # The paper's own routing (fingers only) over the same ring, for comparison.
        paper_hops.append(fingers_only_hops(state, node.address, key))
    return {"hops": hops, "with_last": with_last, "paper_hops": paper_hops,
            "latency": latency, "calls": calls}


def summarize_lookups(n: int, raw: dict, rtt: float) -> dict:
    hops, latency = raw["hops"], raw["latency"]
    ratios = [t / (h * rtt) for t, h in zip(latency, hops, strict=True) if h > 0]
    return {
        "n": n,
        "target": half_log2(n),
        "lookups": len(hops),
        "hops_mean": mean(hops),
        "hops_p99": percentile(hops, 99),
        "with_last_mean": mean(raw["with_last"]),
        "paper_hops_mean": mean(raw["paper_hops"]),
        "paper_hops_p99": percentile(raw["paper_hops"], 99),
        "calls_mean": mean(raw["calls"]),
        "latency_p50": percentile(latency, 50),
        "latency_p99": percentile(latency, 99),
        "latency_mean": mean(latency),
        "ratio_mean": mean(latency) / (mean(hops) * rtt) if mean(hops) else float("nan"),
        "ratio_p50": percentile(ratios, 50),
    }


async def convergence_time(n: int, limit: float) -> dict:
    """Start ``n`` nodes at once through one bootstrap, on their own timers (CONVERGE);
    time until the ring checks out and until every finger table is complete."""
    first = await _start(None, CONVERGE)
    started = time.perf_counter()
    rest = await asyncio.gather(*(_start(first, CONVERGE) for _ in range(n - 1)))
    nodes = [first, *rest]
    joined = time.perf_counter() - started
    ring_at = fingers_at = None
    want = ideal_state([node.address for node in nodes], first.r)
    while time.perf_counter() - started < limit:
        now = time.perf_counter() - started
        if ring_at is None and not ring_problems(nodes):
            ring_at = now
        if ring_at is not None and all(_fingers(node) == want[node.address].fingers
                                       for node in nodes):
            fingers_at = now
            break
        await asyncio.sleep(0.05)
    await stop_all(nodes)
    interval = CONVERGE["stabilize_interval"]
    return {"n": n, "joined": joined, "ring": ring_at, "fingers": fingers_at,
            "rounds": None if ring_at is None else ring_at / interval, "limit": limit}


def _fingers(node: Local) -> list[Address]:
    return [finger.address for finger in node.fingers()]


async def stop_all(nodes: list[Local]) -> None:
    await asyncio.gather(*(node.stop() for node in nodes), return_exceptions=True)
