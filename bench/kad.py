"""Side by side with a peer DHT: bmuller/kademlia 2.2.3 on loopback against our ring.

Both do the same job: a node that does not hold a key finds who does and fetches the
value. kademlia's ``get`` is an iterative lookup over UDP (alpha = 3, k = 20) that stops
when a value comes back; ours is ``find_successor`` and one user command to the owner.
"""

from __future__ import annotations

import random
import time

from core.chord import Local, hash_string

from .stats import mean, ms, percentile
from .tables import table, verdict


def _counting_server():
    """A kademlia Server whose protocol counts every request datagram it receives."""
    from kademlia.network import Server
    from kademlia.protocol import KademliaProtocol

    class CountingProtocol(KademliaProtocol):
        requests = 0

        def datagram_received(self, data, addr):
            if data[:1] == b"\x00":  # rpcudp marks requests with 0x00, replies with 0x01
                CountingProtocol.requests += 1
            super().datagram_received(data, addr)

    class CountingServer(Server):
        protocol_class = CountingProtocol

    return CountingServer, CountingProtocol


async def _kademlia_ring(n: int, keys: list[str], rng: random.Random):
    """``n`` kademlia servers on loopback holding ``keys``; the set times, the counter."""
    server_class, protocol = _counting_server()
    servers, ports = [], []
    for _ in range(n):
        server = server_class()
        await server.listen(0, "127.0.0.1")
        port = server.transport.get_extra_info("sockname")[1]
        if servers:
            await server.bootstrap([("127.0.0.1", rng.choice(ports))])
        servers.append(server)
        ports.append(port)
    set_times = []
    for name in keys:
        start = time.perf_counter()
        if not await rng.choice(servers).set(name, f"value of {name}"):
            raise RuntimeError(f"kademlia could not store {name}")
        set_times.append(time.perf_counter() - start)
    return servers, protocol, set_times


def _our_store(nodes: list[Local]) -> dict:
    """A tiny key-value service as user commands on every node: one copy per key."""
    stores: dict = {}
    for node in nodes:
        store = stores.setdefault(node.address, {})
        node.register_command("bench.put", lambda p, s=store: s.__setitem__(p["k"], p["v"]))
        node.register_command("bench.get", lambda p, s=store: s.get(p["k"]))
    return stores


async def side_by_side(nodes: list[Local], keys: int, gets: int, rng: random.Random) -> dict:
    """Gets on our ring and on kademlia's (N = len(nodes)), interleaved one by one.

    Both systems live on this one loop; each timed get of ours is followed by one of
    kademlia's (then the other way round), so a burst of load on the machine hits both.
    A get is from a node that does not hold the key. A first pass over the same gets
    opens the connections (ours) and fills kademlia's routing tables.
    """
    from kademlia.utils import digest

    names = [f"key-{i}" for i in range(keys)]
    stores = _our_store(nodes)
    for name in names:
        writer = rng.choice(nodes)
        owner, _ = await writer.find_successor(hash_string(name))
        await writer.user_command(owner, "bench.put", {"k": name, "v": f"value of {name}"})
    servers, protocol, set_times = await _kademlia_ring(len(nodes), names, rng)
    try:
        ours_plan, theirs_plan = [], []
        while len(ours_plan) < gets:
            node, name = rng.choice(nodes), rng.choice(names)
            if name not in stores[node.address]:  # held locally: no lookup at all
                ours_plan.append((node, name))
        while len(theirs_plan) < gets:
            server, name = rng.choice(servers), rng.choice(names)
            if server.storage.get(digest(name)) is None:
                theirs_plan.append((server, name))

        def sent() -> int:
            return sum(node.transport.calls for node in nodes)

        async def ours(node: Local, name: str, out: dict | None) -> None:
            before = sent()
            start = time.perf_counter()
            value, _, _ = await node.route(hash_string(name), "bench.get", {"k": name})
            end = time.perf_counter()
            if value != f"value of {name}":
                raise RuntimeError(f"our ring returned {value!r} for {name}")
            if out is not None:
                out["latency"].append(end - start)
                out["messages"].append(sent() - before)

        async def iterative(node: Local, name: str, out: dict | None) -> None:
            before = sent()
            start = time.perf_counter()
            owner, _ = await node.find_successor(hash_string(name))
            found = time.perf_counter()
            value = await node.user_command(owner, "bench.get", {"k": name})
            end = time.perf_counter()
            if value != f"value of {name}":
                raise RuntimeError(f"our ring returned {value!r} for {name}")
            if out is not None:
                out["latency"].append(end - start)
                out["lookup"].append(found - start)
                out["messages"].append(sent() - before)

        async def theirs(server, name: str, out: dict | None) -> None:
            before = protocol.requests
            start = time.perf_counter()
            value = await server.get(name)
            end = time.perf_counter()
            if value != f"value of {name}":
                raise RuntimeError(f"kademlia returned {value!r} for {name}")
            if out is not None:
                out["latency"].append(end - start)
                out["messages"].append(protocol.requests - before)

        for (node, a), (server, b) in zip(ours_plan, theirs_plan, strict=True):  # the first pass
            await ours(node, a, None)
            await iterative(node, a, None)
            await theirs(server, b, None)
        mine = {"latency": [], "messages": []}
        steps = {"latency": [], "lookup": [], "messages": []}
        kad = {"latency": [], "messages": []}
        for i, ((node, a), (server, b)) in enumerate(zip(ours_plan, theirs_plan, strict=True)):
            runs = [ours(node, a, mine), iterative(node, a, steps), theirs(server, b, kad)]
            for run in runs[i % 3:] + runs[:i % 3]:  # each goes first, second, third in turn
                await run
    finally:
        for server in servers:
            server.stop()
    return {"ours": {"system": "chordchat", "n": len(nodes), "gets": gets,
                     "p50": percentile(mine["latency"], 50),
                     "p99": percentile(mine["latency"], 99), "mean": mean(mine["latency"]),
                     "messages": mean(mine["messages"]),
                     "iterative_p50": percentile(steps["latency"], 50),
                     "iterative_p99": percentile(steps["latency"], 99),
                     "iterative_messages": mean(steps["messages"]),
                     "lookup_p50": percentile(steps["lookup"], 50)},
            "theirs": {"system": "kademlia 2.2.3", "n": len(nodes), "gets": gets,
                       "p50": percentile(kad["latency"], 50),
                       "p99": percentile(kad["latency"], 99), "mean": mean(kad["latency"]),
                       "messages": mean(kad["messages"]),
                       "set_p50": percentile(set_times, 50)},
            "interleaved": True}


