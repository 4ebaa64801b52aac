"""Channel operators and modes through the gateway, written from RFC 2812 §3.2 (MODE,
KICK, INVITE, NAMES) and modern.ircdocs.horse (channel modes, ISUPPORT): raw sockets on
one real node, and the ``irc`` client library on two real nodes, where the operator and
the member are served by different nodes and the channel by its maintainer."""

from __future__ import annotations

import pytest

from core import events as ev
from core.chord.testing import wait_until
from tests.support.irc import Client, ring
from tests.support.raw_irc import served

pytestmark = pytest.mark.timeout(120)


def names_of(c, since: int) -> set[str]:
    return {n for m in c.got("353", since) for n in m.params[-1].split()}


@served
async def test_mode__the_founder_is_operator_and_its_changes_reach_every_member(gateway):
    """The first to join is the channel's operator (353 shows @); an operator's MODE is
    echoed to every member; 324 and 329 answer MODE #chan; a member who is not an
    operator gets 482 for MODE and, on a +t channel, for TOPIC."""
    a, b = await gateway("founder"), await gateway("member")
    await a.joined("#ops")
    mark = b.send("JOIN #ops")
    await b.wait("366", mark)
    assert names_of(b, mark) == {"@founder", "member"}
    mark_b = len(b.lines)
    mode = await a.wait("MODE", a.send("MODE #ops +nt"))
    assert mode.params == ("#ops", "+nt") and mode.prefix.startswith("founder!")
    assert (await b.wait("MODE", mark_b)).params == ("#ops", "+nt")
    mark = a.send("MODE #ops")
    assert (await a.wait("324", mark)).params[1:] == ("#ops", "+nt")
    assert int((await a.wait("329", mark)).params[2]) > 0
    await b.wait("482", b.send("MODE #ops -t"))
    await b.wait("482", b.send("TOPIC #ops :mine"))
    # the operator gives +o: the member may now
    mark_b = len(b.lines)
    a.send("MODE #ops +o member")
    await b.wait("MODE", mark_b)
    mark_a = len(a.lines)
    b.send("MODE #ops -t")
    mode = await a.wait("MODE", mark_a)
    assert mode.params == ("#ops", "-t") and mode.prefix.startswith("member!")


@served
async def test_join__key_limit_invite_only_ban_and_their_lists(gateway):
    """RFC 2812 §3.2.1 JOIN's numerics: 475 (+k), 471 (+l), 473 (+i), 474 (+b); INVITE
    (§3.2.7) is 341 to the inviter and INVITE to the invitee, and lets it in; the ban
    list is 367 … 368 (modern.ircdocs.horse)."""
    op, guest = await gateway("keeper"), await gateway("guest")
    await op.joined("#door")
    await op.wait("MODE", op.send("MODE #door +k sesame"))
    await guest.wait("475", guest.send("JOIN #door"))
    await guest.wait("475", guest.send("JOIN #door wrong"))
    await guest.wait("366", guest.send("JOIN #door sesame"))
    await guest.wait("PART", guest.send("PART #door"))
    await op.wait("MODE", op.send("MODE #door -k+l 1"))
    await guest.wait("471", guest.send("JOIN #door"))
    await op.wait("MODE", op.send("MODE #door -l+b GUEST!*@*"))   # a ban, any case
    await guest.wait("474", guest.send("JOIN #door"))
    await op.wait("MODE", op.send("MODE #door +i-b GUEST!*@*"))
    await guest.wait("473", guest.send("JOIN #door"))
    mark_g = len(guest.lines)
    inviting = await op.wait("341", op.send("INVITE guest #door"))
    assert inviting.params == ("keeper", "guest", "#door")
    invite = await guest.wait("INVITE", mark_g)
    assert invite.params == ("guest", "#door") and invite.prefix.startswith("keeper!")
    await guest.wait("366", guest.send("JOIN #door"))
    await op.wait("443", op.send("INVITE guest #door"))
    await guest.wait("PART", guest.send("PART #door"))
    await op.wait("MODE", op.send("MODE #door -i+b GUEST!*@*"))
    mark = op.send("MODE #door +b")
    ban = await op.wait("367", mark)
    assert ban.params[1:3] == ("#door", "GUEST!*@*") and ban.params[3] == "keeper"
    await op.wait("368", mark)
    await op.wait("MODE", op.send("MODE #door +e g*!*@*"))
    await guest.wait("366", guest.send("JOIN #door"))   # invited: past the ban (and +e)


