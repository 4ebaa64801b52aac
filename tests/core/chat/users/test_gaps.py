"""A hostile maintainer that drops or withholds channel entries, on the simulated network:
members find the gaps (the maintainer's seq, an author's signed count, their own message
not coming back), get the entries from the replicas, show each once and in order, and
the ring log says so. An honest ring raises no alarm."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core import events as ev
from core.chat.model.channel import Entry
from core.chat.model.ids import channel_key
from core.chat.testing import ChatNode, SimRing, sim_ring
from core.chat.wire import verbs as p
from core.chord.testing import virtual_time, wait_until

CHANNEL = "general"
FAST_GAPS = dict(gap_grace=0.5, echo_deadline=3.0)


async def sybil(ring: SimRing, **chat) -> ChatNode:
    """A node (no user) placed to own the channel's key: its id ground to fall between
    hash("general") and the key's owner, as an attacker grinds ports."""
    key = channel_key(CHANNEL)
    owner = ring.owner(key).node.id
    within = ((key - 1) % 2 ** 160, (owner - 1) % 2 ** 160)
    node = await ring.add(None, address=ring.next_address(within=within), **chat)
    await ring.settle()
    assert ring.owner(key) is node
    return node


def drop_deliveries(n: ChatNode, drop: Callable[[dict], bool]) -> list[dict]:
    """The maintainer's feeds leave out the entries ``drop`` picks (the cursor still moves
    over them: never sent again). Returns the entries left out."""
    feeds = n.service.feeds
    honest = feeds.call_deliver
    dropped: list[dict] = []

    async def hostile(feed, entries, rejoin=False):
        kept = []
        for e in entries:
            (dropped if drop(e) else kept).append(e)
        return await honest(feed, kept, rejoin)

    feeds.call_deliver = hostile
    return dropped


def gaps(n: ChatNode, kind: str | None = None) -> list[ev.Gap]:
    return [e for e in n.of(ev.Gap) if kind is None or e.kind == kind]


def settled(n: ChatNode) -> bool:
    """Nothing waits behind a gap at ``n``, nothing is missing or overdue, and no repair
    runs: no later finding or late message can come from its gap detector."""
    t = n.user.memberships.gaps.tracks.get(CHANNEL)
    return (t is not None and not t.held and not t.missing and not t.expected
            and (t.repair is None or t.repair.done()))


async def members(ring: SimRing, *nicks: str) -> list[ChatNode]:
    nodes = [next(n for n in ring.nodes if n.users and n.nick == nick) for nick in nicks]
    for n in nodes:
        await n.user.join(CHANNEL)
    return nodes


@virtual_time
async def test_gaps__a_maintainer_that_drops_every_third_is_read_around():
    async with sim_ring(["alice", "bob", "carol", "dave"], **FAST_GAPS) as ring:
        bad = await sybil(ring, **FAST_GAPS)
        alice, bob, carol = await members(ring, "alice", "bob", "carol")
        dropped = drop_deliveries(bad, lambda e: e.get("text", "").endswith(("2", "5", "8")))
        texts = [f"m{i}" for i in range(10)]
        for text in texts:
            await alice.user.send(CHANNEL, text)
        for n in (alice, bob, carol):
            await wait_until(lambda n=n: n.texts(CHANNEL) == texts, 20,
                             what=f"{n.nick} shows every message once, in order")
        assert {e["text"] for e in dropped} == {"m2", "m5", "m8"}
        for n in (bob, carol):
            found = gaps(n, "withheld")
            assert found and all(g.maintainer == str(bad.node.address) for g in found)
            assert sum(g.count for g in found) == 3
            replicas = {str(s.node.address) for s in ring.successors_of(bad, 3)}
            assert all(g.replica in replicas for g in found), (found, replicas)
            assert not gaps(n, "lost") and not gaps(n, "unreplicated")
        # and honest traffic keeps flowing: carol's reply reaches everyone
        await carol.user.send(CHANNEL, "thanks")
        for n in (alice, bob):
            await wait_until(lambda n=n: n.texts(CHANNEL)[-1:] == ["thanks"], 10,
                             what=f"{n.nick} hears carol")


@virtual_time
async def test_gaps__one_authors_messages_withheld_reach_everyone_and_the_author():
    async with sim_ring(["alice", "bob", "carol", "dave"], **FAST_GAPS) as ring:
        bad = await sybil(ring, **FAST_GAPS)
        alice, bob, carol = await members(ring, "alice", "bob", "carol")
        drop_deliveries(bad, lambda e: e.get("nick") == "alice")
        order = []
        for i in range(3):
            for who in (alice, carol):
                text = f"{who.nick} {i}"
                await who.user.send(CHANNEL, text)
                order.append(text)
        for n in (alice, bob, carol):
            await wait_until(lambda n=n: n.texts(CHANNEL) == order, 30,
                             what=f"{n.nick} shows every message once, in order")
            assert sum(g.count for g in gaps(n, "withheld")) == 3, gaps(n)
        # the author got its own lines back (its pending marks turn to delivered)
        assert not alice.of(ev.Error)


