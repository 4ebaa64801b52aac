"""The PNG plots beside results.md (matplotlib, no display needed)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def loopback_hops(rows: list[dict], out: Path) -> str:
    fig, ax = plt.subplots(figsize=(6, 4))
    ns = [r["n"] for r in rows]
    ax.plot(ns, [0.5 * math.log2(n) for n in ns], "k--", label="½·log2 N (paper)")
    ax.plot(ns, [r["hops_mean"] for r in rows], "o-", label="ours: remote next_hop queries")
    ax.plot(ns, [r["with_last_mean"] for r in rows], "s-", label="ours + the step to the owner")
    ax.plot(ns, [r["paper_hops_mean"] for r in rows], "^-",
            label="paper's routing (fingers only) on the same ring")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (real nodes on loopback)")
    ax.set_ylabel("mean hops per lookup")
    ax.legend(fontsize=8)
    ax.set_title("Lookup path length, real nodes")
    return _save(fig, out / "loopback_hops.png")


def loopback_latency(rows: list[dict], rtt: float, out: Path) -> str:
    fig, ax = plt.subplots(figsize=(6, 4))
    ns = [r["n"] for r in rows]
    ax.plot(ns, [r["latency_p50"] * 1e3 for r in rows], "o-", label="lookup p50")
    ax.plot(ns, [r["latency_p99"] * 1e3 for r in rows], "o:", label="lookup p99")
    ax.plot(ns, [r["hops_mean"] * rtt * 1e3 for r in rows], "k--",
            label="mean hops × raw frame RTT")
    ax.plot(ns, [1.5 * r["hops_mean"] * rtt * 1e3 for r in rows], "r--", label="target: 1.5 ×")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (real nodes on loopback)")
    ax.set_ylabel("ms")
    ax.legend(fontsize=8)
    ax.set_title("Lookup latency against the loopback floor")
    return _save(fig, out / "loopback_latency.png")


def sim_path_length(rows: list[dict], out: Path) -> str:
    fig, ax = plt.subplots(figsize=(6, 4))
    ns = [r["n"] for r in rows]
    ax.plot(ns, [0.5 * math.log2(n) for n in ns], "k--", label="½·log2 N")
    for key, p1, p99, label, fmt in (
            ("mean", "p1", "p99", "ours (1st–99th percentile bars)", "o-"),
            ("paper_mean", "paper_p1", "paper_p99", "paper's routing, fingers only", "^-")):
        means = [r[key] for r in rows]
        low = [m - r[p1] for m, r in zip(means, rows, strict=True)]
        high = [r[p99] - m for m, r in zip(means, rows, strict=True)]
        ax.errorbar(ns, means, yerr=[low, high], fmt=fmt, capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("N (simulated nodes)")
    ax.set_ylabel("path length (hops)")
    ax.legend(fontsize=8)
    ax.set_title("Path length against N (cf. the paper's Fig. 10)")
    return _save(fig, out / "sim_path_length.png")


def sim_failures(rows: list[dict], out: Path) -> str:
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r["fraction"] for r in rows]
    ax.plot(xs, [r["failed_first"] for r in rows], "o-", label="first answer not the live owner")
    ax.plot(xs, [r["failed_retry"] for r in rows], "s-",
            label="failed after the caller's retries")
    ax.plot(xs, [r["gap_keys"] for r in rows], "k--",
            label="keys behind ≥ r dead nodes (floor)")
    ax.set_xlabel("fraction of nodes failed at once")
    ax.set_ylabel("fraction of lookups")
    ax.legend(fontsize=8)
    ax.set_title(f"Lookups before stabilization, N = {rows[0]['n']}, r = 8")
    return _save(fig, out / "sim_failures.png")


def kademlia(ours: dict, theirs: dict, out: Path) -> str:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    labels = ["p50", "p99"]
    x = range(len(labels))
    ax.bar([i - 0.27 for i in x], [ours["p50"] * 1e3, ours["p99"] * 1e3], 0.27,
           label="chordchat: routed to the owner")
    ax.bar(list(x), [ours["iterative_p50"] * 1e3, ours["iterative_p99"] * 1e3], 0.27,
           label="chordchat: lookup, then call")
    ax.bar([i + 0.27 for i in x], [theirs["p50"] * 1e3, theirs["p99"] * 1e3], 0.27,
           label="kademlia 2.2.3 get")
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("ms")
    ax.legend(fontsize=8)
    ax.set_title(f"Get latency, N = {ours['n']} on loopback")
    return _save(fig, out / "kademlia.png")


def convergence(rows: list[dict], out: Path) -> str:
    fig, ax = plt.subplots(figsize=(6, 4))
    done = [r for r in rows if r["ring"] is not None]
    ax.plot([r["n"] for r in done], [r["ring"] for r in done], "o-", label="ring converged")
    fingers = [r for r in done if r["fingers"] is not None]
    ax.plot([r["n"] for r in fingers], [r["fingers"] for r in fingers], "s-",
            label="all fingers right")
    ax.set_xlabel("N (joined at once through one node)")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=8)
    ax.set_title("Convergence after concurrent joins (stabilize every 0.1 s)")
    return _save(fig, out / "convergence.png")


def draw(results: dict, out: Path) -> dict:
    """Every plot this run has the results for, into ``out``: file names by key."""
    images = {}
    if "loopback" in results:
        images["loopback_hops"] = loopback_hops(results["loopback"], out)
        images["loopback_latency"] = loopback_latency(results["loopback"],
                                                      results["raw_rtt"]["p50"], out)
        images["convergence"] = convergence(results["convergence"], out)
        images["kademlia"] = kademlia(results["kademlia"]["ours"], results["kademlia"]["theirs"],
                                      out)
    if "sim_paths" in results:
        images["sim_path_length"] = sim_path_length(results["sim_paths"], out)
        images["sim_failures"] = sim_failures(results["sim_failures"], out)
    return images
