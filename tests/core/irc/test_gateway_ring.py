"""The IRC gateway against real nodes on loopback, driven by a real IRC client library (the
``irc`` package's asyncio client): registration, channels and private messages across two
nodes and with an in-process user, part, quit, the error numerics, bad lines, PASS."""

from __future__ import annotations

import asyncio

import pytest

irc_client_aio = pytest.importorskip("irc.client_aio")

from core import events as ev  # noqa: E402
from core.chat.model.errors import NickTaken  # noqa: E402
from core.chord.ids import hex_id  # noqa: E402
from core.chord.testing import wait_until  # noqa: E402
from core.irc import IrcGateway  # noqa: E402
from core.irc.message import parse  # noqa: E402
from tests.support.irc import Client, Node, ring, start  # noqa: E402

pytestmark = pytest.mark.timeout(120)


async def client(clients: list, box: Node, nick: str, password: str | None = None) -> Client:
    c = await Client().connect(box, nick, password)
    clients.append(c)
    return c


async def registered(clients: list, box: Node, nick: str) -> Client:
    c = await client(clients, box, nick)
    await c.wait("welcome")
    return c


class TestRegistration:
    async def test_gateway__registration_welcomes_and_claims_the_nick_on_the_ring(self):
        async with ring() as ((a, b), clients):
            alice = await registered(clients, a, "alice")
            await alice.wait_line("376")   # the gateway always has a MOTD: never 422
            motd = ["375", *["372"] * len(a.gateway.info.motd), "376"]
            assert a.gateway.info.motd and alice.numerics()[:6 + len(motd)] == [
                "001", "002", "003", "004", "005", "005", *motd]
            assert "422" not in alice.numerics()
            assert alice.conn.features.chantypes == "#&"
            assert alice.conn.features.nicklen == 32
            assert "alice" in a.service.users
            with pytest.raises(NickTaken):   # the nick is held on the ring, for node b too
                await b.service.add_user("Alice", lambda e: None)

    async def test_gateway__a_nick_taken_on_the_ring_is_433(self):
        async with ring() as ((a, b), clients):
            await b.service.add_user("hank", lambda e: None)
            c = await client(clients, a, "hank")
            await c.wait("nicknameinuse")
            c.conn.nick("hank2")
            await c.wait("welcome")
            assert "hank2" in a.service.users

    async def test_gateway__a_client_back_at_once_gets_its_nick_not_433(self):
        """A closed socket frees the nick, as on IRC servers: a client that reconnects at
        once waits for its old connection to give the nick back, then registers."""
        async with ring() as ((a, b), clients):
            for _ in range(3):
                c = await registered(clients, a, "alice")
                c.conn.join("#back")
                await c.wait("endofnames")
                c.close()                     # no QUIT: the socket just closes
                again = await client(clients, a, "alice")
                await wait_until(lambda c=again: c.of("welcome") or c.of("nicknameinuse"),
                                 what="an answer to the nick")
                assert again.of("welcome") and not again.of("nicknameinuse")
                again.close()

    async def test_gateway__password_wrong_is_464_right_registers(self):
        async with ring(1, password="s3cret") as ((a,), clients):
            bad = await client(clients, a, "mallory", password="guess")
            await bad.wait("passwdmismatch")
            await bad.wait_line("ERROR")
            assert "mallory" not in a.service.users
            good = await client(clients, a, "alice", password="s3cret")
            await good.wait("welcome")

    async def test_gateway__nicks_wait_until_admitted(self):
        """The runtime listens before its own user registers and admits the IRC nicks after:
        a client as quick as that still finds the node's own nick taken."""
        async with ring(1) as ((a,), clients):
            box = await not_admitting(a)
            try:
                c = await client(clients, box, "ann")
                await wait_until(lambda: waiting(box.gateway), what="ann's nick waiting")
                await a.service.add_user("ann", lambda e: None)   # the node's own user
                box.gateway.admit()
                await c.wait("nicknameinuse")
            finally:
                await box.gateway.stop(quit_users=False)

    async def test_gateway__stopped_before_admitting_closes_the_waiting_clients(self):
        async with ring(1) as ((a,), clients):
            box = await not_admitting(a)
            c = await client(clients, box, "ann")
            await wait_until(lambda: waiting(box.gateway), what="ann's nick waiting")
            await box.gateway.stop()
            await c.wait_line("ERROR")
            assert not box.gateway.connections and "ann" not in a.service.users


async def not_admitting(box: Node) -> Node:
    """A second gateway of ``box``'s node, listening but not admitting nicks yet."""
    gateway = IrcGateway(box.service, "127.0.0.1", 0)
    await gateway.start(admit=False)
    return Node(box.node, box.service, gateway)


