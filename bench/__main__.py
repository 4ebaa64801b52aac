"""Run the benchmarks and write bench/results.md and its plots: ``python -m bench [--full]``."""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

from core import loops
from core.chord import sim

from . import (
    chat,
    failover,
    footprint,
    holepunch,
    kad,
    loopback,
    machine,
    merge,
    outbox,
    plots,
    relay,
    rtt,
    security,
    settings,
    signing,
    simulated,
)
from .stats import half_log2, ms, us

OUT = Path(__file__).resolve().parent
PARTIAL_OUT = OUT / ".cache" / "only"   # a run of some phases (--only): not the report

# results.md: each module writes its own sections from its results, in this order.
SECTIONS = (machine.section, rtt.section, loopback.lookups_section,
            loopback.convergence_section, kad.section, simulated.paths_section,
            simulated.failures_section, loopback.profile_section, chat.section,
            failover.section, footprint.section, signing.section, outbox.section,
            merge.section, security.section, relay.section, holepunch.section)


def say(text: str) -> None:
    print(text, flush=True)


# -- the phases: each measures into ``results``, in the order of PHASES --------------------

def loopback_phase(cfg: dict, results: dict) -> None:
    loops.run(_loopback(cfg, results))


async def _loopback(cfg: dict, results: dict) -> None:
    say("raw loopback round trip ...")
    # Measured three times across the run (it moves between runs on a shared machine);
    # the ratios use the median of the three p50s.
    samples = [await rtt.raw_frame_rtt(cfg["rtt_samples"])]
    results["transport_rtt"] = await rtt.transport_rtt(cfg["rtt_samples"])
    say(f"  bare asyncio frame RTT p50 {us(samples[0]['p50'])}, "
        f"TcpTransport ping p50 {us(results['transport_rtt']['p50'])}")
    raw_rows = []
    for n in cfg["lookup_ns"]:
        raw_rows.append((n, await _lookups(n, cfg, results, samples)))
    samples.append(await rtt.raw_frame_rtt(cfg["rtt_samples"]))
    p50s = sorted(sample["p50"] for sample in samples)
    results["raw_rtt"] = dict(samples[0], p50=p50s[1], p50s=[s["p50"] for s in samples])
    raw = results["raw_rtt"]["p50"]
    rows = []
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


