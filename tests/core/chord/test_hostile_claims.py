"""Hostile peers and the ring's own claims (docs/security.md): an attacker with an
ordinary process on loopback sends hand-made ``successor_leaving``, ``predecessor_leaving``
and ``notify`` frames, over a connection of its own, to real nodes on TCP. A node learns
that another left, or is its neighbour, only from that node at its address: each test
shows the key range does not move, and that honest traffic (a chat channel, a graceful
leave, a join) still flows during the attack. The last test plays the same on the
simulator's virtual clock."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from core import events as ev
from core.chat import ChatService
from core.chat.model.ids import channel_key
from core.chord import Address, Local, RemoteError, RpcError
from core.chord.ids import in_open
from core.chord.tcp import TcpTransport
from core.chord.testing import (
    FAST,
    network,
    ring_problems,
    start_node,
    start_ring,
    stop_all,
    true_owner,
    virtual_time,
    wait_converged,
    wait_until,
)
from core.chord.transport import CALLER_HOST
from tests.support.clients import start_chat_node, stop_chat_node

CHAT = dict(maintenance_interval=0.3, prune_grace=3.0, retry_for=10.0)
DEAD = Address("127.0.0.1", 9)   # nobody listens there (the discard port)


class Attacker:
    """Frames made by hand, sent over the attacker's own connection (its own transport,
    not a ring node's), answered or refused."""

    def __init__(self, transport=None) -> None:
        self.transport = transport or TcpTransport(timeout=3.0)
        self.sent = 0
        self.refused = 0

    async def frame(self, target: Address, verb: str, args: dict) -> object:
        self.sent += 1
        try:
            return await self.transport.call(target, verb, args)
        except RemoteError:
            self.refused += 1
            return None

    async def close(self) -> None:
        await self.transport.close()


def running(nodes: list[Local]) -> list[Local]:
    return [n for n in nodes if n.running]


def owner_of(nodes: list[Local], key: int) -> Local:
    live = running(nodes)
    want = true_owner([n.id for n in live], key)
    return next(n for n in live if n.id == want)


async def lookups_agree(nodes: list[Local], key: int) -> list[str]:
    """What each running node's lookup of ``key`` answers, where it is not the true owner."""
    want = owner_of(nodes, key).address
    wrong = []
    for node in running(nodes):
        try:
            found, _ = await node.find_successor(key)
        except RpcError as e:
            wrong.append(f"{node}: {e}")
            continue
        if found.address != want:
            wrong.append(f"{node} routes {key:x} to {found.address}, not {want}")
    return wrong


async def node_at(address: Address, bootstrap: Local | None = None, **settings) -> Local:
    """A node on loopback TCP at ``address`` (an attacker picks its port), started."""
    node = Local(address, bootstrap.address if bootstrap else None, **{**FAST, **settings})
    await node.start()
    return node


def port_between(low: int, high: int, host: str = "127.0.0.1") -> Address:
    """An address on ``host`` whose id lies in (low, high): what an attacker picks."""
    for port in range(20000, 65536):
        address = Address(host, port)
        if in_open(address.id, low, high):
            return address
    raise AssertionError("no port of the host falls in the range")


# -- successor_leaving: "your successor left, take mine" -------------------------------------

