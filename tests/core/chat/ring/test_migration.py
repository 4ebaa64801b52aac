"""Migration on the simulated ring: to a node that joins before a key, repeated copies,
late copies that merge as a union, concurrent joins, and the hand-over on exit."""

from __future__ import annotations

import asyncio

import pytest

from core import events as ev
from core.chat.model.channel import Channel
from core.chat.model.ids import channel_key, name_key
from core.chat.model.items import item_to_wire
from core.chat.ring.takeover import PULL_FOR
from core.chat.testing import member as signed_member
from core.chat.testing import message, sim_ring
from core.chat.wire import verbs as p
from core.chord import in_half_open
from core.chord.ids import RING
from core.chord.testing import virtual_time, wait_until


def address_before(ring, key: int):
    """An address whose id falls at ``key``, before its owner: it becomes the key's owner."""
    old = ring.owner(key)
    return ring.next_address(within=((key - 1) % RING, (old.node.id - 1) % RING))


@virtual_time
async def test_migration__a_new_node_before_a_key_takes_the_channel_and_the_names():
    async with sim_ring(["alice", "bob", "carol", "dave", "erin"], prune_grace=120) as ring:
        for n in ring.nodes[1:4]:
            await n.user.join("general")
        key = channel_key("general")
        old = ring.owner(key)
        lo = ring.owner(key).node.predecessor().id
        # frank joins before the key while erin joins the channel
        frank, _ = await asyncio.gather(
            ring.add("frank", ring.nodes[0], address=address_before(ring, key)),
            ring.nodes[4].user.join("general"))
        await wait_until(lambda: old.holdings.channel("general") is None
                         and frank.holdings.channel("general") is not None,
                         what=f"the channel at frank:\n{ring.where('channel', 'general')}")
        steps = [e.step for e in old.of(ev.MigrationStep, key="general")]
        assert steps[:3] == ["send", "ack", "delete"], steps
        got = frank.of(ev.MigrationStep, step="receive", kind="channel", key="general")
        assert got[0].from_ == str(old.node.address) and got[0].members >= 3
        for n in ring.nodes[:5]:   # name records in (lo, frank] moved to frank as well
            if in_half_open(name_key(n.nick), lo, frank.node.id):
                await wait_until(lambda n=n: frank.of(ev.MigrationStep, step="receive",
                                                      kind="name", key=n.nick.lower()))
        await ring.nodes[0].user.send("general", "after the move")
        for n in ring.nodes[1:5]:
            await wait_until(lambda n=n: "after the move" in n.texts("general"))
        members = await frank.user.join("general")
        assert sorted(members) == ["bob", "carol", "dave", "erin", "frank"]


@virtual_time
async def test_migration__a_late_copy_merges_as_a_union_at_the_new_maintainer():
    async with sim_ring(["ann", "bo", "cy"], prune_grace=120) as ring:
        for n in ring.nodes:
            await n.user.join("union")
        key = channel_key("union")
        old = ring.owner(key)
        new = await ring.add("dan", ring.nodes[0], address=address_before(ring, key))
        await ring.settle()
        await wait_until(lambda: old.holdings.channel("union") is None
                         and new.holdings.channel("union") is not None,
                         what="the channel at the new maintainer")
        # migrated by the old maintainer (the joiner may also have merged in its
        # successors' replicas of its range first: the same state, a union)
        steps = [e.step for e in new.of(ev.MigrationStep, key="union")]
        assert steps[-1] == "receive" and set(steps) <= {"takeover", "receive"}
        await new.user.join("union")          # a join served by the new maintainer
        late = Channel("union")               # a late copy (a second old maintainer's)
        late.set_member(signed_member("zoe", "10.9.9.9:9", 1.0, channel="union"))
        reply = await old.node.user_command(new.node.address, p.MIGRATE.type,
                                            {"from": str(old.node.address),
                                             "items": [item_to_wire(late)]})
        assert reply["ok"]
        ch = new.holdings.channel("union")
        assert sorted(m.nick for m in ch.present()) == ["ann", "bo", "cy", "dan", "zoe"]


