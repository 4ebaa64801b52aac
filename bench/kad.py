"""Side by side with a peer DHT: bmuller/kademlia 2.2.3 on loopback against our ring.

Both do the same job: a node that does not hold a key finds who does and fetches the
value. kademlia's ``get`` is an iterative lookup over UDP (alpha = 3, k = 20) that stops
when a value comes back; ours is ``find_successor`` and one user command to the owner.
"""

from __future__ import annotations

import random
import time

from core.chord import Local, hash_string

from .stats import mean, percentile


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


async def kademlia_gets(n: int, keys: int, gets: int, rng: random.Random) -> dict:
    from kademlia.utils import digest

    server_class, protocol = _counting_server()
    servers, ports = [], []
    try:
        for _ in range(n):
            server = server_class()
            await server.listen(0, "127.0.0.1")
            port = server.transport.get_extra_info("sockname")[1]
            if servers:
                await server.bootstrap([("127.0.0.1", rng.choice(ports))])
            servers.append(server)
            ports.append(port)
        names = [f"key-{i}" for i in range(keys)]
        set_times = []
        for name in names:
            start = time.perf_counter()
            if not await rng.choice(servers).set(name, f"value of {name}"):
                raise RuntimeError(f"kademlia could not store {name}")
            set_times.append(time.perf_counter() - start)
        plan = []
        while len(plan) < gets:
            server, name = rng.choice(servers), rng.choice(names)
            if server.storage.get(digest(name)) is None:  # held locally: no lookup at all
                plan.append((server, name))
        for server, name in plan:  # a first pass, as for ours (which opens connections)
            await server.get(name)
        latency, messages = [], []
        for server, name in plan:
            before = protocol.requests
            start = time.perf_counter()
            value = await server.get(name)
            latency.append(time.perf_counter() - start)
            messages.append(protocol.requests - before)
            if value != f"value of {name}":
                raise RuntimeError(f"kademlia returned {value!r} for {name}")
    finally:
        for server in servers:
            server.stop()
    return {"system": "kademlia 2.2.3", "n": n, "gets": gets,
            "p50": percentile(latency, 50), "p99": percentile(latency, 99),
            "mean": mean(latency), "messages": mean(messages),
            "set_p50": percentile(set_times, 50)}


async def chord_gets(nodes: list[Local], keys: int, gets: int, rng: random.Random) -> dict:
    """The same on our ring: a tiny key-value service as user commands, one copy per key."""
    stores: dict = {}
    for node in nodes:
        store = stores.setdefault(node.address, {})
        node.register_command("bench.put", lambda p, s=store: s.__setitem__(p["k"], p["v"]))
        node.register_command("bench.get", lambda p, s=store: s.get(p["k"]))
    names = [f"key-{i}" for i in range(keys)]
    for name in names:
        writer = rng.choice(nodes)
        owner, _ = await writer.find_successor(hash_string(name))
        await writer.user_command(owner, "bench.put", {"k": name, "v": f"value of {name}"})
    plan = []
    while len(plan) < gets:
        node, name = rng.choice(nodes), rng.choice(names)
        if name not in stores[node.address]:  # held locally: no lookup at all
            plan.append((node, name))
    for node, name in plan:  # a first pass opens the connections each path needs
        owner, _ = await node.find_successor(hash_string(name))
        await node.user_command(owner, "bench.get", {"k": name})
    latency, messages, lookup_only = [], [], []
    for node, name in plan:
        before = node.transport.calls
        start = time.perf_counter()
        owner, _ = await node.find_successor(hash_string(name))
        found = time.perf_counter()
        value = await node.user_command(owner, "bench.get", {"k": name})
        latency.append(time.perf_counter() - start)
        lookup_only.append(found - start)
        messages.append(node.transport.calls - before)
        if value != f"value of {name}":
            raise RuntimeError(f"our ring returned {value!r} for {name}")
    return {"system": "chordchat", "n": len(nodes), "gets": gets,
            "p50": percentile(latency, 50), "p99": percentile(latency, 99),
            "mean": mean(latency), "messages": mean(messages),
            "lookup_p50": percentile(lookup_only, 50)}
