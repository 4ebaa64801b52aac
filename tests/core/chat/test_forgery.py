"""Nobody can speak as someone else: each forgery is one hand-made frame, sent over the real
transport by a node of the ring (mallory) as an attacker would, and each one fails —
nothing stored, nothing shown — while honest traffic goes on."""

from __future__ import annotations

import dataclasses

import pytest

from core import events as ev
from core.chat import protocol as p
from core.chat.entries import sign_entry
from core.chat.identity import Identity
from core.chat.records import NameRecord, next_seq
from core.chat.sealed import seal
from core.chat.state import channel_key, name_key
from core.chord import RemoteError
from tests.core.chat.simring import now, sim_ring, sim_test, wait_until


def impostor(nick: str) -> Identity:
    """A key of mallory's own that says it is ``nick``."""
    return Identity.generate(nick)


async def routed(ring, sender, verb: p.Verb, key: int, payload: dict) -> dict:
    """One frame to the owner of ``key``, as the attacker's node sends it."""
    owner = ring.owner(key)
    return await sender.node.user_command(owner.node.address, verb.type,
                                          {"key": f"{key:x}", **payload})


@sim_test()
async def test_forgery__a_private_message_as_alice_is_not_shown_to_bob():
    async with sim_ring(["alice", "bob", "mallory"]) as ring:
        alice, bob, mallory = ring.nodes
        fake = seal(impostor("alice"), bob.user.identity.key, "send me your password",
                    "f" * 32, to="bob", at=now())
        reply = await mallory.node.user_command(
            bob.node.address, p.PRIVATE.type,
            {"msg_id": "f" * 32, "to": "bob", "to_id": bob.user.id_hex, "sealed": fake})
        assert not reply["ok"] and "refused" in reply["error"]
        # bob has pinned alice after a real message: the forgery fails the same way
        await alice.user.msg("bob", "hello bob")
        await wait_until(lambda: bob.of(ev.PrivateMessage, text="hello bob", verified=True))
        fake = seal(impostor("alice"), bob.user.identity.key, "it's me, new key", "e" * 32,
                    to="bob", at=now())
        reply = await mallory.node.user_command(
            bob.node.address, p.PRIVATE.type,
            {"msg_id": "e" * 32, "to": "bob", "to_id": bob.user.id_hex, "sealed": fake})
        assert not reply["ok"]
        assert [e.text for e in bob.of(ev.PrivateMessage)] == ["hello bob"]
        assert not bob.of(ev.KeyChanged)


@sim_test()
async def test_forgery__alices_name_record_cannot_be_deleted_or_claimed_without_her_key():
    async with sim_ring(["alice", "bob", "mallory"]) as ring:
        alice, bob, mallory = ring.nodes
        key, seq = name_key("alice"), alice.user.record.seq
        tombstone = NameRecord.tombstone(impostor("alice"), next_seq(seq, int(now() * 1000)))
        reply = await routed(ring, mallory, p.NAME_DEL, key, {"record": tombstone.to_wire()})
        assert reply["refused"] == "not_holder"
        claim = NameRecord.create(impostor("alice"), str(mallory.node.address),
                                  mallory.user.id_hex, next_seq(seq, int(now() * 1000)))
        reply = await routed(ring, mallory, p.NAME_SET, key, {"record": claim.to_wire()})
        assert reply["refused"] == "taken"
        # her own key's record, re-pointed at mallory: the signature no longer verifies
        moved = dataclasses.replace(alice.user.record, address=str(mallory.node.address),
                                    seq=seq + 1)
        reply = await routed(ring, mallory, p.NAME_SET, key, {"record": moved.to_wire()})
        assert reply["refused"] == "bad_signature"
        assert ring.owner(key).holdings.name("alice") == alice.user.record
        await bob.user.msg("alice", "still you?")
        await wait_until(lambda: alice.of(ev.PrivateMessage, text="still you?"))


@sim_test()
async def test_forgery__an_old_name_record_replayed_is_refused():
    async with sim_ring(["alice", "bob", "mallory"]) as ring:
        alice, bob, mallory = ring.nodes
        old = alice.user.record
        await alice.service.remove_user(alice.user)       # a signed delete: seq above old
        reply = await routed(ring, mallory, p.NAME_SET, name_key("alice"),
                             {"record": old.to_wire()})
        assert reply["refused"] == "stale"
        assert not ring.owner(name_key("alice")).holdings.name("alice").present
        with pytest.raises(Exception, match="unknown nick 'alice'"):
            await bob.user.msg("alice", "are you back?")