async def rounds(nodes: list[Local], cfg: dict, say) -> dict:
    """The side-by-side get, ``kad_rounds`` times: every round's ratio must pass, not the
    average. The figures under "ours"/"theirs" pool all rounds."""
    done = []
    per_round = max(100, cfg["kad_gets"] // cfg["kad_rounds"])
    for i in range(cfg["kad_rounds"]):
        r = await side_by_side(nodes, cfg["kad_keys"], per_round, random.Random(i))
        done.append(r)
        say(f"    round {i + 1}: get p50 ours {ms(r['ours']['p50'])} (lookup + call "
            f"{ms(r['ours']['iterative_p50'])}), kademlia {ms(r['theirs']['p50'])}: "
            f"{r['ours']['p50'] / r['theirs']['p50']:.2f} ×")
    ours = {k: sorted(r["ours"][k] for r in done)[len(done) // 2] for k in done[0]["ours"]
            if isinstance(done[0]["ours"][k], float)}
    theirs = {k: sorted(r["theirs"][k] for r in done)[len(done) // 2]
              for k in done[0]["theirs"] if isinstance(done[0]["theirs"][k], float)}
    ours.update(system="chordchat", n=len(nodes), gets=per_round * len(done))
    theirs.update(system="kademlia 2.2.3", n=len(nodes), gets=per_round * len(done))
    return {"ours": ours, "theirs": theirs,
            "ratios": [r["ours"]["p50"] / r["theirs"]["p50"] for r in done],
            "iterative_ratios": [r["ours"]["iterative_p50"] / r["theirs"]["p50"]
                                 for r in done]}


def section(results: dict, cfg: dict, images: dict) -> list[str]:
    k = results.get("kademlia")
    if k is None:
        return []
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
        *table(["system", "get p50", "get p99", "mean", "messages per get"], [
            ["chordchat, routed (`Local.route`)", ms(ours["p50"]), ms(ours["p99"]),
             ms(ours["mean"]), f"{ours['messages']:.2f}"],
            ["chordchat, iterative lookup + call", ms(ours["iterative_p50"]),
             ms(ours["iterative_p99"]), "—", f"{2 * ours['iterative_messages']:.2f}"],
            ["kademlia 2.2.3", ms(theirs["p50"]), ms(theirs["p99"]), ms(theirs["mean"]),
             f"{2 * theirs['messages']:.2f}"]]),
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
