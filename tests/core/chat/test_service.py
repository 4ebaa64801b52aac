"""The chat service on the simulated ring: channels, routing and its replies, nick claims,
private messages, several users on one node, the exit sequence, the events it posts."""

from __future__ import annotations

import asyncio

import pytest

from core import events as ev
from core.chat.model.commands import Command
from core.chat.model.entries import sign_entry
from core.chat.model.ids import channel_key, name_key
from core.chat.service import ChatError, NickTaken
from core.chat.testing import now, sim_ring
from core.chat.users.keyring import KeysError, open_user
from core.chat.wire import verbs as p
from core.chord import RemoteError
from core.chord.ids import RING
from core.chord.testing import virtual_time, wait_until
from core.datadir import DataDir


@virtual_time
async def test_service__channel_send_reaches_members_in_order_once():
    async with sim_ring(["ann", "bo", "cy", "di"]) as ring:
        nodes = ring.nodes
        for n in nodes[1:]:
            await n.user.join("room")
        sent = [await nodes[0].user.send("room", f"m{i}") for i in range(20)]
        assert [seq for _, seq in sent] == sorted(seq for _, seq in sent)
        for n in nodes[1:]:
            await wait_until(lambda n=n: len(n.texts("room")) == 20, what="20 messages")
            assert n.texts("room") == [f"m{i}" for i in range(20)]
        assert nodes[0].texts("room") == []
        assert len(nodes[0].of(ev.Sent, channel="room")) == 20


@virtual_time
async def test_service__a_node_not_owning_a_key_answers_not_owner():
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        key = channel_key("elsewhere")
        other = next(n for n in ring.nodes if not n.node.is_ours(key))
        entry = sign_entry(other.user.identity, "elsewhere", "msg", "x" * 32,
                           address=str(other.node.address), text="hi", at=now())
        reply = await other.node.user_command(
            other.node.address, p.SEND.type, {"key": f"{key:x}", "entry": entry.to_wire()})
        assert reply == p.NOT_OWNER
        assert other.holdings.channel("elsewhere") is None


@virtual_time
async def test_service__bad_payload_is_a_remote_error_and_node_keeps_serving():
    async with sim_ring(["ann", "bo"]) as ring:
        ann, bo = ring.nodes
        with pytest.raises(RemoteError, match="payload lacks 'entry'"):
            await ann.node.user_command(bo.node.address, p.JOIN.type, {"key": "1"})
        with pytest.raises(RemoteError, match="payload must be an object"):
            await ann.node.user_command(bo.node.address, p.MIGRATE.type, "junk")
        with pytest.raises(RemoteError, match="'key' must be hex"):
            await ann.node.user_command(bo.node.address, p.NAME_GET.type,
                                        {"key": "xyz", "nick": "ann"})
        await ann.user.msg("bo", "still fine")
        await wait_until(lambda: bo.of(ev.PrivateMessage, text="still fine"))


@virtual_time
async def test_send__the_same_message_id_is_stored_and_shown_once():
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        ann, bo, _ = ring.nodes
        await bo.user.join("dup")
        key = channel_key("dup")
        entry = sign_entry(ann.user.identity, "dup", "msg", "d" * 32,
                           address=str(ann.node.address), text="retried", at=now())
        payload = {"key": f"{key:x}", "entry": entry.to_wire()}
        replies = [await ann.node.user_command(ring.owner(key).node.address, p.SEND.type,
                                               payload) for _ in range(3)]
        assert len({r["seq"] for r in replies}) == 1
        await ann.user.send("dup", "marker")
        await wait_until(lambda: "marker" in bo.texts("dup"))
        assert bo.texts("dup") == ["retried", "marker"]


@virtual_time
async def test_send__same_text_twice_is_two_messages_and_a_non_member_may_send():
    async with sim_ring(["ann", "bo"]) as ring:
        ann, bo = ring.nodes
        await bo.user.join("chat")
        first = await ann.user.send("chat", "again")
        second = await ann.user.send("chat", "again")
        assert first[0] != second[0] and first[1] < second[1]
        await wait_until(lambda: bo.texts("chat") == ["again", "again"])
        assert ann.texts("chat") == []


@virtual_time
async def test_channel__joins_and_leaves_are_announced_to_the_other_members():
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        ann, bo, _ = ring.nodes
        await ann.user.join("news")
        assert sorted(await bo.user.join("news")) == ["ann", "bo"]
        await wait_until(lambda: ann.of(ev.MemberJoined, channel="news", nick="bo"))
        await bo.user.leave("news")
        assert bo.of(ev.Left, channel="news")
        await wait_until(lambda: ann.of(ev.MemberLeft, channel="news", nick="bo",
                                        reason="left"))
        assert not bo.of(ev.MemberJoined) and not ann.of(ev.MemberJoined, nick="ann")
        with pytest.raises(ChatError, match="not in #news"):
            await bo.user.leave("news")
        await ann.user.join("other")
        with pytest.raises(ChatError, match="already in #other"):
            await ann.user.join("other")


