"""Channel operators and modes on the ring (simulated transport, virtual clock): the founder
is the operator, the maintainer enforces the modes, every copy checks the entries, and the
modes move with the channel."""

from __future__ import annotations

import pytest

from core import events as ev
from core.chat.model.commands import parse
from core.chat.model.entries import sign_entry
from core.chat.model.errors import ChatError
from core.chat.model.ids import channel_key
from core.chat.testing import now, sim_ring
from core.chord.testing import virtual_time, wait_until


def maintained(ring, channel: str):
    return ring.owner(channel_key(channel)).holdings.channel(channel)


async def refused(coro) -> str | None:
    try:
        await coro
    except ChatError as e:
        return e.reason
    return None


@virtual_time
async def test_founder_is_operator__key_limit_invite_ban_are_enforced():
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        ann, bo, cy = (n.user for n in ring.nodes)
        await ann.join("club")
        ch = maintained(ring, "club")
        assert ch.modes.is_op("ann") and not ch.modes.is_op("bo")
        await ann.mode("club", "+k beer")
        assert await refused(bo.join("club")) == "bad_key"
        assert await refused(bo.join("club", "wine")) == "bad_key"
        await bo.join("club", "beer")
        await ann.mode("club", "-k+l 2")
        assert await refused(cy.join("club")) == "channel_full"
        await ann.mode("club", "-l+b cy!*@*")
        assert await refused(cy.join("club")) == "banned"
        await ann.mode("club", "+e c*!*@*")    # an exception lets it in past the ban
        await cy.join("club")
        await cy.leave("club")
        await ann.mode("club", "+i")
        assert await refused(cy.join("club")) == "invite_only"
        assert await refused(bo.invite("club", "cy")) == "not_operator"   # +i: ops invite
        await ann.invite("club", "cy")
        # cy, served by another node, is told by ann's node (chat.invited)
        await wait_until(lambda: [(e.channel, e.nick) for e in ring.nodes[2].by_user["cy"]
                                  if isinstance(e, ev.Invited)] == [("club", "ann")], 30)
        await cy.join("club")
        # each member saw the changes as a Modes event, the last one with +b and +e listed
        await wait_until(lambda: any(isinstance(e, ev.Modes) and e.change == "+e c*!*@*"
                                     for e in ring.nodes[1].by_user["bo"]), 30)
        last = [e for e in ring.nodes[1].by_user["bo"] if isinstance(e, ev.Modes)][-1]
        assert last.ops == ("ann",)
        assert {(x[0], x[1]) for x in last.lists} == {("b", "cy!*@*"), ("e", "c*!*@*")}


@virtual_time
async def test_non_operators_are_refused__n_m_t_and_kick():
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        ann, bo, cy = (n.user for n in ring.nodes)
        await ann.join("room")
        await bo.join("room")
        assert await refused(bo.mode("room", "+m")) == "not_operator"
        assert await refused(bo.kick("room", "ann")) == "not_operator"
        await ann.mode("room", "+nmt")
        assert await refused(bo.topic("room", "mine")) == "not_operator"
        await ann.topic("room", "ops only")
        assert await refused(cy.send("room", "from outside")) == "cannot_send"
        assert await refused(bo.send("room", "not voiced")) == "cannot_send"
        await ann.mode("room", "+v bo")
        await bo.send("room", "voiced now")
        await ann.mode("room", "+o bo")
        await bo.kick("room", "ann", "my turn")
        ch = maintained(ring, "room")
        assert [m.nick for m in ch.present()] == ["bo"]
        # the kicked member was told and is out; it may not speak (+n)
        await wait_until(lambda: any(isinstance(e, ev.Kicked) and e.target == "ann"
                                     for e in ring.nodes[0].by_user["ann"]), 30)
        assert "room" not in ann.joined
        assert await refused(ann.send("room", "let me in")) == "cannot_send"


@virtual_time
async def test_a_forged_mode_entry_is_refused_and_honest_traffic_flows():
    async with sim_ring(["ann", "bo"]) as ring:
        ann_node, bo_node = ring.nodes
        await ann_node.user.join("keep")
        await bo_node.user.join("keep")
        # bo signs "+o bo" itself and sends it straight to the maintainer
        forged = sign_entry(bo_node.user.identity, "keep", "mode", "f" * 32,
                            address=str(bo_node.node.address), text="+o bo", at=now())
        reply = await bo_node.service.channels.call_mode(forged)
        assert reply["refused"] == "not_operator"
        ch = maintained(ring, "keep")
        assert not ch.modes.is_op("bo") and ch.modes.is_op("ann")
        # a copy that carries the forged entry: every receiver leaves it out
        wire = ch.to_wire()
        wire["modes"]["entries"].append(forged.to_wire())
        copy = type(ch).from_wire(wire)
        assert copy.dropped == 1 and not copy.modes.is_op("bo")
        # honest traffic still flows
        await bo_node.user.send("keep", "still here")
        await wait_until(lambda: "still here" in ann_node.texts("keep"), 30)


