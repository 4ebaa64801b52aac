"""Hostile peers against real nodes on loopback: the attacker speaks raw frames over TCP
(the wire codec, from a source address of its choosing in 127/8), the nodes are real
``ChatService``s on real ``Local`` nodes. Each test plays one attack, shows the harm no
longer happens, and that honest traffic in the same ring still flows."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import time
import uuid
from dataclasses import dataclass, field

import pytest

from core import events as ev
from core.chat.model.channel import Member
from core.chat.model.entries import sign_entry
from core.chat.model.identity import Identity
from core.chat.model.ids import channel_key, name_key
from core.chat.model.items import item_to_wire
from core.chat.model.limits import Limits
from core.chat.model.mailbox import LETTER_KIND, letter_fields
from core.chat.model.records import NameRecord, next_seq
from core.chat.model.sealed import seal
from core.chat.service import ChatService
from core.chord import Address, Local, wire
from core.chord.ids import hex_id
from core.chord.testing import FAST, converged, stop_all, wait_until

pytestmark = pytest.mark.timeout(120)

CHAT = dict(prune_grace=3.0, maintenance_interval=0.5, retry_for=10.0)


@dataclass
class Box:
    node: Local
    service: ChatService
    events: dict[str, list] = field(default_factory=dict)

    async def add(self, nick: str):
        seen = self.events.setdefault(nick, [])
        return await self.service.add_user(nick, seen.append)

    def of(self, nick: str, kind: type) -> list:
        return [e for e in self.events.get(nick, []) if isinstance(e, kind)]

    async def hears(self, nick: str, text: str, what: str) -> None:
        """Wait until ``nick`` here has a channel message ``text``."""
        await wait_until(lambda: [e for e in self.of(nick, ev.ChannelMessage)
                                  if e.text == text], what=what)


async def in_general(a: Box, b: Box):
    """alice on ``a`` and bob on ``b``, both members of #general."""
    alice, bob = await a.add("alice"), await b.add("bob")
    await alice.join("general")
    await bob.join("general")
    return alice, bob


@contextlib.asynccontextmanager
async def ring(n: int = 2, **chat):
    boxes: list[Box] = []
    try:
        for _ in range(n):
            node = Local(Address("127.0.0.1", 0),
                         boxes[0].node.address if boxes else None, **FAST)
            box = Box(node, None)  # type: ignore[arg-type]
            box.service = ChatService(node, lambda e: None, **{**CHAT, **chat})
            await node.start()
            await box.service.start()
            boxes.append(box)
        await wait_until(lambda: converged([b.node for b in boxes]), what="the ring")
        yield boxes
    finally:
        for b in boxes:
            with contextlib.suppress(Exception):
                await b.service.stop()
        await stop_all([b.node for b in boxes])


async def owner_of(boxes: list[Box], key: int) -> Box:
    owner, _ = await boxes[0].node.find_successor(key)
    return next(b for b in boxes if b.node.address == owner.address)


class Raw:
    """A hostile peer: one TCP connection from ``source``, frames made by hand."""

    def __init__(self, reader, writer) -> None:
        self.reader, self.writer = reader, writer
        self.ids = itertools.count(1)
        self.sent = 0

    @classmethod
    async def open(cls, to: Address, source: str = "127.0.0.1") -> Raw:
        reader, writer = await asyncio.open_connection(to.host, to.port, local_addr=(source, 0))
        return cls(reader, writer)

    async def call(self, type: str, payload: dict) -> object:
        rid = next(self.ids)
        frame = wire.encode({"id": rid, "method": "user",
                             "args": {"type": type, "payload": payload}})
        self.sent += len(frame)
        self.writer.write(frame)
        while True:
            (length,) = struct.unpack(">I", await self.reader.readexactly(4))
            message = wire.decode_body(await self.reader.readexactly(length))
            if "method" in message:   # the node pings a quiet link: answer like a node
                if "id" in message:
                    self.writer.write(wire.encode({"id": message["id"], "result": {}}))
                continue
            if message.get("id") == rid:
                if "error" in message:
                    raise AssertionError(message["error"])
                return message["result"]

    def close(self) -> None:
        self.writer.close()