async def _lookups(n: int, cfg: dict, results: dict, samples: list) -> dict:
    """The lookups on a quiet ring of ``n``, cold and warm (the warm ones kept under
    ``_warm`` for the ratios to the raw RTT); while the ring of the middle N is up, the
    second raw RTT sample; at N = 64 the profile and kademlia too."""
    rng = random.Random(n)
    started = time.perf_counter()
    nodes, rounds = await loopback.build_quiet_ring(n, rng)
    built = time.perf_counter() - started
    try:
        # Every node keeps its connections open, all in this one process: the first
        # pass opens about `hops` new ones per lookup. Cap what the fd limit allows.
        files = results["machine"]["open_files"]
        count = min(cfg["lookups"], max(400, (files - 60 * n) // 8))
        plan = loopback.lookup_plan(nodes, count, rng)
        cold = await loopback.measure_lookups(nodes, plan)
        warm = await loopback.measure_lookups(nodes, plan)
        row = loopback.summarize_lookups(n, warm, 1.0)
        cold_row = loopback.summarize_lookups(n, cold, 1.0)
        row["_warm"] = warm
        row.update(cold_p50=cold_row["latency_p50"], cold_p99=cold_row["latency_p99"],
                   build_seconds=built, build_rounds=rounds)
        say(f"  N={n}: hops {row['hops_mean']:.2f} (½·log2 N = {half_log2(n):.2f}), "
            f"p50 {ms(row['latency_p50'])}, p99 {ms(row['latency_p99'])}")
        if n == cfg["lookup_ns"][len(cfg["lookup_ns"]) // 2]:
            samples.append(await rtt.raw_frame_rtt(cfg["rtt_samples"]))
        if n == 64:
            results["profile_lookup"] = await loopback.profile_lookups(
                nodes, cfg["profile_lookups"], rng)
            say("  kademlia 2.2.3 at N=64, interleaved get by get ...")
            results["kademlia"] = await kad.rounds(nodes, cfg, say)
        return row
    finally:
        await loopback.stop_all(nodes)


def simulated_phase(cfg: dict, results: dict) -> None:
    say("simulated rings ...")
    sim.run(_simulated(cfg, results))


async def _simulated(cfg: dict, results: dict) -> None:
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
    addresses = sim.sim_addresses(n)
    state = sim.ideal_state(addresses, 8)
    fails = []
    for fraction in cfg["fail_fractions"]:
        row = await simulated.failures(n, fraction, cfg["fail_lookups"], seed=int(fraction * 100),
                                       state=state, addresses=addresses)
        fails.append(row)
        say(f"  N={n}, {fraction:.0%} failed: first answer wrong {row['failed_first']:.1%}, "
            f"after retries {row['failed_retry']:.2%}")
    results["sim_failures"] = fails


def merge_phase(cfg: dict, results: dict) -> None:
    say("ring merge after a partition (simulated) ...")
    results["merge"] = merge.run(cfg, say)


def chat_phase(cfg: dict, results: dict) -> None:
    say("chat ...")
    try:
        results["chat"] = loops.run(chat.run(cfg, say))
    except Exception as e:  # reported in results.md, never replaced by numbers
        results["chat_error"] = f"{type(e).__name__}: {e}"
        say(f"chat benchmark failed: {results['chat_error']}")
    else:
        say("  failover: the maintainer stopped (SIGSTOP) or killed, 8 processes ...")
        results["chat"]["failover"] = loops.run(failover.run(
            cfg["failover_trials"], say, load=cfg["failover_load"]))


def footprint_phase(cfg: dict, results: dict) -> None:
    say("a node's footprint ...")
    loops.run(_footprint(cfg, results))


async def _footprint(cfg: dict, results: dict) -> None:
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


def signing_phase(cfg: dict, results: dict) -> None:
    say("signatures ...")
    results["signing"] = signing.run()


def outbox_phase(cfg: dict, results: dict) -> None:
    say("outbox ...")
    results["outbox"] = outbox.run()


def security_phase(cfg: dict, results: dict) -> None:
    say("hostile peers (simulated) ...")
    results["security"] = security.run(not cfg["security_full"])
    for share, r in results["security"]["hostile"].items():
        say(f"  {share} % hostile: defended {r['success']:.1%}, plain {r['plain']:.1%}")


def relay_phase(cfg: dict, results: dict) -> None:
    say("relays for nodes nobody can dial ...")
    results["relay"] = relay.run(not cfg["security_full"])


def holepunch_phase(cfg: dict, results: dict) -> None:
    say("hole punching behind namespace routers (needs root and nft) ...")
    results["holepunch"] = holepunch.run(not cfg["security_full"])


PHASES = {"loopback": loopback_phase, "simulated": simulated_phase, "merge": merge_phase,
          "chat": chat_phase, "footprint": footprint_phase, "signing": signing_phase,
          "outbox": outbox_phase, "security": security_phase, "relay": relay_phase,
          "holepunch": holepunch_phase}


def write_report(results: dict, cfg: dict, images: dict) -> str:
    lines: list[str] = []
    for section in SECTIONS:
        lines += section(results, cfg, images)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--full", action="store_true",
                        help="the whole study (longer; more lookups, larger rings)")
    parser.add_argument("--out", type=Path, help="where results.md and results.json go "
                        f"(default bench/, or {PARTIAL_OUT.relative_to(OUT.parent)}/ "
                        "with --only)")
    parser.add_argument("--only", nargs="+", choices=list(PHASES), metavar="PHASE",
                        help="run only these phases, of: " + ", ".join(PHASES))
    parser.add_argument("--loop", choices=["auto", "asyncio"], default="auto",
                        help="auto: uvloop when installed (as the app), else asyncio's")
    parser.add_argument("--rerender", action="store_true",
                        help="rewrite results.md from results.json without measuring")
    args = parser.parse_args(argv)
    out = args.out or (PARTIAL_OUT if args.only else OUT)
    if args.rerender:
        results = json.loads((out / "results.json").read_text())
        cfg = settings.mode(results["mode"] == "full")
        (out / "results.md").write_text(write_report(results, cfg, results["images"]))
        return 0
    if args.loop == "asyncio":
        os.environ["CHORDCHAT_LOOP"] = "asyncio"   # the worker processes inherit it
    cfg = settings.mode(args.full)
    mode = "full" if args.full else "quick"
    files = machine.raise_file_limit()
    results: dict = {"machine": machine.machine(), "mode": mode}
    if args.only:
        results["only"] = [name for name in PHASES if name in args.only]
    results["machine"]["open_files"] = files
    m = results["machine"]
    say(f"chordchat bench ({mode}): {m['cores']} cores, Python {m['python']}, {m['cpu']}; "
        f"open files up to {files}")
    started = time.perf_counter()
    for name, phase in PHASES.items():
        if not args.only or name in args.only:
            phase(cfg, results)
    results["seconds"] = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    images = plots.draw(results, out)
    results["images"] = images
    (out / "results.md").write_text(write_report(results, cfg, images))
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    say(f"wrote {out / 'results.md'} in {results['seconds']:.0f} s")
    return 0

if __name__ == "__main__":
    sys.exit(main())
