"""What a node costs: time from start to ready when it joins a ring, and the memory of a
node that maintains many channels (``bench.workers.footprint_node``, in its own process)."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path

from core.chat.service import ChatService
from core.chord import Address, Local
from core.chord.testing import ring_problems

from .stats import mean, ms, percentile
from .tables import table, verdict

ROOT = Path(__file__).resolve().parent.parent


async def _chat_node(bootstrap: Address | None, nick: str) -> tuple[Local, ChatService, float]:
    """A node with default settings, started, its chat started and one user ready;
    with the seconds that took."""
    started = time.perf_counter()
    node = Local(Address("127.0.0.1", 0), bootstrap)
    service = ChatService(node, lambda e: None)
    await node.start()
    await service.start()
    await service.add_user(nick, lambda e: None)
    return node, service, time.perf_counter() - started


async def ready_times(n: int, joins: int, rng: random.Random, limit: float = 30.0) -> dict:
    """A ring of ``n`` chat nodes (default settings, all in this process), then ``joins``
    more join one by one through random members. *Ready*: from ``Local.start()`` until
    the user's nick is registered (``add_user`` returned: it can chat). *Placed*: until
    its neighbours point at it both ways (its predecessor's successor is the new node,
    so every lookup for its range finds it); *settled*: until every successor list in
    the ring is right again (those of the r nodes before it learn one step a round)."""
    parts = [await _chat_node(None, "r0")]
    while len(parts) < n:   # in waves, each as large as the ring so far; then settle
        wave = min(len(parts), n - len(parts))
        parts += await asyncio.gather(*(_chat_node(rng.choice(parts)[0].address,
                                                   f"r{len(parts) + i}") for i in range(wave)))
        nodes = [p[0] for p in parts]
        while ring_problems(nodes):
            await asyncio.gather(*(node.stabilize() for node in nodes))
    await asyncio.gather(*(p[0].fix_fingers() for p in parts))
    ready, placed, settled = [], [], []
    try:
        for j in range(joins):
            await asyncio.sleep(1.0)   # the rounds as they run between joins
            started = time.perf_counter()
            part = await _chat_node(rng.choice(parts)[0].address, f"joiner{j}")
            parts.append(part)
            ready.append(part[2])
            nodes = [p[0] for p in parts]
            while not _placed(part[0], nodes) and time.perf_counter() - started < limit:
                await asyncio.sleep(0.005)
            placed.append(time.perf_counter() - started)
            while ring_problems(nodes) and time.perf_counter() - started < limit:
                await asyncio.sleep(0.01)
            settled.append(time.perf_counter() - started)
    finally:
        for _, service, _ in parts:
            await service.stop()
        await asyncio.gather(*(p[0].stop() for p in parts), return_exceptions=True)
    return {"n": n, "joins": joins, "ready_p50": percentile(ready, 50), "ready_max": max(ready),
            "ready_mean": mean(ready), "placed_p50": percentile(placed, 50),
            "placed_max": max(placed), "settled_p50": percentile(settled, 50),
            "settled_max": max(settled)}


def _placed(new: Local, nodes: list[Local]) -> bool:
    ordered = sorted((n for n in nodes if n.running), key=lambda n: n.id)
    i = ordered.index(new)
    before, after = ordered[i - 1], ordered[(i + 1) % len(ordered)]
    predecessor, back = new.predecessor(), after.predecessor()
    return (before.successor().address == new.address and predecessor is not None
            and predecessor.address == before.address and back is not None
            and back.address == new.address and new.successor().address == after.address)


async def memory(channels: int, members: int, messages: int, steps: list[int]) -> dict:
    """RSS of a node maintaining ``channels`` channels (in a process of its own)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.workers.footprint_node", str(channels), str(members),
        str(messages), *map(str, steps), cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    rows = []
    started = time.perf_counter()
    while line := await asyncio.wait_for(proc.stdout.readline(), 600):
        rows.append(json.loads(line))
    if await proc.wait() != 0 or len(rows) < 2:
        raise RuntimeError(f"bench.workers.footprint_node failed (exit {proc.returncode}, "
                           f"{len(rows)} rows): no memory figure")
    return {"channels": channels, "members": members, "messages": messages, "rows": rows,
            "rss": rows[-1]["rss"], "empty_rss": rows[0]["rss"],
            "seconds": time.perf_counter() - started}


def section(results: dict, cfg: dict, images: dict) -> list[str]:
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
        *table(["N", "joins", "ready p50", "ready max", "placed p50", "placed max",
                "settled p50"],
               ([r["n"], r["joins"], ms(r["ready_p50"]), ms(r["ready_max"]),
                 ms(r["placed_p50"]), ms(r["placed_max"]), f"{r['settled_p50']:.2f} s"]
                for r in fp["ready"])),
    ]
    at64 = next((r for r in fp["ready"] if r["n"] == 64), None)
    if at64:
        lines += ["", f"Target \"ready ≤ 1 s joining a 64-node ring\": "
                      f"{verdict(at64['ready_max'] <= 1.0)} (max {ms(at64['ready_max'])})."]
    return lines + [
        "",
        f"Memory: one node alone maintains channels of {mem['members']} members and "
        f"{mem['messages']} messages each, built through the chat's own join and send "
        "handlers, its feeds delivering to a sink in the same process that acknowledges "
        "everything (bench/workers/footprint_node.py, its own process). RSS after each step:",
        "",
        *table(["channels", "RSS", "per channel over the empty node"],
               (_memory_row(row, mem["empty_rss"]) for row in mem["rows"])),
        "",
        f"Target \"≤ 150 MB at 1,000 channels\": "
        f"{verdict(mem['rss'] <= 150e6)} ({mem['rss'] / 1e6:.0f} MB).",
        "",
    ]


def _memory_row(row: dict, empty_rss: int) -> list[str]:
    rss = f"{row['rss'] / 2**20:.0f} MiB"
    if not row["channels"]:
        return ["0 (started, empty)", rss, "—"]
    per = (row["rss"] - empty_rss) / row["channels"] / 1024
    return [f"{row['channels']:,}", rss, f"{per:.0f} KiB"]
