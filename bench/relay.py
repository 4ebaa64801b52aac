"""Relays for client nodes (core/chord/relay.py, client.py; docs/nat.md), on loopback TCP:

- **added latency**: a private message's call (``chat.private``, a sealed payload of a
  short line) to a full member directly, against the same call to a client node through
  its relay (one more hop and the relay's checks); and a whole ``msg`` (name lookup,
  sealing, the call) to a full member against one to a client;
- **clients per relay**: one relay, N client nodes attached (each renewing its
  reservation every second and receiving 1 KiB through the relay every second), N
  doubling, the p50/p99 of a probe call through the relay; where the p99 doubles.

Everything runs in this one process on one event loop (the relay, the clients, the
senders): the clients' own work counts against the relay, so the client counts are a
lower bound for a relay on a machine of its own.

    python -m bench.relay [--full]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from core.chat.model.sealed import seal
from core.chat.service import ChatService
from core.chord import Address, Local
from core.chord.client import ClientSettings
from core.chord.relay import RelayLimits
from core.datadir import DataDir

from .stats import ms

ROUNDS = 3
CHORD = dict(stabilize_interval=0.2, fix_fingers_interval=0.5, check_predecessor_interval=0.5,
             timeout=2.0)


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _latency(calls: int) -> dict:
    """Direct against relayed: the chat.private call alone, and a whole msg."""
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        nodes, services = [], []
        for i, nick in enumerate(("ann", "bob", "cy", "xena")):
            client = ClientSettings() if nick == "xena" else None
            node = Local(Address("127.0.0.1", 0), nodes[0].address if nodes else None,
                         client=client, relay=None if client else RelayLimits(), **CHORD)
            service = ChatService(node, lambda e: None, data_dir=DataDir(Path(tmp) / nick))
            await node.start()
            await service.start()
            await service.add_user(nick, lambda e: None)
            nodes.append(node)
            services.append(service)
            if i == 2:
                await asyncio.sleep(1.5)   # the full members' ring settles
        ann, bob, xena = services[0].users["ann"], services[1].users["bob"], \
            services[3].users["xena"]
        out = {}
        sender = ann.identity   # sealed as ann's node would, so the recipient opens it
        for name, user in (("direct", bob), ("relayed", xena)):
            record = user.record
            to = nodes[services.index(next(s for s in services if user.nick in s.users))]
            call_ms = []
            for i in range(calls):
                sealed = seal(sender, record.key, f"line {i}", f"{i:032x}", to=user.nick,
                              at=time.time())
                payload = {"msg_id": f"{i:032x}", "to": user.nick, "to_id": record.node_id,
                           "sealed": sealed}
                start = time.perf_counter()
                await nodes[0].user_command(to.address, "chat.private", payload)
                call_ms.append(time.perf_counter() - start)
            msg_ms = []
            for i in range(max(20, calls // 10)):
                start = time.perf_counter()
                await ann.msg(user.nick, f"whole {i}")
                msg_ms.append(time.perf_counter() - start)
            out[name] = {"call_p50": statistics.median(call_ms), "call_p99": _pct(call_ms, .99),
                         "msg_p50": statistics.median(msg_ms), "msg_p99": _pct(msg_ms, .99)}
        for service, node in zip(services, nodes, strict=True):
            with contextlib.suppress(Exception):
                await service.stop()
            await node.stop()
            for user in service.users.values():
                user.keys.release()
        return out


async def _capacity(counts: list[int], probes: int) -> dict:
    """One relay, N clients with a steady trickle each; the probe's p50/p99 per N."""
    relay = Local(Address("127.0.0.1", 0), relay=RelayLimits(
        clients=max(counts) + 2, per_host=max(counts) + 2, total_rate=10**9), **CHORD)
    await relay.start()
    relay.relay.types = frozenset({"echo"})
    sender = Local(Address("127.0.0.1", 0), relay.address, **CHORD)
    await sender.start()
    clients: list[Local] = []
    rows = {}
    stop = asyncio.Event()
    trickles: list[asyncio.Task] = []

    async def trickle(client: Local) -> None:
        blob = "x" * 1024
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await sender.user_command(client.address, "echo", blob)
            await asyncio.sleep(1.0)

    try:
        for n in counts:
            while len(clients) < n:
                c = Local(Address("127.0.0.1", 0), relay.address,
                          client=ClientSettings(relays=(relay.address,)), **CHORD)
                c.register_command("echo", lambda payload: {"ok": True})
                await c.start()
                clients.append(c)
                trickles.append(asyncio.create_task(trickle(c)))
            await asyncio.sleep(1.0)
            rounds = []
            for _ in range(ROUNDS):   # the median round: one stall of a shared machine is
                took = []             # not the relay's
                for _ in range(probes):
                    start = time.perf_counter()
                    await sender.user_command(clients[0].address, "echo", "probe")
                    took.append(time.perf_counter() - start)
                    await asyncio.sleep(0.005)
                rounds.append((statistics.median(took), _pct(took, .99)))
            rows[str(n)] = {"p50": statistics.median(r[0] for r in rounds),
                            "p99": statistics.median(r[1] for r in rounds)}
            if _doubled(rows, counts) is not None:
                break
    finally:
        stop.set()
        for t in trickles:
            t.cancel()
        await asyncio.gather(*trickles, return_exceptions=True)
        for node in (*clients, sender, relay):
            await node.stop()
    return {"rows": rows, "doubled_at": _doubled(rows, counts)}


