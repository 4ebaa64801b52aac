"""IRCv3 through a real IRC client library (the ``irc`` package's asyncio client) against
gateways of real nodes on loopback: CHATHISTORY over what the ring delivered, the same
``msgid`` at every client of every node, echo-message, and SASL PLAIN's answers."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.chord.testing import wait_until
from core.irc.message import Message, parse
from tests.support.irc import Client, Node, ring

pytestmark = pytest.mark.timeout(120)

CAPS = ("server-time", "message-tags", "batch", "echo-message", "draft/chathistory")


async def connected(clients: list, box: Node, nick: str, caps=CAPS,
                    sasl: str | None = None) -> Client:
    c = await Client().connect(box, nick, caps=caps, sasl=sasl)
    clients.append(c)
    await c.wait("welcome")
    return c


async def joined(c: Client, channel: str) -> None:
    c.conn.join(channel)
    await c.wait("endofnames")


async def batch(c: Client, line: str) -> tuple[str, list[Message]]:
    """Send ``line`` (a CHATHISTORY query) and return the type of the batch that answers it
    and the messages in it."""
    mark = c.raw(line.encode() + b"\r\n")
    opened = await c.wait_line("BATCH", mark)
    ref = opened.params[0][1:]
    assert opened.params[0].startswith("+"), opened
    deadline = time.monotonic() + 20
    while f"BATCH -{ref}" not in "\n".join(c.lines[mark:]):
        assert time.monotonic() < deadline, f"no end of batch {ref}: {c.lines[mark:]}"
        await asyncio.sleep(0.02)   # polled under the deadline just above
    inside = [m for m in map(parse, c.lines[mark:]) if m.tags.get("batch") == ref]
    return opened.params[1], inside


def texts(messages: list[Message]) -> list[str]:
    return [m.params[-1] for m in messages]


async def test_chathistory__latest_before_after_over_lines_another_node_delivered(tmp_path):
    async with ring(2, data_dir=tmp_path) as ((a, b), clients):
        alice = await connected(clients, a, "alice", sasl="pw-alice")
        assert alice.sasl == "903" and set(CAPS) <= alice.caps
        bob = await connected(clients, b, "bob", caps=())
        await joined(alice, "#hist")
        await joined(bob, "#hist")
        await alice.wait("join", nick="bob", target="#hist")
        sent = [f"line {i}" for i in range(6)]
        for text in sent:
            bob.conn.privmsg("#hist", text)
        await alice.wait("pubmsg", nick="bob", text=sent[-1])
        ids = [alice.tags(e)["msgid"] for e in alice.of("pubmsg", nick="bob")]
        assert len(set(ids)) == 6

        kind, got = await batch(alice, "CHATHISTORY LATEST #hist * 10")
        assert kind == "chathistory" and texts(got) == sent
        assert [m.tags["msgid"] for m in got] == ids
        assert all(parse_prefix(m) == "bob" and m.params[0] == "#hist" for m in got)
        assert all(m.tags["time"].endswith("Z") for m in got)

        _, got = await batch(alice, "CHATHISTORY LATEST #hist * 2")
        assert texts(got) == sent[-2:]
        _, got = await batch(alice, f"CHATHISTORY LATEST #hist msgid={ids[3]} 10")
        assert texts(got) == sent[4:]                          # only those after the id
        _, got = await batch(alice, f"CHATHISTORY BEFORE #hist msgid={ids[4]} 3")
        assert texts(got) == sent[1:4]                         # the 3 just before, oldest first
        _, got = await batch(alice, f"CHATHISTORY AFTER #hist msgid={ids[1]} 2")
        assert texts(got) == sent[2:4]
        stamp = got[0].tags["time"]                            # the time of line 2
        _, got = await batch(alice, f"CHATHISTORY AFTER #hist timestamp={stamp} 10")
        assert texts(got)[-1] == sent[-1] and sent[2] not in texts(got)
        _, got = await batch(alice, "CHATHISTORY BEFORE #hist msgid=not-an-id 10")
        assert got == []


def parse_prefix(m: Message) -> str:
    return (m.prefix or "").split("!")[0]


async def test_msgid__the_same_at_every_client_of_every_node_and_in_the_senders_echo(tmp_path):
    async with ring(2) as ((a, b), clients):
        carol = await connected(clients, a, "carol")                 # the sender, echo-message
        alice = await connected(clients, a, "alice", caps=("message-tags",))
        bob = await connected(clients, b, "bob", caps=("message-tags", "server-time"))
        plain = await connected(clients, b, "dave", caps=())        # asked for nothing
        for c in (carol, alice, bob, plain):
            await joined(c, "#ids")
        await carol.wait("join", nick="dave", target="#ids")
        carol.conn.privmsg("#ids", "one message, one id")
        seen = [await c.wait("pubmsg", nick="carol", text="one message, one id")
                for c in (carol, alice, bob, plain)]
        ids = {c.tags(e).get("msgid") for c, e in zip((carol, alice, bob), seen[:3], strict=True)}
        assert len(ids) == 1 and None not in ids
        assert "time" in bob.tags(seen[2]) and "time" not in alice.tags(seen[1])
        assert plain.tags(seen[3]) == {}                            # no tags it did not ask for
        # a private message: the same id at the recipient and in the sender's echo
        carol.conn.privmsg("bob", "just you")
        got = await bob.wait("privmsg", nick="carol", text="just you")
        echo = await carol.wait("privmsg", nick="carol", target="bob", text="just you")
        assert carol.tags(echo)["msgid"] == bob.tags(got)["msgid"]
        # without echo-message the sender gets nothing back
        bob.conn.privmsg("#ids", "from bob")
        await carol.wait("pubmsg", nick="bob", text="from bob")
        assert not bob.of("pubmsg", nick="bob")


async def test_sasl__the_library_client_is_refused_with_a_wrong_password_and_let_in_with_the_right(
        tmp_path):
    async with ring(1, data_dir=tmp_path) as ((a,), clients):
        first = await connected(clients, a, "erin", caps=(), sasl="right")   # sets it
        assert first.sasl == "903" and "sasl" in first.caps
        assert first.of("loggedin")
        first.conn.quit("bye")
        await wait_until(lambda: "erin" not in a.service.users, what="erin gone")

        wrong = Client()
        clients.append(wrong)
        await wrong.connect(a, "erin", caps=(), sasl="wrong")
        await wrong.wait("saslfail")
        await wrong.wait("nicknameinuse")          # the nick stays its owner's
        assert wrong.sasl == "904" and not wrong.of("welcome") and not wrong.of("loggedin")
        assert "erin" not in a.service.users
        wrong.close()

        right = await connected(clients, a, "erin", caps=(), sasl="right")
        assert right.sasl == "903" and right.of("loggedin")
        assert "erin" in a.service.users