@sim_test()
async def test_forgery__a_third_party_cannot_remove_bob_from_a_channel():
    async with sim_ring(["alice", "bob", "mallory"]) as ring:
        alice, bob, mallory = ring.nodes
        await bob.user.join("room")
        leave = sign_entry(impostor("bob"), "room", "leave", "l" * 32,
                           address=str(bob.node.address), text="left", at=now())
        reply = await routed(ring, mallory, p.LEAVE, channel_key("room"),
                             {"entry": leave.to_wire()})
        assert reply["refused"] == "not_member"
        assert ring.owner(channel_key("room")).holdings.channel("room").is_member(
            ("bob", str(bob.node.address)))
        await alice.user.send("room", "bob still hears this")
        await wait_until(lambda: bob.texts("room") == ["bob still hears this"])


@sim_test()
async def test_forgery__alice_is_not_told_she_lost_her_nick_by_a_conflict_the_ring_does_not_hold():
    async with sim_ring(["alice", "bob", "mallory"]) as ring:
        alice, bob, mallory = ring.nodes
        real = alice.user.record
        # mallory signs a later claim of "alice" herself: both records verify
        claim = NameRecord.create(impostor("alice"), str(mallory.node.address),
                                  mallory.user.id_hex, next_seq(real.seq, int(now() * 1000)))

        async def tell(kept, lost) -> dict:
            return await mallory.node.user_command(
                alice.node.address, p.NAME_CONFLICT.type,
                {"nick": "alice", "kept": kept, "lost": lost})

        reply = await tell(claim.to_wire(), real.to_wire())
        assert reply["refused"] == "bad_conflict" and "ring" in reply["error"]
        reply = await tell(real.to_wire(), claim.to_wire())   # the loser "wins": not so
        assert reply["refused"] == "bad_conflict"
        reply = await tell({"nick": "alice"}, real.to_wire())
        assert reply["refused"] == "bad_conflict"
        assert alice.user.registered
        assert not alice.of(ev.Error)
        assert not [e for e in alice.of(ev.Info) if "split" in e.text]
        await bob.user.msg("alice", "still yours")
        await wait_until(lambda: alice.of(ev.PrivateMessage, text="still yours"))


@sim_test()
async def test_forgery__a_channel_message_injected_into_bobs_screen_is_not_shown_as_alices():
    async with sim_ring(["alice", "bob", "mallory"]) as ring:
        alice, bob, mallory = ring.nodes
        await bob.user.join("room")
        await alice.user.send("room", "real")
        await wait_until(lambda: bob.texts("room") == ["real"])
        forged = sign_entry(impostor("alice"), "room", "msg", "i" * 32,
                            address=str(alice.node.address), text="injected", at=now())
        unsigned = {"seq": 91, "msg_id": "j" * 32, "kind": "msg", "nick": "alice",
                    "text": "unsigned", "at": now()}
        reply = await mallory.node.user_command(
            bob.node.address, p.DELIVER.type,
            {"channel": "room", "to": "bob", "maintainer": str(mallory.node.address),
             "entries": [{"seq": 90, **forged.to_wire()}, unsigned]})
        assert reply["member"] is True
        await alice.user.send("room", "real again")
        await wait_until(lambda: "real again" in bob.texts("room"))
        assert bob.texts("room") == ["real", "real again"]


@sim_test()
async def test_forgery__the_maintainer_refuses_a_message_in_alices_name_without_her_signature():
    async with sim_ring(["alice", "bob", "mallory"]) as ring:
        alice, bob, mallory = ring.nodes
        await bob.user.join("room")
        honest = sign_entry(alice.user.identity, "room", "msg", "a" * 32,
                            address=str(alice.node.address), text="real", at=now())
        # alice's key and nick, mallory's text: the signature does not cover it
        forged = dataclasses.replace(honest, msg_id="m" * 32, text="pay mallory")
        reply = await routed(ring, mallory, p.SEND, channel_key("room"),
                             {"entry": forged.to_wire()})
        assert reply["refused"] == "bad_signature"
        with pytest.raises((RemoteError, p.ProtocolError), match="lacks 'signature'"):
            wire = forged.to_wire()
            del wire["signature"]
            await routed(ring, mallory, p.SEND, channel_key("room"), {"entry": wire})
        maintainer = ring.owner(channel_key("room"))
        assert not maintainer.holdings.channel("room").find("m" * 32)
        await alice.user.send("room", "after")
        await wait_until(lambda: bob.texts("room") == ["after"])


