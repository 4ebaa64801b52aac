"""Relays and client nodes on the simulator (core/chord/relay.py, client.py): relayed
addresses, reservations and their limits, what a relay refuses, and that honest clients
are served all the while."""

from __future__ import annotations

import asyncio

import pytest

from core.chord import Address, AddressError, Local
from core.chord.client import ClientSettings
from core.chord.errors import RemoteError
from core.chord.relay import (
    FORWARD,
    ORIGIN,
    RESERVE,
    RelayedAddress,
    RelayLimits,
    RelayRefused,
    caller_origin,
    client_id,
    describe,
    new_client,
    reachable,
)
from core.chord.testing import FAST, host, network, virtual_time, wait_until

CID = "0123456789abcdef" * 2


def test_relayed_address__reads_back_and_keeps_its_id_across_relays():
    a = reachable(f"10.0.0.1:4000/{CID}")
    b = reachable(f"[fd00::1]:4001/{CID}")
    assert isinstance(a, RelayedAddress) and str(a) == f"10.0.0.1:4000/{CID}"
    assert str(b) == f"[fd00::1]:4001/{CID}" and b.relay == Address("fd00::1", 4001)
    assert a.id == b.id != Address("10.0.0.1", 4000).id
    assert a != Address("10.0.0.1", 4000) and a == reachable(str(a))
    assert reachable("10.0.0.1:4000") == Address("10.0.0.1", 4000)
    assert describe(str(a)) == "relayed via 10.0.0.1:4000"
    assert describe("10.0.0.1:4000") == "direct"


@pytest.mark.parametrize("text", [f"10.0.0.1/{CID}", "10.0.0.1:4000/xyz",
                                  f"10.0.0.1:4000/{CID.upper()}", f"10.0.0.1:4000/{CID}/x"])
def test_relayed_address__malformed_ones_are_refused(text):
    with pytest.raises(AddressError):
        reachable(text)


def test_relayed_address__the_ring_never_takes_one():
    """A ring address is what a node is dialled at, its id the hash of it: a relayed one
    could put a node anywhere on the ring (its client id is chosen freely)."""
    with pytest.raises(AddressError):
        Address.from_wire(f"10.0.0.1:4000/{CID}")


def test_client_id__is_the_hash_of_the_secret():
    cid, secret = new_client()
    assert client_id(secret) == cid and len(cid) == 32 and new_client()[0] != cid


async def _ring(net, n: int, limits: RelayLimits) -> list[Local]:
    nodes = []
    for i in range(n):
        node = Local(Address(host(i), 4000), nodes[0].address if nodes else None,
                     transport=net.transport(), relay=limits, **FAST)
        await node.start()
        node.relay.types = frozenset({"echo"})
        nodes.append(node)
    await wait_until(lambda: all(len(set(x.successors())) == n - 1 for x in nodes), 30)
    return nodes


async def _client(net, bootstrap: Local, i: int, relays=()) -> tuple[Local, list]:
    heard: list = []
    node = Local(Address(host(100 + i), 4000), bootstrap.address, transport=net.transport(),
                 client=ClientSettings(relays=tuple(relays), listen=True), **FAST)
    node.register_command("echo", lambda payload: heard.append(payload) or {"echo": payload})
    await node.start()
    return node, heard


@virtual_time
async def test_relay__a_full_relay_says_so_and_honest_clients_are_still_served():
    net = network()
    ring = await _ring(net, 3, RelayLimits(clients=2, per_host=8))
    relay = ring[1]
    c1, h1 = await _client(net, ring[0], 1, [relay.address])
    c2, h2 = await _client(net, ring[0], 2, [relay.address])
    assert relay.relay.clients == sorted([c1.client.client, c2.client.client])
    # the third is told no, clearly, and goes elsewhere
    c3, h3 = await _client(net, ring[0], 3, [relay.address])
    assert c3.client.relay != relay.address and c3.client.relay in [r.address for r in ring]
    reply = await c3.client.reserve(relay.address)
    assert reply["ok"] is False and reply["refused"] == "full"
    assert "serves 2 clients (at most)" in reply["error"]
    assert relay.relay.stats.refused_full >= 2
    # each client is reached at its relayed address, from any node, all the while
    for i, c in enumerate((c1, c2, c3)):
        # the payload goes on as it came, stamped with where the relay got it from
        assert await ring[2].user_command(c.address, "echo", {"n": i}) == {
            "echo": {"n": i, ORIGIN: ring[2].address.host}}
    assert [[{k: v for k, v in d.items() if k != ORIGIN} for d in h] for h in (h1, h2, h3)] \
        == [[{"n": 0}], [{"n": 1}], [{"n": 2}]]
    # a client that leaves frees its place: the next one is taken
    await c1.leave()
    assert await c3.client.reserve(relay.address) == {"ok": True, "ttl": 10.0,
                                                      "rate": 64 * 1024, "clients": 2, "of": 2}
    for x in (*ring, c2, c3):
        await x.stop()