def waiting(gateway: IrcGateway) -> bool:
    """Whether a client of ``gateway`` has sent its nick and waits for the ring's answer."""
    return any(c.session.state == "registering" for c in gateway.connections)


class TestMessages:
    async def test_gateway__channel_messages_between_irc_users_on_two_nodes(self):
        async with ring() as ((a, b), clients):
            alice = await registered(clients, a, "alice")
            bob = await registered(clients, b, "bob")
            alice.conn.join("#room")
            await alice.wait("join", nick="alice", target="#room")
            await alice.wait("endofnames")
            bob.conn.join("#Room")
            await bob.wait("join", nick="bob", target="#room")
            names = " ".join(e.arguments[-1] for e in bob.of("namreply"))
            # alice founded #room: its operator, as bob's node learns from the maintainer
            assert set(names.split()) == {"@alice", "bob"}
            await alice.wait("join", nick="bob", target="#room")
            alice.conn.privmsg("#room", "hello from node a")
            await bob.wait("pubmsg", nick="alice", target="#room", text="hello from node a")
            bob.conn.privmsg("#room", "and back from b")
            await alice.wait("pubmsg", nick="bob", text="and back from b")
            assert not alice.of("pubmsg", nick="alice")   # no echo of one's own message
            alice.conn.action("#room", "waves")
            await bob.wait("action", nick="alice", text="waves")

    async def test_gateway__messages_between_irc_and_an_in_process_user(self):
        async with ring() as ((a, b), clients):
            hank_events: list = []
            hank = await b.service.add_user("hank", hank_events.append)
            alice = await registered(clients, a, "alice")
            alice.conn.join("#mixed")
            await alice.wait("endofnames")
            await hank.join("mixed")
            await alice.wait("join", nick="hank", target="#mixed")
            alice.conn.privmsg("#mixed", "hi hank")
            await wait_until(lambda: any(isinstance(e, ev.ChannelMessage) and e.text == "hi hank"
                                         and e.from_ == "alice" for e in hank_events))
            await hank.send("mixed", "hi alice")
            await alice.wait("pubmsg", nick="hank", target="#mixed", text="hi alice")
            alice.conn.privmsg("hank", "psst")
            await wait_until(lambda: any(isinstance(e, ev.PrivateMessage) and e.text == "psst"
                                         and e.from_ == "alice" for e in hank_events))
            await hank.msg("alice", "psst back")
            await alice.wait("privmsg", nick="hank", target="alice", text="psst back")

    async def test_gateway__private_messages_between_irc_users_on_two_nodes(self):
        async with ring() as ((a, b), clients):
            alice = await registered(clients, a, "alice")
            bob = await registered(clients, b, "bob")
            alice.conn.privmsg("bob", "just you")
            await bob.wait("privmsg", nick="alice", target="bob", text="just you")
            bob.conn.notice("alice", "a notice")
            await alice.wait("privnotice", nick="bob", text="a notice")

    async def test_gateway__part_and_quit_are_shown_to_the_others(self):
        async with ring() as ((a, b), clients):
            alice = await registered(clients, a, "alice")
            bob = await registered(clients, b, "bob")
            carol = await registered(clients, b, "carol")
            for c in (alice, bob, carol):
                c.conn.join("#room")
                await c.wait("endofnames")
            await alice.wait("join", nick="carol")
            bob.conn.part("#room", "later")
            await bob.wait("part", nick="bob", target="#room")
            await alice.wait("part", nick="bob", target="#room")
            carol.conn.quit("bye all")
            await alice.wait("quit", nick="carol")
            await wait_until(lambda: "carol" not in b.service.users, what="carol's user gone")
            again = await registered(clients, a, "carol")   # the nick is free again
            assert again.of("welcome")


class TestWhoisAndRing:
    async def test_gateway__whois_names_the_node_and_its_address(self):
        async with ring() as ((a, b), clients):
            alice = await registered(clients, a, "alice")
            await registered(clients, b, "bob")
            mark = len(alice.lines)
            alice.conn.whois("bob")
            await alice.wait("endofwhois")
            text = "\n".join(alice.lines[mark:])
            assert hex_id(b.node.id) in text and str(b.node.address) in text
            alice.conn.whois("nobody")
            await alice.wait("nosuchnick")

    async def test_gateway__ring_channel_shows_a_node_joining(self):
        async with ring() as ((a, b), clients):
            alice = await registered(clients, a, "alice")
            alice.conn.join("&ring")
            await alice.wait("join", target="&ring")
            c = await start(a)
            try:
                await alice.wait("pubmsg", target="&ring")
            finally:
                await c.gateway.stop(quit_users=False)
                await c.service.stop()
                await c.node.stop()


