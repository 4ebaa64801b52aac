"""The chat service in-process on real loopback nodes: routing, moved answers, migration,
nick claims, the exit sequence."""

from __future__ import annotations

import pytest

from core import events as ev
from core.chat import protocol as p
from core.chat.service import ChatError, NickTaken
from core.chat.state import Channel, Member, channel_key, item_to_wire, name_key
from core.chord import Address
from core.chord.ids import RING, hash_string, in_half_open
from tests.core.chat.chatring import (
    async_test,
    owner,
    settle,
    start_chat,
    start_chat_ring,
    stop_chat,
    where,
)
from tests.procs import port_with_id_in
from tests.ring import wait_until


@async_test()
async def test_service__channel_send_reaches_members_in_order_once():
    nodes = await start_chat_ring(["ann", "bo", "cy", "di"])
    try:
        await settle(nodes)
        for n in nodes[1:]:
            await n.chat.join("room")
        sent = [await nodes[0].chat.send("room", f"m{i}") for i in range(20)]
        assert [seq for _, seq in sent] == sorted(seq for _, seq in sent)
        for n in nodes[1:]:
            await wait_until(lambda n=n: len(n.texts("room")) == 20, 20, what="20 messages")
            assert n.texts("room") == [f"m{i}" for i in range(20)]
        assert nodes[0].texts("room") == []
        assert len(nodes[0].of(ev.Sent, channel="room")) == 20
    finally:
        await stop_chat(nodes)


@async_test()
async def test_service__a_node_not_owning_a_key_answers_moved():
    nodes = await start_chat_ring(["ann", "bo", "cy"])
    try:
        await settle(nodes)
        key = channel_key("elsewhere")
        not_owner = next(n for n in nodes if not n.node.is_ours(key))
        reply = await not_owner.node.user_command(
            not_owner.node.address, p.CHANNEL_SEND,
            {"key": f"{key:x}", "channel": "elsewhere", "nick": "ann", "msg_id": "x" * 32,
             "text": "hi"})
        assert reply == {"moved": True}
        assert not_owner.chat.primary.get("channel", "elsewhere") is None
    finally:
        await stop_chat(nodes)


@async_test()
async def test_service__bad_payload_is_a_remote_error_and_node_keeps_serving():
    nodes = await start_chat_ring(["ann", "bo"])
    try:
        from core.chord import RemoteError
        with pytest.raises(RemoteError, match="payload lacks 'channel'"):
            await nodes[0].node.user_command(nodes[1].node.address, p.CHANNEL_JOIN, {"key": "1"})
        with pytest.raises(RemoteError, match="payload must be an object"):
            await nodes[0].node.user_command(nodes[1].node.address, p.MIGRATE, "junk")
        await nodes[0].chat.msg("bo", "still fine")
        await wait_until(lambda: nodes[1].of(ev.PrivateMessage, text="still fine"), 10)
    finally:
        await stop_chat(nodes)


@async_test()
async def test_migration__to_new_owner_then_a_late_copy_merges_as_union():
    nodes = await start_chat_ring(["ann", "bo", "cy"], prune_grace=120)
    try:
        await settle(nodes)
        for n in nodes:
            await n.chat.join("union")
        key = channel_key("union")
        old = owner(nodes, key)
        port = port_with_id_in((key - 1) % RING, (old.node.id - 1) % RING)
        new = await start_chat("dan", nodes[0], port=port, prune_grace=120)
        nodes.append(new)
        await settle(nodes)
        await wait_until(lambda: old.chat.primary.get("channel", "union") is None
                         and new.chat.primary.get("channel", "union") is not None, 20,
                         what="the channel at the new maintainer")
        steps = [e.step for e in old.of(ev.Migration, key="union")]
        assert steps[:3] == ["send", "ack", "delete"]
        assert [e.step for e in new.of(ev.Migration, key="union")] == ["receive"]
        await new.chat.join("union")          # a join served by the new maintainer
        # a late copy from elsewhere (e.g. a second old maintainer) that knows "zoe"
        late = Channel("union")
        late.set_member(Member("zoe", "127.0.0.1:9", 1.0))
        reply = await old.node.user_command(new.node.address, p.MIGRATE,
                                            {"from": "test", "items": [item_to_wire(late)]})
        assert reply["ok"]
        ch = new.chat.primary.get("channel", "union")
        assert sorted(m.nick for m in ch.present()) == ["ann", "bo", "cy", "dan", "zoe"]
    finally:
        await stop_chat(nodes)