@pytest.mark.parametrize("how", ["migrate", "crash"])
@virtual_time
async def test_modes_survive_a_new_maintainer(how):
    async with sim_ring(["ann", "bo", "cy", "di"], replicas=2) as ring:
        ann, bo = ring.nodes[0].user, ring.nodes[1].user
        channel = next(c for c in (f"m{i}" for i in range(200))
                       if ring.owner(channel_key(c)) not in ring.nodes[:2])
        await ann.join(channel)
        await bo.join(channel)
        await ann.mode(channel, "+tk+o secret bo")
        old = ring.owner(channel_key(channel))
        await wait_until(lambda: all(
            (c := n.holdings.replicas.get("channel", channel)) is not None
            and c.modes.value("k") == "secret" for n in ring.successors_of(old, 2)), 30)
        if how == "crash":
            await ring.crash(old)
        else:
            key = channel_key(channel)
            await ring.add(None, address=ring.next_address(within=(key - 1, old.node.id - 1)))
        await wait_until(lambda: ring.owner(channel_key(channel)) is not old
                         and maintained(ring, channel) is not None
                         and maintained(ring, channel).modes.value("k") == "secret", 60)
        ch = maintained(ring, channel)
        assert ch.modes.flag("t") and ch.modes.is_op("bo") and ch.modes.is_op("ann")
        cy = ring.nodes[2].user
        assert await refused(cy.join(channel)) == "bad_key"
        await cy.join(channel, "secret")
        assert await refused(cy.topic(channel, "no")) == "not_operator"


@virtual_time
async def test_a_pruned_member_resumes_past_the_key_but_a_kicked_one_does_not():
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        ann, bo, cy = (n.user for n in ring.nodes)
        await ann.join("vault")
        await bo.join("vault")
        await cy.join("vault")
        await ann.mode("vault", "+k sesame")
        ch = maintained(ring, "vault")
        bo_key = next(m.key for m in ch.present() if m.nick == "bo")
        await ring.owner(channel_key("vault")).service.channels.prune("vault", bo_key,
                                                                      "pruned")
        await bo.memberships.rejoin("vault")   # its node says it is in: back without the key
        assert maintained(ring, "vault").is_member(bo_key)
        await ann.kick("vault", "cy")
        cy_mem = cy.memberships
        resume = cy_mem.me.sign("vault", "join")
        reply = await cy_mem.channels.call_join(resume, resume=True)
        assert reply["refused"] == "bad_key"
        assert [m.nick for m in maintained(ring, "vault").present()] == ["ann", "bo"]


@virtual_time
async def test_members_back_after_all_were_pruned_keep_the_channels_modes():
    """A maintainer that pruned every member (cut off from them all) does not start a new
    life of the channel when they say again that they are in: the operators and modes
    stand; a new join of an empty channel does start one."""
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        ann, bo, cy = (n.user for n in ring.nodes)
        await ann.join("hold")
        await bo.join("hold")
        await ann.mode("hold", "+tk sesame")
        channels = ring.owner(channel_key("hold")).service.channels
        for m in maintained(ring, "hold").present():
            await channels.prune("hold", m.key, "pruned")
        assert not maintained(ring, "hold").present()
        await bo.memberships.rejoin("hold")
        await ann.memberships.rejoin("hold")
        ch = maintained(ring, "hold")
        assert len(ch.present()) == 2 and ch.modes.founder.nick == "ann"
        assert ch.modes.is_op("ann") and not ch.modes.is_op("bo")
        assert ch.modes.value("k") == "sesame" and ch.modes.flag("t")
        await ann.leave("hold")
        await bo.leave("hold")
        await cy.join("hold")      # empty: a new life, cy founds it
        ch = maintained(ring, "hold")
        assert ch.modes.is_op("cy") and not ch.modes.is_op("ann")
        assert ch.modes.value("k") is None and not ch.modes.flag("t")


@virtual_time
async def test_typed_commands__mode_kick_invite_and_their_errors_as_events():
    async with sim_ring(["ann", "bo"]) as ring:
        ann_node, bo_node = ring.nodes
        ann, bo = ann_node.user, bo_node.user
        dee = await ring.add_user(ann_node, "dee")    # served by ann's node
        await ann.execute(parse("join #lounge"))
        await bo.execute(parse("join #lounge"))
        await ann.execute(parse("/mode +i", "#lounge"))
        await bo.execute(parse("/mode +m", "#lounge"))           # not an operator
        assert any(isinstance(e, ev.Error) and "only operators change modes" in e.message
                   for e in bo_node.by_user["bo"])
        await ann.execute(parse("invite nobody-here #lounge"))
        assert any(isinstance(e, ev.Error) and "unknown nick 'nobody-here'" in e.message
                   for e in ann_node.by_user["ann"])
        await ann.execute(parse("invite dee #lounge"))
        assert ev.Invited("lounge", "ann", at=0) in [
            ev.Invited(e.channel, e.nick, e.invitee, at=0)
            for e in ann_node.by_user["dee"] if isinstance(e, ev.Invited)]
        await dee.execute(parse("join #lounge"))
        assert "lounge" in dee.joined
        await ann.execute(parse("/kick bo flooding", "#lounge"))
        await wait_until(lambda: "lounge" not in bo.joined, 30)
        assert [e.reason for e in bo_node.by_user["bo"] if isinstance(e, ev.Kicked)] == [
            "flooding"]