@virtual_time
async def test_migration__repeated_is_idempotent_and_a_non_owner_refuses_it():
    async with sim_ring(["ann", "bo"]) as ring:
        await ring.nodes[0].user.join("idem")
        await ring.nodes[1].user.send("idem", "one")
        holder = ring.owner(channel_key("idem"))
        other = next(n for n in ring.nodes if n is not holder)
        wire = item_to_wire(holder.holdings.channel("idem"))
        before = holder.holdings.channel("idem").to_wire()
        for _ in range(3):
            reply = await other.node.user_command(holder.node.address, p.MIGRATE.type,
                                                  {"from": str(other.node.address),
                                                   "items": [wire]})
            assert reply["ok"]
        assert holder.holdings.channel("idem").to_wire() == before
        reply = await holder.node.user_command(other.node.address, p.MIGRATE.type,
                                               {"from": str(holder.node.address),
                                                "items": [wire]})
        assert reply == p.NOT_OWNER
        assert other.holdings.channel("idem") is None


@virtual_time
async def test_migration__a_late_copy_numbered_like_ours_still_reaches_every_member():
    # While a ring settles, two nodes may each number entries of one channel from 1; when
    # the copies meet, what the late one brings sorts below what members have confirmed.
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        holder = ring.owner(channel_key("late"))
        member = next(n for n in ring.nodes if n is not holder)
        await member.user.join("late")
        for i in range(3):
            await holder.user.send("late", f"ours {i}")
        await wait_until(lambda: len(member.texts("late")) == 3, what="our three messages")
        late = Channel("late")
        zoe = signed_member("zoe", "10.9.9.9:9", 1.0, channel="late")
        late.set_member(zoe)
        late.append("join", "zoe", signed=zoe.signed)
        message(late, "zoe", "theirs", "7" * 32)  # seq 2: below the member's confirmed cursor
        reply = await member.node.user_command(holder.node.address, p.MIGRATE.type,
                                               {"from": str(member.node.address),
                                                "items": [item_to_wire(late)]})
        assert reply["ok"]
        await wait_until(lambda: "theirs" in member.texts("late"),
                         what="the late copy's message at the member")
        await wait_until(lambda: member.of(ev.MemberJoined, channel="late", nick="zoe"),
                         what="the late copy's join notice at the member")
        assert member.texts("late").count("theirs") == 1
        assert member.texts("late")[:3] == ["ours 0", "ours 1", "ours 2"]


@virtual_time
async def test_concurrent_joins__eight_nodes_join_at_once_while_messages_flow():
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        first = list(ring.nodes)
        for n in first:
            await n.user.join("crowd")

        async def sender() -> list[str]:
            acked = []
            for i in range(150):
                msg_id, _ = await first[0].user.send("crowd", f"m{i}")
                acked.append(msg_id)
                await asyncio.sleep(0.01)  # paces the traffic, not a wait
            return acked

        sending = asyncio.create_task(sender())
        await asyncio.gather(*(ring.add(f"new{i}", first[i % 3]) for i in range(8)))
        acked = await sending
        for n in first:
            await wait_until(lambda n=n: len(n.texts("crowd")) >= 150, what=n.nick)
            shown = [e.msg_id for e in n.of(ev.ChannelMessage, channel="crowd")]
            assert shown == acked, f"{n.nick}: {len(shown)} shown, {len(set(shown))} distinct"
        await ring.settle()
        await wait_until(lambda: [n for n in ring.nodes if n.holdings.channel("crowd")]
                         == [ring.owner(channel_key("crowd"))],
                         what="the channel at its owner only")