@async_test()
async def test_migration__repeated_is_idempotent_and_a_non_owner_defers_it():
    nodes = await start_chat_ring(["ann", "bo"])
    try:
        await settle(nodes)
        await nodes[0].chat.join("idem")
        await nodes[1].chat.send("idem", "one")
        key = channel_key("idem")
        holder = owner(nodes, key)
        other = next(n for n in nodes if n is not holder)
        ch = holder.chat.primary.get("channel", "idem")
        before = ch.to_wire()
        for _ in range(3):
            reply = await other.node.user_command(holder.node.address, p.MIGRATE,
                                                  {"from": "t", "items": [item_to_wire(ch)]})
            assert reply["ok"]
        assert holder.chat.primary.get("channel", "idem").to_wire() == before
        reply = await holder.node.user_command(other.node.address, p.MIGRATE,
                                               {"from": "t", "items": [item_to_wire(ch)]})
        assert reply == {"moved": True}
        assert other.chat.primary.get("channel", "idem") is None
    finally:
        await stop_chat(nodes)


@async_test()
async def test_names__taken_by_live_node_is_refused_dead_holders_name_is_claimable():
    nodes = await start_chat_ring(["ann", "bo", "cy"])
    try:
        try:
            thief = await start_chat("Bo", nodes[0])
        except NickTaken as e:
            assert "already taken" in str(e)
        else:
            nodes.append(thief)
            pytest.fail(f"a live holder's nick was handed out:\n{where(nodes, 'name', 'bo')}")
        # the refused node is still running: clean it up through the ring
        victim = nodes[1]
        await victim.chat.stop()
        await victim.node.stop()          # a crash: no exit sequence, the name map stays
        nodes.remove(victim)
        await settle(nodes)
        claimer = await start_chat("bo", nodes[0])
        nodes.append(claimer)
        await nodes[0].chat.msg("bo", "you are the new bo")
        assert claimer.of(ev.PrivateMessage, text="you are the new bo")
    finally:
        await stop_chat(nodes)


