"""Replication, takeover and history, in-process on real loopback nodes."""

from __future__ import annotations

from core import events as ev
from core.chat.state import channel_key, name_key
from tests.core.chat.chatring import async_test, owner, settle, start_chat_ring, stop_chat
from tests.ring import wait_until


def successors_of(nodes, node, k):
    ordered = sorted((n for n in nodes if n.node.running), key=lambda n: n.node.id)
    i = ordered.index(node)
    return [ordered[(i + j) % len(ordered)] for j in range(1, k + 1)]


@async_test()
async def test_replication__a_change_reaches_the_next_r_successors():
    nodes = await start_chat_ring(["ann", "bo", "cy", "di", "ed", "flo"], replicas=3)
    try:
        await settle(nodes)
        await nodes[0].chat.join("rep")
        await nodes[1].chat.send("rep", "kept thrice")
        m = owner(nodes, channel_key("rep"))
        replicas = successors_of(nodes, m, 3)
        others = [n for n in nodes if n is not m and n not in replicas]

        def copies_have_it():
            for n in replicas:
                ch = n.chat.replicas.get("channel", "rep")
                if ch is None or [e.text for e in ch.history()] != ["kept thrice"]:
                    return False
            return True
        await wait_until(copies_have_it, 10, what="three replicas")
        await wait_until(lambda: all(n.chat.replicas.get("channel", "rep") is None
                                     for n in others), 10, what="no copy elsewhere")
    finally:
        await stop_chat(nodes)


@async_test()
async def test_takeover__crashed_maintainer_successor_serves_members_history_and_order():
    nodes = await start_chat_ring(["ann", "bo", "cy", "di", "ed"], replicas=2)
    try:
        await settle(nodes)
        key = channel_key("hist")
        m = owner(nodes, key)
        members = [n for n in nodes if n is not m][:3]
        for n in members:
            await n.chat.join("hist")
        for i in range(5):
            await members[0].chat.send("hist", f"before {i}")
        await m.chat.stop()
        await m.node.stop()                       # a crash
        rest = [n for n in nodes if n is not m]
        await members[1].chat.send("hist", "after the crash")   # retried until taken over
        taker = owner(rest, key)
        assert taker.of(ev.Migration, step="takeover", key="hist")
        for n in members:
            await wait_until(lambda n=n: "after the crash" in n.texts("hist"), 20)
            assert n.texts("hist") == [f"before {i}" for i in range(5)] + ["after the crash"]
        # a new member gets the recent history, marked as such
        late = next(n for n in rest if n not in members)
        await late.chat.join("hist")
        history = late.of(ev.ChannelMessage, channel="hist", history=True)
        assert [e.text for e in history] == [f"before {i}" for i in range(5)] + [
            "after the crash"]
        assert [e.seq for e in history] == sorted(e.seq for e in history)
        # the dead node's name map is still held (by the taker) until someone claims it
        holder = owner(rest, name_key(m.nick))
        entry = holder.chat.primary.get("name", m.nick.lower())
        assert entry is not None and entry.present
    finally:
        await stop_chat(nodes)


@async_test()
async def test_send__duplicate_message_id_is_stored_and_shown_once():
    from core.chat import protocol as p
    nodes = await start_chat_ring(["ann", "bo", "cy"])
    try:
        await settle(nodes)
        await nodes[1].chat.join("dup")
        key = channel_key("dup")
        m = owner(nodes, key)
        payload = {"key": f"{key:x}", "channel": "dup", "nick": "ann", "msg_id": "d" * 32,
                   "text": "retried"}
        replies = [await nodes[0].node.user_command(m.node.address, p.CHANNEL_SEND, payload)
                   for _ in range(3)]
        assert len({r["seq"] for r in replies}) == 1
        await nodes[0].chat.send("dup", "marker")
        await wait_until(lambda: "marker" in nodes[1].texts("dup"), 10)
        assert nodes[1].texts("dup") == ["retried", "marker"]
    finally:
        await stop_chat(nodes)


@async_test()
async def test_concurrent_joins__eight_nodes_join_at_once_while_messages_flow():
    import asyncio

    from tests.core.chat.chatring import start_chat
    nodes = await start_chat_ring(["ann", "bo", "cy"])
    try:
        await settle(nodes)
        for n in nodes:
            await n.chat.join("crowd")

        async def sender() -> list[str]:
            acked = []
            for i in range(150):
                msg_id, _ = await nodes[0].chat.send("crowd", f"m{i}")
                acked.append(msg_id)
                await asyncio.sleep(0.01)  # pacing the traffic
            return acked

        sending = asyncio.create_task(sender())
        nodes += await asyncio.gather(*(start_chat(f"new{i}", nodes[i % 3]) for i in range(8)))
        acked = await sending
        for n in nodes[:3]:
            await wait_until(lambda n=n: len(n.texts("crowd")) >= 150, 30, what=f"{n.nick}")
            shown = [e.msg_id for e in n.of(ev.ChannelMessage, channel="crowd")]
            assert shown == acked, f"{n.nick}: {len(shown)} shown, {len(set(shown))} distinct"
        await settle(nodes)
        await wait_until(lambda: [n for n in nodes if n.chat.primary.get("channel", "crowd")]
                         == [owner(nodes, channel_key("crowd"))], 20,
                         what="the channel at its owner only")
    finally:
        await stop_chat(nodes)