@virtual_time
async def test_gaps__renumbered_to_hide_a_drop_the_authors_count_still_shows_it():
    """The maintainer hides a message and renumbers what follows, so its seq shows no
    gap: the author's signed count does."""
    async with sim_ring(["alice", "bob", "carol"], **FAST_GAPS) as ring:
        bad = await sybil(ring, **FAST_GAPS)
        alice, bob = await members(ring, "alice", "bob")
        feeds = bad.service.feeds
        honest = feeds.call_deliver
        hidden: dict[tuple, list[int]] = {}

        async def renumbering(feed, entries, rejoin=False):
            gone = hidden.setdefault(feed.member, [])
            out = []
            for e in entries:
                if e.get("text") == "secret":
                    gone.append(e["seq"])
                else:
                    out.append({**e, "seq": e["seq"] - sum(s < e["seq"] for s in gone)})
            return await honest(feed, out, rejoin)

        feeds.call_deliver = renumbering
        sent = ["one", "secret", "three", "four"]
        for text in sent:
            await alice.user.send(CHANNEL, text)
        await wait_until(lambda: sorted(bob.texts(CHANNEL)) == sorted(sent), 20,
                         what="bob gets the hidden message from a replica")
        assert len(bob.texts(CHANNEL)) == 4
        assert bob.texts(CHANNEL)[:1] == ["one"]
        found = gaps(bob, "withheld")
        assert sum(g.count for g in found) == 1 and found[0].maintainer == str(bad.node.address)
        assert any(hidden.values()), "the maintainer really hid it"


@virtual_time
async def test_gaps__acknowledged_but_never_replicated_is_said_to_the_sender():
    """The Sybil of the issue: it acknowledges sends (the sender saw "sent") and keeps
    nothing. No replica has the message, so there is nothing to fetch: the sender, member
    or not, is told, and the ring log says it."""
    async with sim_ring(["alice", "bob", "carol"], **FAST_GAPS) as ring:
        bad = await sybil(ring, **FAST_GAPS)
        alice, bob = await members(ring, "alice", "bob")
        carol = next(n for n in ring.nodes if n.users and n.nick == "carol")   # not a member
        await alice.user.send(CHANNEL, "kept")      # honest first: the channel has a log
        await wait_until(lambda: bob.texts(CHANNEL) == ["kept"], 10, what="bob hears alice")
        ch = bad.holdings.channel(CHANNEL)
        swallowed = []

        async def lying(d: dict) -> dict:
            swallowed.append(d)
            return {"ok": True, "seq": ch.last_seq + 1, "members": len(ch.present())}

        bad.node.register_command(p.SEND.type, lying)
        _, seq = await alice.user.send(CHANNEL, "swallowed")
        assert alice.of(ev.Sent, text="swallowed", seq=seq), "the sender saw it acknowledged"
        await carol.user.send(CHANNEL, "from outside")
        for n in (alice, carol):
            await wait_until(lambda n=n: gaps(n, "unreplicated"), 20,
                             what=f"{n.nick} is told its message was not replicated")
            assert gaps(n, "unreplicated")[0].maintainer == str(bad.node.address)
            assert any("no replica has it" in e.message for e in n.of(ev.Error))
        assert len(swallowed) == 2
        assert "swallowed" not in bob.texts(CHANNEL)   # nothing to fetch: the limit


