"""Nobody can speak as someone else: each forgery is one hand-made frame, sent over the real
transport by a node of the ring (mallory) as an attacker would, and each one fails —
nothing stored, nothing shown — while honest traffic goes on."""

from __future__ import annotations

import dataclasses

import pytest

from core import events as ev
from core.chat.model.entries import SignedEntry, sign_entry
from core.chat.model.identity import Identity
from core.chat.model.ids import channel_key, name_key
from core.chat.model.records import NameRecord, next_seq
from core.chat.model.sealed import seal
from core.chat.testing import now, sim_ring
from core.chat.wire import verbs as p
from core.chord import RemoteError
from core.chord.testing import virtual_time, wait_until


def impostor(nick: str) -> Identity:
    """A key of mallory's own that says it is ``nick``."""
    return Identity.generate(nick)


async def routed(ring, sender, verb: p.Verb, key: int, payload: dict) -> dict:
    """One frame to the owner of ``key``, as the attacker's node sends it."""
    owner = ring.owner(key)
    return await sender.node.user_command(owner.node.address, verb.type,
                                          {"key": f"{key:x}", **payload})


async def to_room(ring, sender, verb: p.Verb, entry: dict) -> dict:
    """One frame carrying ``entry`` (as on the wire) to the maintainer of #room."""
    return await routed(ring, sender, verb, channel_key("room"), {"entry": entry})


def room_entry(identity: Identity, author, kind: str, msg_id: str, text: str,
               at: float | None = None) -> SignedEntry:
    """An entry of #room signed with ``identity``, from ``author``'s node, made now."""
    return sign_entry(identity, "room", kind, msg_id, address=str(author.node.address),
                      text=text, at=now() if at is None else at)


async def deliver_to_bob(sender, bob, entries: list[dict]) -> dict:
    """A delivery of #room ``entries`` straight to bob's node, ``sender`` as its maintainer."""
    return await sender.node.user_command(
        bob.node.address, p.DELIVER.type,
        {"channel": "room", "to": "bob", "maintainer": str(sender.node.address),
         "entries": entries})


async def heard(sender, receiver, text: str) -> list[str]:
    """``sender`` says ``text`` in #room: once ``receiver`` shows it, all it shows there."""
    await sender.user.send("room", text)
    await wait_until(lambda: text in receiver.texts("room"))
    return receiver.texts("room")


async def private(sender, receiver, text: str, **fields) -> None:
    """``sender`` messages ``receiver``, who shows it (with ``fields``, as given)."""
    await sender.user.msg(receiver.nick, text)
    await wait_until(lambda: receiver.of(ev.PrivateMessage, text=text, **fields))


@virtual_time
async def test_forgery__a_private_message_as_alice_is_not_shown_to_bob():
    async with sim_ring(["alice", "bob", "mallory"]) as ring:
        alice, bob, mallory = ring.nodes

        async def as_alice(text: str, msg_id: str) -> dict:
            fake = seal(impostor("alice"), bob.user.identity.key, text, msg_id, to="bob",
                        at=now())
            return await mallory.node.user_command(
                bob.node.address, p.PRIVATE.type,
                {"msg_id": msg_id, "to": "bob", "to_id": bob.user.id_hex, "sealed": fake})

        reply = await as_alice("send me your password", "f" * 32)
        assert not reply["ok"] and "refused" in reply["error"]
        # bob has pinned alice after a real message: the forgery fails the same way
        await private(alice, bob, "hello bob", verified=True)
        reply = await as_alice("it's me, new key", "e" * 32)
        assert not reply["ok"]
        assert [e.text for e in bob.of(ev.PrivateMessage)] == ["hello bob"]
        assert not bob.of(ev.KeyChanged)


@virtual_time
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
        await private(bob, alice, "still you?")


@virtual_time
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


@virtual_time
async def test_forgery__a_third_party_cannot_remove_bob_from_a_channel():
    async with sim_ring(["alice", "bob", "mallory"]) as ring:
        alice, bob, mallory = ring.nodes
        await bob.user.join("room")
        leave = room_entry(impostor("bob"), bob, "leave", "l" * 32, "left")
        reply = await to_room(ring, mallory, p.LEAVE, leave.to_wire())
        assert reply["refused"] == "not_member"
        assert ring.owner(channel_key("room")).holdings.channel("room").is_member(
            ("bob", str(bob.node.address)))
        assert await heard(alice, bob, "bob still hears this") == ["bob still hears this"]


