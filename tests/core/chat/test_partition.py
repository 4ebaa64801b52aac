"""A partition that heals, on the simulated network: both sides chat while apart, the rings
merge, and the channel, its members and name records merge with them."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from core import events as ev
from core.chat.model.channel import Channel
from core.chat.model.identity import Identity
from core.chat.model.ids import channel_key, name_key
from core.chat.model.records import Accept, NameRecord
from core.chat.testing import ChatNode, SimRing, now, sim_ring
from core.chord.testing import ring_problems, virtual_time, wait_until

NICKS = ["ann", "bo", "cy", "di", "ed", "flo"]
PROBE = dict(probe_interval=0.5)


def split(ring: SimRing) -> tuple[list[ChatNode], list[ChatNode]]:
    """Three and three, interleaved on the ring (every other node by id)."""
    ordered = sorted(ring.nodes, key=lambda n: n.node.id)
    return ordered[0::2], ordered[1::2]


def cut(ring: SimRing, *sides: list[ChatNode]) -> None:
    ring.network.partition(*[[n.node.address for n in side] for side in sides])


async def chat(side: list[ChatNode], channel: str, count: int, every: float) -> list[str]:
    """Each node of ``side`` sends ``count`` messages, one every ``every`` s; the acked ids."""
    async def sender(n: ChatNode) -> list[str]:
        acked = []
        for i in range(count):
            try:
                msg_id, _ = await n.user.send(channel, f"{n.nick} {i}")
                acked.append(msg_id)
            except Exception:  # noqa: BLE001 - not acknowledged: not promised
                pass
            await asyncio.sleep(every)
        return acked
    return [i for ids in await asyncio.gather(*(sender(n) for n in side)) for i in ids]


def shown(n: ChatNode, channel: str) -> list[str]:
    return [e.msg_id for e in n.of(ev.ChannelMessage, channel=channel)]


@virtual_time
async def test_partition__both_sides_chat_apart_and_every_acked_message_reaches_everyone():
    async with sim_ring(NICKS) as ring:
        for n in ring.nodes:
            await n.user.join("room")
        before = await chat(ring.nodes, "room", 2, 0.05)
        left, right = split(ring)
        cut(ring, left, right)
        apart = await asyncio.gather(chat(left, "room", 10, 2.5), chat(right, "room", 10, 2.5))
        assert all(apart), "each side acknowledged messages while apart"
        ring.network.heal()
        started = asyncio.get_running_loop().time()
        await wait_until(lambda: not ring_problems([n.node for n in ring.nodes]), 60,
                         what="one ring of six")
        merged_in = asyncio.get_running_loop().time() - started
        acked = set(before) | set(apart[0]) | set(apart[1])
        for n in ring.nodes:
            await wait_until(lambda n=n: acked <= set(shown(n, "room")), 60,
                             what=f"every acked message at {n.nick}")
        after = await chat(ring.nodes[:2], "room", 3, 0.05)
        for n in ring.nodes:
            await wait_until(lambda n=n: set(after) <= set(shown(n, "room")), 30,
                             what=f"the messages after the merge at {n.nick}")
        orders = set()
        for n in ring.nodes:
            ids = shown(n, "room")
            assert len(ids) == len(set(ids)), f"{n.nick} was shown a message twice"
            orders.add(tuple(i for i in ids if i in set(after)))
        assert len(orders) == 1, "one order at every member from the merge on"
        assert merged_in < 60
        maintainer = ring.owner(channel_key("room"))
        members = maintainer.holdings.channel("room").present()
        assert sorted(m.nick for m in members) == sorted(NICKS), "members are the union"
        pruned = [e for n in ring.nodes for e in n.of(ev.Log) if "pruned" in e.text]
        back = [e for n in ring.nodes for e in n.of(ev.Log) if "is back" in e.text]
        print(f"merged in {merged_in:.1f} s; {len(pruned)} prunes, {len(back)} back")


@virtual_time(timeout=1200)
async def test_partition__a_side_without_a_copy_numbers_afresh_and_nothing_falls_under_the_trim():
    """The channel's log is full (300 entries, the first trimmed away) when two nodes are
    cut from the maintainer and every replica: their side starts the channel afresh and
    numbers its messages 1, 2, … When the copies meet, those low numbers must not sort
    under the full log, where its trim drops them: every acknowledged message reaches
    every member, and from the merge on all show one order."""
    async with sim_ring(NICKS) as ring:
        for n in ring.nodes:
            await n.user.join("room")
        before = await chat(ring.nodes, "room", 55, 0.01)      # 330 messages
        owner = ring.owner(channel_key("room"))
        assert owner.holdings.channel("room").log[0].seq > 1, "the log was trimmed"
        holders = [owner, *ring.successors_of(owner, 3)]
        others = [n for n in ring.nodes if n not in holders]
        cut(ring, holders, others)
        apart = await asyncio.gather(chat(holders, "room", 6, 2.5), chat(others, "room", 6, 2.5))
        assert apart[1], "the side without a copy acknowledged messages"
        ring.network.heal()
        await wait_until(lambda: not ring_problems([n.node for n in ring.nodes]), 60,
                         what="one ring of six")
        acked = set(before) | set(apart[0]) | set(apart[1])
        for n in ring.nodes:
            await wait_until(lambda n=n: acked <= set(shown(n, "room")), 60,
                             what=f"every acked message at {n.nick}")
        after = await chat(ring.nodes[:2], "room", 3, 0.05)
        orders = set()
        for n in ring.nodes:
            await wait_until(lambda n=n: set(after) <= set(shown(n, "room")), 30,
                             what=f"the messages after the merge at {n.nick}")
            ids = shown(n, "room")
            assert len(ids) == len(set(ids)), f"{n.nick} was shown a message twice"
            orders.add(tuple(i for i in ids if i in set(after)))
        assert len(orders) == 1, "one order at every member from the merge on"


@virtual_time
async def test_partition__a_nick_claimed_on_both_sides_goes_to_the_later_claim_and_both_are_told():
    async with sim_ring(NICKS) as ring:
        left, right = split(ring)
        cut(ring, left, right)
        first = left[0]
        claimer = right[0]
        # the other side cannot reach ann's holder: after the liveness check, it passes on
        await ring.add_user(claimer, first.nick)
        ring.network.heal()
        await wait_until(lambda: not ring_problems([n.node for n in ring.nodes]), 60,
                         what="one ring of six")

        def told(n: ChatNode, cls) -> list:
            return [e for e in n.by_user[first.nick] if isinstance(e, cls)
                    and "while the network was split" in getattr(e, "text",
                                                                 getattr(e, "message", ""))]

        await wait_until(lambda: told(first, ev.Error) and told(claimer, ev.Info), 60,
                         what="both holders told")
        record = ring.owner(name_key(first.nick)).holdings.name(first.nick)
        assert record.address == str(claimer.node.address)
        assert not told(first, ev.Info) and not told(claimer, ev.Error)


@virtual_time
async def test_merge__a_member_the_other_copy_pruned_is_asked_and_rejoins_with_its_signature():
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        for n in ring.nodes:
            await n.user.join("room")
        ann, bo = ring.nodes[0], ring.nodes[1]
        owner = ring.owner(channel_key("room"))
        bo_key = ("bo", str(bo.node.address))
        joined = owner.holdings.channel("room").members[bo_key]
        # the copy of the other side of a partition, whose maintainer pruned bo
        owner.holdings.maintain(Channel("room", {bo_key: joined.removed()}))
        assert not owner.holdings.channel("room").is_member(bo_key)
        started = now()
        await wait_until(lambda: owner.holdings.channel("room").is_member(bo_key), 30,
                         what="bo readmitted")
        # asked at the next maintenance round, well before bo's own quiet-maintainer resume
        assert now() - started < owner.service.settings.prune_grace
        back = owner.holdings.channel("room").members[bo_key]
        assert back.signed is not None and back.signed.key == bo.user.identity.key
        assert back.stamp > joined.stamp
        msg_id, _ = await ann.user.send("room", "bo hears this again")
        await wait_until(lambda: msg_id in shown(bo, "room"), 30, what="delivery to bo")
        assert shown(bo, "room").count(msg_id) == 1


@virtual_time
async def test_merge__a_doubted_member_out_of_reach_for_a_moment_is_asked_again():
    # one ask lost (the member's node out of reach, or refusing a maintainer it did not
    # know yet) left the member out until its own resume, 2 x prune_grace later: the
    # others were shown it quit (tests/net/test_partition.py's three and three)
    async with sim_ring(["ann", "bo"]) as ring:
        for n in ring.nodes:
            await n.user.join("room")
        owner = ring.owner(channel_key("room"))
        other = next(n for n in ring.nodes if n is not owner)
        key = (other.nick, str(other.node.address))
        joined = owner.holdings.channel("room").members[key]
        owner.holdings.channel("room").set_member(joined.removed())   # the other side's prune
        cut(ring, [owner], [other])
        asyncio.get_running_loop().call_later(0.5, ring.network.heal)
        assert await owner.service.channels.readmit("room", key)
        await wait_until(lambda: owner.holdings.channel("room").is_member(key), 10,
                         what="the member readmitted by its fresh signed join")
        msg_id, _ = await owner.user.send("room", "heard again")
        await wait_until(lambda: msg_id in shown(other, "room"), 30, what="delivery")


@virtual_time
async def test_merge__a_member_that_really_left_stays_out_when_asked():
    async with sim_ring(["ann", "bo"]) as ring:
        for n in ring.nodes:
            await n.user.join("room")
        bo = ring.nodes[1]
        owner = ring.owner(channel_key("room"))
        bo_key = ("bo", str(bo.node.address))
        joined = owner.holdings.channel("room").members[bo_key]
        await bo.user.leave("room")
        await wait_until(lambda: not owner.holdings.channel("room").is_member(bo_key))
        owner.holdings.maintain(Channel("room", {bo_key: joined}))   # a copy from before
        assert ("room", bo_key) in owner.holdings.doubted
        # asked, bo's node says no (and sends no join): the leave stands
        assert not await owner.service.channels.readmit("room", bo_key)
        assert not owner.holdings.channel("room").is_member(bo_key)
        assert "room" not in bo.user.joined


@virtual_time
async def test_merge__members_see_no_one_quit_who_did_not_and_one_line_for_those_back():
    async with sim_ring(NICKS) as ring:
        for n in ring.nodes:
            await n.user.join("room")
        left, right = split(ring)
        cut(ring, left, right)
        await asyncio.sleep(30)           # long enough for each side to prune the other
        healed = {n.nick: len(n.events) for n in ring.nodes}
        ring.network.heal()
        await wait_until(lambda: not ring_problems([n.node for n in ring.nodes]), 60,
                         what="one ring of six")
        after = await chat(ring.nodes[:1], "room", 1, 0.05)
        for n in ring.nodes:
            await wait_until(lambda n=n: set(after) <= set(shown(n, "room")), 60,
                             what=f"a message after the merge at {n.nick}")
        await asyncio.sleep(10)
        for n in ring.nodes:
            since = n.events[healed[n.nick]:]
            moves = [e for e in since if isinstance(e, ev.MemberLeft | ev.MemberJoined
                                                    | ev.MembersBack)]
            told = [nick for e in moves
                    for nick in (e.nicks if isinstance(e, ev.MembersBack) else (e.nick,))]
            # no flapping: at most one line about each member after the heal ("quit",
            # "joined", "quit", "joined" before), those back in one line per delivery
            assert len(told) == len(set(told)), (n.nick, moves)
            assert not [e for e in moves if isinstance(e, ev.MemberJoined)], (n.nick, moves)
            assert all(e.reason in ("pruned", "gone") for e in moves
                       if isinstance(e, ev.MemberLeft)), (n.nick, moves)   # no "exit"


@virtual_time
async def test_heal__no_one_shown_to_quit_who_stayed_and_a_real_quit_is_shown_once():
    async with sim_ring(NICKS) as ring:
        for n in ring.nodes:
            await n.user.join("room")
        left, right = split(ring)
        quitter = right[-1]
        cut(ring, left, right)
        start = {n.nick: len(n.events) for n in ring.nodes}
        await asyncio.sleep(20)           # each side prunes the other
        await ring.exit(quitter)          # a real quit, seen by its own side only
        await asyncio.sleep(10)
        stayed = [n for n in ring.nodes if n is not quitter]
        healed = {n.nick: len(n.events) for n in stayed}
        ring.network.heal()
        await wait_until(lambda: not ring_problems([n.node for n in stayed]), 60,
                         what="one ring of five")
        after = await chat(stayed[:1], "room", 1, 0.05)
        for n in stayed:
            await wait_until(lambda n=n: set(after) <= set(shown(n, "room")), 60,
                             what=f"a message after the merge at {n.nick}")
        await asyncio.sleep(15)           # longer than any removal is held (SETTLE)
        online = {n.nick for n in stayed}
        for n in stayed:
            since = n.events[healed[n.nick]:]
            wrongly = [e for e in since if isinstance(e, ev.MemberLeft) and e.nick in online]
            assert not wrongly, (n.nick, wrongly)
            quits = [e for e in n.events[start[n.nick]:]
                     if isinstance(e, ev.MemberLeft) and e.nick == quitter.nick]
            assert len(quits) == 1, (n.nick, quits)
            back = [e for e in since if isinstance(e, ev.MemberJoined | ev.MembersBack)
                    and quitter.nick in getattr(e, "nicks", (getattr(e, "nick", ""),))]
            assert not back, (n.nick, back)
        maintainer = ring.owner(channel_key("room"))
        present = {m.nick for m in maintainer.holdings.channel("room").present()}
        assert present == online


async def test_partition__a_copy_with_the_later_live_claim_displaces_a_live_holder_at_the_owner():
    # the copy meets an owner that holds the earlier claim (whichever side's node ends up
    # owning the nick's key): the later claim keeps the nick there too, both are told;
    # a later claim whose holder does not answer for its key, a forged or a future one
    # do not displace the live holder
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        first = next(n for n in ring.nodes if n.nick == "ann")
        owner = ring.owner(name_key("ann"))
        earlier = owner.holdings.name("ann")
        assert earlier is not None and earlier.key == first.user.identity.key
        other = await ring.add(None)
        cut(ring, [other], [n for n in ring.nodes if n is not other])
        claimer = await ring.add_user(other, "ann")   # its side could not reach ann's holder
        later = claimer.record
        assert later is not None and later.seq > earlier.seq
        ring.network.heal()
        names = owner.service.names
        now_ms = int(now() * 1000)
        unanswered = NameRecord.create(Identity.generate("ann"), "10.9.9.9:4000",
                                       "0" * 40, now_ms + 1)
        future = NameRecord.create(Identity.generate("ann"), str(other.node.address),
                                   later.node_id, now_ms + 3_600_000)
        forged = replace(later, seq=later.seq + 1)
        for copy, reason in ((unanswered, "taken"), (future, "future"),
                             (forged, "bad_signature")):
            decision = await names.take_copy(copy)
            assert getattr(decision, "reason", None) == reason, (copy, decision)
            assert owner.holdings.name("ann") == earlier
        assert await names.take_copy(later) == Accept()
        assert owner.holdings.name("ann") == later
        assert owner.holdings.conflicts == [(later, earlier)]

        def told(n: ChatNode, cls) -> list:
            return [e for e in n.by_user["ann"] if isinstance(e, cls)
                    and "while the network was split" in getattr(e, "text",
                                                                 getattr(e, "message", ""))]

        await wait_until(lambda: told(first, ev.Error) and told(other, ev.Info), 60,
                         what="both holders told")
        assert not told(first, ev.Info) and not told(other, ev.Error)
