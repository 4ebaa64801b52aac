"""Run the benchmarks and write bench/results.md and its plots: ``python -m bench [--full]``."""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from core import loops
from core.chord import sim, wire

from . import footprint, kad, loopback, merge, plots, rtt, settings, simulated
from .stats import half_log2, ms, num, short_paths, us

OUT = Path(__file__).resolve().parent

def say(text: str) -> None:
    print(text, flush=True)


def machine() -> dict:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "cpu": cpu,
            "system": f"{platform.system()} {platform.release()}",
            "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "loop": loops.name(loops.new_event_loop()), "codec": wire.CODEC,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def raise_file_limit() -> int:
    """Hundreds of nodes in one process keep thousands of loopback connections open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1 << 18  # 256 nodes that each reach most others: two fds per connection
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):  # not root: as far as the hard limit allows
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- the phases ----------------------------------------------------------------------------

async def loopback_phase(cfg: dict, results: dict, files: int) -> None:
    say("raw loopback round trip ...")
    # Measured three times across the run (it moves between runs on a shared machine);
    # the ratios use the median of the three p50s.
    samples = [await rtt.raw_frame_rtt(cfg["rtt_samples"])]
    results["transport_rtt"] = await rtt.transport_rtt(cfg["rtt_samples"])
    say(f"  bare asyncio frame RTT p50 {us(samples[0]['p50'])}, "
        f"TcpTransport ping p50 {us(results['transport_rtt']['p50'])}")
    raw_rows = []
    rows = []
    for n in cfg["lookup_ns"]:
        rng = random.Random(n)
        started = time.perf_counter()
        nodes, rounds = await loopback.build_quiet_ring(n, rng)
        built = time.perf_counter() - started
        try:
            # Every node keeps its connections open, all in this one process: the first
            # pass opens about `hops` new ones per lookup. Cap what the fd limit allows.
            count = min(cfg["lookups"], max(400, (files - 60 * n) // 8))
            plan = loopback.lookup_plan(nodes, count, rng)
            cold = await loopback.measure_lookups(nodes, plan)
            warm = await loopback.measure_lookups(nodes, plan)
            row = loopback.summarize_lookups(n, warm, 1.0)
            cold_row = loopback.summarize_lookups(n, cold, 1.0)
            row["_warm"] = warm
            row.update(cold_p50=cold_row["latency_p50"], cold_p99=cold_row["latency_p99"],
                       build_seconds=built, build_rounds=rounds)
            raw_rows.append((n, row))
            say(f"  N={n}: hops {row['hops_mean']:.2f} (½·log2 N = {half_log2(n):.2f}), "
                f"p50 {ms(row['latency_p50'])}, p99 {ms(row['latency_p99'])}")
            if n == cfg["lookup_ns"][len(cfg["lookup_ns"]) // 2]:
                samples.append(await rtt.raw_frame_rtt(cfg["rtt_samples"]))
            if n == 64:
                results["profile_lookup"] = await profile_lookups(nodes, cfg, rng)
                say("  kademlia 2.2.3 at N=64, interleaved get by get ...")
                results["kademlia"] = await kademlia_rounds(nodes, cfg, rng)
        finally:
            await loopback.stop_all(nodes)
    samples.append(await rtt.raw_frame_rtt(cfg["rtt_samples"]))
    p50s = sorted(sample["p50"] for sample in samples)
    results["raw_rtt"] = dict(samples[0], p50=p50s[1], p50s=[s["p50"] for s in samples])
    raw = results["raw_rtt"]["p50"]
    for n, row in raw_rows:
        warm = row.pop("_warm")
        summary = loopback.summarize_lookups(n, warm, raw)
        row.update(ratio_mean=summary["ratio_mean"], ratio_p50=summary["ratio_p50"])
        rows.append(row)
        say(f"  N={n}: latency / (hops × raw RTT) = {row['ratio_mean']:.2f}")
    results["loopback"] = rows
    conv = []
    for n in cfg["converge_ns"]:
        say(f"  convergence of {n} concurrent joins ...")
        row = await loopback.convergence_time(n, cfg["converge_limit"])
        conv.append(row)
        say(f"    ring {row['ring']}, fingers {row['fingers']}")
    results["convergence"] = conv


async def kademlia_rounds(nodes, cfg: dict, rng: random.Random) -> dict:
    """The side-by-side get, ``kad_rounds`` times: every round's ratio must pass, not the
    average. The figures under "ours"/"theirs" pool all rounds."""
    rounds = []
    per_round = max(100, cfg["kad_gets"] // cfg["kad_rounds"])
    for i in range(cfg["kad_rounds"]):
        r = await kad.side_by_side(nodes, cfg["kad_keys"], per_round, random.Random(i))
        rounds.append(r)
        say(f"    round {i + 1}: get p50 ours {ms(r['ours']['p50'])} (lookup + call "
            f"{ms(r['ours']['iterative_p50'])}), kademlia {ms(r['theirs']['p50'])}: "
            f"{r['ours']['p50'] / r['theirs']['p50']:.2f} ×")
    ours = {k: sorted(r["ours"][k] for r in rounds)[len(rounds) // 2] for k in rounds[0]["ours"]
            if isinstance(rounds[0]["ours"][k], float)}
    theirs = {k: sorted(r["theirs"][k] for r in rounds)[len(rounds) // 2]
              for k in rounds[0]["theirs"] if isinstance(rounds[0]["theirs"][k], float)}
    ours.update(system="chordchat", n=len(nodes), gets=per_round * len(rounds))
    theirs.update(system="kademlia 2.2.3", n=len(nodes), gets=per_round * len(rounds))
    return {"ours": ours, "theirs": theirs,
            "ratios": [r["ours"]["p50"] / r["theirs"]["p50"] for r in rounds],
            "iterative_ratios": [r["ours"]["iterative_p50"] / r["theirs"]["p50"]
                                 for r in rounds]}


async def profile_lookups(nodes, cfg: dict, rng: random.Random) -> str:
    """cProfile of lookups on the warm N = 64 ring; the top of the table, as text.

    The lookups run once unprofiled first, so the profile shows the steady state (every
    connection open), not connection set-up.
    """
    count = cfg["profile_lookups"]
    keys = [(rng.choice(nodes), rng.getrandbits(160)) for _ in range(count)]
    for node, key in keys:
        await node.find_successor(key)
    profiler = cProfile.Profile()
    profiler.enable()
    hops = 0
    for node, key in keys:
        hops += (await node.find_successor(key))[1]
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(18)
    header = f"{count} lookups, {hops} hops in all, N = {len(nodes)}, cProfile, by own time\n"
    body = text.getvalue()
    body = body[body.find("   ncalls"):] if "   ncalls" in body else body
    return header + short_paths(body)


async def footprint_phase(cfg: dict, results: dict) -> None:
    rows = []
    for n in cfg["ready_ns"]:
        row = await footprint.ready_times(n, cfg["ready_joins"], random.Random(n))
        rows.append(row)
        say(f"  joining a ring of {n}: ready p50 {ms(row['ready_p50'])} (max "
            f"{ms(row['ready_max'])}), placed p50 {ms(row['placed_p50'])}")
    channels, members, messages, steps = cfg["memory"]
    mem = await footprint.memory(channels, members, messages, steps)
    say(f"  {channels} channels × {members} members × {messages} messages: RSS "
        f"{mem['rss'] / 2**20:.0f} MiB (empty node {mem['empty_rss'] / 2**20:.0f} MiB)")
    results["footprint"] = {"ready": rows, "memory": mem}


async def simulated_phase(cfg: dict, results: dict) -> None:
    rows = []
    for n in cfg["sim_ns"]:
        started = time.perf_counter()
        row = await simulated.path_lengths(n, cfg["sim_lookups"], seed=n)
        row["seconds"] = time.perf_counter() - started
        rows.append(row)
        say(f"  simulated N={n}: mean {row['mean']:.2f} hops (paper's routing "
            f"{row['paper_mean']:.2f}, ½·log2 N {row['target']:.2f})")
    results["sim_paths"] = rows
    conv = []
    for n in cfg["sim_converge_ns"]:
        started = time.perf_counter()
        row = await simulated.join_convergence(n, settings.CONVERGE, seed=n)
        row["wall"] = time.perf_counter() - started
        conv.append(row)
        say(f"  simulated concurrent joins, N={n}: ring after {row['ring']} simulated s")
    results["sim_convergence"] = conv
    n = cfg["fail_n"]
    from core.chord.sim import ideal_state, sim_addresses
    addresses = sim_addresses(n)
    state = ideal_state(addresses, 8)
    fails = []
    for fraction in cfg["fail_fractions"]:
        row = await simulated.failures(n, fraction, cfg["fail_lookups"], seed=int(fraction * 100),
                                       state=state, addresses=addresses)
        fails.append(row)
        say(f"  N={n}, {fraction:.0%} failed: first answer wrong {row['failed_first']:.1%}, "
            f"after retries {row['failed_retry']:.2%}")
    results["sim_failures"] = fails


# -- the report ----------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def write_report(results: dict, cfg: dict, mode: str, images: dict) -> str:
    m = results["machine"]
    raw = results["raw_rtt"]
    lines = [
        "# chordchat benchmark results",
        "",
        f"Written by `make bench` ({mode} mode) on {m['date']}; whole run "
        f"{results['seconds']:.0f} s. Regenerate with `make bench` "
        "(or `make bench BENCH_ARGS=--full`).",
        "",
        f"- Machine: {m['cores']} cores, {m['cpu']}, {m['system']}; load average "
        f"{m['load']:.2f} at the start (other work was running: absolute times are noisy).",
        f"- Python {m['python']} ({m['implementation']}), event loop: "
        f"{m.get('loop', 'asyncio')}, wire codec: {m.get('codec', 'json')}.",
        "- Targets are reported here, never asserted in tests.",
        "",
        "## The network's limit on this machine",
        "",
        "| round trip, loopback, one asyncio loop | p50 | p99 | mean |",
        "| --- | --- | --- | --- |",
        f"| bare asyncio streams, one length-prefixed frame each way (no JSON) "
        f"| {us(raw['p50'])} | {us(raw['p99'])} | {us(raw['mean'])} |",
    ]
    p50s = ", ".join(us(x) for x in raw["p50s"])
    t = results["transport_rtt"]
    lines += [
        f"| our `TcpTransport.call('ping')` (JSON, request ids, dispatch) "
        f"| {us(t['p50'])} | {us(t['p99'])} | {us(t['mean'])} |",
        "",
        f"The bare frame round trip was measured three times in this run (start, middle, "
        f"end: p50 {p50s}); their median, {us(raw['p50'])}, is the \"raw RTT\" of the ratios "
        "below. On this shared machine it moves between about 20 and 45 µs from one "
        "measurement to the next, so the ratios carry that uncertainty.",
        "",
        f"Target \"our ping p50 ≤ 1.5 × the bare frame round trip\": "
        f"{verdict(t['p50'] <= 1.5 * raw['p50'])} ({t['p50'] / raw['p50']:.2f} ×).",
        "",
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
        "| N | lookups | ½·log2 N | hops mean (ours) | hops p99 | + step to owner "
        "| paper's routing "
        "| calls/lookup | p50 | p99 | cold p50 | cold p99 | latency/(hops×RTT) mean | "
        "per-lookup median |",
        "| " + " | ".join(["---"] * 14) + " |",
    ]
    for r in results["loopback"]:
        lines.append(
            f"| {r['n']} | {r['lookups']} | {r['target']:.2f} | {r['hops_mean']:.2f} "
            f"| {r['hops_p99']:.0f} "
            f"| {r['with_last_mean']:.2f} | {r['paper_hops_mean']:.2f} | {r['calls_mean']:.2f} "
            f"| {ms(r['latency_p50'])} | {ms(r['latency_p99'])} | {ms(r['cold_p50'])} "
            f"| {ms(r['cold_p99'])} | {num(r['ratio_mean'])} | {num(r['ratio_p50'])} |")
    lines += [
        "",
        "Hop counts, three ways: **ours** counts remote `next_hop` queries (the start node's "
        "own routing step is free and the owner is named by its predecessor, never "
        "contacted); **+ step to owner** adds that last node-to-node step; **paper's "
        "routing** replays the paper's §4.3 algorithm (fingers only, no successor-list "
        "shortcut) over the same ring's ideal state, counting steps to the key's "
        "predecessor, which is what the paper's ½·log2 N describes.",
        "",
    ]
    for r in results["loopback"]:
        lines.append(
            f"- N = {r['n']}: hops within 10% of ½·log2 N: "
            f"{verdict(abs(r['hops_mean'] - r['target']) <= 0.1 * r['target'])} "
            f"({r['hops_mean'] / r['target']:.0%} of it; the paper's routing "
            f"{r['paper_hops_mean'] / r['target']:.0%}); latency ≤ 1.5 × hops × RTT: "
            f"{verdict(r['ratio_mean'] <= 1.5)} ({r['ratio_mean']:.2f} ×).")
    lines += ["", f"![hops]({images['loopback_hops']}) ![latency]({images['loopback_latency']})",
              ""]
    lines += [
        "## Convergence after concurrent joins (real nodes, their own timers)",
        "",
        "N − 1 nodes call `start()` at the same moment through one bootstrap; stabilize every "
        f"{settings.CONVERGE['stabilize_interval']} s, fix_fingers and check_predecessor every "
        "1 s (faster than the defaults of 0.5/1/1 s so that the largest N fits in the run). "
        "\"Ring\" is the moment `ring_problems` (one ordered cycle, every successor, "
        "predecessor and successor list right) first comes back empty.",
        "",
        "| N | all joined | ring converged | in stabilize intervals | all fingers right |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results["convergence"]:
        ring = (f"not within {r['limit']:.0f} s" if r["ring"] is None
                else f"{r['ring']:.1f} s")
        fingers = "—" if r["fingers"] is None else f"{r['fingers']:.1f} s"
        rounds = "—" if r["rounds"] is None else f"{r['rounds']:.0f}"
        lines.append(f"| {r['n']} | {r['joined']:.2f} s | {ring} | {rounds} | {fingers} |")
    lines += [
        "",
        "The same, on the simulated network (the same node code and timers, 1 ms one way, "
        "virtual clock: no CPU contention, so this is the protocol's own pace):",
        "",
        "| N | ring converged (simulated time) | in stabilize intervals | messages | wall time |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results["sim_convergence"]:
        ring = "—" if r["ring"] is None else f"{r['ring']:.1f} s"
        rounds = "—" if r["rounds"] is None else f"{r['rounds']:.0f}"
        lines.append(f"| {r['n']} | {ring} | {rounds} | {r['messages']:,} | {r['wall']:.0f} s |")
    lines.append(
        f"\nReal sockets stop at N = {cfg['converge_ns'][-1]} in this mode"
        + ("" if cfg is settings.FULL else " (`--full` adds 128)")
        + ": at N = 256 in one process, the nodes' maintenance ends up connecting nearly "
        "every pair (two descriptors each), past this process's open-file limit "
        f"({results['machine']['open_files']}); the simulator covers N = 256.")
    lines += ["", f"![convergence]({images['convergence']})", ""]
    lines += kademlia_section(results["kademlia"], images)
    lines += [
        "## Simulated rings: path length against N",
        "",
        "The same node code over `core.chord.sim` (in memory, zero latency, virtual clock). "
        "Large rings are built converged directly (`sim.converged_ring` adopts the state a "
        "converged ring reaches, checked by a test against rings converged by the real "
        "protocol); every lookup is the real `Local.find_successor`, checked against the "
        f"true owner. {cfg['sim_lookups']} lookups per N.",
        "",
        "| N | ½·log2 N | ours mean | 1st pct | 99th pct | + step to owner | paper's routing "
        "mean | 1st | 99th | ours / ½·log2 N |",
        "| " + " | ".join(["---"] * 10) + " |",
    ]
    for r in results["sim_paths"]:
        lines.append(
            f"| {r['n']:,} | {r['target']:.2f} | {r['mean']:.2f} | {r['p1']:.0f} "
            f"| {r['p99']:.0f} | {r['with_last_mean']:.2f} | {r['paper_mean']:.2f} "
            f"| {r['paper_p1']:.0f} | {r['paper_p99']:.0f} | {r['mean'] / r['target']:.0%} |")
    lines += ["", f"![path length]({images['sim_path_length']})", ""]
    fails = results["sim_failures"]
    lines += [
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
        "| failed | first answer wrong | failed after retries | keys behind ≥ r dead nodes "
        "| p^r | original owner dead | hops (successful) | calls per lookup |",
        "| " + " | ".join(["---"] * 8) + " |",
    ]
    for r in fails:
        lines.append(
            f"| {r['fraction']:.0%} | {r['failed_first']:.1%} | {r['failed_retry']:.2%} "
            f"| {r['gap_keys']:.2%} | {r['theory']:.2e} | {r['owner_dead']:.1%} "
            f"| {num(r['hops_mean'])} | {num(r['calls_mean'])} |")
    lines += ["", f"![failures]({images['sim_failures']})", ""]
    lines += [
        "## Where a lookup's time goes",
        "",
        "```",
        results["profile_lookup"].rstrip(),
        "```",
        "",
    ]
    lines += chat_section(results)
    lines += failover_section(results)
    lines += footprint_section(results)
    if "signing" in results:
        from . import signing
        lines += signing.lines(results["signing"])
    if "outbox" in results:
        from . import outbox
        lines += outbox.lines(results["outbox"])
    if "merge" in results:
        lines += ["", *merge.report_lines(results["merge"])]
    return "\n".join(lines) + "\n"


def failover_section(results: dict) -> list[str]:
    fo = results.get("chat", {}).get("failover")
    if fo is None:
        return []
    lines = [
        "## Failover: a channel's maintainer goes silent or dies",
        "",
        f"{fo['ring']} chat nodes, each its own process with default settings. Per trial, a "
        "node that is no member is picked, a channel named whose key it owns, and three "
        f"members join; one sends every {fo['send_every'] * 1000:.0f} ms (each send its own "
        "task). 1.5 s later the maintainer is frozen with SIGSTOP (its host gone silent: no "
        "connection is refused, nothing is reset) or killed with kill -9. *Silence* is the "
        "longest gap between two arrivals at a listening member from 1 s before the "
        "failure until the sender stops; *lost* counts acknowledged messages that did not "
        "reach both listeners. The victim is then killed for good and a fresh node joins. "
        f"{fo['trials']} trials of each, two listeners each"
        + (f"; {fo['load']} processes spinning on the CPU throughout (the machine has "
           f"{os.cpu_count()} cores)." if fo.get("load") else "."),
        "",
        "| failure | silence p50 | p99 | max | samples | lost |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for how, label in (("stop", "silent (SIGSTOP)"), ("kill", "killed (kill -9)")):
        r = fo[how]
        lines.append(f"| {label} | {r['p50']:.2f} s | {r['p99']:.2f} s | {r['max']:.2f} s "
                     f"| {r['samples']} | {r['lost']} |")
    lines += [
        "",
        f"Target \"p99 ≤ 2 s for the silent case, nothing lost\": "
        f"{verdict(fo['stop']['p99'] <= 2.0 and fo['stop']['lost'] == 0)}. Live nodes "
        f"suspected by any node's transport during the trials: {fo['false_suspicions']} "
        "(a suspicion only reroutes calls until the next answer; a live node is never "
        "dropped from the ring for it). How suspicion is tuned: docs/performance.md.",
        "",
    ]
    return lines


def footprint_section(results: dict) -> list[str]:
    fp = results.get("footprint")
    if fp is None:
        return []
    mem = fp["memory"]
    lines = [
        "## A node's footprint: start to ready, and memory",
        "",
        "A ring of N chat nodes with default settings in this process (built in waves, "
        "then settled); then nodes join one by one, a second apart, through random "
        "members. *Ready*: from `Local.start()` until the user's nick is registered (it "
        "can chat). *Placed*: until both neighbours point at the new node (every lookup "
        "for its range finds it). *Settled*: until every successor list is right again.",
        "",
        "| N | joins | ready p50 | ready max | placed p50 | placed max | settled p50 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in fp["ready"]:
        lines.append(f"| {r['n']} | {r['joins']} | {ms(r['ready_p50'])} | {ms(r['ready_max'])} "
                     f"| {ms(r['placed_p50'])} | {ms(r['placed_max'])} "
                     f"| {r['settled_p50']:.2f} s |")
    at64 = next((r for r in fp["ready"] if r["n"] == 64), None)
    if at64:
        lines += ["", f"Target \"ready ≤ 1 s joining a 64-node ring\": "
                      f"{verdict(at64['ready_max'] <= 1.0)} (max {ms(at64['ready_max'])})."]
    lines += [
        "",
        f"Memory: one node alone maintains channels of {mem['members']} members and "
        f"{mem['messages']} messages each, built through the chat's own join and send "
        "handlers, its feeds delivering to a sink in the same process that acknowledges "
        "everything (bench/workers/footprint_node.py, its own process). RSS after each step:",
        "",
        "| channels | RSS | per channel over the empty node |",
        "| --- | --- | --- |",
    ]
    for row in mem["rows"]:
        per = ((row["rss"] - mem["empty_rss"]) / row["channels"] / 1024
               if row["channels"] else 0)
        lines.append(f"| {row['channels']:,} | {row['rss'] / 2**20:.0f} MiB "
                     f"| {per:.0f} KiB |" if row["channels"] else
                     f"| 0 (started, empty) | {row['rss'] / 2**20:.0f} MiB | — |")
    lines += ["", f"Target \"≤ 150 MB at 1,000 channels\": "
                  f"{verdict(mem['rss'] <= 150e6)} ({mem['rss'] / 1e6:.0f} MB).", ""]
    return lines


def kademlia_section(k: dict, images: dict) -> list[str]:
    ours, theirs = k["ours"], k["theirs"]
    ratios = ", ".join(f"{r:.2f}" for r in k["ratios"])
    worst = max(k["ratios"])
    return [
        "## Side by side: kademlia 2.2.3 at N = 64 on loopback",
        "",
        f"{len(k['ratios'])} rounds of {ours['gets'] // len(k['ratios'])} gets each, from "
        "nodes that do not hold the key (50 keys, no cache of owners). Both rings live on "
        "this one loop and take turns get by get (ours routed, ours iterative, kademlia, "
        "each first in turn), so a burst of load hits all alike; a first pass over the same "
        "gets opens connections and fills kademlia's tables. kademlia: `Server.get` (UDP, "
        "alpha = 3, k = 20; a value lives on the 20 nodes nearest its key). Ours, routed: "
        "`Local.route`, the request carried hop by hop to the owner, which runs the user "
        "command and answers the asker directly; iterative: `find_successor`, then a user "
        "command to the owner. Messages: every frame sent by any node during one get "
        "(kademlia: requests × 2, each is answered). Each figure is the median over the "
        "rounds.",
        "",
        "| system | get p50 | get p99 | mean | messages per get |",
        "| --- | --- | --- | --- | --- |",
        f"| chordchat, routed (`Local.route`) | {ms(ours['p50'])} | {ms(ours['p99'])} "
        f"| {ms(ours['mean'])} | {ours['messages']:.2f} |",
        f"| chordchat, iterative lookup + call | {ms(ours['iterative_p50'])} "
        f"| {ms(ours['iterative_p99'])} | — | {2 * ours['iterative_messages']:.2f} |",
        f"| kademlia 2.2.3 | {ms(theirs['p50'])} | {ms(theirs['p99'])} | {ms(theirs['mean'])} "
        f"| {2 * theirs['messages']:.2f} |",
        "",
        f"Ratio of get p50, ours routed / kademlia, per round: {ratios}. Target \"≤ 0.6 × "
        f"in every round\": {verdict(worst <= 0.6)} (worst {worst:.2f} ×). Iterative "
        "lookup + call per round: "
        + ", ".join(f"{r:.2f}" for r in k["iterative_ratios"])
        + f" ×. Our owner lookup alone p50 {ms(ours['lookup_p50'])}; kademlia's set p50 "
        f"{ms(theirs['set_p50'])}.",
        "",
        f"![kademlia]({images['kademlia']})",
        "",
    ]


def chat_section(results: dict) -> list[str]:
    chat = results.get("chat")
    if chat is None and "chat_error" in results:
        return [
            "## Chat: fan-out and migration — FAILED IN THIS RUN",
            "",
            f"The chat benchmark stopped with `{results['chat_error']}`; no numbers are "
            "given for it.",
            "",
        ]
    if chat is None:
        return []
    from .chat import report_lines
    return report_lines(chat, results["raw_rtt"]["p50"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--full", action="store_true",
                        help="the whole study (longer; more lookups, larger rings)")
    parser.add_argument("--out", type=Path, default=OUT, help="where results.md goes")
    parser.add_argument("--loop", choices=["auto", "asyncio"], default="auto",
                        help="auto: uvloop when installed (as the app), else asyncio's")
    parser.add_argument("--rerender", action="store_true",
                        help="rewrite results.md from results.json without measuring")
    args = parser.parse_args(argv)
    if args.rerender:
        results = json.loads((args.out / "results.json").read_text())
        cfg = settings.mode(results["mode"] == "full")
        (args.out / "results.md").write_text(
            write_report(results, cfg, results["mode"], results["images"]))
        return 0
    if args.loop == "asyncio":
        os.environ["CHORDCHAT_LOOP"] = "asyncio"   # the worker processes inherit it
    cfg = settings.mode(args.full)
    mode = "full" if args.full else "quick"
    files = raise_file_limit()
    results: dict = {"machine": machine(), "mode": mode}
    results["machine"]["open_files"] = files
    m = results["machine"]
    say(f"chordchat bench ({mode}): {m['cores']} cores, Python {m['python']}, {m['cpu']}; "
        f"open files up to {files}")
    started = time.perf_counter()
    loops.run(loopback_phase(cfg, results, files))
    say("simulated rings ...")
    sim.run(simulated_phase(cfg, results))
    say("ring merge after a partition (simulated) ...")
    results["merge"] = merge.run(cfg, say)
    from . import chat
    say("chat ...")
    try:
        results["chat"] = loops.run(chat.run(cfg, say))
    except Exception as e:  # reported in results.md, never replaced by numbers
        results["chat_error"] = f"{type(e).__name__}: {e}"
        say(f"chat benchmark failed: {results['chat_error']}")
    else:
        say("  failover: the maintainer stopped (SIGSTOP) or killed, 8 processes ...")
        from . import failover
        results["chat"]["failover"] = loops.run(failover.run(
            cfg["failover_trials"], say, load=cfg["failover_load"]))
    say("a node's footprint ...")
    loops.run(footprint_phase(cfg, results))
    from . import signing
    say("signatures ...")
    results["signing"] = signing.run()
    from . import outbox
    say("outbox ...")
    results["outbox"] = outbox.run()
    results["seconds"] = time.perf_counter() - started
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    images = {
        "loopback_hops": plots.loopback_hops(results["loopback"], out),
        "loopback_latency": plots.loopback_latency(results["loopback"],
                                                   results["raw_rtt"]["p50"], out),
        "convergence": plots.convergence(results["convergence"], out),
        "kademlia": plots.kademlia(results["kademlia"]["ours"], results["kademlia"]["theirs"],
                                   out),
        "sim_path_length": plots.sim_path_length(results["sim_paths"], out),
        "sim_failures": plots.sim_failures(results["sim_failures"], out),
    }
    results["images"] = images
    (out / "results.md").write_text(write_report(results, cfg, mode, images))
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    say(f"wrote {out / 'results.md'} in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