@virtual_time
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
        await private(bob, alice, "still yours")


@virtual_time
async def test_forgery__a_channel_message_injected_into_bobs_screen_is_not_shown_as_alices():
    async with sim_ring(["alice", "bob", "mallory"]) as ring:
        alice, bob, mallory = ring.nodes
        await bob.user.join("room")
        assert await heard(alice, bob, "real") == ["real"]
        forged = room_entry(impostor("alice"), alice, "msg", "i" * 32, "injected")
        unsigned = {"seq": 91, "msg_id": "j" * 32, "kind": "msg", "nick": "alice",
                    "text": "unsigned", "at": now()}
        reply = await deliver_to_bob(mallory, bob, [{"seq": 90, **forged.to_wire()}, unsigned])
        assert reply["member"] is True
        assert await heard(alice, bob, "real again") == ["real", "real again"]


@virtual_time
async def test_forgery__the_maintainer_refuses_a_message_in_alices_name_without_her_signature():
    async with sim_ring(["alice", "bob", "mallory"]) as ring:
        alice, bob, mallory = ring.nodes
        await bob.user.join("room")
        honest = room_entry(alice.user.identity, alice, "msg", "a" * 32, "real")
        # alice's key and nick, mallory's text: the signature does not cover it
        forged = dataclasses.replace(honest, msg_id="m" * 32, text="pay mallory")
        reply = await to_room(ring, mallory, p.SEND, forged.to_wire())
        assert reply["refused"] == "bad_signature"
        with pytest.raises((RemoteError, p.ProtocolError), match="lacks 'signature'"):
            wire = forged.to_wire()
            del wire["signature"]
            await to_room(ring, mallory, p.SEND, wire)
        maintainer = ring.owner(channel_key("room"))
        assert not maintainer.holdings.channel("room").find("m" * 32)
        assert await heard(alice, bob, "after") == ["after"]


@virtual_time
async def test_forgery__a_maintainer_that_alters_a_message_is_caught_by_the_members():
    async with sim_ring(["alice", "bob", "carol"]) as ring:
        alice, bob, carol = ring.nodes
        await bob.user.join("room")
        assert await heard(alice, bob, "meet at 5") == ["meet at 5"]
        maintainer = ring.owner(channel_key("room"))
        real = maintainer.holdings.channel("room").log[-1]
        altered = {**real.to_wire(), "msg_id": "z" * 32, "text": "meet at 6",
                   "seq": real.seq + 1}
        reply = await deliver_to_bob(maintainer, bob, [altered])
        assert reply["member"] is True
        assert await heard(alice, bob, "see you") == ["meet at 5", "see you"]


@virtual_time
async def test_forgery__a_replayed_channel_message_is_stored_and_shown_once_an_old_one_refused():
    async with sim_ring(["alice", "bob", "mallory"]) as ring:
        alice, bob, mallory = ring.nodes
        await bob.user.join("room")
        msg_id, seq = await alice.user.send("room", "once")
        signed = ring.owner(channel_key("room")).holdings.channel("room").find(msg_id).signed
        reply = await to_room(ring, mallory, p.SEND, signed.to_wire())
        assert reply["seq"] == seq                       # known: nothing new stored
        old = room_entry(alice.user.identity, alice, "msg", "o" * 32, "old", at=now() - 3600)
        reply = await to_room(ring, mallory, p.SEND, old.to_wire())
        assert reply["refused"] == "stale"
        assert await heard(alice, bob, "twice?") == ["once", "twice?"]


@virtual_time
async def test_keys__a_changed_key_is_warned_marked_unverified_until_trusted():
    async with sim_ring(["alice", "bob", "cy"]) as ring:
        alice, bob, _ = ring.nodes
        await bob.user.join("room")
        await private(alice, bob, "first", verified=True)
        old = alice.user.fingerprint
        await ring.crash(alice)                          # alice comes back with a new key
        await ring.settle()
        again = await ring.add("alice", bob)
        new = again.user.fingerprint
        assert new != old
        await private(again, bob, "new laptop")
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
        await private(bob, again, "welcome back")
