"""What a user's database gives the chat, on the simulated ring: history shown at start,
channels rejoined, unacknowledged lines resent with their ids, repeats dropped across
restarts, search. (The store itself: tests/core/test_store.py.)"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from core import events as ev
from core.chat.model.commands import Command, parse
from core.chat.model.ids import channel_key, name_key
from core.chat.model.limits import Limits
from core.chat.model.mailbox import Letter, Mailbox
from core.chat.model.sealed import seal
from core.chat.testing import ChatNode, SimRing, sim_ring
from core.chord import Address
from core.chord.testing import virtual_time, wait_until


def all_delivered(ring: SimRing, channel: str) -> bool:
    """Every member of ``channel`` has acknowledged its whole log (its maintainer's view)."""
    holdings = ring.owner(channel_key(channel)).holdings
    ch = holdings.channel(channel)
    return ch is not None and all(holdings.cursor(channel, m.key) == ch.last_seq
                                  for m in ch.present())


def messages(n, channel: str) -> list[ev.ChannelMessage]:
    return [e for e in n.events if isinstance(e, ev.ChannelMessage) and e.channel == channel]


async def add_ann(ring: SimRing) -> ChatNode:
    """ann, whose database is kept across her restarts, in the ring once it has settled."""
    ann = await ring.add("ann", keep=True)
    await ring.settle()
    return ann


class TestOutbox:
    @virtual_time
    async def test_user__a_line_is_on_disk_before_it_is_pending_and_delivered_after(self):
        async with sim_ring(["bo", "cy"]) as ring:
            ann = await add_ann(ring)
            store = ann.user.store
            seen: list[tuple[str, object]] = []
            ann.user.post = lambda e: seen.append((type(e).__name__,
                                                   store.get(getattr(e, "msg_id", "")).result()))
            await ann.user.execute(Command("send", ("room", "hello")))
            names = [name for name, _ in seen]
            assert names[:1] == ["Pending"] and "Delivered" in names
            assert seen[0][1].state == "pending"       # on disk when shown as pending
            assert seen[-1][1].state == "delivered"
            assert await store.outbox() == []

    @virtual_time
    async def test_user__a_line_typed_before_the_outbox_is_read_at_start_goes_once(self):
        async with sim_ring(["bo", "cy"]) as ring:
            ann = await add_ann(ring)
            item = ann.user.accept(Command("send", ("room", "early")))
            await item.committed                 # on disk, not yet sent: in the outbox
            await ann.user.resume()              # the start's read of the outbox comes after
            assert not ann.of(ev.Sent)           # not resent: its own command sends it
            await ann.user.deliver(item)
            assert [e.msg_id for e in ann.of(ev.Sent)] == [item.msg_id]

    @virtual_time
    async def test_user__killed_mid_burst_then_restarted_every_line_once(self):
        async with sim_ring(["bo", "cy", "di"]) as ring:
            ann = await add_ann(ring)
            for n in ring.nodes:
                await n.user.join("room")
            texts = [f"line {i}" for i in range(30)]
            burst = [asyncio.ensure_future(ann.user.execute(Command("send", ("room", t))))
                     for t in texts]
            await wait_until(lambda: len(ann.of(ev.Delivered)) >= 5, what="five delivered")
            await ring.restart(ann)          # kill -9 and start again: same database
            for t in burst:
                t.cancel()
            ann = ring.nodes[-1]
            await wait_until(lambda: ann.of(ev.Joined, channel="room"), what="rejoined")
            for n in ring.nodes[:3]:
                await wait_until(lambda n=n: len(messages(n, "room")) >= 30, what="30 lines")
            # no repeat can come once the resends are done and every member has
            # acknowledged the whole log
            await wait_until(ann.user.resumed.is_set, what="the resends done")
            await wait_until(lambda: all_delivered(ring, "room"), what="all delivered")
            for n in ring.nodes[:3]:
                assert [e.text for e in messages(n, "room")] == texts   # once each, in order
            # the restarted sender shows each line it had accepted, from its history
            history = [m for h in ann.of(ev.History) for m in h.messages]
            assert [m["text"] for m in history] == texts[:len(history)]
            await wait_until(lambda: not ann.user.store.outbox().result(), what="outbox empty")
            assert {e.msg_id for e in ann.of(ev.Delivered)} >= {
                m["msg_id"] for m in history if m["state"] == "pending"}


class TestRestart:
    @virtual_time
    async def test_user__a_keyed_channel_is_rejoined_with_its_key_after_a_restart(self):
        """The key (+k) ann joined with is kept with the channel in her database, and so is
        the one an operator sets later: each restart rejoins without a command."""
        async with sim_ring(["bo", "cy"]) as ring:
            ann = await add_ann(ring)
            bo = ring.nodes[0]
            await bo.user.join("vault")
            await bo.user.mode("vault", "+k sesame")
            await ann.user.execute(parse("join #vault sesame"))   # as typed
            assert "vault" in ann.user.joined
            ann = await ring.restart(ann)   # a new address: a new member, asked for the key
            await wait_until(lambda: ann.of(ev.Joined, channel="vault"), what="rejoined")
            assert not ann.of(ev.Error)
            await bo.user.mode("vault", "+k wine")
            await wait_until(lambda: ann.of(ev.Modes, change="+k wine"), what="the new key")
            await wait_until(lambda: ann.user.joined["vault"].key == "wine")
            ann = await ring.restart(ann)
            await wait_until(lambda: ann.of(ev.Joined, channel="vault"), what="rejoined")
            assert not ann.of(ev.Error)
            await bo.user.send("vault", "still here?")
            await wait_until(lambda: [e for e in messages(ann, "vault")
                                      if e.text == "still here?"], what="a new line")
            maintainer = ring.owner(channel_key("vault")).holdings.channel("vault")
            assert maintainer.modes.value("k") == "wine"
            assert any(m.nick == "ann" and m.address == ann.user.address
                       for m in maintainer.present())

    @virtual_time
    async def test_user__restart_shows_history_and_rejoins_without_a_command(self):
        async with sim_ring(["bo", "cy"]) as ring:
            ann = await add_ann(ring)
            bo = ring.nodes[0]
            await ann.user.join("room")
            await bo.user.join("room")
            await bo.user.send("room", "from bo")
            await ann.user.send("room", "from ann")
            await bo.user.msg("ann", "psst")
            await wait_until(lambda: ann.of(ev.PrivateMessage, text="psst"))
            await wait_until(lambda: len(messages(ann, "room")) == 2)
            ann = await ring.restart(ann)
            history = {h.conversation: [m["text"] for m in h.messages]
                       for h in ann.of(ev.History)}
            assert history == {"#room": ["from bo", "from ann"], "bo": ["psst"]}
            assert ann.events.index(ann.of(ev.History)[0]) < ann.events.index(ann.of(ev.Ready)[0])
            await wait_until(lambda: ann.of(ev.Joined, channel="room"), what="rejoined")
            assert messages(ann, "room") == []     # the replayed history was already shown
            await bo.user.send("room", "welcome back")
            await wait_until(lambda: messages(ann, "room"), what="a new line")
            assert [e.text for e in messages(ann, "room")] == ["welcome back"]

    @virtual_time
    async def test_user__a_private_message_repeated_after_a_restart_is_dropped(self):
        async with sim_ring(["bo", "cy"]) as ring:
            ann = await add_ann(ring)
            bo = ring.nodes[0]
            sealed = seal(bo.user.identity, ann.user.identity.key, "once", "9" * 32, to="ann")
            payload = {"msg_id": "9" * 32, "to": "ann", "sealed": sealed}
            assert (await ann.user.receive_private(payload))["ok"]
            assert ann.of(ev.PrivateMessage, text="once")
            ann = await ring.restart(ann)
            assert (await ann.user.receive_private(payload))["ok"]
            assert ann.of(ev.PrivateMessage) == []

    @virtual_time
    async def test_user__a_channel_left_is_not_rejoined_but_one_left_by_exit_is(self):
        async with sim_ring(["bo"]) as ring:
            ann = await ring.add("ann", keep=True)
            await ann.user.join("kept")
            await ann.user.join("gone")
            await ann.user.leave("gone")
            await ann.user.quit()
            ann = await ring.restart(ann)
            await wait_until(ann.user.resumed.is_set, what="the rejoins done")
            assert [e.channel for e in ann.of(ev.Joined)] == ["kept"]


class TestSearch:
    @virtual_time
    async def test_user__search_finds_lines_newest_first(self):
        async with sim_ring(["bo"]) as ring:
            ann = await ring.add("ann", keep=True)
            bo = ring.nodes[0]
            await ann.user.join("room")
            await bo.user.send("room", "the quick fox")
            await ann.user.send("room", "a Quick reply")
            await wait_until(lambda: len(messages(ann, "room")) == 2)
            hits = await ann.user.search("quick")
            assert [h["text"] for h in hits] == ["a Quick reply", "the quick fox"]
            assert hits[1]["conversation"] == "#room" and hits[1]["from"] == "bo"
            assert ann.of(ev.SearchResults)[-1].hits == tuple(hits)


async def acquainted(ring: SimRing) -> tuple[ChatNode, ChatNode]:
    """ann and bo, with databases, after ann's first message to bo (each pinned the
    other's key)."""
    ann = await ring.add("ann", keep=True)
    bo = await ring.add("bo", keep=True)
    await ring.settle()
    await ann.user.msg("bo", "hello bo")
    await wait_until(lambda: bo.of(ev.PrivateMessage, text="hello bo"))
    return ann, bo


class TestMailbox:
    @virtual_time
    async def test_user__a_message_to_an_offline_pinned_nick_waits_and_arrives_once(self):
        async with sim_ring(["cy", "di", "ed"], receipt_interval=0.5) as ring:
            ann, bo = await acquainted(ring)
            await bo.user.quit()                          # bo goes offline (exit)
            await ring.down(bo)
            await ring.settle()
            await ann.user.execute(Command("msg", ("bo", "while you were away")))
            assert not ann.of(ev.Error), ann.of(ev.Error)
            [pending] = [e for e in ann.of(ev.Pending) if e.text == "while you were away"]
            assert not [e for e in ann.of(ev.Delivered) if e.msg_id == pending.msg_id]
            box = ring.owner(name_key("bo")).holdings.maintained.get("mailbox", "bo")
            assert box is not None and len(box.letters) == 1
            assert "while you were away" not in str(box.to_wire())   # sealed
            ann = await ring.restart(ann)                 # the sender restarts...
            await ring.down(ann)                          # ...and is gone when bo is back
            await ring.settle()
            bo = await ring.up(bo)
            await wait_until(lambda: bo.of(ev.PrivateMessage, text="while you were away"))
            # taken: the mailbox keeps it as a tombstone, so no take can bring it again
            await wait_until(lambda: not ring.owner(name_key("bo")).holdings.maintained.get(
                "mailbox", "bo").letters, what="the letter taken")
            await wait_until(bo.user.resumed.is_set, what="bo's collection done")
            assert len(bo.of(ev.PrivateMessage, text="while you were away")) == 1
            assert not ring.owner(name_key("bo")).holdings.maintained.get(
                "mailbox", "bo").letters
            ann = await ring.up(ann)
            await wait_until(lambda: [e for e in ann.of(ev.Delivered)
                                      if e.msg_id == pending.msg_id], what="the receipt")
            bo = await ring.restart(bo)
            await wait_until(bo.user.resumed.is_set, what="bo's collection done")
            assert bo.of(ev.PrivateMessage) == []       # taken once: not again

    @virtual_time
    async def test_user__a_message_to_a_nick_its_node_does_not_serve_yet_goes_to_its_mailbox(self):
        # nemesis seed 4242: the recipient's process restarted at its address and had not
        # registered its user yet; "bo is not served by this node" was an error, and the
        # line stayed in the sender's outbox until the sender's next start (280 s and more)
        async with sim_ring(["cy", "di", "ed"], receipt_interval=0.5) as ring:
            ann, bo = await acquainted(ring)
            await ring.down(bo)                           # killed...
            await ring.settle()
            back = await ring.add(None, address=bo.node.address)   # ...up, serving no one yet
            await ring.settle()
            await ann.user.execute(Command("msg", ("bo", "are you there")))
            assert not ann.of(ev.Error), ann.of(ev.Error)
            box = ring.owner(name_key("bo")).holdings.maintained.get("mailbox", "bo")
            assert box is not None and len(box.letters) == 1
            await ann.user.msg("cy", "others still hear me")
            await wait_until(lambda: ring.nodes[0].of(ev.PrivateMessage,
                                                      text="others still hear me"))
            await ring.down(back)
            await ring.settle()
            bo = await ring.add("bo", keep=True, data_dir=bo.service.data_dir,
                                address=bo.node.address)   # back at its address
            await wait_until(lambda: bo.of(ev.PrivateMessage, text="are you there"),
                             what="the letter taken")
            [pending] = [e for e in ann.of(ev.Pending) if e.text == "are you there"]
            await wait_until(lambda: [e for e in ann.of(ev.Delivered)
                                      if e.msg_id == pending.msg_id], what="the receipt")
            assert len(bo.of(ev.PrivateMessage, text="are you there")) == 1

    @pytest.mark.parametrize("base, seed", [(57, 8), (50, 7)],
                             ids=["letter-dropped", "join-refused"])
    @virtual_time
    async def test_mailbox__graceful_exits_right_after_joins_lose_no_letter(self, base, seed):
        # The schedule of test_process_persistence.py's restart test, without waiting for
        # the ring to settle between steps (issue 23). These ids and round timings (the
        # rounds' start offsets come from ``random``) left the first node leaving before
        # its first stabilize: bob, pointing at it but nobody's neighbour, was alone, kept
        # the letter unreplicated and dropped it on exit ("no live successor"); with the
        # second, carol was left pointing at the gone node, and the restart could not join
        # through her ("knows no live successor").
        random.seed(seed)
        ring = SimRing(receipt_interval=0.5, prune_grace=2.0)
        at = [Address(f"10.0.0.{base + i}", 4000) for i in range(4)]
        try:
            alice = await ring.add("alice", keep=True, address=at[0])
            await asyncio.sleep(0.1)
            bob = await ring.add("bob", keep=True, via=alice, address=at[1])
            await asyncio.sleep(0.1)
            carol = await ring.add("carol", keep=True, via=alice, address=at[2])
            await bob.user.msg("alice", "hi alice")
            await wait_until(lambda: alice.of(ev.PrivateMessage, text="hi alice"))
            await ring.exit(alice)
            await bob.user.execute(Command("msg", ("alice", "while you were away")))
            assert bob.of(ev.Pending, text="while you were away"), bob.of(ev.Error)
            await ring.exit(bob)
            alice = await ring.add("alice", keep=True, via=carol, address=at[3],
                                   data_dir=alice.service.data_dir)
            await wait_until(lambda: alice.of(ev.PrivateMessage, text="while you were away"),
                             what="the letter:\n" + ring.where("mailbox", "alice"))
        finally:
            await ring.stop()

    @virtual_time
    async def test_user__a_nick_never_seen_is_still_unknown_and_a_full_mailbox_says_so(self):
        async with sim_ring(["cy", "di"], limits=Limits(mailbox_letters=2)) as ring:
            ann = await ring.add("ann", keep=True)
            bo = await ring.add("bo")
            await ring.settle()
            await ann.user.execute(Command("msg", ("zed", "anyone?")))
            assert "unknown nick 'zed'" in ann.of(ev.Failed)[-1].reason
            assert ann.of(ev.Failed)[-1].conversation == "zed"
            assert not any("zed" in e.message for e in ann.of(ev.Error))   # said once
            assert await ann.user.search("anyone") == []      # not kept
            await ann.user.msg("bo", "hi")
            await ring.crash(bo)
            await ring.settle()
            for i in range(3):
                await ann.user.execute(Command("msg", ("bo", f"later {i}")))
            assert "the mailbox of bo is full" in ann.of(ev.Failed)[-1].reason
            assert len(ann.of(ev.Failed)) == 2

    @virtual_time
    async def test_mailbox__letters_that_reach_the_owner_after_the_nick_took_are_sent_on(self):
        # a join that moved the mailbox a moment late, or a healed partition that merged
        # the other side's: the owner reminds the registered nick, which takes them
        async with sim_ring(["bo", "cy", "di"]) as ring:
            ann = await ring.add("ann", keep=True)
            await ring.settle()
            bo = ring.nodes[0]
            sealed = seal(bo.user.identity, ann.user.identity.key, "kept on the other side",
                          "8" * 32, to="ann")
            letter = Letter("8" * 32, "bo", time.time(), sealed)
            box = Mailbox("ann")
            box.add(letter)
            owner = ring.owner(name_key("ann"))
            owner.holdings.maintain(box)   # as a merge would bring it
            await wait_until(lambda: ann.of(ev.PrivateMessage, text="kept on the other side"),
                             what="the letter, taken after a reminder")
            await wait_until(lambda: not owner.holdings.maintained.get("mailbox", "ann")
                             .waiting(), what="the letter let go")
            assert len(ann.of(ev.PrivateMessage, text="kept on the other side")) == 1


class TestClockJump:
    @virtual_time
    async def test_outbox__a_line_signed_while_the_clock_jumped_is_signed_again_and_goes_once(self):
        """A line typed while the node's clock is 20 minutes ahead is signed with that time
        and refused by the maintainer as outside its replay window; signed again (the same
        id) once the clock is right, it is acknowledged once, shown once, and the user is
        told why it waited."""
        async with sim_ring(["bo", "cy"]) as ring:
            # ann measures her clock against the ring's at her start, then not for 30 rounds
            # of 10 s: the jump below stays uncorrected while the test runs
            ann = await ring.add("ann", keep=True, maintenance_interval=10.0)
            await ring.settle()
            room = next(c for c in (f"room{i}" for i in range(50))
                        if ring.owner(channel_key(c)) is not ann)   # refused by another node
            for n in ring.nodes:
                await n.user.join(room)
            raw = ann.service.clock.raw
            ann.service.clock.raw = lambda: raw() + 1200     # the clock jumps 20 min ahead
            sending = asyncio.ensure_future(ann.user.execute(Command("send", (room, "hi"))))
            await wait_until(lambda: any(f"#{room}" in e.text for e in ann.of(ev.Info)),
                             what="ann told")
            await asyncio.sleep(3)
            assert not ann.of(ev.Delivered)                   # refused while the clock is off
            ann.service.clock.raw = raw                       # and right again
            await asyncio.wait_for(sending, 60)
            [pending] = ann.of(ev.Pending)
            assert [e.msg_id for e in ann.of(ev.Delivered)] == [pending.msg_id]
            assert [e.msg_id for e in ann.of(ev.Sent)] == [pending.msg_id]
            assert not ann.of(ev.Error)
            assert any("clock" in e.text and f"#{room}" in e.text for e in ann.of(ev.Info))
            for n in ring.nodes:
                await wait_until(lambda n=n: "hi" in n.texts(room), what="hi shown")
            await asyncio.sleep(2)
            for n in ring.nodes:
                assert n.texts(room) == ["hi"]
            assert await ann.user.store.outbox() == []
