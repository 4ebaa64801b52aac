"""A Sybil placed by grinding ports, on loopback TCP: node ids are the hash of "host:port",
so an attacker with one address tries ports until one lands just before hash("general")
(on loopback the per-/24 placement quota is off). It then owns #general and a nick's name
record; it acknowledges and replicates what it is sent, but its feeds leave out every
other message and it answers "unknown nick" to every ask of the record. The members read
the missing messages from the replicas and say so (a ``Gap`` naming the Sybil and the
replica: the ring log's line), and ``whois`` of the nick still finds the right key (the
robust lookup reads the record from the owner's replicas)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from core import events as ev
from core.chat import ChatService
from core.chat.model.ids import channel_key, name_key
from core.chat.wire import verbs as p
from core.chord import Address, Local, Remote, in_half_open, in_open
from core.chord.testing import FAST, ring_problems, wait_until
from tests.support.clients import start_chat_node, stop_chat_node

pytestmark = pytest.mark.timeout(120)

CHAT = dict(maintenance_interval=0.3, prune_grace=3.0, retry_for=10.0, gap_grace=0.3,
            echo_deadline=3.0)


def ground(low: int, high: int, tries: range = range(20000, 65000)) -> list[Address]:
    """The attacker's grinding: ports of 127.0.0.1 whose id falls in (low, high)."""
    return [a for a in (Address("127.0.0.1", port) for port in tries)
            if in_open(a.id, low, high)]


@contextlib.asynccontextmanager
async def honest_ring(tmp: Path, nicks: list[str]):
    nodes: list[tuple[Local, ChatService, list]] = []
    try:
        for nick in nicks:
            boot = nodes[0][0].address if nodes else None
            nodes.append(await start_chat_node(tmp, nick, boot, **CHAT))
        await wait_until(lambda: not ring_problems([n for n, _, _ in nodes]), 20,
                         what="ring convergence")
        yield nodes
    finally:
        for node, service, _ in reversed(nodes):
            await stop_chat_node(node, service)


async def test_hostile_sybil__a_ground_owner_that_drops_and_hides_is_read_around(tmp_path):
    async with honest_ring(tmp_path, ["alice", "bob", "carol", "dave"]) as nodes:
        key = channel_key("general")
        ids = sorted(n.id for n, _, _ in nodes)
        before = max((i for i in ids if i < key), default=ids[-1])   # the owner's predecessor
        owner = min((i for i in ids if i >= key), default=ids[0])    # the key's honest owner
        # a nick whose record the Sybil will own too: its key between `before` and the channel's
        victim = min((f"v{i}" for i in range(2000)
                      if in_half_open(name_key(f"v{i}"), before, key)),
                     key=lambda nick: (name_key(nick) - before) % 2 ** 160)
        _, dave, _ = nodes[3]
        holder = await dave.add_user(victim, lambda e: None)
        members = nodes[:3]
        for _, service, _ in members:
            await next(iter(service.users.values())).join("general")
        # the attacker grinds ports until one lands in [key, owner): it owns (before, itself]
        sybil = sybil_service = None
        tried = 0
        for address in ground((key - 1) % 2 ** 160, owner):
            tried += 1
            node = Local(address, nodes[0][0].address, **FAST)
            service = ChatService(node, lambda e: None, **CHAT)
            try:
                await node.start()
            except OSError:   # the port is in use here: the next one
                continue
            sybil, sybil_service = node, service
            break
        assert sybil is not None, "no port of 127.0.0.1 lands before hash('general')"
        print(f"the Sybil tried {sybil.address.port - 19999} ports of one address to land "
              f"just after hash('general') ({tried} start attempts): {sybil.address}")
        try:
            await sybil_service.start()

            # its own code: "unknown nick" to every ask, and every other message left out
            async def unknown_nick(payload: dict) -> dict:
                return {"ok": False}

            for verb in (p.NAME_GET, p.NAME_COPY):
                sybil.register_command(verb.type, unknown_nick)
            honest_deliver = sybil_service.feeds.call_deliver
            left_out: list[dict] = []

            async def hostile(feed, entries, rejoin=False):
                kept = [e for e in entries if not (e.get("kind") == "msg"
                                                   and int(e["text"][1:]) % 2 == 1)]
                left_out.extend(e for e in entries if e not in kept)
                return await honest_deliver(feed, kept, rejoin)

            sybil_service.feeds.call_deliver = hostile
            everyone = [n for n, _, _ in nodes] + [sybil]
            await wait_until(lambda: not ring_problems(everyone), 20, what="ring convergence")
            await wait_until(lambda: sybil_service.holdings.channel("general") is not None
                             and sybil_service.holdings.name(victim) is not None, 20,
                             what="#general and the victim's record migrated to the Sybil")
            # the Sybil really lies: asked directly, the nick is unknown
            asked = await Remote(nodes[0][0].address).user_command(
                p.NAME_GET.type, {"key": f"{name_key(victim):x}", "nick": victim}, timeout=5)
            direct = await Remote(sybil.address).user_command(
                p.NAME_GET.type, {"key": f"{name_key(victim):x}", "nick": victim}, timeout=5)
            assert direct == {"ok": False}, direct
            assert asked.get("not_owner") or asked == {"ok": False}, asked

            _, alice, alice_events = members[0]
            texts = [f"m{i}" for i in range(7)]
            for text in texts:
                await alice.users["alice"].send("general", text)

            def shown(events: list) -> list[str]:
                return [e.text for e in events if isinstance(e, ev.ChannelMessage)]

            for _, service, events in members:
                await wait_until(lambda events=events: shown(events) == texts, 30,
                                 what=f"{service.node.address} shows every message in order")
            assert {e["text"] for e in left_out} >= {"m1", "m3", "m5"}
            for _, _, events in members[1:]:
                found = [e for e in events if isinstance(e, ev.Gap)]
                assert found and {g.kind for g in found} == {"withheld"}, found
                assert {g.maintainer for g in found} == {str(sybil.address)}
                assert all(g.replica and g.replica != str(sybil.address) for g in found)
            # whois of the nick in the Sybil's range: the right key, read past the Sybil
            _, bob, _ = members[1]
            who = await bob.users["bob"].whois(victim)
            assert who.nick == victim and who.address == str(dave.node.address)
            assert who.fingerprint == holder.identity.fingerprint
            assert bob.name_copies.last_holders[0] == sybil.address
        finally:
            with contextlib.suppress(Exception):
                await sybil_service.stop()
            with contextlib.suppress(Exception):
                await sybil.stop()