@virtual_time
async def test_exit__the_maintainer_hands_channels_and_names_to_its_successor():
    async with sim_ring(["alice", "bob", "carol", "dave", "erin"]) as ring:
        key = channel_key("lobby")
        m = ring.owner(key)
        others = [n for n in ring.nodes if n is not m]
        for n in [m, *others[:3]]:
            await n.user.join("lobby")
        await m.service.exit()
        steps = [(e.step, e.kind, e.key) for e in m.of(ev.MigrationStep)]
        assert ("leave", "channel", "lobby") in steps
        assert ("unname", "name", m.nick) in steps
        assert ("send", "channel", "lobby") in steps and ("delete", "channel", "lobby") in steps
        assert steps[-1][0] == "leave-ring" and type(m.events[-1]) is ev.Bye
        assert ring.owner(key).of(ev.MigrationStep, step="receive", kind="channel", key="lobby")
        stay = others[:3]
        for n in stay:
            await wait_until(lambda n=n: n.of(ev.MemberLeft, channel="lobby", nick=m.nick,
                                              reason="exit"))
        await stay[0].user.send("lobby", "still here")
        for n in stay:
            await wait_until(lambda n=n: "still here" in n.texts("lobby"))


@virtual_time
async def test_exit__one_at_a_time_until_one_is_left_everything_keeps_working():
    async with sim_ring(["n1", "n2", "n3", "n4", "n5"]) as ring:
        for n in ring.nodes:
            await n.user.join("room")
        live = list(ring.nodes)
        round_ = 0
        while len(live) > 1:
            await live.pop(round_ % len(live)).service.exit()
            round_ += 1
            await live[0].user.send("room", f"after exit {round_}")
            for n in live:
                await wait_until(lambda n=n, t=f"after exit {round_}": t in n.texts("room"))
            await live[-1].user.msg(live[0].nick, f"private {round_}")
            assert live[0].of(ev.PrivateMessage, text=f"private {round_}")


@virtual_time
async def test_exit__neighbours_exiting_together_leave_nothing_behind():
    async with sim_ring(["ann", "bo", "cy", "di"]) as ring:
        for n in ring.nodes:
            await n.user.join("keep")
        ordered = sorted(ring.nodes, key=lambda n: n.node.id)
        leavers, stay = ordered[:2], ordered[2:]       # two neighbours on the ring
        await asyncio.gather(*(n.service.exit() for n in leavers))
        await ring.settle()
        names = {n.nick.lower() for n in stay}
        held = {e.name for s in stay for e in s.holdings.maintained.names() if e.present}
        assert held == names, f"name records kept: {held}, wanted {names}"
        ch = next(c for c in (s.holdings.channel("keep") for s in stay) if c is not None)
        assert sorted(m.nick for m in ch.present()) == sorted(n.nick for n in stay)
        assert not any(e.step == "drop" for n in leavers for e in n.of(ev.MigrationStep))


@virtual_time
async def test_back_at_its_address__merged_in_before_its_join_ends_it_serves_the_real_copy():
    """A maintainer that exits and is back at its address at once: a probe of the ring
    finds it answering as a ring of one while its own join is still on the way, and the
    merge walk makes its predecessor notify it before it knows its successor. Its range
    grows with nobody to ask; it must not serve the channel from a fresh copy (numbered
    from 1, shown to members before the successor's last messages) but stay closed until
    the successor that took the channel on exit, slow to reach, has handed it back."""
    async with sim_ring(["ann", "bo", "cy", "di", "ed"]) as ring:
        key = channel_key("back")
        m = ring.owner(key)
        others = [n for n in ring.nodes if n is not m]
        for n in ring.nodes:
            await n.user.join("back")
        for i in range(5):
            await others[i % 4].user.send("back", f"before {i}")
        last = max(e.seq for e in others[0].of(ev.ChannelMessage, channel="back"))
        address, data = m.node.address, m.service.data_dir
        await ring.exit(m)
        await ring.settle()
        successor = ring.owner(key)
        predecessor = next(n for n in ring.live if n.node.successor().address
                           == successor.node.address)
        bootstrap = next(n for n in ring.live if n not in (successor, predecessor))
        slow = {frozenset((address.host, n.node.address.host)) for n in (successor, bootstrap)}
        ring.network.latency = lambda a, b: (
            0.4 if a and b and frozenset((a.host, b.host)) in slow else 0.001)
        back = asyncio.create_task(ring.add(m.nick, bootstrap, address=address, keep=True,
                                            data_dir=data))
        await wait_until(lambda: ring.network.alive(address), what="the node listening again")
        await predecessor.node.merge(address)          # as a probe that found it would
        speaker = next(n for n in others if n not in (successor, bootstrap))
        sent = [await speaker.user.send("back", f"after {i}") for i in range(3)]
        assert all(seq > last for _, seq in sent), f"numbered afresh: {sent}, last was {last}"
        ring.network.latency = 0.001
        m2 = await back
        await wait_until(lambda: all(f"after {i}" in n.texts("back") for n in others
                                     for i in range(3)), what="the messages at every member")
        for n in [*others, m2]:
            shown = [e for e in n.of(ev.ChannelMessage, channel="back") if not e.history]
            seqs = [e.seq for e in shown]
            assert seqs == sorted(seqs), (n.nick, [(e.seq, e.text) for e in shown])
        assert not m2.of(ev.MigrationStep, step="drop")