@served
async def test_mode__bad_arguments_are_696_and_unknown_letters_472(gateway):
    a = await gateway("strict")
    await a.joined("#args")
    for line, letter in (("MODE #args +l :0", "l"), ("MODE #args +l abc", "l"),
                         ("MODE #args +k :" + "x" * 30, "k")):
        error = await a.wait("696", a.send(line))
        assert error.params[1:3] == ("#args", letter), line
        assert "x" * 30 not in str(error)   # a key is never echoed
    await a.wait("472", a.send("MODE #args +Z"))
    mark = a.send("MODE #args")
    assert (await a.wait("324", mark)).params[2:] == ("+",)   # nothing was set


@served
async def test_kick__an_operator_removes_a_member_everyone_sees_it(gateway):
    """RFC 2812 §3.2.8: KICK with the comment (the kicker's nick without one); the kicked
    member is out; 482 for a member who is not an operator, 442 from outside, 441 for a
    nick not in the channel."""
    op, bob, eve = await gateway("kicker"), await gateway("kbob"), await gateway("keve")
    for c in (op, bob, eve):
        await c.joined("#kick")
    await eve.wait("482", eve.send("KICK #kick kbob"))
    mark_b, mark_e = len(bob.lines), len(eve.lines)
    kick = await op.wait("KICK", op.send("KICK #kick kbob :bye now"))
    assert kick.params == ("#kick", "kbob", "bye now")
    assert (await bob.wait("KICK", mark_b)).params == ("#kick", "kbob", "bye now")
    assert (await eve.wait("KICK", mark_e)).params == ("#kick", "kbob", "bye now")
    await bob.wait("442", bob.send("KICK #kick keve"))
    await op.wait("441", op.send("KICK #kick kbob"))
    assert len(op.got("KICK")) == 1   # its own kick shown once
    mark = op.send("KICK #kick keve")
    assert (await op.wait("KICK", mark)).params == ("#kick", "keve", "kicker")
    mark = op.send("NAMES #kick")
    await op.wait("366", mark)
    assert names_of(op, mark) == {"@kicker"}
    # the kicked may join again (no ban), as a plain member
    mark = bob.send("JOIN #kick")
    await bob.wait("366", mark)
    assert names_of(bob, mark) == {"@kicker", "kbob"}


@served
async def test_privmsg__no_external_and_moderated_are_404(gateway):
    """+n: only members may send (404 for others); +m: only operators and voiced members
    (RFC 2812 §3.2.3; 404 ERR_CANNOTSENDTOCHAN); the others see nothing of it."""
    op, member, outsider = (await gateway("mod"), await gateway("talker"),
                            await gateway("outsider"))
    await op.joined("#quiet")
    await member.joined("#quiet")
    await op.wait("MODE", op.send("MODE #quiet +nm"))
    mark_op = len(op.lines)
    await outsider.wait("404", outsider.send("PRIVMSG #quiet :from outside"))
    await member.wait("404", member.send("PRIVMSG #quiet :not voiced"))
    await op.wait("MODE", op.send("MODE #quiet +v talker"))
    member.send("PRIVMSG #quiet :voiced now")
    # the first line the operator got since +nm: the refused ones never reached it
    assert (await op.wait("PRIVMSG", mark_op)).params == ("#quiet", "voiced now")
    mark = op.send("NAMES #quiet")
    await op.wait("366", mark)
    assert names_of(op, mark) == {"@mod", "+talker"}