class ChatRing:
    """Chat nodes on loopback TCP (a ChatService on each Local)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.nodes: list[Local] = []
        self.services: dict[str, ChatService] = {}
        self.events: dict[str, list] = {}

    async def add(self, nick: str) -> None:
        boot = self.nodes[0].address if self.nodes else None
        node, service, events = await start_chat_node(self.tmp, nick, boot, **CHAT)
        self.nodes.append(node)
        self.services[nick] = service
        self.events[nick] = events

    def node_of(self, nick: str) -> Local:
        return self.nodes[list(self.services).index(nick)]

    async def stop(self) -> None:
        for node, service in zip(self.nodes, self.services.values(), strict=True):
            await stop_chat_node(node, service)


@contextlib.asynccontextmanager
async def chat_ring(tmp: Path, nicks: list[str]):
    ring = ChatRing(tmp)
    try:
        for nick in nicks:
            await ring.add(nick)
        await wait_until(lambda: not ring_problems(ring.nodes), 20, what="ring convergence")
        yield ring
    finally:
        await ring.stop()


def heard(events: list, text: str) -> bool:
    return any(isinstance(e, ev.ChannelMessage) and e.text == text for e in events)


async def test_successor_leaving__from_a_stranger_never_moves_a_channel(tmp_path):
    nicks = ["alice", "bob", "carol", "dave", "eve"]
    async with chat_ring(tmp_path, nicks) as ring:
        key = channel_key("general")
        owner = owner_of(ring.nodes, key)
        # the members live on nodes that neither own #general nor leave during the attack
        alice, bob = [n for n in nicks if ring.node_of(n) is not owner][:2]
        leaving = next(n for n in nicks if ring.node_of(n) is not owner and n not in (alice, bob)
                       and ring.node_of(n) is not owner.predecessor())
        await ring.services[bob].users[bob].join("general")
        await ring.services[alice].users[alice].join("general")
        # the attacker's listener: a node of a ring of its own, which would answer as owner
        lure = await start_node(probe_interval=None)
        attacker = Attacker()
        try:
            async def attack() -> None:
                while True:
                    owner_now = owner_of(ring.nodes, key)
                    before = owner_now.predecessor()
                    if before is not None:
                        await attacker.frame(before.address, "successor_leaving",
                                             {"leaver": str(owner_now.address),
                                              "successors": [str(lure.address)]})
                    await asyncio.sleep(0.2)

            attacking = asyncio.ensure_future(attack())
            try:
                await wait_until(lambda: attacker.sent >= 3, 10, what="the first frames")
                # an honest node leaves gracefully during the attack
                await ring.services[leaving].exit()
                await wait_until(lambda: not ring_problems(ring.nodes), 20,
                                 what="the ring to converge after the honest leave")
                loop = asyncio.get_running_loop()
                end = loop.time() + 5.0
                while loop.time() < end:
                    assert await lookups_agree(ring.nodes, key) == []
                    assert all(lure.address not in [s.address for s in n.successors()]
                               for n in running(ring.nodes))
                    await asyncio.sleep(0.25)
                # the channel still delivers, through the true owner
                await ring.services[alice].users[alice].send("general", "still ours")
                await wait_until(lambda: heard(ring.events[bob], "still ours"), 10,
                                 what="bob hears alice")
            finally:
                attacking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await attacking
            assert attacker.sent >= 20
            assert lure.predecessor() is None   # nobody took the lure as its successor
        finally:
            await attacker.close()
            await lure.stop()


# -- predecessor_leaving: "your predecessor left, a dead address takes its place" ------------

async def test_predecessor_leaving__naming_a_dead_address_keeps_the_owner_serving():
    nodes = await start_ring(6)
    attacker = Attacker()
    try:
        await wait_converged(nodes)
        ordered = sorted(nodes, key=lambda n: n.id)
        owner, before = ordered[3], ordered[2]
        key = before.id + 1         # the first key of the owner's range
        dead = port_between(key, owner.id)   # nobody listens there: a range given up
        leaver = ordered[0]         # an honest node, far from the owner, leaves meanwhile
        samples = []

        async def attack() -> None:
            while True:
                real = owner.predecessor()
                for claimed in (real.address if real else None, DEAD):
                    if claimed is not None:
                        await attacker.frame(owner.address, "predecessor_leaving",
                                             {"leaver": str(claimed), "predecessor": str(dead)})
                await asyncio.sleep(0.5)   # 2 frames a second per claimed leaver

        async def watch() -> None:
            while True:
                samples.append(owner.is_ours(key))
                await asyncio.sleep(0.01)

        tasks = [asyncio.ensure_future(attack()), asyncio.ensure_future(watch())]
        try:
            await wait_until(lambda: attacker.sent >= 2, 10, what="the first frames")
            await leaver.leave()
            await wait_converged(nodes, timeout=20)
            loop = asyncio.get_running_loop()
            end = loop.time() + 4.0
            while loop.time() < end:
                assert await lookups_agree(nodes, key) == []
                await asyncio.sleep(0.2)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert attacker.sent >= 14
        assert len(samples) > 100 and all(samples), f"{samples.count(False)} of " \
                                                     f"{len(samples)} samples gave the key up"
        assert owner.predecessor().address == before.address
        assert not ring_problems(nodes)
    finally:
        await attacker.close()
        await stop_all(nodes)


# -- notify: "I might be your predecessor" ----------------------------------------------------

async def test_notify__a_strangers_claim_never_becomes_a_predecessor():
    nodes = await start_ring(4)
    attacker = Attacker()
    lures: list[Local] = []
    try:
        await wait_converged(nodes)
        ordered = sorted(nodes, key=lambda n: n.id)
        owner, before = ordered[2], ordered[1]
        # (a) a dead address whose id falls between the owner's predecessor and the owner
        dead = port_between(before.id, owner.id)
        # (b) a live listener there that does not take the owner as its successor (a node of
        # a ring of its own)
        lone = await node_at(port_between(dead.id, owner.id), probe_interval=None)
        lures.append(lone)
        # (c) a live listener on another host (127.0.0.2) named from 127.0.0.1
        other = await node_at(port_between(before.id, owner.id, "127.0.0.2"),
                              probe_interval=None)
        lures.append(other)
        for claimed in (dead, lone.address, other.address):
            for _ in range(3):
                await attacker.frame(owner.address, "notify", {"node": str(claimed)})
        await asyncio.sleep(0.3)   # a round of stabilize and rectify in the background
        assert owner.predecessor().address == before.address
        assert owner.is_ours(owner.id - 1)
        assert attacker.refused >= 3   # at least the frames from the wrong host
        # honest traffic: a real node joins in that range and becomes the predecessor
        joiner = await node_at(port_between(before.id, owner.id), nodes[0])
        nodes.append(joiner)
        await wait_converged(nodes, timeout=20)
        assert owner.predecessor().address == joiner.address
        assert await lookups_agree(nodes, joiner.id) == []
    finally:
        await attacker.close()
        await stop_all(nodes + lures)


# -- the same on the simulator ----------------------------------------------------------------

@virtual_time
async def test_leaving_claims__on_the_simulator_move_nothing_and_honest_leaves_splice():
    net = network()
    nodes = await start_ring(8, network=net)
    attacker_node = await start_node(network=net, probe_interval=None)
    attacker = Attacker(attacker_node.transport)
    try:
        await wait_converged(nodes)
        ordered = sorted(nodes, key=lambda n: n.id)
        for i, owner in enumerate(ordered):
            before, after = ordered[i - 1], ordered[(i + 1) % len(ordered)]
            await attacker.frame(before.address, "successor_leaving",
                                 {"leaver": str(owner.address),
                                  "successors": [str(attacker_node.address)]})
            await attacker.frame(after.address, "predecessor_leaving",
                                 {"leaver": str(owner.address),
                                  "predecessor": str(attacker_node.address)})
            await attacker.frame(owner.address, "notify", {"node": str(attacker_node.address)})
        assert attacker.refused >= 2 * len(ordered)
        assert not ring_problems(nodes)
        # an honest leave still splices at once
        leaver = ordered[4]
        await leaver.leave()
        assert ordered[3].successor().address == ordered[5].address
        assert ordered[5].predecessor().address == ordered[3].address
        await wait_converged(nodes)
    finally:
        await stop_all([*nodes, attacker_node])


# -- route: a routed command knows the host it came from, like any call ----------------------

@virtual_time
async def test_route__a_strangers_routed_command_runs_as_from_its_host_not_as_local():
    net = network()
    nodes = await start_ring(4, network=net)
    stranger = await start_node(network=net, probe_interval=None)
    seen: list[str | None] = []
    for node in nodes:
        node.register_command("who", lambda payload: seen.append(CALLER_HOST.get()) or {})
    try:
        await wait_converged(nodes)
        owner = nodes[2]
        # one hand-made one-way frame straight to the owner, naming itself as the origin
        stranger.transport.send(owner.address, "route",
                                {"key": f"{owner.id:x}", "type": "who", "payload": None,
                                 "origin": str(stranger.address), "rid": 1, "hops": 1,
                                 "owner": True})
        await wait_until(lambda: seen, 5, what="the routed command to run")
        assert seen == [stranger.address.host]   # never None, which means "this node itself"
        # honest routes still run, from a ring node through the ring
        result, found, _ = await nodes[0].route(owner.id, "who")
        assert found.address == owner.address and result == {}
        assert seen[-1] is not None
    finally:
        await stop_all([*nodes, stranger])


async def test_route__over_tcp_a_routed_command_sees_the_callers_host():
    nodes = await start_ring(3)
    seen: list[str | None] = []
    for node in nodes:
        node.register_command("who", lambda payload: seen.append(CALLER_HOST.get()) or {})
    try:
        await wait_converged(nodes)
        ordered = sorted(nodes, key=lambda n: n.id)
        result, found, _ = await ordered[0].route(ordered[2].id, "who")
        assert found.address == ordered[2].address and result == {}
        assert seen == ["127.0.0.1"]
    finally:
        await stop_all(nodes)
