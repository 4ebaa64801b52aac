"""Large rings on the simulated network: path length against N, and lookups after failures.

The rings are built converged (``core.chord.sim.converged_ring``: the state a converged
ring reaches, written in directly); every lookup is the real ``Local.find_successor``
over ``SimTransport``. Latency is zero and the clock virtual: only the routing counts.
"""

from __future__ import annotations

import asyncio
import bisect
import random

from core.chord import Address, Local, RpcError
from core.chord.ids import in_half_open, in_open
from core.chord.sim import SimNetwork, converged_ring, ideal_state, sim_addresses

from .stats import half_log2, mean, num, percentile
from .tables import table


def fingers_only_hops(state: dict, start: Address, key: int) -> int:
    """Hops of the paper's own lookup (§4.3: fingers only, successor = finger 1) from
    ``start`` to the key's predecessor, which knows the owner as its successor. This is
    the path length of the paper's Figure 10 (½·log2 N on average)."""
    hops, node = 0, start
    while True:
        routing = state[node]
        successor = routing.successor
        if in_half_open(key, node.id, successor.id):
            return hops
        nxt = node
        for finger in reversed(routing.fingers):
            if in_open(finger.id, node.id, key):
                nxt = finger
                break
        if nxt == node:
            nxt = successor
        node, hops = nxt, hops + 1


async def path_lengths(n: int, lookups: int, seed: int, r: int = 8) -> dict:
    """Mean and percentiles of lookup hops on a converged ring of ``n`` nodes."""
    rng = random.Random(seed)
    addresses = sim_addresses(n)
    state = ideal_state(addresses, r)
    network = SimNetwork(seed=seed)
    nodes = await converged_ring(network, addresses, r, state=state)
    ids = sorted(a.id for a in addresses)
    ours, with_last, paper = [], [], []
    for _ in range(lookups):
        node, key = rng.choice(nodes), rng.getrandbits(160)
        owner, hops = await node.find_successor(key)
        if owner.id != ids[bisect.bisect_left(ids, key) % n]:
            raise RuntimeError(f"wrong owner for {key:x}")
        ours.append(hops)
        with_last.append(hops + (owner.address != node.address))
        paper.append(fingers_only_hops(state, node.address, key))
    await _close(nodes)
    return {"n": n, "lookups": lookups, "target": half_log2(n),
            "mean": mean(ours), "p1": percentile(ours, 1), "p99": percentile(ours, 99),
            "with_last_mean": mean(with_last), "with_last_p99": percentile(with_last, 99),
            # the paper's path over the same ring; + 1 would count the step to the owner
            "paper_mean": mean(paper), "paper_p1": percentile(paper, 1),
            "paper_p99": percentile(paper, 99)}


async def lookup_live(node: Local, key: int, tries: int) -> tuple[Address | None, int, int]:
    """find_successor as a caller uses it: an answer that is dead is avoided and the lookup
    asked again. Returns (owner or None, hops of the final lookup, lookups made)."""
    avoid: set[Address] = set()
    for attempt in range(1, tries + 1):
        try:
            owner, hops = await node.find_successor(key, avoid)
        except RpcError:
            return None, 0, attempt
        if owner.address == node.address or await owner.ping():
            return owner.address, hops, attempt
        avoid.add(owner.address)
    return None, 0, tries


async def failures(n: int, fraction: float, lookups: int, seed: int, r: int = 8,
                   state: dict | None = None, addresses: list[Address] | None = None) -> dict:
    """Fail ``fraction`` of the nodes at once, then look keys up before any stabilization.

    A lookup fails when it does not come back with the key's live owner (the first live
    node at or after the key). "First answer" is what find_successor says straight away;
    "with retry" lets the caller ping the answer and ask again avoiding it when it is dead
    (up to r times), which is how the chat uses lookups.
    """
    rng = random.Random(seed)
    addresses = addresses or sim_addresses(n)
    state = state or ideal_state(addresses, r)
    network = SimNetwork(seed=seed, timeout=1.0)
    nodes = await converged_ring(network, addresses, r, state=state)
    dead = rng.sample(nodes, round(fraction * n))
    await asyncio.gather(*(node.stop() for node in dead))
    live = [node for node in nodes if node.running]
    live_ids = sorted(node.id for node in live)
    all_ids = sorted(a.id for a in addresses)
    dead_ids = {node.id for node in dead}
    gap = _keys_behind_long_gaps(addresses, {node.address for node in dead}, r)
    first_wrong = retry_wrong = owner_dead = 0
    hops, calls = [], []
    for _ in range(lookups):
        node, key = rng.choice(live), rng.getrandbits(160)
        want = live_ids[bisect.bisect_left(live_ids, key) % len(live_ids)]
        if all_ids[bisect.bisect_left(all_ids, key) % n] in dead_ids:
            owner_dead += 1
        before = node.transport.calls
        found, h, attempts = await lookup_live(node, key, r)
        right = found is not None and found.id == want
        first_ok = right and attempts == 1
        calls.append(node.transport.calls - before)
        first_wrong += not first_ok
        if not right:
            retry_wrong += 1
        else:
            hops.append(h)
    await _close(live)
    return {"n": n, "fraction": fraction, "lookups": lookups,
            "failed_first": first_wrong / lookups, "failed_retry": retry_wrong / lookups,
            "owner_dead": owner_dead / lookups, "theory": fraction ** r, "gap_keys": gap,
            "hops_mean": mean(hops), "calls_mean": mean(calls)}


