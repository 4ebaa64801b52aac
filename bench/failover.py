"""Failover: a channel's maintainer goes silent (SIGSTOP) or dies (kill -9) while a member
sends every 50 ms; how long do the other members hear nothing, and is anything lost?

Every node is its own process (``bench.workers.failover_node``) with default settings. Each
trial picks a node that is no member, names a channel its id owns, has three members
join (one sends, two listen), then stops or kills that node. The silence is the longest
gap between two arrivals at a listener, from a second before the failure until the
sender stops; afterwards every acknowledged message must have reached both listeners.
The victim is then killed for good and a fresh node joins in its place.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from .chat import channel_owned_by
from .settings import FAILOVER_SEND_EVERY, FAILOVER_SETTLE, FAILOVER_SPARES
from .stats import percentile
from .tables import table, verdict

ROOT = Path(__file__).resolve().parent.parent


class Proc:
    def __init__(self, proc: asyncio.subprocess.Process, address: str, id_hex: str) -> None:
        self.proc, self.address, self.id = proc, address, int(id_hex, 16)

    @classmethod
    async def start(cls, bootstrap: str, nick: str) -> Proc:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.workers.failover_node", bootstrap, nick, cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, limit=1 << 24)
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError(f"failover node {nick} ended before it was ready")
        ready = json.loads(line)
        return cls(proc, ready["ready"], ready["id"])

    async def ask(self, order: dict, timeout: float = 60) -> dict:
        self.proc.stdin.write((json.dumps(order) + "\n").encode())
        return json.loads(await asyncio.wait_for(self.proc.stdout.readline(), timeout))

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()

    async def end(self) -> None:
        if self.proc.returncode is None:
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def longest_gap(times: list[float], start: float, end: float) -> float:
    inside = sorted(t for t in times if start <= t <= end)
    points = [start, *inside] if not inside or inside[0] > start else inside
    return max((b - a for a, b in zip(points, points[1:], strict=False)), default=end - start)


async def trial(members: list[Proc], victim: Proc, how: str, number: int,
                settle: float) -> dict:
    sender, listeners = members[0], members[1:]
    channel = channel_owned_by(victim.id, f"fo{number}-{how}-")
    for m in members:
        await m.ask({"join": channel})
    await sender.ask({"send": channel, "every": FAILOVER_SEND_EVERY})
    await asyncio.sleep(1.5)
    failed_at = time.time()
    os.kill(victim.proc.pid, signal.SIGSTOP if how == "stop" else signal.SIGKILL)
    await asyncio.sleep(settle)
    stopped_at = time.time()
    acked = set((await sender.ask({"stop": channel}))["acked"])
    await asyncio.sleep(1.0)
    gaps, lost = [], 0
    for listener in listeners:
        received = (await listener.ask({"report": channel}))["received"]
        gaps.append(longest_gap([t for _, t in received], failed_at - 1.0, stopped_at))
        lost += len(acked - {seq for seq, _ in received})
    victim.kill()
    return {"how": how, "gaps": gaps, "lost": lost, "acked": len(acked)}


async def run(trials: int, say, settle: float = FAILOVER_SETTLE, others: int = FAILOVER_SPARES,
              load: int = 0) -> dict:
    """``trials`` failures of each kind on a ring of 3 members and ``others`` spare nodes;
    ``load`` processes spin on the CPU meanwhile (2: both cores of this machine busy)."""
    hogs = [await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass")
            for _ in range(load)]
    first = await Proc.start("-", "n0")
    procs = [first]
    for i in range(2 + others):
        procs.append(await Proc.start(first.address, f"n{i + 1}"))
    members, spares = procs[:3], procs[3:]
    victims: set[str] = set()
    results: list[dict] = []
    count = 0
    try:
        await asyncio.sleep(3.0)  # default stabilize 0.5 s: the ring settles
        for how in ("stop", "kill"):
            for _ in range(trials):
                count += 1
                victim = spares.pop(0)
                victims.add(victim.address)
                row = await trial(members, victim, how, count, settle)
                results.append(row)
                say(f"    {how}: longest silence {max(row['gaps']):.2f} s, "
                    f"lost {row['lost']} of {row['acked']}")
                spares.append(await Proc.start(first.address, f"n{len(procs)}"))
                procs.append(spares[-1])
                await asyncio.sleep(2.0)
        wrong = []
        for p in procs:
            if p.proc.returncode is None and p.address not in victims:
                for address, _ in (await p.ask({"suspects": True}))["suspected"]:
                    if address not in victims:
                        wrong.append(address)
    finally:
        for p in procs:
            if p.address in victims:
                p.kill()
        await asyncio.gather(*(p.end() for p in procs))
        for hog in hogs:
            hog.kill()
            await hog.wait()
    out: dict = {"trials": trials, "send_every": FAILOVER_SEND_EVERY, "ring": 3 + others,
                 "load": load, "false_suspicions": len(wrong), "rows": results}
    for how in ("stop", "kill"):
        gaps = [g for r in results if r["how"] == how for g in r["gaps"]]
        out[how] = {"p50": percentile(gaps, 50), "p99": percentile(gaps, 99),
                    "max": max(gaps), "lost": sum(r["lost"] for r in results if r["how"] == how),
                    "samples": len(gaps)}
    out["p50"], out["p99"] = out["stop"]["p50"], out["stop"]["p99"]
    return out



def section(results: dict, cfg: dict, images: dict) -> list[str]:
    fo = results.get("chat", {}).get("failover")
    if fo is None:
        return []
    return [
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
        *table(["failure", "silence p50", "p99", "max", "samples", "lost"],
               ([label, f"{fo[how]['p50']:.2f} s", f"{fo[how]['p99']:.2f} s",
                 f"{fo[how]['max']:.2f} s", fo[how]["samples"], fo[how]["lost"]]
                for how, label in (("stop", "silent (SIGSTOP)"), ("kill", "killed (kill -9)")))),
        "",
        f"Target \"p99 ≤ 2 s for the silent case, nothing lost\": "
        f"{verdict(fo['stop']['p99'] <= 2.0 and fo['stop']['lost'] == 0)}. Live nodes "
        f"suspected by any node's transport during the trials: {fo['false_suspicions']} "
        "(a suspicion only reroutes calls until the next answer; a live node is never "
        "dropped from the ring for it). How suspicion is tuned: docs/performance.md.",
        "",
    ]
