"""Time to one ring after a partition heals, against N, on the simulator's virtual clock.

``python -m bench.merge [--full]`` measures only this and adds it to results.json and
results.md (the other keys are kept); ``python -m bench`` runs it as one of its phases.

Each run builds what a healed partition leaves behind, directly: N nodes split into two
interleaved halves (a seeded shuffle of addresses, the hardest case to zip), each half the
converged ring of its own (``sim.ideal_state``), and every node remembering as lost the
nodes of the other half that were its successors and fingers in the whole ring (what it
dropped as dead when the network split). Then every node starts its ordinary maintenance
with the default settings (stabilize 0.5 s, fingers and predecessor 1 s, a probe of two
remembered peers every 5 s, calls time out after 3 s) on a network with 1 ms one-way
latency, and the clock runs until the ring is one: every node's successor and predecessor
are those of the converged ring of all N; then on until every successor list is that of
the whole ring too ("settled"). A second case ("one") is the least a heal can start from:
a single node remembers a single node of the other half, so one probe starts one walk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path

from core.chord import Local, sim

from . import settings
from .settings import MERGE_CHECK, MERGE_LIMIT, MERGE_R, MERGE_RUNS
from .tables import table

OUT = Path(__file__).resolve().parent


def halves(addresses: list, seed: int) -> tuple[list, list]:
    order = list(addresses)
    random.Random(seed).shuffle(order)
    return order[:len(order) // 2], order[len(order) // 2:]


async def merge_once(n: int, seed: int, case: str = "all") -> dict:
    """One healed partition of ``n`` nodes: virtual seconds to one ring, and messages."""
    network = sim.SimNetwork(latency=0.001, seed=seed)
    addresses = sim.sim_addresses(n, port=4000 + seed)
    left, right = halves(addresses, seed)
    whole = sim.ideal_state(addresses, MERGE_R)
    state = {**sim.ideal_state(left, MERGE_R), **sim.ideal_state(right, MERGE_R)}
    side = {a: 0 for a in left} | {a: 1 for a in right}
    nodes = []
    for address in addresses:
        node = Local(address, successors=MERGE_R, transport=network.transport())
        await node.start(maintain=False)
        node.adopt(state[address])
        was = whole[address]
        for peer in (*was.successors, *was.fingers):
            if side[peer] != side[address] and (case == "all" or not nodes):
                node.peers.lost(peer, 0.0)
                if case == "one":
                    break
        nodes.append(node)
    loop = asyncio.get_running_loop()
    start, messages = loop.time(), network.messages
    for node in nodes:
        node.start_maintenance()

    def one_ring(lists: bool = False) -> bool:
        for node in nodes:
            want = whole[node.address]
            if (node.successor().address != want.successors[0]
                    or node.predecessor() is None
                    or node.predecessor().address != want.predecessor
                    or lists and [s.address for s in node.successors()] != want.successors):
                return False
        return True

    while not one_ring() and loop.time() - start < MERGE_LIMIT:
        await asyncio.sleep(MERGE_CHECK)
    seconds, merged = loop.time() - start, one_ring()
    sent = network.messages - messages
    while merged and not one_ring(lists=True) and loop.time() - start < MERGE_LIMIT:
        await asyncio.sleep(MERGE_CHECK)
    settled = loop.time() - start if one_ring(lists=True) else None
    await asyncio.gather(*(node.stop() for node in nodes), return_exceptions=True)
    return {"n": n, "seed": seed, "case": case, "merged": merged, "seconds": seconds,
            "settled": settled, "messages_per_node": sent / n}


def run(cfg: dict, say=print) -> dict:
    """Every N of the mode (``cfg``: settings.QUICK or FULL); the results as one dict (the
    ``merge`` key of results.json)."""
    rows = []
    plan = [(n, seed, "all") for n in cfg["merge_ns"] for seed in range(1, MERGE_RUNS[n] + 1)]
    plan += [(n, 1, "one") for n in cfg["merge_ns"]]
    for n, seed, case in plan:
        cpu = time.process_time()
        row = sim.run(merge_once(n, seed, case))
        row["cpu_seconds"] = time.process_time() - cpu
        settled = "-" if row["settled"] is None else f"{row['settled']:.1f}"
        say(f"  merge ({case}) N={n} seed {seed}: one ring after {row['seconds']:.1f} s"
            f"{'' if row['merged'] else ' — NOT MERGED'}, settled {settled} s, "
            f"{row['messages_per_node']:.0f} messages/node, cpu {row['cpu_seconds']:.0f} s")
        rows.append(row)
    summary = []
    for case, n in sorted({(r["case"], r["n"]) for r in rows}):
        mine = [r for r in rows if (r["case"], r["n"]) == (case, n)]
        times = [r["seconds"] for r in mine]
        settled = [r["settled"] for r in mine]
        summary.append({"case": case, "n": n, "runs": len(times),
                        "median": statistics.median(times), "max": max(times),
                        "settled_max": None if None in settled else max(settled),
                        "messages_per_node": statistics.mean(r["messages_per_node"]
                                                             for r in mine),
                        "all_merged": all(r["merged"] for r in mine)})
    return {"runs": rows, "summary": summary,
            "settings": {"stabilize": 0.5, "fix_fingers": 1.0, "check_predecessor": 1.0,
                         "probe_interval": 5.0, "probes": 2, "timeout": 3.0, "r": MERGE_R,
                         "latency": 0.001}}


def report_lines(merge: dict) -> list[str]:
    return [
        "## Ring merge after a partition heals (simulated)",
        "",
        "Two interleaved halves, each a converged ring, every node remembering as lost the "
        "other half's nodes that were its successors and fingers; default settings (probe "
        "of 2 remembered peers every 5 s, stabilize 0.5 s, timeout 3 s), 1 ms latency, "
        "virtual clock (`bench/merge.py`). Time from the heal to one ring (every successor "
        "and predecessor right), to every successor list right (settled), and the messages "
        "per node until one ring (all of maintenance, not only the merge). Case *all*: every "
        "node remembers the other half's nodes it dropped (what a partition leaves); case "
        "*one*: a single node remembers a single node of the other half (one walk).",
        "",
        *table(["case", "N", "runs", "median s", "max s", "settled, max s", "messages/node",
                "merged"],
               ([s["case"], s["n"], s["runs"], f"{s['median']:.1f}", f"{s['max']:.1f}",
                 "-" if s["settled_max"] is None else f"{s['settled_max']:.1f}",
                 f"{s['messages_per_node']:.0f}", "yes" if s["all_merged"] else "NO"]
                for s in merge["summary"])),
        "",
    ]


def section(results: dict, cfg: dict, images: dict) -> list[str]:
    return ["", *report_lines(results["merge"])] if "merge" in results else []


MARK = "## Ring merge after a partition heals (simulated)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.merge", description=__doc__)
    parser.add_argument("--full", action="store_true",
                        help=f"N up to {settings.FULL['merge_ns'][-1]}")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    merge = run(settings.mode(args.full))
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["merge"] = merge          # every other key stays as it was
    path.write_text(json.dumps(results, indent=1, default=str))
    md = args.out / "results.md"
    text = md.read_text() if md.exists() else ""
    if MARK in text:   # replace our section, up to the next one
        head, _, rest = text.partition(MARK)
        after = rest.find("\n## ")
        text = head + "\n".join(report_lines(merge)) + (rest[after + 1:] if after >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(report_lines(merge))
    md.write_text(text)
    print(f"wrote the merge results to {path} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