def _keys_behind_long_gaps(addresses: list[Address], dead: set[Address], r: int) -> float:
    """The share of the key space whose live owner has its r nearest predecessors all dead:
    no successor list names that owner, so only a finger that happens to point at it can
    find it before stabilization. The structural floor of the failure rate."""
    ring = sorted(addresses, key=lambda a: a.id)
    total = 0
    count = len(ring)
    for i, node in enumerate(ring):
        if node in dead:
            continue
        run = 0
        while run < count - 1 and ring[(i - run - 1) % count] in dead:
            run += 1
        if run >= r:
            last_live = ring[(i - run - 1) % count]
            total += (node.id - last_live.id) % (1 << 160)
    return total / (1 << 160)


async def _close(nodes: list[Local]) -> None:
    await asyncio.gather(*(node.stop() for node in nodes), return_exceptions=True)


async def join_convergence(n: int, settings: dict, seed: int, limit: float = 3600.0) -> dict:
    """N − 1 nodes join at once through one bootstrap on the simulated network (1 ms one
    way, virtual time, the nodes' own timers): simulated seconds until the ring checks out.

    Used where real sockets cannot go in one process: at N = 256 every node ends up with
    a connection to most others, more descriptors than the process may open.
    """
    from core.chord.testing import ring_problems

    random.seed(seed)  # the nodes' timers start at random offsets
    network = SimNetwork(latency=0.001, seed=seed, timeout=settings.get("timeout", 3.0))
    loop = asyncio.get_running_loop()
    first = Local(Address("10.1.0.1", 0), transport=network.transport(), **settings)
    await first.start()
    started = loop.time()
    rest = [Local(Address(f"10.1.{1 + i // 250}.{1 + i % 250}", 0), first.address,
                  transport=network.transport(), **settings) for i in range(n - 1)]
    await asyncio.gather(*(node.start() for node in rest))
    nodes = [first, *rest]
    ring_at = None
    while loop.time() - started < limit:
        if not ring_problems(nodes):
            ring_at = loop.time() - started
            break
        await asyncio.sleep(settings["stabilize_interval"] / 2)
    await _close(nodes)
    return {"n": n, "ring": ring_at, "messages": network.messages,
            "rounds": None if ring_at is None else ring_at / settings["stabilize_interval"]}


# -- the report's sections -----------------------------------------------------------------

def paths_section(results: dict, cfg: dict, images: dict) -> list[str]:
    if "sim_paths" not in results:
        return []
    return [
        "## Simulated rings: path length against N",
        "",
        "The same node code over `core.chord.sim` (in memory, zero latency, virtual clock). "
        "Large rings are built converged directly (`sim.converged_ring` adopts the state a "
        "converged ring reaches, checked by a test against rings converged by the real "
        "protocol); every lookup is the real `Local.find_successor`, checked against the "
        f"true owner. {cfg['sim_lookups']} lookups per N.",
        "",
        *table(["N", "½·log2 N", "ours mean", "1st pct", "99th pct", "+ step to owner",
                "paper's routing mean", "1st", "99th", "ours / ½·log2 N"],
               ([f"{r['n']:,}", f"{r['target']:.2f}", f"{r['mean']:.2f}", f"{r['p1']:.0f}",
                 f"{r['p99']:.0f}", f"{r['with_last_mean']:.2f}", f"{r['paper_mean']:.2f}",
                 f"{r['paper_p1']:.0f}", f"{r['paper_p99']:.0f}",
                 f"{r['mean'] / r['target']:.0%}"] for r in results["sim_paths"])),
        "",
        f"![path length]({images['sim_path_length']})",
        "",
    ]


def failures_section(results: dict, cfg: dict, images: dict) -> list[str]:
    fails = results.get("sim_failures")
    if fails is None:
        return []
    return [
        f"## Simulated rings: lookups after failures, before stabilization (N = "
        f"{fails[0]['n']:,}, r = 8)",
        "",
        "A random fraction of the nodes stops at once (calls to them are refused); "
        "no stabilization or finger repair runs; then lookups from random live nodes for "
        "random keys. *First answer* counts lookups whose answer is not the key's live "
        "owner; *after retries* lets the caller do what the chat does: ping the answer and, "
        "if dead, look up again avoiding it (up to r times). *Keys behind ≥ r dead nodes* is "
        "the share of the key space whose live owner no live successor list names — only a "
        f"finger can find it. {cfg['fail_lookups']} lookups per row.",
        "",
        *table(["failed", "first answer wrong", "failed after retries",
                "keys behind ≥ r dead nodes", "p^r", "original owner dead",
                "hops (successful)", "calls per lookup"],
               ([f"{r['fraction']:.0%}", f"{r['failed_first']:.1%}", f"{r['failed_retry']:.2%}",
                 f"{r['gap_keys']:.2%}", f"{r['theory']:.2e}", f"{r['owner_dead']:.1%}",
                 num(r["hops_mean"]), num(r["calls_mean"])] for r in fails)),
        "",
        f"![failures]({images['sim_failures']})",
        "",
    ]