def _doubled(rows: dict, counts: list[int]) -> int | None:
    """The first client count from which the p99 stays above twice the one-client p99 (at
    two counts in a row: one noisy round is not a trend)."""
    base = rows[str(counts[0])]["p99"]
    over = [int(n) for n, r in rows.items() if r["p99"] > 2 * base]
    return next((n for n in over if n * 2 in over or n == max(counts)), None)


def run(quick: bool) -> dict:
    """``{"relay": {"latency": {...}, "capacity": {...}}}`` (quick: fewer calls, up to 64
    clients; full: up to 256)."""
    calls, probes = (200, 100) if quick else (1000, 300)
    counts = [1, 2, 4, 8, 16, 32, 64] if quick else [1, 2, 4, 8, 16, 32, 64, 128, 256]
    latency = asyncio.run(_latency(calls))
    capacity = asyncio.run(_capacity(counts, probes))
    return {"relay": {"latency": latency, "capacity": capacity}}


def render(results: dict) -> str:
    lat, cap = results["latency"], results["capacity"]
    d, r = lat["direct"], lat["relayed"]
    lines = [
        "## Relays for client nodes",
        "",
        "Loopback TCP, one process (bench/relay.py; docs/nat.md). A private message's call "
        "to a full member against the same call to a client node through its relay, and a "
        "whole `msg` (name lookup, seal, call):",
        "",
        "| to | call p50 | call p99 | msg p50 | msg p99 |",
        "| --- | --- | --- | --- | --- |",
        f"| a full member (direct) | {ms(d['call_p50'])} | {ms(d['call_p99'])} | "
        f"{ms(d['msg_p50'])} | {ms(d['msg_p99'])} |",
        f"| a client (relayed) | {ms(r['call_p50'])} | {ms(r['call_p99'])} | "
        f"{ms(r['msg_p50'])} | {ms(r['msg_p99'])} |",
        "",
        f"The relay adds {ms(r['call_p50'] - d['call_p50'])} to the call at the median.",
        "",
        "One relay, N clients each renewing every second and receiving 1 KiB a second "
        "through it; a probe call through the relay:",
        "",
        "| clients | p50 | p99 |",
        "| --- | --- | --- |",
        *[f"| {n} | {ms(row['p50'])} | {ms(row['p99'])} |" for n, row in cap["rows"].items()],
        "",
        (f"The p99 doubles at {cap['doubled_at']} clients (relay, clients and senders share "
         "one event loop: a lower bound)." if cap["doubled_at"] else
         f"The p99 did not double up to {list(cap['rows'])[-1]} clients."),
    ]
    return "\n".join(lines)


def section(results: dict, cfg: dict, images: dict) -> list[str]:
    """The report's section (for ``bench.__main__.SECTIONS``)."""
    return [render(results["relay"]["relay"])] if "relay" in results else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more calls, up to 256 clients")
    args = parser.parse_args()
    print(render(run(not args.full)["relay"]))


if __name__ == "__main__":
    main()