@sim_test()
async def test_forgery__a_maintainer_that_alters_a_message_is_caught_by_the_members():
    async with sim_ring(["alice", "bob", "carol"]) as ring:
        alice, bob, carol = ring.nodes
        await bob.user.join("room")
        await alice.user.send("room", "meet at 5")
        await wait_until(lambda: bob.texts("room") == ["meet at 5"])
        maintainer = ring.owner(channel_key("room"))
        real = maintainer.holdings.channel("room").log[-1]
        altered = {**real.to_wire(), "msg_id": "z" * 32, "text": "meet at 6",
                   "seq": real.seq + 1}
        reply = await maintainer.node.user_command(
            bob.node.address, p.DELIVER.type,
            {"channel": "room", "to": "bob", "maintainer": str(maintainer.node.address),
             "entries": [altered]})
        assert reply["member"] is True
        await alice.user.send("room", "see you")
        await wait_until(lambda: "see you" in bob.texts("room"))
        assert bob.texts("room") == ["meet at 5", "see you"]


@sim_test()
async def test_forgery__a_replayed_channel_message_is_stored_and_shown_once_an_old_one_refused():
    async with sim_ring(["alice", "bob", "mallory"]) as ring:
        alice, bob, mallory = ring.nodes
        await bob.user.join("room")
        msg_id, seq = await alice.user.send("room", "once")
        signed = ring.owner(channel_key("room")).holdings.channel("room").find(msg_id).signed
        reply = await routed(ring, mallory, p.SEND, channel_key("room"),
                             {"entry": signed.to_wire()})
        assert reply["seq"] == seq                       # known: nothing new stored
        old = sign_entry(alice.user.identity, "room", "msg", "o" * 32,
                         address=str(alice.node.address), text="old", at=now() - 3600)
        reply = await routed(ring, mallory, p.SEND, channel_key("room"),
                             {"entry": old.to_wire()})
        assert reply["refused"] == "stale"
        await alice.user.send("room", "twice?")
        await wait_until(lambda: bob.texts("room") == ["once", "twice?"])


@sim_test()
async def test_keys__a_changed_key_is_warned_marked_unverified_until_trusted():
    async with sim_ring(["alice", "bob", "cy"]) as ring:
        alice, bob, _ = ring.nodes
        await bob.user.join("room")
        await alice.user.msg("bob", "first")
        await wait_until(lambda: bob.of(ev.PrivateMessage, text="first", verified=True))
        old = alice.user.fingerprint
        await ring.crash(alice)                          # alice comes back with a new key
        await ring.settle()
        again = await ring.add("alice", bob)
        new = again.user.fingerprint
        assert new != old
        await again.user.msg("bob", "new laptop")
        await wait_until(lambda: bob.of(ev.PrivateMessage, text="new laptop"))
        assert bob.of(ev.PrivateMessage, text="new laptop")[0].verified is False
        assert bob.of(ev.KeyChanged) == [ev.KeyChanged(nick="alice", old=old, new=new,
                                                       at=bob.of(ev.KeyChanged)[0].at)]
        await again.user.send("room", "hi room")
        await wait_until(lambda: bob.of(ev.ChannelMessage, text="hi room"))
        assert bob.of(ev.ChannelMessage, text="hi room")[0].verified is False
        assert len(bob.of(ev.KeyChanged)) == 1           # warned once per key
        with pytest.raises(Exception, match="key of alice changed"):
            await bob.user.msg("alice", "who are you?")
        whois = await bob.user.whois("alice")
        assert (whois.fingerprint, whois.pin) == (new, "changed")
        assert await bob.user.trust("alice") == new
        await again.user.send("room", "trusted now")
        await wait_until(lambda: bob.of(ev.ChannelMessage, text="trusted now", verified=True))
        await bob.user.msg("alice", "welcome back")
        await wait_until(lambda: again.of(ev.PrivateMessage, text="welcome back"))