@virtual_time
async def test_relay__no_open_proxy_and_no_stolen_ids():
    net = network()
    ring = await _ring(net, 2, RelayLimits())
    relay, stranger = ring
    c, heard = await _client(net, relay, 1, [relay.address])
    cid = c.client.client

    async def forward(to: str, type: str, payload=None) -> dict:
        return await stranger.user_command(relay.address, FORWARD,
                                           {"to": to, "type": type, "payload": payload})

    # to an id with no reservation, or a type the relay was not told to forward: refused
    unknown = await forward("f" * 32, "echo", {})
    assert unknown["refused"] == "unknown" and "no client ffffffff" in unknown["error"]
    assert (await forward(cid, "relay.reserve", {}))["refused"] == "type"
    assert (await forward(cid, "chat.replicate", {}))["refused"] == "type"
    # somebody else's id cannot be reserved without its secret (it is not in the record)
    stolen = await stranger.user_command(relay.address, RESERVE,
                                         {"client": cid, "secret": "0" * 32})
    assert stolen["refused"] == "bad_secret"
    # a reservation is made over the caller's own connection, never by the relay itself
    _, secret = new_client()
    own = await relay.user_command(relay.address, RESERVE,
                                   {"client": client_id(secret), "secret": secret})
    assert own["refused"] == "no_link"
    with pytest.raises(RelayRefused, match="unknown"):
        await stranger.user_command(reachable(f"{relay.address}/{'e' * 32}"), "echo")
    # the honest client is served all the while
    assert await stranger.user_command(c.address, "echo", 7) == {"echo": 7}
    assert heard == [7]
    for x in (*ring, c):
        await x.stop()


@virtual_time
async def test_relay__a_flood_to_one_client_is_cut_at_its_rate_and_others_go_on():
    net = network()
    ring = await _ring(net, 2, RelayLimits(rate=2000, burst=4000, total_rate=10**6))
    relay, sender = ring
    flooded, _ = await _client(net, relay, 1, [relay.address])
    honest, heard = await _client(net, relay, 2, [relay.address])
    busy = 0
    for _ in range(20):
        try:
            await sender.user_command(flooded.address, "echo", "x" * 1000)
        except RelayRefused as e:
            assert "over 2000 bytes/s" in str(e)
            busy += 1
    assert 10 <= busy <= 17
    for i in range(5):
        assert await sender.user_command(honest.address, "echo", i) == {"echo": i}
    assert heard == list(range(5))
    # a client's own handler failing is its error, not the relay's
    relay.relay.types = frozenset({"echo", "nothing"})
    with pytest.raises(RemoteError, match="no handler"):
        await sender.user_command(honest.address, "nothing", {})
    for x in (*ring, flooded, honest):
        await x.stop()


@virtual_time
async def test_client__owns_nothing_and_moves_when_its_relay_dies():
    net = network()
    ring = await _ring(net, 4, RelayLimits())
    c, heard = await _client(net, ring[0], 1)
    moves = []
    c.add_listener(lambda kind, detail: moves.append(detail) if kind == "moved" else None)
    first = c.client.relay
    assert first in [r.address for r in ring] and not c.is_ours(c.id)
    owner, _ = await c.find_successor(c.id)   # its lookups run from its own state
    assert owner.address in [r.address for r in ring]
    dead = next(r for r in ring if r.address == first)
    net.kill(dead.address)
    await dead.stop()
    start = net_time()
    await wait_until(lambda: moves, 10, what="the move")
    assert net_time() - start < 5.0
    assert c.client.relay != first and moves == [{"old": f"{first}/{c.client.client}",
                                                  "new": str(c.address)}]
    witness = next(r for r in ring if r is not dead)
    assert await witness.user_command(c.address, "echo", 1) == {"echo": 1}
    assert all(c.address not in [s.address for s in r.successors()] for r in ring if r.running)
    for x in (*ring, c):
        await x.stop()


def net_time() -> float:
    return asyncio.get_running_loop().time()


@virtual_time
async def test_relay__its_own_call_to_its_client_is_stamped_with_its_own_host():
    """A relay that calls its own client from a task it started while serving someone (a
    maintainer's feed, started by the client's join) stamps its own host as the origin,
    not that of the caller whose request started the task: the client checks who delivers
    by that stamp (caller_origin), and the relay's was refused."""
    net = network()
    ring = await _ring(net, 3, RelayLimits())
    relay = ring[1]
    c, _ = await _client(net, ring[0], 1, [relay.address])
    seen: list = []
    c.register_command("echo", lambda payload: seen.append(
        caller_origin(payload, c.client.relay)) or {"ok": True})
    started = []

    def serve(payload: object) -> dict:   # as a join does: a task that calls the client
        started.append(asyncio.ensure_future(relay.user_command(c.address, "echo", {})))
        # (and one that calls the relay itself: no caller's connection to reserve with)
        started.append(asyncio.ensure_future(relay.user_command(
            relay.address, RESERVE, {"client": c.client.client, "secret": c.client._secret})))
        return {"ok": True}

    relay.register_command("start", serve)
    # the client itself asks (its host is in the context the task inherits); a ring node too
    for asker in (c, ring[2]):
        assert await asker.user_command(relay.address, "start", {}) == {"ok": True}
    replies = [await t for t in started]
    assert replies[::2] == [{"ok": True}] * 2
    assert [r.get("refused") for r in replies[1::2]] == ["no_link"] * 2
    assert seen == [relay.address.host] * 2
    # and a call through the relay from another node still carries that node's host
    assert await ring[2].user_command(c.address, "echo", {}) == {"ok": True}
    assert seen[-1] == ring[2].address.host != relay.address.host
    for x in (*ring, c):
        await x.stop()
