"""Replication, takeover and failures on the simulated ring: copies at the next r
successors, crashed maintainers (alone and with their successor), pruned members, and
churn — with no acknowledged message lost or shown twice."""

from __future__ import annotations

import asyncio
import random

import pytest

from core import events as ev
from core.chat.model.entries import sign_entry
from core.chat.model.ids import channel_key, name_key
from core.chat.model.items import item_ref, item_to_wire
from core.chat.testing import ChatNode, SimRing, now, sim_ring
from core.chat.wire import verbs as p
from core.chord.testing import virtual_time, wait_until


def paced_sends(sender: ChatNode, channel: str, count: int, every: float,
                prefix: str) -> asyncio.Task:
    """``count`` sends from ``sender``, one every ``every`` s, each awaited by its own task
    (as the runtime runs typed commands); the task's result: the acknowledged ids."""
    async def run() -> list[str]:
        tasks = []
        for i in range(count):
            tasks.append(asyncio.create_task(sender.user.send(channel, f"{prefix}{i}")))
            await asyncio.sleep(every)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, f"{len(errors)} sends failed: {errors[:3]}"
        return [msg_id for msg_id, _ in sorted(results, key=lambda r: r[1])]
    return asyncio.create_task(run())


async def check_delivery(members: list[ChatNode], channel: str, acked: list[str]) -> None:
    """Every acknowledged message reached every member exactly once, all in one order."""
    wanted = set(acked)

    def shown(m: ChatNode) -> list[str]:
        return [e.msg_id for e in m.of(ev.ChannelMessage, channel=channel)
                if e.msg_id in wanted]

    orders = []
    for m in members:
        await wait_until(lambda m=m: len(set(shown(m))) == len(wanted), 60,
                         what=f"all {len(wanted)} acked messages at {m.nick}")
        got = shown(m)
        assert len(got) == len(set(got)), f"{m.nick} was shown a message twice"
        seqs = [e.seq for e in m.of(ev.ChannelMessage, channel=channel)]
        assert seqs == sorted(seqs), f"{m.nick} saw sequence numbers out of order"
        orders.append(got)
    assert all(o == orders[0] for o in orders), "members saw different orders"


@virtual_time
async def test_replication__a_change_reaches_the_next_r_successors_only():
    async with sim_ring(["ann", "bo", "cy", "di", "ed", "flo"], replicas=3) as ring:
        await ring.nodes[0].user.join("rep")
        await ring.nodes[1].user.send("rep", "kept thrice")
        m = ring.owner(channel_key("rep"))
        replicas = ring.successors_of(m, 3)
        others = [n for n in ring.nodes if n is not m and n not in replicas]

        def copies_have_it():
            for n in replicas:
                ch = n.holdings.replicas.get("channel", "rep")
                if ch is None or [e.text for e in ch.history()] != ["kept thrice"]:
                    return False
            return True
        await wait_until(copies_have_it, what="three replicas")
        await wait_until(lambda: all(n.holdings.replicas.get("channel", "rep") is None
                                     for n in others), what="no copy elsewhere")


@virtual_time
async def test_send__unacknowledged_while_the_first_successor_lacks_the_copy():
    async with sim_ring(["ann", "bo", "cy"], replicas=1) as ring:
        key = channel_key("wait")
        m = ring.owner(key)
        member = next(n for n in ring.nodes if n is not m)
        await member.user.join("wait")
        successor = ring.successors_of(m, 1)[0]
        ring.network.kill(successor.node.address)   # unreachable, not yet noticed
        entry = sign_entry(member.user.identity, "wait", "msg", "w" * 32,
                           address=str(member.node.address), text="held back", at=now())
        payload = {"key": f"{key:x}", "entry": entry.to_wire()}
        reply = await m.node.user_command(m.node.address, p.SEND.type, payload)
        assert reply["retry"] and "replica" in reply["why"]
        assert "held back" not in member.texts("wait")   # never delivered unreplicated
        assert m.holdings.mark("wait") < m.holdings.channel("wait").last_seq


@virtual_time
async def test_takeover__a_crashed_maintainers_successor_keeps_members_history_order():
    async with sim_ring(["ann", "bo", "cy", "di", "ed"], replicas=2) as ring:
        key = channel_key("hist")
        m = ring.owner(key)
        members = [n for n in ring.nodes if n is not m][:3]
        for n in members:
            await n.user.join("hist")
        for i in range(5):
            await members[0].user.send("hist", f"before {i}")
        await ring.crash(m)
        await members[1].user.send("hist", "after the crash")   # retried until taken over
        taker = ring.owner(key)
        assert taker.of(ev.MigrationStep, step="takeover", key="hist")
        for n in members:
            await wait_until(lambda n=n: "after the crash" in n.texts("hist"))
            assert n.texts("hist") == [f"before {i}" for i in range(5)] + ["after the crash"]
        # a new member gets the recent history, marked as such
        late = next(n for n in ring.live if n not in members)
        await late.user.join("hist")
        history = late.of(ev.ChannelMessage, channel="hist", history=True)
        assert [e.text for e in history] == [f"before {i}" for i in range(5)] + [
            "after the crash"]
        assert [e.seq for e in history] == sorted(e.seq for e in history)
        # the dead node's name record is still held (by the taker) until someone claims it
        assert ring.owner(name_key(m.nick)).holdings.name(m.nick).present