@async_test()
async def test_msg__unknown_nick_and_unknown_id_raise_chat_errors():
    nodes = await start_chat_ring(["ann", "bo"])
    try:
        with pytest.raises(ChatError, match="unknown nick 'nobody'"):
            await nodes[0].chat.msg("nobody", "hi")
        ids = sorted(n.node.id for n in nodes)
        gap = next(f"{i:040x}"[:8] for i in range(0, RING, RING // 256)
                   if not any(f"{x:040x}".startswith(f"{i:040x}"[:8]) for x in ids))
        with pytest.raises(ChatError, match="no node has an id starting with"):
            await nodes[0].chat.msg("@" + gap, "hi")
        await nodes[0].chat.msg("@" + nodes[1].chat.id_hex, "full id")
        await wait_until(lambda: nodes[1].of(ev.PrivateMessage, text="full id"), 10)
    finally:
        await stop_chat(nodes)


@async_test()
async def test_exit__sequence_steps_are_events_and_bye_is_last():
    nodes = await start_chat_ring(["ann", "bo", "cy"])
    try:
        await settle(nodes)
        leaver = owner(nodes, name_key("ann"))
        await leaver.chat.join("x")
        await leaver.chat.exit()
        kinds = [type(e).__name__ for e in leaver.events]
        assert kinds[-1] == "Bye"
        steps = [e.step for e in leaver.of(ev.Migration)]
        assert steps.index("leave") < steps.index("unname") < steps.index("leave-ring")
        assert not leaver.node.running
        rest = [n for n in nodes if n is not leaver]
        await settle(rest)
        holder = owner(rest, name_key("ann"))
        if leaver.nick != "ann":
            assert holder.chat.primary.get("name", "ann").present
        with pytest.raises(ChatError, match="unknown nick"):
            await rest[0].chat.msg(leaver.nick, "gone?")
    finally:
        await stop_chat(nodes)


def test_ids__a_port_picked_by_id_lands_in_the_asked_range():
    lo, hi = hash_string("a"), hash_string("b")
    port = port_with_id_in(lo, hi)
    assert in_half_open(Address("127.0.0.1", port).id, lo, hi)


@async_test()
async def test_exit__neighbours_exiting_together_leave_nothing_behind():
    nodes = await start_chat_ring(["ann", "bo", "cy", "di"])
    try:
        await settle(nodes)
        for n in nodes:
            await n.chat.join("keep")
        ordered = sorted(nodes, key=lambda n: n.node.id)
        leavers = ordered[:2]                      # two neighbours on the ring
        stay = ordered[2:]
        import asyncio
        await asyncio.gather(*(n.chat.exit() for n in leavers))
        await settle(stay)
        names = {n.nick.lower() for n in stay}
        held = {e.name for s in stay for e in s.chat.primary.names() if e.present}
        assert held == names, f"name maps kept: {held}, wanted {names}"
        channels = [s.chat.primary.get("channel", "keep") for s in stay]
        ch = next(c for c in channels if c is not None)
        assert sorted(m.nick for m in ch.present()) == sorted(n.nick for n in stay)
        assert not any(e.step == "drop" for n in leavers for e in n.of(ev.Migration))
    finally:
        await stop_chat(nodes)


@async_test()
async def test_maintainer__member_counts_in_its_log_are_singular_for_one():
    nodes = await start_chat_ring(["ann"])
    try:
        await nodes[0].chat.join("room")
        await nodes[0].chat.leave("room")
        logs = [e.text for e in nodes[0].of(ev.Log) if e.text.startswith("#room: ")]
        assert logs == ["#room: ann joined (1 member)", "#room: ann left (0 members)"]
    finally:
        await stop_chat(nodes)


@async_test()
async def test_service__ring_changes_are_posted_as_fields_not_text():
    nodes = await start_chat_ring(["ann"])
    try:
        ann = nodes[0]
        me = str(ann.node.address)
        assert ann.of(ev.RingChange, kind="started", new=me, bootstrap=None)
        nodes.append(await start_chat("bo", ann))
        bo = str(nodes[1].node.address)
        await wait_until(lambda: ann.of(ev.RingChange, kind="predecessor", old=None, new=bo),
                         20, what="ann's predecessor change to bo")
        assert nodes[1].of(ev.RingChange, kind="started", new=bo, bootstrap=me)
        await wait_until(lambda: ann.of(ev.RingChange, kind="successor", old=me, new=bo),
                         20, what="ann's successor change to bo")
        change = ann.of(ev.RingChange, kind="predecessor")[0]
        assert change.to_json() == {"event": "ring_change", "kind": "predecessor", "old": None,
                                    "new": bo, "bootstrap": None, "count": None}
        # no log line says the same in words
        assert not [e for e in ann.events if isinstance(e, ev.Log) and "predecessor" in e.text]
    finally:
        await stop_chat(nodes)


@async_test()
async def test_migration__a_late_copy_numbered_like_ours_still_reaches_every_member():
    # While a ring settles, two nodes may each number entries of one channel from 1; when
    # the copies meet, what the late one brings sorts below what members have confirmed.
    nodes = await start_chat_ring(["ann", "bo", "cy"])
    try:
        await settle(nodes)
        key = channel_key("late")
        holder = owner(nodes, key)
        member = next(n for n in nodes if n is not holder)
        await member.chat.join("late")
        for i in range(3):
            await holder.chat.send("late", f"ours {i}")
        await wait_until(lambda: len(member.texts("late")) == 3, 20, what="our three messages")
        late = Channel("late")
        late.set_member(Member("zoe", "127.0.0.1:9", 1.0))
        late.append("join", "zoe")
        late.append("msg", "zoe", "theirs")  # seq 2: below the member's confirmed cursor
        reply = await member.node.user_command(holder.node.address, p.MIGRATE,
                                               {"from": "test", "items": [item_to_wire(late)]})
        assert reply["ok"]
        await wait_until(lambda: "theirs" in member.texts("late"), 20,
                         what="the late copy's message at the member")
        await wait_until(lambda: member.of(ev.MemberJoined, channel="late", nick="zoe"), 20,
                         what="the late copy's join notice at the member")
        assert member.texts("late").count("theirs") == 1
        assert member.texts("late")[:3] == ["ours 0", "ours 1", "ours 2"]
    finally:
        await stop_chat(nodes)
