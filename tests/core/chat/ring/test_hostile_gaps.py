"""A hostile maintainer on loopback TCP: real chat nodes, one of which owns #general and
leaves every other message out of what it delivers. The members find the gaps, read the
messages from the replicas over real sockets, and show them all, once and in order."""

from __future__ import annotations

import contextlib
from pathlib import Path

from core import events as ev
from core.chat import ChatService
from core.chat.model.ids import channel_key
from core.chord import Local
from core.chord.testing import ring_problems, wait_until
from tests.support.clients import start_chat_node, stop_chat_node

CHAT = dict(maintenance_interval=0.3, prune_grace=3.0, retry_for=10.0, gap_grace=0.3,
            echo_deadline=3.0)


@contextlib.asynccontextmanager
async def tcp_ring(tmp: Path, nicks: list[str]):
    nodes: list[tuple[Local, ChatService, list]] = []
    try:
        for nick in nicks:
            boot = nodes[0][0].address if nodes else None
            nodes.append(await start_chat_node(tmp, nick, boot, **CHAT))
        await wait_until(lambda: not ring_problems([n for n, _, _ in nodes]), 20,
                         what="ring convergence")
        yield nodes
    finally:
        for node, service, _ in nodes:
            await stop_chat_node(node, service)


async def test_hostile_gaps__members_read_around_a_maintainer_that_drops(tmp_path):
    async with tcp_ring(tmp_path, ["alice", "bob", "carol", "dave", "erin"]) as nodes:
        ordered = sorted(nodes, key=lambda t: t[0].id)
        key = channel_key("general")
        bad_node, bad, _ = next((t for t in ordered if t[0].id >= key), ordered[0])
        honest = [t for t in nodes if t[1] is not bad]
        for _, service, _ in honest:
            await next(iter(service.users.values())).join("general")
        # the attacker runs its own code: its feeds leave out every other message
        left_out = []
        deliver = bad.feeds.call_deliver

        async def hostile(feed, entries, rejoin=False):
            kept = [e for e in entries if not (e.get("kind") == "msg"
                                               and int(e["text"][1:]) % 2 == 1)]
            left_out.extend(e for e in entries if e not in kept)
            return await deliver(feed, kept, rejoin)

        bad.feeds.call_deliver = hostile
        _, sender, _ = honest[0]
        texts = [f"m{i}" for i in range(7)]
        for text in texts:
            await next(iter(sender.users.values())).send("general", text)

        def shown(events: list) -> list[str]:
            return [e.text for e in events if isinstance(e, ev.ChannelMessage)]

        for _, service, events in honest:
            await wait_until(lambda events=events: shown(events) == texts, 20,
                             what=f"{service.node.address} shows every message in order")
        assert {e["text"] for e in left_out} >= {"m1", "m3", "m5"}
        for _, _, events in honest[1:]:
            found = [e for e in events if isinstance(e, ev.Gap)]
            assert found and {g.kind for g in found} == {"withheld"}, found
            assert {g.maintainer for g in found} == {str(bad_node.address)}
            assert sum(g.count for g in found) == 3
            assert all(g.replica and g.replica != str(bad_node.address) for g in found)
