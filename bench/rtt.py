"""The floor to compare with: one request/response frame on a bare asyncio loopback socket."""

from __future__ import annotations

import asyncio
import struct
import time

from core.chord import Address, TcpTransport

from .stats import mean, percentile, us
from .tables import table, verdict

# Frames of the size a lookup step really sends and receives (a next_hop request, its reply).
_REQUEST = (b'{"id":1,"method":"next_hop","args":{"key":"' + b"f" * 40
            + b'","avoid":[]}}')
_REPLY = b'{"id":1,"result":{"done":false,"node":"127.0.0.1:45678"}}'
_LENGTH = struct.Struct(">I")


async def raw_frame_rtt(samples: int = 3000, warmup: int = 5000) -> dict:
    """Round trips of one length-prefixed frame each way over asyncio streams, no JSON.

    The long warm-up matters: the first few thousand round trips of a process run
    at about twice the steady cost on this machine.
    """

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frame = _LENGTH.pack(len(_REPLY)) + _REPLY
        try:
            while True:
                (length,) = _LENGTH.unpack(await reader.readexactly(4))
                await reader.readexactly(length)
                writer.write(frame)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = _LENGTH.pack(len(_REQUEST)) + _REQUEST
    times = []
    for i in range(warmup + samples):
        start = time.perf_counter()
        writer.write(request)
        (length,) = _LENGTH.unpack(await reader.readexactly(4))
        await reader.readexactly(length)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    writer.close()
    server.close()
    await server.wait_closed()
    return {"mean": mean(times), "p50": percentile(times, 50), "p99": percentile(times, 99)}


async def transport_rtt(samples: int = 3000, warmup: int = 2000) -> dict:
    """Round trips of one ``ping`` through our own TcpTransport (JSON, ids, dispatch)."""

    async def serve(method: str, args: dict) -> object:
        return {}

    server, client = TcpTransport(), TcpTransport()
    address = await server.listen(Address("127.0.0.1", 0), serve)
    times = []
    for i in range(warmup + samples):
        start = time.perf_counter()
        await client.call(address, "ping", {})
        if i >= warmup:
            times.append(time.perf_counter() - start)
    await client.close()
    await server.close()
    return {"mean": mean(times), "p50": percentile(times, 50), "p99": percentile(times, 99)}


def section(results: dict, cfg: dict, images: dict) -> list[str]:
    if "raw_rtt" not in results:
        return []
    raw, t = results["raw_rtt"], results["transport_rtt"]
    p50s = ", ".join(us(x) for x in raw["p50s"])
    return [
        "## The network's limit on this machine",
        "",
        *table(["round trip, loopback, one asyncio loop", "p50", "p99", "mean"], [
            ["bare asyncio streams, one length-prefixed frame each way (no JSON)",
             us(raw["p50"]), us(raw["p99"]), us(raw["mean"])],
            ["our `TcpTransport.call('ping')` (JSON, request ids, dispatch)",
             us(t["p50"]), us(t["p99"]), us(t["mean"])]]),
        "",
        f"The bare frame round trip was measured three times in this run (start, middle, "
        f"end: p50 {p50s}); their median, {us(raw['p50'])}, is the \"raw RTT\" of the ratios "
        "below. On this shared machine it moves between about 20 and 45 µs from one "
        "measurement to the next, so the ratios carry that uncertainty.",
        "",
        f"Target \"our ping p50 ≤ 1.5 × the bare frame round trip\": "
        f"{verdict(t['p50'] <= 1.5 * raw['p50'])} ({t['p50'] / raw['p50']:.2f} ×).",
        "",
    ]