@pytest.mark.parametrize("closer", [False, True], ids=["", "a_closer_predecessor_meanwhile"])
@virtual_time
async def test_pull__a_successor_that_never_names_the_joiner_keeps_its_range_closed_10_s_at_most(
        closer):
    """The bound of the wait above: a successor that hands the channel over but never says
    the joiner is its predecessor (a liar, or a view that does not settle) keeps the new
    range closed for ``PULL_FOR`` seconds, no longer; the sends made meanwhile are asked
    again and all land, in order, and the opening is in the ring log. ``closer``: another
    node joins right before the joiner meanwhile (but after the channel's key): the range
    shrinks, it is still unconfirmed, so it stays closed all the same."""
    async with sim_ring(["ann", "bo", "cy", "di"], prune_grace=120) as ring:
        for n in ring.nodes:
            await n.user.join("wait")
        key = channel_key("wait")
        successor = ring.owner(key)
        real = successor.service.takeover.rpc_handoff

        async def never_yours(d: dict) -> dict:
            return {**await real(d), "yours": False}
        successor.node.register_command(p.HANDOFF.type, never_yours)
        speaker = next(n for n in ring.nodes if n is not successor)
        adding = asyncio.create_task(ring.add("eve", ring.nodes[0],
                                              address=address_before(ring, key)))
        await wait_until(lambda: len(ring.nodes) == 5 and ring.nodes[4].service.range.pulls,
                         what="the joiner pulling its range")
        joiner = ring.nodes[4]
        loop = asyncio.get_running_loop()
        start = loop.time()
        sends = [asyncio.create_task(speaker.user.send("wait", f"while closed {i}"))
                 for i in range(3)]
        if closer:
            before = joiner.node.predecessor()
            assert before is not None
            fay = ring.next_address(within=(before.id, key - 1))
            sends.append(asyncio.create_task(ring.add("fay", ring.nodes[0], address=fay)))
            await wait_until(lambda: getattr(joiner.node.predecessor(), "address", 0) == fay,
                             what="the closer predecessor")
            assert joiner.service.range.pulls, "opened when the predecessor changed"
        await wait_until(lambda: not joiner.service.range.pulls, timeout=30,
                         what="the joiner's range open")
        waited = loop.time() - start
        assert PULL_FOR - 1 <= waited <= PULL_FOR + 1, waited
        assert joiner.holdings.channel("wait") is not None
        assert [e for e in joiner.of(ev.Log) if e.text.startswith("opening (")]
        await asyncio.gather(adding, *sends)
        await speaker.user.send("wait", "after")
        texts = [f"while closed {i}" for i in range(3)] + ["after"]
        for n in ring.nodes[:4]:
            await wait_until(lambda n=n: all(t in n.texts("wait") for t in texts),
                             what=f"every message at {n.nick}")
            shown = [e.seq for e in n.of(ev.ChannelMessage, channel="wait")]
            assert shown == sorted(shown), (n.nick, shown)
