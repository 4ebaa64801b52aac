"""Lookup path length on a converged ring of real loopback nodes: mean and p99 hops.

Usage: python -m bench.hops [N] [lookups per node]
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import sys
import time

from core.chord.testing import converged, start_ring, stop_all, true_owner, wait_until

from .settings import HOPS_CHORD


def percentile(values: list[int], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


async def measure(n: int, per_node: int) -> dict:
    settings = HOPS_CHORD
    started = time.monotonic()
    nodes = await start_ring(n, concurrent=True, **settings)
    try:
        await wait_until(lambda: converged(nodes), 300, interval=0.2, what="convergence")
        # Fingers are refreshed on their own interval; give every node two full rounds.
        await asyncio.sleep(2 * settings["fix_fingers_interval"])
        converge_time = time.monotonic() - started
        rng = random.Random(n)
        ids = [node.id for node in nodes]
        hops = []
        for node in nodes:
            for _ in range(per_node):
                key = rng.getrandbits(160)
                owner, h = await node.find_successor(key)
                if owner.id != true_owner(ids, key):
                    raise AssertionError(f"wrong owner for {key:x}")
                hops.append(h)
        return {"n": n, "lookups": len(hops), "mean": statistics.fmean(hops),
                "p99": percentile(hops, 99), "target": 0.5 * math.log2(n),
                "converge_s": converge_time}
    finally:
        await stop_all(nodes)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    per_node = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    r = asyncio.run(measure(n, per_node))
    print(f"N={r['n']} lookups={r['lookups']} mean hops={r['mean']:.2f} "
          f"(+1 to reach the owner: {r['mean'] + 1:.2f}) p99={r['p99']} "
          f"target ½·log2 N={r['target']:.2f} converged in {r['converge_s']:.1f} s")


if __name__ == "__main__":
    main()
