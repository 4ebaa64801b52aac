"""Hostile peers: how many name lookups and channel sends still reach the right node when
10 %, 20 % or 30 % of the nodes lie (docs/security.md, "Eclipse and lying routing").

The real node code on the simulator's network and virtual clock (``core.chord.sim``): a
converged ring of N nodes, a random share of them made hostile by the test double
``core.chord.hostile`` (they collude: a next_hop query is dropped 30 % of the time and
otherwise answered "done: the owner is <the coalition's node closest after the key>";
their successor lists name only each other; asked for a nick they answer "unknown nick"
or an old, validly signed record; a channel send they accept and drop). Every nick's
newest record is held by the key's owner and its 3 replicas, as the chat's replication
leaves it (the hostile among them answer as hostile). Honest nodes ask, at random:

- **name lookups**: success when the newest record comes back. *Plain*: the chat's
  routed ``chat.name.get`` after a plain lookup (``Caller.route``). *Defended*:
  ``NameCopies.lookup`` (``core/chat/ring/namecopies.py``): a robust lookup
  (``core/chord/robust.py``) and the record read from the owner and its replicas.
- **channel sends**: success when the send reaches the true owner of the channel's key.
  *Plain*: ``Caller.route`` after a plain lookup; *defended*: ``Caller.route`` with the
  robust lookup.

For reference: Halo (Kapadia and Triandopoulos, NDSS 2008) measured plain Chord failing
50-60 % of lookups with 12 % of the nodes hostile, and Halo about 1 %.

    python -m bench.security [--full]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import random
import time

from core.chat.model.holdings import Holdings
from core.chat.model.identity import Identity
from core.chat.model.ids import name_key
from core.chat.model.records import NameRecord
from core.chat.ring.namecopies import NameCopies
from core.chat.ring.names import looked_up
from core.chat.wire import verbs as p
from core.chat.wire.calls import Caller
from core.chord import Address, Local
from core.chord.hostile import Coalition, make_hostile
from core.chord.robust import RobustLookup
from core.chord.sim import SimNetwork, converged_ring, sim_addresses
from core.chord.sim import run as sim_run

FRACTIONS = (10, 20, 30)
REPLICAS = 3        # the chat's default r
SUCCESSORS = 8      # the ring's successor lists
TIMEOUT = 1.0       # a dropped query costs this much virtual time


def sizes(quick: bool) -> tuple[int, int]:
    """(ring size, lookups of each kind per share)."""
    return (256, 200) if quick else (1000, 500)


async def trial(n: int, percent: int, lookups: int, seed: int = 1) -> dict:
    """One ring with ``percent`` % hostile nodes; the shares that succeeded."""
    rng = random.Random(seed * 1000 + percent)
    network = SimNetwork(latency=0.002, seed=seed, timeout=TIMEOUT)
    addresses = sim_addresses(n)
    nodes = await converged_ring(network, addresses, r=SUCCESSORS, timeout=TIMEOUT)
    by_address = {node.address: node for node in nodes}
    ring = sorted(addresses, key=lambda a: a.id)
    ids = [a.id for a in ring]

    def holders(key: int) -> list[Address]:
        i = bisect.bisect_left(ids, key) % n
        return [ring[(i + k) % n] for k in range(REPLICAS + 1)]

    hostile = set(rng.sample(addresses, round(n * percent / 100)))
    coalition = Coalition(hostile, drop=0.3, seed=seed)
    honest = [a for a in addresses if a not in hostile]

    # the nicks: an old and a newer record of each, the newer at the owner and replicas
    nicks = [f"user{i}" for i in range(lookups)]
    old, new = {}, {}
    for nick in nicks:
        identity = Identity.generate(nick)
        home = rng.choice(honest)
        old[nick] = NameRecord.create(identity, str(home), f"{home.id:040x}", 1)
        new[nick] = NameRecord.create(identity, str(home), f"{home.id:040x}", 2)
    stores: dict[Address, dict[str, NameRecord]] = {a: {} for a in addresses}
    for nick in nicks:
        for a in holders(name_key(nick)):
            stores[a][nick] = new[nick]
    arrived: dict[str, Address] = {}

    for node in nodes:
        serve_honest(node, stores[node.address], arrived)
    for a in hostile:
        make_hostile(by_address[a], coalition, hostile_commands(a, old, arrived, rng))

    channels = [rng.getrandbits(160) for _ in range(lookups)]
    askers = [by_address[rng.choice(honest)] for _ in range(2 * lookups)]

    async def name_plain(node: Local, nick: str) -> bool:
        try:
            reply = await Caller(node, 2 * TIMEOUT).route(p.NAME_GET, name_key(nick),
                                                          {"nick": nick}, "lookup")
        except Exception:
            return False
        record = looked_up(reply, nick)
        return record is not None and record.seq == 2

    async def name_defended(node: Local, nick: str) -> bool:
        copies = NameCopies(node, Holdings(), RobustLookup(node), REPLICAS, 2 * TIMEOUT)
        try:
            record = await copies.lookup(nick)
        except Exception:
            return False
        return record is not None and record.seq == 2

    async def send(node: Local, i: int, robust: bool) -> bool:
        key, msg = channels[i], f"{'d' if robust else 'p'}{i}"
        caller = Caller(node, 2 * TIMEOUT, RobustLookup(node) if robust else None)
        try:
            await caller.route(p.SEND, key, {"entry": {"msg": msg}}, "send")
        except Exception:
            return False
        return arrived.get(msg) == holders(key)[0]

    started = time.perf_counter()
    t0 = asyncio.get_running_loop().time()
    calls0 = network.messages
    results = {}
    for label, robust in (("plain", False), ("defended", True)):
        name_fn = name_defended if robust else name_plain
        names = await asyncio.gather(*(name_fn(askers[i], nick) for i, nick in enumerate(nicks)))
        sends = await asyncio.gather(*(send(askers[lookups + i], i, robust)
                                       for i in range(lookups)))
        results[label] = {"names": sum(names) / lookups, "sends": sum(sends) / lookups,
                          "messages": network.messages - calls0}
        calls0 = network.messages
    await asyncio.gather(*(node.stop() for node in nodes), return_exceptions=True)
    plain, defended = results["plain"], results["defended"]
    return {
        "success": round((defended["names"] + defended["sends"]) / 2, 4),
        "plain": round((plain["names"] + plain["sends"]) / 2, 4),
        "names": {"defended": defended["names"], "plain": plain["names"]},
        "sends": {"defended": defended["sends"], "plain": plain["sends"]},
        "messages_per_lookup": {k: round(v["messages"] / (2 * lookups), 1)
                                for k, v in results.items()},
        "nodes": n, "hostile_nodes": len(hostile), "lookups": lookups,
        "virtual_s": round(asyncio.get_running_loop().time() - t0, 1),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def serve_honest(node: Local, store: dict[str, NameRecord], arrived: dict[str, Address]) -> None:
    """What an honest chat node answers (the shapes of the chat's verbs)."""
    async def name_get(d: dict) -> dict:
        record = store.get(d["nick"].lower())
        return {"ok": True, "record": record.to_wire()} if record else {"ok": False}

    async def channel_send(d: dict) -> dict:
        arrived.setdefault(d["entry"]["msg"], node.address)
        return p.OK

    p.serve(node, {p.NAME_GET: name_get, p.NAME_COPY: name_get, p.SEND: channel_send},
            node.is_ours)


def hostile_commands(me: Address, old: dict[str, NameRecord], arrived: dict[str, Address],
                     rng: random.Random) -> dict:
    """A hostile node's chat: "unknown nick" or an old record; sends swallowed."""
    async def name_get(payload: dict) -> dict:
        record = old.get(payload["nick"].lower())
        if record is None or rng.random() < 0.5:
            return {"ok": False}
        return {"ok": True, "record": record.to_wire()}

    async def channel_send(payload: dict) -> dict:
        arrived.setdefault(payload["entry"]["msg"], me)
        return p.OK

    return {p.NAME_GET.type: name_get, p.NAME_COPY.type: name_get,
            p.SEND.type: channel_send}


def run(quick: bool) -> dict:
    """``{"hostile": {"10": {"success": x, "plain": y, ...}, "20": ..., "30": ...}}``: the
    study the benchmark reports (quick: 256 nodes, 200 lookups of each kind per share)."""
    n, lookups = sizes(quick)
    return {"hostile": {str(f): sim_run(trial(n, f, lookups)) for f in FRACTIONS}}


def render(results: dict) -> str:
    """A markdown section of the study."""
    rows = results["hostile"]
    first = next(iter(rows.values()))
    lines = [
        "## Hostile peers",
        "",
        f"{first['nodes']} nodes on the simulator (virtual time), {first['lookups']} name "
        f"lookups and {first['lookups']} channel sends per share, from random honest "
        "nodes; the hostile nodes collude (a dropped next_hop 30 % of the time, otherwise "
        "\"done: the coalition's node closest after the key\"; fake successor lists; "
        "\"unknown nick\" or an old signed record; sends swallowed). Success: the newest "
        "record came back, the send reached the key's true owner. Plain: a plain lookup "
        "trusting every hop; defended: the robust lookup (3 paths, every answer checked, "
        "owner confirmed by its predecessor) and names read from the owner and its 3 "
        "replicas. Halo (NDSS 2008) reports plain Chord failing 50-60 % of lookups at "
        "12 % hostile.",
        "",
        "| hostile | defended | plain | names def./plain | sends def./plain "
        "| messages per operation def./plain |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for share, r in rows.items():
        lines.append(
            f"| {share} % | {r['success']:.1%} | {r['plain']:.1%} "
            f"| {r['names']['defended']:.1%} / {r['names']['plain']:.1%} "
            f"| {r['sends']['defended']:.1%} / {r['sends']['plain']:.1%} "
            f"| {r['messages_per_lookup']['defended']} / {r['messages_per_lookup']['plain']} |")
    return "\n".join(lines) + "\n"


def section(results: dict, cfg: dict, images: dict) -> list[str]:
    """The report's section (``bench.__main__.SECTIONS``)."""
    return [render(results["security"])] if "security" in results else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1,000 nodes, 500 lookups each")
    args = parser.parse_args()
    print(render(run(not args.full)))


if __name__ == "__main__":
    main()