class Sink:
    """A third party that never asked for anything: counts the bytes it is sent."""

    def __init__(self) -> None:
        self.received = 0

    async def start(self, host: str) -> Address:
        async def on(reader, writer):
            while chunk := await reader.read(65536):
                self.received += len(chunk)
        self.server = await asyncio.start_server(on, host, 0)
        return Address(host, self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        self.server.close()


def join(identity: Identity, channel: str, address: str, text: str = ""):
    return sign_entry(identity, channel, "join", uuid.uuid4().hex, address=address, text=text)


# -- a channel killed by three joins ---------------------------------------------------------

async def test_hostile__huge_or_unroutable_joins_are_refused_and_the_channel_lives():
    async with ring(2) as boxes:
        a, b = boxes
        alice, bob = await in_general(a, b)
        maintainer = await owner_of(boxes, channel_key("general"))
        raw = await Raw.open(maintainer.node.address)
        mallory = Identity.generate("mallory")
        me = f"127.0.0.1:{raw.writer.get_extra_info('sockname')[1]}"
        key = f"{channel_key('general'):x}"
        # one 160,000-character join (wiped the log for newcomers), three of 400,000
        # (pushed the member map over the frame limit): each refused, too_long
        for size in (160_000, 400_000, 400_000, 400_000):
            reply = await raw.call("chat.channel.join",
                                   {"key": key, "entry": join(mallory, "general", me,
                                                              "x" * size).to_wire()})
            assert reply["refused"] == "too_long", reply
        # a member whose address cannot be parsed: refused at the join ...
        reply = await raw.call("chat.channel.join", {"key": key, "entry": join(
            mallory, "general", "no address").to_wire()})
        assert reply["refused"] == "bad_address", reply
        # ... and one already there (a copy from before the check) is pruned, not fed forever
        ch = maintainer.service.holdings.channel("general")
        ghost = Member.of(join(Identity.generate("ghost"), "general", "nowhere"))
        ch.set_member(ghost)
        await wait_until(lambda: not ch.is_member(ghost.key), timeout=10,
                         what="the unroutable member pruned")
        await asyncio.sleep(1.5)
        assert not any(member == ghost.key for _, member in maintainer.service.feeds.fed())
        raw.close()
        # honest traffic: a real member gets messages; a newcomer gets the history
        await alice.send("general", "still here")
        await b.hears("bob", "still here", what="bob gets alice's message")
        carol = await b.add("carol")
        await carol.join("general")
        await b.hears("carol", "still here", what="carol gets the history")
        members = maintainer.service.holdings.channel("general").present()
        assert sorted(m.nick for m in members) == ["alice", "bob", "carol"]


async def test_hostile__members_per_channel_and_channels_per_key_are_bounded():
    async with ring(2, limits=Limits(members=5, channels_per_key=3)) as boxes:
        a, b = boxes
        alice, bob = await in_general(a, b)
        maintainer = await owner_of(boxes, channel_key("general"))
        raw = await Raw.open(maintainer.node.address)
        me = f"127.0.0.1:{raw.writer.get_extra_info('sockname')[1]}"
        key = f"{channel_key('general'):x}"
        replies = [await raw.call("chat.channel.join", {"key": key, "entry": join(
            Identity.generate(f"sybil{i}"), "general", me).to_wire()}) for i in range(10)]
        assert [r.get("ok") for r in replies[:3]] == [True] * 3
        assert {r.get("refused") for r in replies[3:]} == {"full"}
        assert len(maintainer.service.holdings.channel("general").present()) == 5
        # one key in many channels of one maintainer: refused past channels_per_key
        mallory = Identity.generate("mallory")
        taken = []
        for i in itertools.count():
            name = f"c{i}"
            if (await owner_of(boxes, channel_key(name))) is not maintainer:
                continue
            reply = await raw.call("chat.channel.join", {"key": f"{channel_key(name):x}",
                                                         "entry": join(mallory, name, me)
                                                         .to_wire()})
            taken.append(reply.get("ok", reply.get("refused")))
            if len(taken) == 5:
                break
        assert taken == [True, True, True, "full", "full"]
        raw.close()
        await alice.send("general", "members still hear")
        await b.hears("bob", "members still hear", what="bob hears alice")


# -- reflection ------------------------------------------------------------------------------

async def test_hostile__a_join_naming_a_third_party_sends_it_less_than_the_attacker_sent():
    async with ring(2) as boxes:
        a, b = boxes
        alice, bob = await in_general(a, b)
        for i in range(30):   # a log worth pushing
            await alice.send("general", f"line {i} " + "y" * 1000)
        sink = Sink()
        victim = await sink.start("127.0.0.2")   # another host than the attacker's
        maintainer = await owner_of(boxes, channel_key("general"))
        raw = await Raw.open(maintainer.node.address, source="127.0.0.1")
        mallory = Identity.generate("mallory")
        reply = await raw.call("chat.channel.join",
                               {"key": f"{channel_key('general'):x}", "resume": True,
                                "entry": join(mallory, "general", str(victim)).to_wire()})
        assert reply["refused"] == "bad_address", reply
        await asyncio.sleep(3 * CHAT["prune_grace"] / 3 + 1)
        print(f"third party got {sink.received} B, the attacker sent {raw.sent} B")
        assert sink.received <= raw.sent, (sink.received, raw.sent)
        assert not any(m.address == str(victim) for m in
                       maintainer.service.holdings.channel("general").present())
        raw.close()
        sink.close()
        await alice.send("general", "after the attack")
        await b.hears("bob", "after the attack", what="bob hears alice")


# -- mailboxes -------------------------------------------------------------------------------

def letter_wire(sender: Identity, to: str, to_key: str, text: str, *, sign_as=None,
                pad: int = 0) -> dict:
    msg_id = uuid.uuid4().hex
    sealed = seal(sender, to_key, text, msg_id, to=to)
    if pad:
        sealed["pad"] = "z" * pad   # outside the box: the old size counted only the box
    sig = (sign_as or sender).sign(LETTER_KIND, letter_fields(to, sealed))
    return {"msg_id": msg_id, "from": sender.nick, "at": time.time(), "sealed": sealed,
            "sig": sig}


async def test_hostile__strangers_cannot_fill_a_mailbox_against_a_friend():
    async with ring(2) as boxes:
        a, b = boxes
        ann, bo = await a.add("ann"), await b.add("bo")
        await ann.msg("bo", "hi")   # the two exchange keys
        await wait_until(lambda: b.of("bo", ev.PrivateMessage), what="bo has ann's hello")
        await bo.collect_mail()     # bo's signed take names the keys it pinned: ann's
        bo_key = bo.identity.key
        await b.service.remove_user(bo)
        keeper = await owner_of(boxes, name_key("bo"))
        raw = await Raw.open(keeper.node.address, source="127.0.0.5")
        key = f"{name_key('bo'):x}"

        async def put(letter: dict) -> dict:
            return await raw.call("chat.mail.put", {"key": key, "nick": "bo",
                                                    "letter": letter, "unreachable": None})
        started = time.monotonic()
        one = Identity.generate("junk")
        same_key = [await put(letter_wire(one, "bo", bo_key, f"junk {i}")) for i in range(10)]
        assert sum(bool(r.get("ok")) for r in same_key) == 5
        many = [await put(letter_wire(Identity.generate(f"j{i}"), "bo", bo_key, "junk"))
                for i in range(150)]
        assert sum(bool(r.get("ok")) for r in many) == 95
        assert all("full" in r for r in many[95:])
        # padded outside the sealed box: sized whole, refused (was 54 MB in one mailbox)
        reply = await put(letter_wire(one, "bo", bo_key, "pad", pad=300_000))
        assert reply["refused"] == "too_long", reply
        # ann's key claimed by a stranger: the signature gives it away
        reply = await put(letter_wire(Identity.generate("ann"), "bo", bo_key, "as ann",
                                      sign_as=Identity.generate("x")))
        assert reply["refused"] == "bad_signature", reply
        print(f"{len(same_key) + len(many) + 2} junk letters in "
              f"{time.monotonic() - started:.2f} s")
        raw.close()
        box = keeper.service.holdings.maintained.get("mailbox", "bo")
        assert len(box.letters) == 100 and box.size <= Limits().stranger_bytes
        # the friend's letter still lands
        await ann.msg("bo", "for when you are back")
        assert any(x.key == ann.identity.key for x in box.letters.values())
        assert not [e for e in a.of("ann", ev.Error) if "full" in e.message]


# -- squatting -------------------------------------------------------------------------------

async def test_hostile__a_squatter_is_slowed_and_capped_and_real_users_register():
    async with ring(2) as boxes:
        a, b = boxes
        raws: dict[Address, Raw] = {}

        async def claim(record: NameRecord, source: str) -> dict:
            owner = (await owner_of(boxes, record.ring_key)).node.address
            if (owner, source) not in raws:
                raws[(owner, source)] = await Raw.open(owner, source)
            return await raws[(owner, source)].call(
                "chat.name.set", {"key": f"{record.ring_key:x}", "record": record.to_wire()})

        here = "127.0.0.3:4000"
        started = time.monotonic()
        replies = [await claim(NameRecord.create(Identity.generate(f"sq{i}"), here,
                                                 hex_id(i + 1), next_seq()), "127.0.0.3")
                   for i in range(200)]
        elapsed = time.monotonic() - started
        accepted = sum(bool(r.get("ok")) for r in replies)
        most = 2 * (Limits().claim_burst + Limits().claims_per_second * (elapsed + 1))
        assert accepted <= most, (accepted, elapsed)
        assert sum("busy" in str(r.get("why", "")) for r in replies) >= 200 - most
        # one key holds at most records_per_key nicks at one maintainer
        seed = Identity.generate("x").seed()
        per_owner: dict[Address, list] = {}
        for i in range(40):
            record = NameRecord.create(Identity(seed, f"k{i}"), "127.0.0.4:4000",
                                       hex_id(1), next_seq())
            owner = (await owner_of(boxes, record.ring_key)).node.address
            per_owner.setdefault(owner, []).append(await claim(record, "127.0.0.4"))
        for got in per_owner.values():
            assert sum(bool(r.get("ok")) for r in got) == min(len(got), 4)
            assert {r.get("refused") for r in got[4:]} <= {"full"}
        # a claim naming an honest node's address: that node does not hold the key
        record = NameRecord.create(Identity.generate("victim"), str(b.node.address),
                                   hex_id(b.node.id), next_seq())
        reply = await claim(record, "127.0.0.6")
        assert reply["refused"] == "bad_address", reply
        for r in raws.values():
            r.close()
        # a real user registers (from its own host: not slowed by the squatter's)
        real = await b.add("realuser")
        assert real.registered


async def test_hostile__a_name_record_lives_by_its_holders_key_not_by_whoever_answers():
    async with ring(2) as boxes:
        a, b = boxes
        squatter = Identity.generate("wanted")
        # a record naming b, an honest node that answers pings but does not serve the
        # squatter's key: a claim of it is refused (bad_address), but a migration from a
        # neighbour's address (on one host the attacker can name one) plants it
        keeper = await owner_of(boxes, name_key("wanted"))
        planted = NameRecord.create(squatter, str(b.node.address), hex_id(b.node.id),
                                    next_seq())
        elsewhere = await Raw.open(keeper.node.address, source="127.0.0.9")
        reply = await elsewhere.call("chat.name.set", {"key": f"{planted.ring_key:x}",
                                                       "record": planted.to_wire()})
        elsewhere.close()
        assert reply["refused"] == "bad_address", reply
        raw = await Raw.open(keeper.node.address)
        reply = await raw.call("chat.migrate", {
            "from": str(keeper.node.successor().address), "items": [item_to_wire(planted)]})
        raw.close()
        assert reply.get("accepted") == 1, reply
        assert keeper.service.holdings.name("wanted").key == squatter.key
        user = await a.add("wanted")    # answered "taken" while b answered pings
        assert user.registered
        record = keeper.service.holdings.name("wanted")
        assert record.key == user.identity.key
        # and a live holder keeps its nick: its node signs the challenge
        with pytest.raises(Exception, match="taken|held"):
            await b.add("wanted")


# -- merge -----------------------------------------------------------------------------------

class Counter:
    """Third parties: how many connections and bytes they get."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = 0

    async def on(self, reader, writer) -> None:
        self.connections += 1
        while chunk := await reader.read(65536):
            self.received += len(chunk)


async def test_hostile__merge_requests_cannot_make_a_node_dial_at_will():
    async with ring(2) as boxes:
        a, b = boxes
        counter = Counter()
        servers = [await asyncio.start_server(counter.on, "127.0.0.2", 0) for _ in range(20)]
        targets = [Address("127.0.0.2", s.sockets[0].getsockname()[1]) for s in servers]
        raw = await Raw.open(a.node.address, source="127.0.0.7")
        frames = 0
        for _ in range(20):   # 400 requests: each target named 20 times
            for t in targets:
                raw.writer.write(wire.encode({"method": "merge",
                                              "args": {"candidate": str(t), "steps": 0}}))
                frames += 1
        await raw.writer.drain()
        await asyncio.sleep(2.0)
        print(f"{frames} merge requests: {counter.connections} connections, "
              f"{counter.received} B at the third parties; attacker sent ~{frames * 70} B")
        assert counter.connections <= len(targets)    # once per candidate, not per request
        assert counter.received <= len(targets) * 200   # one small state call each
        raw.close()
        for s in servers:
            s.close()
        alice, bob = await in_general(a, b)
        await alice.send("general", "the ring still works")
        await b.hears("bob", "the ring still works", what="bob hears alice")


async def test_hostile__every_field_over_its_limit_is_refused_too_long_by_the_keeper():
    async with ring(1) as boxes:
        (a,) = boxes
        raw = await Raw.open(a.node.address)
        me = f"127.0.0.1:{raw.writer.get_extra_info('sockname')[1]}"
        mallory = Identity.generate("mallory")
        key = f"{channel_key('general'):x}"

        async def entry(kind: str, **over) -> dict:
            fields = dict(address=me, text="")
            fields.update({k: v for k, v in over.items() if k != "msg_id"})
            e = sign_entry(mallory, "general", kind, over.get("msg_id", uuid.uuid4().hex),
                           **fields)
            verb = {"join": "chat.channel.join", "leave": "chat.channel.leave",
                    "msg": "chat.channel.send", "topic": "chat.channel.topic"}[kind]
            return await raw.call(verb, {"key": key, "entry": e.to_wire()})
        assert (await entry("msg", text="x" * 4001))["refused"] == "too_long"
        assert (await entry("join", msg_id="f" * 65))["refused"] == "too_long"
        assert (await entry("join", address="127.0.0.1:" + "9" * 95))["refused"] == "too_long"
        assert (await entry("leave", text="x" * 307))["refused"] == "too_long"
        # what an honest user may say is not over a limit: a topic and an exit reason (an
        # IRC QUIT message) of 300 characters each
        assert (await entry("join")).get("ok")
        assert (await entry("topic", text="t" * 300)).get("ok")
        assert (await entry("topic", text="t" * 301))["refused"] == "too_long"
        assert (await entry("leave", text="exit: " + "w" * 300)).get("ok")
        assert (await entry("leave", text="exit: " + "w" * 301)).get("refused")
        record = NameRecord.create(Identity.generate("longaddr"), "h" * 101 + ":1",
                                   hex_id(1), next_seq())
        reply = await raw.call("chat.name.set", {"key": f"{record.ring_key:x}",
                                                 "record": record.to_wire()})
        assert reply["refused"] == "too_long"
        assert (await entry("msg", text="x" * 4000)).get("ok")   # at the limit: fine
        raw.close()