@pytest.mark.parametrize("ahead", [0.0, 300.0], ids=["clock-right", "first-signed-ahead"])
@virtual_time
async def test_takeover__a_late_member_is_not_sent_what_came_before_its_join(ahead):
    """A member that joined after 150 messages got the last 100 as history; the maintainer
    that takes over after a crash knows no member's cursor and sends it the whole log: the
    member leaves out what was numbered up to its join and written before it, so the 50
    before the history are not shown as if new (out of order), and nothing after is
    missed. Written before it: signed before the join, or counted by its author before a
    message of the history (the first one signed while its author's clock had jumped
    minutes ahead: nemesis seed 1989)."""
    async with sim_ring(["ann", "bo", "cy", "di", "ed"]) as ring:
        key = channel_key("hist")
        m = ring.owner(key)
        early, late = [n for n in ring.nodes if n is not m][:2]
        await early.user.join("hist")
        raw = early.service.clock.raw
        early.service.clock.raw = lambda: raw() + ahead   # a jump, not yet corrected
        await early.user.send("hist", "old 0")
        early.service.clock.raw = raw
        for i in range(1, 150):
            await early.user.send("hist", f"old {i}")

        def replicated(n) -> bool:
            copy = n.holdings.replicas.get("channel", "hist")
            return copy is not None and sum(e.kind == "msg" for e in copy.log) == 150
        await wait_until(lambda: all(replicated(r) for r in ring.successors_of(m, 2)),
                         what="the 150 on both replicas")
        await late.user.join("hist")
        history = [e.text for e in late.of(ev.ChannelMessage, channel="hist", history=True)]
        assert history == [f"old {i}" for i in range(50, 150)]
        await early.user.send("hist", "before the crash")
        await wait_until(lambda: "before the crash" in late.texts("hist"))
        await ring.crash(m)
        await early.user.send("hist", "after the crash")   # retried until taken over
        assert ring.owner(key).of(ev.MigrationStep, step="takeover", key="hist")
        await wait_until(lambda: "after the crash" in late.texts("hist"))
        # the new maintainer has sent the late member its whole log (its cursor at the end)
        taker = ring.owner(key)
        late_key = (late.nick, str(late.node.address))

        def sent_all() -> bool:
            ch = taker.holdings.channel("hist")
            return taker.holdings.cursor("hist", late_key) == ch.log[-1].seq
        await wait_until(sent_all, what="the whole log sent to the late member")
        assert late.texts("hist") == history + ["before the crash", "after the crash"]


async def kill_maintainer_while_sending(also_successor: bool) -> None:
    async with sim_ring([f"n{i}" for i in range(7)], prune_grace=2.0) as ring:
        key = channel_key("ops")
        maintainer = ring.owner(key)
        victims = [maintainer, *(ring.successors_of(maintainer, 1) if also_successor else [])]
        rest = [n for n in ring.nodes if n not in victims]
        members, bystander = rest[:4], rest[4]
        for m in members:
            await m.user.join("ops")
        sender = members[1]
        sending = paced_sends(sender, "ops", 200, 0.02, "k")
        await wait_until(lambda: sender.of(ev.Sent, text="k40"))
        for v in victims:
            await ring.crash(v)
        acked = await sending
        assert len(acked) == 200
        await check_delivery(members, "ops", acked)
        assert ring.owner(key).of(ev.MigrationStep, step="takeover", key="ops")
        # the channel kept its members and its history (the last 100, in order)
        joined = await bystander.user.join("ops")
        assert sorted(joined) == sorted([m.nick for m in members] + [bystander.nick])
        history = bystander.of(ev.ChannelMessage, channel="ops", history=True)
        assert [e.msg_id for e in history] == acked[-100:]
        # the dead nodes' nicks can be claimed now
        for v in victims:
            claimer = await ring.add(v.nick, bystander)
            await members[0].user.msg(v.nick, "welcome back")
            assert claimer.of(ev.PrivateMessage, text="welcome back")


@virtual_time
async def test_failure__maintainer_killed_while_a_member_sends_200_messages():
    await kill_maintainer_while_sending(also_successor=False)


@virtual_time
async def test_failure__maintainer_and_its_successor_killed_together():
    await kill_maintainer_while_sending(also_successor=True)


@virtual_time
async def test_failure__a_killed_member_is_pruned_and_the_rest_keep_chatting():
    async with sim_ring(["ann", "bo", "cy", "di"], prune_grace=2.0) as ring:
        maintainer = ring.owner(channel_key("pruning"))
        members = [n for n in ring.nodes if n is not maintainer][:3]
        for m in members:
            await m.user.join("pruning")
        victim, stay = members[0], members[1:]
        await ring.crash(victim)
        await stay[0].user.send("pruning", "are you there")
        for m in stay:
            await wait_until(lambda m=m: "are you there" in m.texts("pruning"))
            await wait_until(lambda m=m: m.of(ev.MemberLeft, channel="pruning",
                                              nick=victim.nick, reason="pruned"))
        await stay[1].user.send("pruning", "still here")
        for m in stay:
            await wait_until(lambda m=m: "still here" in m.texts("pruning"))
        assert victim.nick not in await maintainer.user.join("pruning")


