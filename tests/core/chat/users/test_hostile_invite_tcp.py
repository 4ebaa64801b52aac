"""Invitations between nodes over loopback TCP: an honest one reaches its invitee on another
node (a full member, and a client behind a relay); the attacker speaks the wire from its
own host (127.0.0.2; every node of the ring is on 127.0.0.1), as a node of the ring with a
registered nick of its own, and none of its invitations is shown — replayed, sent to
someone else, tampered with, signed as another nick, stale, flooded — while honest ones
still are."""

from __future__ import annotations

import dataclasses
import time

import core.chat.model.entries as entries
from core import events as ev
from core.chat.model.entries import SignedEntry
from core.chat.model.ids import channel_key, new_id
from core.chat.wire import verbs as p
from core.chord import hex_id
from core.chord.client import ClientSettings
from core.chord.relay import FORWARD, ORIGIN
from core.chord.testing import wait_until
from tests.support.clients import loop_ring
from tests.support.frames import ATTACKER, frame_from


def signed_as(identity, nick: str, address: str, channel: str, invitee: str,
              at: float) -> SignedEntry:
    """An invitation by ``nick`` signed with ``identity``'s key (whoever's that is)."""
    unsigned = SignedEntry(channel, "invite", nick, identity.key, address, new_id(),
                           invitee, at, "")
    return dataclasses.replace(unsigned, signature=identity.sign(unsigned.sign_kind,
                                                                 unsigned.fields()))


def invited(n) -> list[tuple[str, str]]:
    return [(e.channel, e.nick) for e in n.of(ev.Invited) if not e.invitee]


async def test_invited__forged_replayed_stale_or_flooded_invitations_are_not_shown(
        monkeypatch):
    async with loop_ring() as ring:
        ann, bob, cy, mallory = [await ring.add(nick)
                                 for nick in ("ann", "bob", "cy", "mallory")]
        fulls = (ann, bob, cy, mallory)
        await wait_until(lambda: all(len({s.address for s in n.node.successors()}) == 3
                                     for n in fulls), 15, what="the full members' ring")
        xena = await ring.add("xena", ClientSettings())
        await ann.user.join("club")
        await ann.user.mode("club", "+i")
        # honest: ann's invitations reach bob (a full member) and xena (behind a relay)
        await ann.user.invite("club", "bob")
        await ann.user.invite("club", "xena")
        for n in (bob, xena):
            await wait_until(lambda n=n: invited(n) == [("club", "ann")], 15,
                             what=f"{n.nick} told")
        maintainer = next(n for n in fulls if n.node.is_ours(channel_key("club")))
        honest = maintainer.service.holdings.channel("club").modes.invites["bob"]

        def frame(to, entry) -> dict:
            wire = entry.to_wire() if isinstance(entry, SignedEntry) else entry
            return {"to": to.nick, "to_id": hex_id(to.node.id), "entry": wire}

        async def to_bob(entry, to=None) -> dict:
            n = to or bob
            return await frame_from(ATTACKER, n.node.address, p.INVITED.type, frame(n, entry))

        now = time.time()
        mal = mallory.user
        checks = []
        real = entries.verify
        monkeypatch.setattr(entries, "verify", lambda *a: checks.append(1) or real(*a))
        # a replay of the honest one: answered, not shown again
        assert (await to_bob(honest))["ok"] is True
        # the honest one sent to cy, whom it does not invite
        assert (await to_bob(honest, cy))["refused"] == "not_for_you"
        # tampered with: another channel under ann's signature
        assert (await to_bob(dataclasses.replace(honest, channel="den",
                                                 msg_id=new_id())))["refused"] \
            == "bad_signature"
        # mallory's key under ann's nick: the ring gives ann another key
        as_ann = signed_as(mal.identity, "ann", mal.address, "club", "bob", now)
        assert (await to_bob(as_ann))["refused"] == "forged"
        # mallory's own, signed an hour ago
        stale = signed_as(mal.identity, "mallory", mal.address, "club", "bob", now - 3600)
        assert (await to_bob(stale))["refused"] == "stale"
        # to a node that is not bob's; not an invitation; too big
        wrong = {**frame(bob, as_ann), "to_id": hex_id(cy.node.id)}
        assert (await frame_from(ATTACKER, bob.node.address, p.INVITED.type, wrong))["ok"] \
            is False
        join = dataclasses.replace(as_ann, kind="join")
        assert (await to_bob(join))["refused"] == "not_for_you"
        assert (await to_bob({**as_ann.to_wire(), "pad": "x" * 5000}))["refused"] \
            == "too_long"
        # through xena's relay, claiming to come from the ring's host
        relayed = xena.node.address
        as_ann_x = signed_as(mal.identity, "ann", mal.address, "club", "xena", now)
        reply = await frame_from(ATTACKER, relayed.relay, FORWARD, {
            "to": relayed.client, "type": p.INVITED.type,
            "payload": {**frame(xena, as_ann_x), ORIGIN: "127.0.0.1"}})
        assert reply["ok"] and reply["reply"]["refused"] == "forged", reply
        # a flood from the attacker's host: past its burst, no signature is checked
        checks.clear()
        refusals = [(await to_bob(signed_as(mal.identity, "ann", mal.address, "club",
                                            "bob", time.time()))).get("refused", "busy")
                    for _ in range(30)]
        assert refusals.count("forged") <= 10 and refusals.count("busy") >= 20, refusals
        assert len(checks) <= 10, f"{len(checks)} signatures checked for a flood"
        assert invited(bob) == [("club", "ann")] and invited(xena) == [("club", "ann")]
        # honest invitations still flow, from cy's node too, and let the invitees in
        await cy.user.join("den")
        await cy.user.invite("den", "bob")
        await wait_until(lambda: ("den", "cy") in invited(bob), 15, what="bob told of #den")
        await ann.user.invite("club", "cy")
        await wait_until(lambda: invited(cy) == [("club", "ann")], 15, what="cy told")
        await bob.user.join("club")
        await xena.user.join("club")
        assert invited(bob) == [("club", "ann"), ("den", "cy")]