@virtual_time
async def test_gaps__an_honest_busy_ring_raises_no_alarm():
    """Joins, leaves, a node joining (migration) and one leaving, messages all along:
    every acknowledged message shown, no Gap anywhere."""
    nicks = ["ann", "bo", "cy", "di", "ed"]
    async with sim_ring(nicks, **FAST_GAPS) as ring:
        channels = ["general", "ops", "misc"]
        for n in ring.nodes:
            for channel in channels:
                await n.user.join(channel)
        acked: dict[str, list[str]] = {c: [] for c in channels}

        async def talk(n: ChatNode, rounds: int) -> None:
            for i in range(rounds):
                channel = channels[i % len(channels)]
                try:
                    await n.user.send(channel, f"{n.nick} {i}")
                    acked[channel].append(f"{n.nick} {i}")
                except Exception:  # noqa: BLE001 - not acknowledged: not promised
                    pass
                await asyncio.sleep(0.2)

        async def churn() -> None:
            await asyncio.sleep(1.0)
            await ring.add("fay", **FAST_GAPS)             # takes part of a range: migration
            await asyncio.sleep(1.0)
            ed = next(n for n in ring.nodes if n.users and n.nick == "ed")
            await ed.user.leave("ops")
            await asyncio.sleep(1.0)
            await ed.user.join("ops")
            await asyncio.sleep(1.0)
            await ring.add("gus", **FAST_GAPS)

        await asyncio.gather(churn(), *(talk(n, 24) for n in ring.nodes[:4]))
        stay = ring.nodes[:4]   # in every channel all along
        for n in stay:
            for channel in channels:
                await wait_until(lambda n=n, c=channel: set(acked[c]) <= set(n.texts(c)), 30,
                                 what=f"{n.nick} shows every acked message of #{channel}")
                assert len(n.texts(channel)) == len(set(n.texts(channel)))
        await asyncio.sleep(2 * FAST_GAPS["echo_deadline"])
        assert sum(len(v) for v in acked.values()) > 80
        assert not [g for n in ring.nodes for g in n.of(ev.Gap)]


@virtual_time
async def test_gaps__an_authors_message_numbered_below_the_last_one_shown_is_found_in_the_log():
    """Two copies numbered one of alice's messages differently: every holder has it, but
    at a seq below her last message bob was shown, where his maintainer's feed (past it)
    never goes. Her count skipping tells bob; he reads the holders' whole logs (the honest
    maintainer's too) and shows it, once, not reporting it lost."""
    async with sim_ring(["alice", "bob", "carol", "dave"], **FAST_GAPS) as ring:
        alice, bob = await members(ring, "alice", "bob")
        for text in ("m0", "m1"):
            await alice.user.send(CHANNEL, text)
        await wait_until(lambda: bob.texts(CHANNEL) == ["m0", "m1"], what="m0, m1 at bob")
        me = alice.user.me
        m2 = Entry.of(1, me.sign(CHANNEL, "msg", "m2", count=me.next_count(CHANNEL)))
        owner = ring.owner(channel_key(CHANNEL))
        for holder in [owner, *ring.successors_of(owner, 3)]:
            ch = (holder.holdings.channel(CHANNEL)
                  or holder.holdings.replicas.get("channel", CHANNEL))
            ch.log.insert(0, m2)             # numbered 1, as the join there is
        await alice.user.send(CHANNEL, "m3")
        await wait_until(lambda: sorted(bob.texts(CHANNEL)) == ["m0", "m1", "m2", "m3"], 20,
                         what="m2 found at bob")
        await wait_until(lambda: settled(bob), 20, what="bob's gap detector settled")
        assert sorted(bob.texts(CHANNEL)) == ["m0", "m1", "m2", "m3"]
        assert not gaps(bob, "lost") and not gaps(bob, "withheld")


@virtual_time
async def test_gaps__own_message_overdue_brings_the_unseen_stretch_before_it_in_order():
    """The maintainer acknowledges and delivers nothing (nemesis seed 4242: a node back at
    #red's key numbered a fresh copy from 1 while the members' feed was another copy's,
    past 1,600). A member whose own message is overdue reads the holders' logs: it shows
    what it had not seen before its message too, in the copy's order, not only what
    follows it (then the author counts brought those later, each member cutting at its own
    message's seq: one sender's messages in different orders at two members)."""
    for afresh in (False, True):
        await _overdue_in_order(afresh)


async def _overdue_in_order(afresh: bool) -> None:
    async with sim_ring(["alice", "bob", "carol", "dave"], **FAST_GAPS) as ring:
        bad = await sybil(ring, **FAST_GAPS)
        alice, bob, carol = await members(ring, "alice", "bob", "carol")
        await carol.user.send(CHANNEL, "c0")
        for n in (alice, bob):
            await wait_until(lambda n=n: n.texts(CHANNEL) == ["c0"], 10, what="c0 shown")
        drop_deliveries(bad, lambda e: True)
        if afresh:   # the members' cursors follow another copy's numbering, far above
            for n in (alice, bob):
                n.user.memberships.gaps.tracks[CHANNEL].base = 1_600
        order = ["c0"]
        for who, text in ((carol, "c1"), (alice, "a1"), (carol, "c2"), (bob, "b1"),
                          (carol, "c3"), (alice, "a2")):
            await who.user.send(CHANNEL, text)
            order.append(text)
        for n in (alice, bob):
            await wait_until(lambda n=n: set(n.texts(CHANNEL)) == set(order), 30,
                             what=f"{n.nick} shows every message")
        await wait_until(lambda: settled(alice) and settled(bob), 30,
                         what="the gap detectors settled")
        for n in (alice, bob):
            assert n.texts(CHANNEL) == order, (n.nick, afresh)