class TestErrors:
    async def test_gateway__error_numerics(self):
        async with ring() as ((a, b), clients):
            alice = await registered(clients, a, "alice")
            alice.conn.privmsg("nobody", "hello?")
            await alice.wait("nosuchnick")                           # 401, after the lookup
            alice.conn.join("#bad!name")
            await alice.wait("nosuchchannel")                        # 403
            alice.raw(b"PRIVMSG\r\n")
            await alice.wait("norecipient")                          # 411
            alice.raw(b"PRIVMSG #room\r\n")
            await alice.wait("notexttosend")                         # 412
            alice.raw(b"FROBNICATE\r\n")
            await alice.wait("unknowncommand")                       # 421
            alice.raw(b"JOIN\r\n")
            await alice.wait("needmoreparams")                       # 461
            alice.raw(b"PART #elsewhere\r\n")
            await alice.wait("notonchannel")                         # 442

    async def test_gateway__nick_errors_and_not_registered(self):
        async with ring(1) as ((a,), clients):
            host, port = a.gateway.address
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(b"JOIN #room\r\nNICK\r\nNICK 9lives\r\n")
                got = []
                while len(got) < 3:
                    got.append(parse(await asyncio.wait_for(reader.readline(), 10)).command)
                assert got == ["451", "431", "432"]
            finally:
                writer.close()

    async def test_gateway__bad_lines_then_the_connection_still_answers_ping(self):
        async with ring(1) as ((a,), clients):
            alice = await registered(clients, a, "alice")
            mark = alice.raw(b"PRIVMSG #room :" + b"x" * 600 + b"\r\n")
            assert (await alice.wait_line("417", mark)).params[-1] == "Input line was too long"
            mark = alice.raw(b"PRIVMSG #room :caf\xe9\r\n")
            assert "INVALID_UTF8" in (await alice.wait_line("FAIL", mark)).params
            mark = alice.raw(b"PING still-there\r\n")
            assert (await alice.wait_line("PONG", mark)).params[-1] == "still-there"


class TestActionsAndLines:
    """Issue 22: /me and messages of several lines, between ring users on two real nodes
    and a real IRC client."""

    async def test_me__reaches_an_irc_client_as_a_ctcp_action_and_back_as_a_signed_action(
            self):
        from core.chat.model.commands import parse as parse_command
        async with ring() as ((a, b), clients):
            heard: list = []
            ada = await b.service.add_user("ada", heard.append)
            await ada.join("room")
            alice = await registered(clients, a, "alice")
            alice.conn.join("#room")
            await wait_until(lambda: any(isinstance(e, ev.MemberJoined) and e.nick == "alice"
                                         for e in heard), what="alice in #room at ada")
            await ada.execute(parse_command("/me waves", "#room"))
            got = await alice.wait("action", nick="ada")
            assert got.target == "#room" and got.arguments == ["waves"]
            alice.conn.action("#room", "nods")
            await wait_until(lambda: [e for e in heard if isinstance(e, ev.ChannelMessage)
                                      and e.from_ == "alice"], what="alice's action at ada")
            nod = next(e for e in heard if isinstance(e, ev.ChannelMessage)
                       and e.from_ == "alice")
            assert (nod.text, nod.action) == ("nods", True)   # not "/me nods" as text

    async def test_several_lines__one_message_through_two_nodes_each_line_a_privmsg(self):
        from core.chat.model.commands import text_command
        async with ring() as ((a, b), clients):
            heard_a: list = []
            heard_b: list = []
            ada = await b.service.add_user("ada", heard_b.append)
            bob = await a.service.add_user("bob", heard_a.append)
            await bob.join("room")
            await ada.join("room")
            alice = await registered(clients, a, "alice")
            alice.conn.join("#room")
            await wait_until(lambda: any(isinstance(e, ev.MemberJoined) and e.nick == "alice"
                                         for e in heard_b), what="alice in #room at ada")
            await ada.execute(text_command("#room", "first line\n  second, indented\nthird"))

            def arrived() -> list:
                return [e for e in heard_a if isinstance(e, ev.ChannelMessage)
                        and e.from_ == "ada"]
            await wait_until(arrived, what="ada's message at bob, on the other node")
            await wait_until(lambda: len(alice.of("pubmsg", nick="ada")) >= 3,
                             what="three PRIVMSG lines at the IRC client")
            (got,) = arrived()         # one message, with one id, holding every line
            assert got.text == "first line\n  second, indented\nthird"
            sent = [e for e in heard_b if isinstance(e, ev.Sent)]
            assert [e.msg_id for e in sent] == [got.msg_id]
            assert [e.arguments[0] for e in alice.of("pubmsg", nick="ada")] == [
                "first line", "  second, indented", "third"]
