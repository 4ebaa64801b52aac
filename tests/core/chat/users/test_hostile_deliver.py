"""Deliveries bound to the maintainer: a member reads a ``chat.deliver`` only from the
host of the node it knows, or its own lookup finds, as the channel's maintainer. On the
simulator every node has a host of its own (on loopback all share one: see the TCP test in
``test_hostile_deliver_tcp.py``). The attacker sends real frames from its own endpoint."""

from __future__ import annotations

import time

import pytest

import core.chat.model.entries as entries
from core import events as ev
from core.chat.model.channel import Channel
from core.chat.model.ids import channel_key
from core.chat.testing import message, sim_ring
from core.chat.wire import verbs as p
from core.chord import Address
from core.chord.client import ClientSettings
from core.chord.relay import RelayLimits
from core.chord.testing import virtual_time, wait_until


@pytest.fixture
def checks(monkeypatch):
    """Every signature a member checks (``entries.verify``), counted."""
    counted = []
    real = entries.verify
    monkeypatch.setattr(entries, "verify", lambda *a: counted.append(1) or real(*a))
    return counted


def forged(count: int, start: int) -> list[dict]:
    """``count`` validly signed entries of #tied, each new (not in the signature cache)."""
    ch = Channel("tied")
    return [message(ch, "mallory", f"forged {i}", f"forged-{start + i}",
                    at=time.time()).to_wire() for i in range(count)]


@virtual_time
async def test_deliver__a_strangers_costs_no_signature_and_the_new_maintainer_delivers(checks):
    async with sim_ring(["ann", "bo", "cy", "di", "ed"], replicas=2) as ring:
        key = channel_key("tied")
        m = ring.owner(key)
        members = [n for n in ring.nodes if n is not m][:3]
        for n in members:
            await n.user.join("tied")
        talker, quiet = members[0], members[2]   # quiet never sends: knows m by its join
        await talker.user.send("tied", "first")
        for n in members:
            await wait_until(lambda n=n: "first" in n.texts("tied"), 10)
        attacker = ring.network.transport()
        await attacker.listen(Address("10.66.0.1", 4000), lambda *a: None)

        async def deliver(to, batch: list[dict]) -> dict:
            payload = {"channel": "tied", "to": to.nick, "maintainer": str(m.node.address),
                       "entries": batch, "rejoin": True}
            return await attacker.call(to.node.address, "user",
                                       {"type": p.DELIVER.type, "payload": payload})

        guard = quiet.user.memberships.maintainers
        checks.clear()
        for i in range(20):   # 20 frames of 50 signed entries, one after the other
            reply = await deliver(quiet, forged(50, 50 * i))
            assert reply == {"refused": "not_maintainer", "error": reply["error"]}
        assert not checks, f"{len(checks)} signatures checked for a stranger"
        assert guard.lookups <= 1 and guard.refused == 20   # one lookup per second at most
        assert not [t for t in quiet.texts("tied") if t.startswith("forged")]
        # the ring log says why, once for the 20
        said = [e.text for e in quiet.of(ev.Log) if "refused deliveries of #tied" in e.text]
        assert said == [f"{quiet.nick}: refused deliveries of #tied from 10.66.0.1: not its "
                        f"maintainer by our lookup (the maintainer's host: "
                        f"{m.node.address.host}); said once"]
        # honest traffic still flows, to the quiet member too
        await talker.user.send("tied", "second")
        for n in members:
            await wait_until(lambda n=n: "second" in n.texts("tied"), 10)
        # the channel moves: a node joins at an id in [key, m) and takes it over
        new = await ring.add("fay", address=ring.next_address(within=(key - 1, m.node.id - 1)))
        await wait_until(lambda: new.holdings.maintained.get("channel", "tied") is not None,
                         20, what="the channel at its new maintainer")
        assert ring.owner(key) is new
        lookups = guard.lookups
        await talker.user.send("tied", "after the move")
        for n in members:
            await wait_until(lambda n=n: "after the move" in n.texts("tied"), 20)
        assert guard.lookups > lookups   # the quiet member found the new maintainer itself
        assert quiet.of(ev.ChannelMessage, channel="tied", text="after the move")
        # and a stranger is still nobody
        checks.clear()
        reply = await deliver(quiet, forged(5, 5000))
        assert reply["refused"] == "not_maintainer" and not checks


@virtual_time
async def test_deliver__a_client_whose_relay_maintains_the_channel_gets_every_message():
    """A client node's relay that is also its channel's maintainer delivers to it by calling
    its own client; the feed doing so was started while serving the client's join, and the
    relay stamped the client's own host as the origin: every delivery was refused."""
    async with sim_ring(["ann", "bo", "cy"], relay=RelayLimits()) as ring:
        m = ring.owner(channel_key("tied"))
        x = await ring.add("xena", via=m, client=ClientSettings(relays=(m.node.address,),
                                                                listen=True))
        assert x.node.client.relay == m.node.address
        others = [n for n in ring.nodes if n is not x]
        for n in (*others, x):
            await n.user.join("tied")
        texts = [f"{n.nick}-{i}" for i in range(3) for n in (*others, x)]
        for text in texts:
            await next(n for n in (*others, x) if text.startswith(n.nick)).user.send(
                "tied", text)
        for n in (*others, x):
            await wait_until(lambda n=n: set(texts) <= set(n.texts("tied")), 10,
                             what=f"every message at {n.nick}")
        assert sorted(x.texts("tied")) == sorted(texts)   # once each
        assert x.user.memberships.maintainers.refused == 0