@served
async def test_list__a_secret_channel_only_for_its_members(gateway):
    """RFC 1459 §4.2.6 / modern.ircdocs.horse +s: a secret channel is not in LIST for a
    client outside it, and its 353 is marked @."""
    a, b = await gateway("hider"), await gateway("seeker")
    await a.joined("#hidden")
    await a.joined("#shown")
    await a.wait("MODE", a.send("MODE #hidden +s"))
    mark = b.send("LIST")
    await b.wait("323", mark)
    assert {m.params[1] for m in b.got("322", mark)} == {"#shown"}
    mark = a.send("LIST", "NAMES #hidden")
    await a.wait("366", mark)
    assert {m.params[1] for m in a.got("322", mark)} == {"#hidden", "#shown"}
    assert a.got("353", mark)[0].params[1] == "@"


async def test_operators_across_two_nodes__grant_kick_and_multi_prefix():
    """The operator is served by one node, the member by another: the member's node
    learns who operates the channel from its maintainer (NAMES @), takes +o from it, and
    its KICK removes the founder, whose client sees KICK. WHO and NAMES show @+ with
    multi-prefix."""
    async with ring() as ((a, b), clients):
        alice = await Client().connect(a, "alice")
        clients.append(alice)
        bob = await Client().connect(b, "bob")
        clients.append(bob)
        await alice.wait("welcome")
        await bob.wait("welcome")
        alice.conn.join("#span")
        await alice.wait("endofnames")
        bob.conn.join("#span")
        await bob.wait("endofnames")
        assert set(bob.of("namreply")[-1].arguments[-1].split()) == {"@alice", "bob"}
        mark = len(bob.lines)
        alice.conn.mode("#span", "+ov bob bob")
        mode = await bob.wait_line("MODE", mark)
        assert mode.params == ("#span", "+ov", "bob", "bob")
        mark = len(alice.lines)
        bob.conn.kick("#span", "alice", "my turn")
        kick = await alice.wait_line("KICK", mark)
        assert kick.params == ("#span", "alice", "my turn") and kick.prefix.startswith("bob!")
        mark = len(bob.lines)
        bob.conn.who("#span")
        who = await bob.wait_line("352", mark)
        assert who.params[5] == "bob" and who.params[6] == "H@"
        assert "span" not in a.service.users["alice"].joined


async def test_invite_across_two_nodes__the_invitee_is_told_wherever_it_is_served(tmp_path):
    """An operator served by one node invites an IRC client and a chat user (the UI's or
    headless's) served by another: the IRC client gets ``:alice!… INVITE guest #door``
    (RFC 2812 §3.2.7), the chat user an Invited event, and both get in past +i."""
    async with ring(data_dir=tmp_path) as ((a, b), clients):
        dee_events: list = []
        dee = await b.service.add_user("dee", dee_events.append)
        alice = await Client().connect(a, "alice")
        clients.append(alice)
        guest = await Client().connect(b, "guest")
        clients.append(guest)
        await alice.wait("welcome")
        await guest.wait("welcome")
        alice.conn.join("#door")
        await alice.wait("endofnames")
        alice.conn.mode("#door", "+i")
        await alice.wait("mode", target="#door")
        mark = len(guest.lines)
        guest.conn.join("#door")
        await guest.wait_line("473", mark)
        mark_a, mark_g = len(alice.lines), len(guest.lines)
        alice.conn.invite("guest", "#door")
        inviting = await alice.wait_line("341", mark_a)
        assert inviting.params == ("alice", "guest", "#door")
        invite = await guest.wait_line("INVITE", mark_g)
        assert invite.params == ("guest", "#door") and invite.prefix.startswith("alice!")
        alice.conn.invite("dee", "#door")
        await wait_until(lambda: [e for e in dee_events if isinstance(e, ev.Invited)], 30,
                         what="dee told")
        assert [(e.channel, e.nick, e.invitee) for e in dee_events
                if isinstance(e, ev.Invited)] == [("door", "alice", "")]
        mark = len(guest.lines)
        guest.conn.join("#door")
        await guest.wait_line("366", mark)
        await dee.join("door")
        assert sum(line.startswith(":alice!") and " INVITE " in line
                   for line in guest.lines) == 1
