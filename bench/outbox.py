"""What the outbox costs: one durable commit per typed line (``add_outgoing``, WAL with
``synchronous=FULL``) and its effect on a channel send's latency — the same sends through
the chat with the user's database and without (``NoStore``), on an in-memory network with
the real event loop. ``python -m bench.outbox``."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from core.chat.testing import SimRing
from core.chord.sim import run as run_loop
from core.store import FILENAME, AsyncStore, Message

from .settings import OUTBOX_OPS
from .tables import table


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _commits(folder: Path, count: int) -> list[float]:
    store = await AsyncStore.open(folder / FILENAME)
    times = []
    try:
        for i in range(count):
            started = time.perf_counter()
            await store.add_outgoing(Message("#room", f"{i:032x}", "ann", "a line", 1.0, True,
                                             "pending"), "channel", "room",
                                     {"target": "room", "text": "a line"})
            times.append(time.perf_counter() - started)
    finally:
        await store.close()
    return times


async def _sends(count: int, keep: bool) -> list[float]:
    ring = SimRing(latency=0.0)
    try:
        await ring.start(["bo", "cy"])
        ann = await ring.add("ann", keep=keep)
        await ring.settle()
        await ann.user.join("room")
        times = []
        for i in range(count):
            started = time.perf_counter()
            await ann.user.send("room", f"line {i}")
            times.append(time.perf_counter() - started)
        return times
    finally:
        await ring.stop()


def run(count: int = OUTBOX_OPS) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        commits = asyncio.run(_commits(Path(folder), count))
    with_store = run_loop(_sends(count, True), virtual_time=False)
    without = run_loop(_sends(count, False), virtual_time=False)
    return {"commit_p50": statistics.median(commits), "commit_p95": _p(commits, 0.95),
            "send_p50_store": statistics.median(with_store),
            "send_p95_store": _p(with_store, 0.95),
            "send_p50_none": statistics.median(without), "send_p95_none": _p(without, 0.95)}


def lines(r: dict) -> list[str]:
    ms = lambda s: f"{s * 1e3:.2f} ms"  # noqa: E731
    return [
        "## The outbox: what a durable line costs",
        "",
        "One commit of a typed line (history row + outbox row, WAL, `synchronous=FULL`, on the "
        "store's worker thread; `python -m bench.outbox`), and a channel send from the line "
        "to the maintainer's acknowledgement (in-memory network, real loop), with the "
        "database and without:",
        "",
        *table(["commit p50", "commit p95", "send p50 with", "send p95 with",
                "send p50 without", "send p95 without"],
               [[ms(r[k]) for k in ("commit_p50", "commit_p95", "send_p50_store",
                                    "send_p95_store", "send_p50_none", "send_p95_none")]]),
        "",
        "A send with the database also marks the line delivered (a second commit) after the "
        "acknowledgement; the event loop never waits on the disk meanwhile.",
        "",
    ]


def section(results: dict, cfg: dict, images: dict) -> list[str]:
    return lines(results["outbox"]) if "outbox" in results else []


if __name__ == "__main__":
    print("\n".join(lines(run())))