@virtual_time
async def test_names__taken_by_a_live_node_is_refused_a_dead_holders_nick_is_claimable():
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        with pytest.raises(NickTaken, match="already taken"):
            await ring.add("Bo", ring.nodes[0])
        victim = ring.nodes[1]
        await ring.crash(victim)          # no exit sequence: the name record stays
        await ring.settle()
        claimer = await ring.add("bo", ring.nodes[0])
        await ring.nodes[0].user.msg("bo", "you are the new bo")
        assert claimer.of(ev.PrivateMessage, text="you are the new bo")


@virtual_time
async def test_names__two_claims_of_one_nick_at_once_exactly_one_wins():
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        claims = await asyncio.gather(ring.add("zed", ring.nodes[0]),
                                      ring.add("zed", ring.nodes[2]), return_exceptions=True)
        winners = [c for c in claims if not isinstance(c, Exception)]
        losers = [c for c in claims if isinstance(c, Exception)]
        assert len(winners) == 1 and len(losers) == 1, claims
        assert isinstance(losers[0], NickTaken) and "zed" in str(losers[0])
        await ring.nodes[0].user.msg("zed", "hi zed")
        assert winners[0].of(ev.PrivateMessage, text="hi zed")


@virtual_time
async def test_msg__unknown_nick_and_unknown_id_raise_chat_errors_a_full_id_reaches():
    async with sim_ring(["ann", "bo"]) as ring:
        ann, bo = ring.nodes
        with pytest.raises(ChatError, match="unknown nick 'nobody'"):
            await ann.user.msg("nobody", "hi")
        ids = sorted(n.node.id for n in ring.nodes)
        gap = next(f"{i:040x}"[:8] for i in range(0, RING, RING // 256)
                   if not any(f"{x:040x}".startswith(f"{i:040x}"[:8]) for x in ids))
        with pytest.raises(ChatError, match="no node has an id starting with"):
            await ann.user.msg("@" + gap, "hi")
        await ann.user.msg("@" + bo.user.id_hex, "full id")
        await ann.user.msg("@" + bo.user.id_hex[:10], "by prefix")
        await wait_until(lambda: bo.of(ev.PrivateMessage, text="by prefix"))
        got = bo.of(ev.PrivateMessage, text="full id")
        assert got and got[0].from_ == "ann" and not got[0].outgoing
        assert ann.of(ev.PrivateMessage, text="full id", outgoing=True)


@virtual_time
async def test_user__execute_runs_commands_and_turns_errors_into_events():
    async with sim_ring(["ann", "bo"]) as ring:
        ann, bo = ring.nodes
        await bo.user.execute(Command("join", ("lobby",)))
        await ann.user.execute(Command("send", ("lobby", "hello")))
        await wait_until(lambda: bo.texts("lobby") == ["hello"])
        await ann.user.execute(Command("msg", ("nobody", "hi")))
        # said once, by the Failed event of the line (no Error repeats it)
        assert "unknown nick 'nobody'" in ann.of(ev.Failed)[-1].reason
        assert not any("nobody" in e.message for e in ann.of(ev.Error))
        await ann.user.execute(Command("status"))
        assert ann.of(ev.Info)[-1].text.startswith("ann id ")
        await ann.user.execute(Command("whois", ("bo",)))
        whois = ann.of(ev.Whois)[-1]
        assert (whois.address, whois.id) == (str(bo.node.address), bo.user.id_hex)
        assert whois.fingerprint == bo.user.fingerprint
        await ann.user.execute(Command("search", ("x",)))
        assert "not run by the chat service" in ann.of(ev.Error)[-1].message


@virtual_time
async def test_users__two_users_on_one_node_chat_with_a_user_on_another():
    async with sim_ring(["ann", "bo"]) as ring:
        home, away = ring.nodes
        cy = await ring.add_user(home, "cy")
        with pytest.raises(NickTaken, match="already served by this node"):
            await ring.add_user(home, "CY")
        assert sorted(home.service.users) == ["ann", "cy"]
        for user in (home.user, cy, away.user):
            await user.join("trio")
        await cy.send("trio", "from cy")
        await away.user.send("trio", "from bo")
        for nick, n in (("ann", home), ("cy", home), ("bo", away)):
            await wait_until(lambda n=n, nick=nick: n.texts("trio", nick) ==
                             ["from cy", "from bo"], what=f"both messages at {nick}")
        # private messages name the recipient: each reaches the one user it is for
        await away.user.msg("cy", "to cy")
        await away.user.msg("ann", "to ann")
        await cy.msg("ann", "next door")

        def private(nick):
            return [e.text for e in home.by_user[nick]
                    if isinstance(e, ev.PrivateMessage) and not e.outgoing]
        await wait_until(lambda: private("cy") == ["to cy"]
                         and sorted(private("ann")) == ["next door", "to ann"])
        # one quits: it leaves its channels and its nick; the node and the other user stay
        await home.service.remove_user(cy)
        await wait_until(lambda: away.of(ev.MemberLeft, channel="trio", nick="cy"))
        # bo pinned cy's key: the message waits in cy's mailbox (tests/core/chat/
        # test_persistence.py); a nick bo never met is unknown
        await away.user.msg("cy", "gone?")
        assert away.of(ev.Info)[-1].text.startswith("cy is offline")
        with pytest.raises(ChatError, match="unknown nick 'dee'"):
            await away.user.msg("dee", "anyone?")
        await away.user.send("trio", "still here")
        await wait_until(lambda: home.texts("trio", "ann")[-1:] == ["still here"])
        assert home.texts("trio", "cy") == ["from cy", "from bo"]


@virtual_time
async def test_exit__steps_are_events_and_bye_is_last():
    async with sim_ring(["ann", "bo", "cy"]) as ring:
        leaver = ring.owner(name_key("ann"))
        await leaver.user.join("x")
        await leaver.service.exit()
        assert type(leaver.events[-1]) is ev.Bye
        steps = [e.step for e in leaver.of(ev.MigrationStep)]
        assert steps.index("leave") < steps.index("unname") < steps.index("leave-ring")
        assert not leaver.node.running
        rest = [n for n in ring.nodes if n is not leaver]
        await ring.settle()
        if leaver.nick != "ann":
            assert ring.owner(name_key("ann")).holdings.name("ann").present
        with pytest.raises(ChatError, match="unknown nick"):
            await rest[0].user.msg(leaver.nick, "gone?")


@virtual_time
async def test_maintainer__member_counts_in_its_log_are_singular_for_one():
    async with sim_ring(["ann"]) as ring:
        ann = ring.nodes[0]
        await ann.user.join("room")
        await ann.user.leave("room")
        logs = [e.text for e in ann.of(ev.Log) if e.text.startswith("#room: ")]
        assert logs == ["#room: ann joined (1 member)", "#room: ann left (0 members)"]


@virtual_time
async def test_service__ring_changes_are_posted_as_fields_not_text():
    async with sim_ring(["ann"]) as ring:
        ann = ring.nodes[0]
        me = str(ann.node.address)
        assert ann.of(ev.RingChange, kind="started", new=me, bootstrap=None)
        bo_node = await ring.add("bo", ann)
        bo = str(bo_node.node.address)
        await wait_until(lambda: ann.of(ev.RingChange, kind="predecessor", old=None, new=bo),
                         what="ann's predecessor change to bo")
        assert bo_node.of(ev.RingChange, kind="started", new=bo, bootstrap=me)
        await wait_until(lambda: ann.of(ev.RingChange, kind="successor", old=me, new=bo),
                         what="ann's successor change to bo")
        change = ann.of(ev.RingChange, kind="predecessor")[0]
        assert change.to_json() == {"event": "ring_change", "kind": "predecessor", "old": None,
                                    "new": bo, "bootstrap": None, "count": None,
                                    "at": change.at}
        # no log line says the same in words
        assert not [e for e in ann.events if isinstance(e, ev.Log) and "predecessor" in e.text]
        assert ann.of(ev.RingStatus)[-1].predecessor == bo


@virtual_time
async def test_users__keys_handed_in_are_released_when_the_user_is_refused(tmp_path):
    async with sim_ring(["ann"]) as ring:
        service = ring.nodes[0].service
        data_dir = DataDir(tmp_path)
        keys = open_user(data_dir, "ANN")   # held here: only a release lets the lock go
        with pytest.raises(KeysError):
            open_user(data_dir, "ANN")      # a lock still held is refused
        with pytest.raises(NickTaken, match="already served"):
            await service.add_user("ANN", lambda e: None, keys)
        open_user(data_dir, "ANN").release()   # released by the refusal: it opens again
        service.range.leaving = True
        keys = open_user(data_dir, "cy")
        with pytest.raises(ChatError, match="leaving"):
            await service.add_user("cy", lambda e: None, keys)
        open_user(data_dir, "cy").release()
        service.range.leaving = False
