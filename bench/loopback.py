"""Real nodes on loopback TCP, many in this one process: hops, latency and convergence."""

from __future__ import annotations

import asyncio
import cProfile
import random
import time

from core.chord import Address, Local
from core.chord.sim import ideal_state
from core.chord.testing import ring_problems, true_owner

from . import settings
from .settings import CONVERGE, QUIET
from .simulated import fingers_only_hops
from .stats import half_log2, mean, ms, num, percentile, profile_table
from .tables import table, verdict


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


async def profile_lookups(nodes: list[Local], count: int, rng: random.Random) -> str:
    """cProfile of ``count`` lookups on a warm ring; the top of the table, as text.

    The lookups run once unprofiled first, so the profile shows the steady state (every
    connection open), not connection set-up.
    """
    keys = [(rng.choice(nodes), rng.getrandbits(160)) for _ in range(count)]
    for node, key in keys:
        await node.find_successor(key)
    profiler = cProfile.Profile()
    profiler.enable()
    hops = 0
    for node, key in keys:
        hops += (await node.find_successor(key))[1]
    profiler.disable()
    header = f"{count} lookups, {hops} hops in all, N = {len(nodes)}, cProfile, by own time\n"
    return header + profile_table(profiler)


# -- the report's sections -----------------------------------------------------------------

def lookups_section(results: dict, cfg: dict, images: dict) -> list[str]:
    rows = results.get("loopback")
    if rows is None:
        return []
    lines = [
        "## Lookups on real nodes (loopback TCP, all nodes in one process)",
        "",
        "Each ring is built by joins in waves through random members; the bench runs "
        "stabilize rounds until the ring checks out and then fix_fingers once on every node "
        "(fingers checked against the ideal table); the nodes' own timers are off while "
        f"lookups are timed, so the loop is quiet. {cfg['lookups']} lookups per N (fewer where "
        "the open-file limit would not hold every connection: see the table), one at a "
        "time, random start node and key, every answer checked against the true owner. "
        "Latencies are from a second pass over the same lookups (every connection on every "
        "path already open, as between long-lived nodes); the first pass, which opens TCP "
        "connections on first contact, is given as \"cold\".",
        "",
        *table(["N", "lookups", "½·log2 N", "hops mean (ours)", "hops p99", "+ step to owner",
                "paper's routing", "calls/lookup", "p50", "p99", "cold p50", "cold p99",
                "latency/(hops×RTT) mean", "per-lookup median"],
               ([r["n"], r["lookups"], f"{r['target']:.2f}", f"{r['hops_mean']:.2f}",
                 f"{r['hops_p99']:.0f}", f"{r['with_last_mean']:.2f}",
                 f"{r['paper_hops_mean']:.2f}", f"{r['calls_mean']:.2f}",
                 ms(r["latency_p50"]), ms(r["latency_p99"]), ms(r["cold_p50"]),
                 ms(r["cold_p99"]), num(r["ratio_mean"]), num(r["ratio_p50"])] for r in rows)),
        "",
        "Hop counts, three ways: **ours** counts remote `next_hop` queries (the start node's "
        "own routing step is free and the owner is named by its predecessor, never "
        "contacted); **+ step to owner** adds that last node-to-node step; **paper's "
        "routing** replays the paper's §4.3 algorithm (fingers only, no successor-list "
        "shortcut) over the same ring's ideal state, counting steps to the key's "
        "predecessor, which is what the paper's ½·log2 N describes.",
        "",
    ]
    for r in rows:
        lines.append(
            f"- N = {r['n']}: hops within 10% of ½·log2 N: "
            f"{verdict(abs(r['hops_mean'] - r['target']) <= 0.1 * r['target'])} "
            f"({r['hops_mean'] / r['target']:.0%} of it; the paper's routing "
            f"{r['paper_hops_mean'] / r['target']:.0%}); latency ≤ 1.5 × hops × RTT: "
            f"{verdict(r['ratio_mean'] <= 1.5)} ({r['ratio_mean']:.2f} ×).")
    return lines + ["", f"![hops]({images['loopback_hops']}) "
                        f"![latency]({images['loopback_latency']})", ""]


def convergence_section(results: dict, cfg: dict, images: dict) -> list[str]:
    """Concurrent joins on real nodes, and the same on the simulator (bench.simulated)."""
    real, simulated = results.get("convergence"), results.get("sim_convergence")
    if real is None and simulated is None:
        return []
    lines = [
        "## Convergence after concurrent joins (real nodes, their own timers)",
        "",
        "N − 1 nodes call `start()` at the same moment through one bootstrap; stabilize every "
        f"{CONVERGE['stabilize_interval']} s, fix_fingers and check_predecessor every "
        "1 s (faster than the defaults of 0.5/1/1 s so that the largest N fits in the run). "
        "\"Ring\" is the moment `ring_problems` (one ordered cycle, every successor, "
        "predecessor and successor list right) first comes back empty.",
        "",
    ]
    if real is not None:
        lines += table(["N", "all joined", "ring converged", "in stabilize intervals",
                        "all fingers right"],
                       ([r["n"], f"{r['joined']:.2f} s",
                         f"not within {r['limit']:.0f} s" if r["ring"] is None
                         else f"{r['ring']:.1f} s",
                         "—" if r["rounds"] is None else f"{r['rounds']:.0f}",
                         "—" if r["fingers"] is None else f"{r['fingers']:.1f} s"]
                        for r in real))
    if simulated is not None:
        if real is not None:
            lines.append("")
        lines += [
            "The same, on the simulated network (the same node code and timers, 1 ms one "
            "way, virtual clock: no CPU contention, so this is the protocol's own pace):",
            "",
            *table(["N", "ring converged (simulated time)", "in stabilize intervals",
                    "messages", "wall time"],
                   ([r["n"], "—" if r["ring"] is None else f"{r['ring']:.1f} s",
                     "—" if r["rounds"] is None else f"{r['rounds']:.0f}",
                     f"{r['messages']:,}", f"{r['wall']:.0f} s"] for r in simulated)),
        ]
    if real is not None:
        lines += [
            f"\nReal sockets stop at N = {cfg['converge_ns'][-1]} in this mode"
            + ("" if cfg is settings.FULL else " (`--full` adds 128)")
            + ": at N = 256 in one process, the nodes' maintenance ends up connecting "
            "nearly every pair (two descriptors each), past this process's open-file limit "
            f"({results['machine']['open_files']}); the simulator covers N = 256.",
            "", f"![convergence]({images['convergence']})"]
    return lines + [""]


def profile_section(results: dict, cfg: dict, images: dict) -> list[str]:
    if "profile_lookup" not in results:
        return []
    return ["## Where a lookup's time goes", "", "```", results["profile_lookup"].rstrip(),
            "```", ""]