@virtual_time(timeout=1200)
async def test_churn__ten_nodes_a_kill_or_a_join_every_3s_no_acked_message_lost():
    rng = random.Random(20261125)
    ring = SimRing(prune_grace=3.0)
    try:
        users = await ring.start([f"u{i}" for i in range(4)])
        churners = [await ring.add(f"c{i}", users[i % 4]) for i in range(6)]
        await ring.settle()
        for u in users:
            for channel in ("alpha", "beta"):
                await u.user.join(channel)
        sending = [paced_sends(users[0], "alpha", 600, 0.1, "a"),
                   paced_sends(users[1], "beta", 600, 0.1, "b")]
        kills = joins = 0
        for _ in range(20):
            await asyncio.sleep(3.0)
            live = [c for c in churners if c.node.running]
            if len(live) > 3 and (rng.random() < 0.5 or len(live) >= 8):
                owners = {ring.owner(channel_key(ch)) for ch in ("alpha", "beta")}
                victim = rng.choice([c for c in live if c in owners] or live)
                await ring.crash(victim)
                kills += 1
            else:
                churners.append(await ring.add(f"c{len(churners)}", rng.choice(users + live)))
                joins += 1
        for task, channel in zip(sending, ("alpha", "beta"), strict=True):
            acked = await task
            assert len(acked) == 600
            await check_delivery(users, channel, acked)
        assert kills >= 3 and joins >= 3
    finally:
        await ring.stop()


@virtual_time
async def test_join__a_write_right_after_it_is_on_every_replica_and_survives_two_crashes():
    """A node joins as the maintainer's new first successor; the replica after it has not
    yet walked its predecessors again (its cached walk shows the joiner without one), so
    it used to refuse the maintainer's copy (``not_neighbour``) until the next full round.
    Now it walks again at once and the maintainer sends a refused copy again promptly:
    the write is on all r successors when it is acknowledged, and the maintainer and the
    joiner crashing right after it (r = 2: two of its three holders) lose nothing. The
    full round is far off (maintenance every 30 s), so it cannot be what repairs the
    copy."""
    async with sim_ring([f"n{i}" for i in range(6)], replicas=2,
                        maintenance_interval=30.0) as ring:
        key = channel_key("fresh")
        m = ring.owner(key)
        members = [n for n in ring.nodes if n is not m][:3]
        for n in members:
            await n.user.join("fresh")
        await members[0].user.send("fresh", "before")
        first = ring.successors_of(m, 1)[0]
        joiner = await ring.add(None, via=members[0],
                                address=ring.next_address(within=(m.node.id, first.node.id)))
        await wait_until(lambda: m.node.successor().address == joiner.node.address, 10,
                         what="the maintainer sees the joiner as its successor")
        msg_id, _ = await members[1].user.send("fresh", "right after the join")
        replicas = ring.successors_of(m, 2)
        assert replicas[0] is joiner

        def has(n: ChatNode) -> bool:
            ch = n.holdings.replicas.get("channel", "fresh")
            return ch is not None and msg_id in {e.msg_id for e in ch.log}
        await wait_until(lambda: all(has(n) for n in replicas), 0.5,
                         what="the write on the r successors well before the full round")
        assert sum(n.service.neighbours.rechecks for n in replicas) >= 1
        await ring.crash(m)
        await ring.crash(joiner)
        late = next(n for n in ring.live if n not in members and n is not joiner)
        await late.user.join("fresh")
        history = [e.text for e in late.of(ev.ChannelMessage, channel="fresh", history=True)]
        assert history == ["before", "right after the join"]
        await members[2].user.send("fresh", "after the crashes")   # honest traffic flows
        for n in [*members, late]:
            await wait_until(lambda n=n: "after the crashes" in n.texts("fresh"), 30)


async def test_replication__a_copy_from_the_node_becoming_our_predecessor_is_kept():
    # a node that has just adopted us as its successor replicates at once, while our
    # rectify of its notify is still asking it: that copy must not be refused (else what
    # it maintains has no replica until its next full round, and a crash loses it)
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        a, b, c = sorted(ring.nodes, key=lambda n: n.node.id)   # a -> b -> c -> a
        items = list(a.holdings.maintained)
        assert items, "a maintains something to copy"
        b.node._routing.set_predecessor(None)   # b has not adopted a (yet)
        for item in items:
            b.holdings.replicas.pop(*item_ref(item))
        assert await a.service.replication.call_replicate(items)
        for item in items:
            assert b.holdings.replicas.get(*item_ref(item)) is not None, item_ref(item)
        # a node that does not name b as its successor is still refused
        b.node._routing.set_predecessor(None)
        reply = await c.node.user_command(b.node.address, p.REPLICATE.type, {
            "from": str(c.node.address), "items": [item_to_wire(i) for i in items]})
        assert reply.get("refused") == "not_neighbour", reply
