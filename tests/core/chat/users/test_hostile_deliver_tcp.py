"""Deliveries bound to the maintainer over loopback TCP, with a client node behind a
relay: the attacker speaks the wire from its own host (127.0.0.2; every node of the ring
is on 127.0.0.1) to a full member directly and to a client through its relay, whose stamp
of where a forwarded call came from (``origin``) it cannot forge."""

from __future__ import annotations

import time

import core.chat.model.entries as entries
from core.chat.model.channel import Channel
from core.chat.model.ids import channel_key
from core.chat.testing import message
from core.chat.wire import verbs as p
from core.chord.client import ClientSettings
from core.chord.relay import FORWARD, ORIGIN
from core.chord.testing import wait_until
from tests.support.clients import loop_ring
from tests.support.frames import ATTACKER, frame_from


def forged(count: int, start: int) -> list[dict]:
    ch = Channel("tcp")
    return [message(ch, "mallory", f"forged {i}", f"tcp-forged-{start + i}",
                    at=time.time()).to_wire() for i in range(count)]


async def test_deliver__a_stranger_reaches_neither_a_member_nor_a_client_behind_a_relay(
        monkeypatch):
    checks = []
    real = entries.verify
    monkeypatch.setattr(entries, "verify", lambda *a: checks.append(1) or real(*a))
    async with loop_ring() as ring:
        fulls = [await ring.add(nick) for nick in ("ann", "bob", "cy")]
        await wait_until(lambda: all(len({s.address for s in n.node.successors()}) == 2
                                     for n in fulls), 10, what="the full members' ring")
        client = await ring.add("xena", ClientSettings())
        member = next(n for n in fulls if not n.node.is_ours(channel_key("tcp")))
        for n in (member, client):
            await n.user.join("tcp")
        await fulls[0].user.send("tcp", "honest 1")
        for n in (member, client):
            await wait_until(lambda n=n: "honest 1" in n.texts("tcp"), 10)

        def deliver(to, batch, extra=None) -> dict:
            return {"channel": "tcp", "to": to.nick, "entries": batch, **(extra or {})}

        checks.clear()
        # straight to a full member
        reply = await frame_from(ATTACKER, member.node.address, p.DELIVER.type,
                                 deliver(member, forged(50, 0)))
        assert reply["refused"] == "not_maintainer"
        # through the client's relay, claiming to come from the ring's host
        relayed = client.node.address
        reply = await frame_from(ATTACKER, relayed.relay, FORWARD, {
            "to": relayed.client, "type": p.DELIVER.type,
            "payload": deliver(client, forged(50, 50), {ORIGIN: "127.0.0.1"})})
        assert reply["ok"] and reply["reply"]["refused"] == "not_maintainer", reply
        assert not checks, f"{len(checks)} signatures checked for a stranger"
        for n in (member, client):
            assert not [t for t in n.texts("tcp") if t.startswith("forged")]
        # honest deliveries still flow, through the relay too
        await fulls[1].user.send("tcp", "honest 2")
        for n in (member, client):
            await wait_until(lambda n=n: "honest 2" in n.texts("tcp"), 10)
