"""The IRC session state machine, driven line by line: what the client reads back and what
the session asks the chat to do."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import events as ev
from core.chat.model.commands import Command
from core.irc.actions import (
    NO_SUCH_OPER,
    Close,
    ListChannels,
    Lookup,
    Oper,
    Quit,
    Register,
    Rename,
    Run,
    Whois,
)
from core.irc.message import TOO_LONG, LineBuffer, Message, encode, parse
from core.irc.replies import ServerInfo
from core.irc.session import Session

SERVER = "0a1b2c3d.chordchat"


class Client:
    """A session with an in-memory line list standing in for the socket."""

    def __init__(self, password=None, motd=("hello",)):
        self.sent: list[Message] = []
        self.session = Session(ServerInfo(SERVER, motd=motd, password=password),
                               self.sent.append, host="127.0.0.1")

    def line(self, raw) -> list:
        return self.session.receive(raw)

    def read(self) -> list[str]:
        """The lines the client got since the last read."""
        out = [str(m) for m in self.sent]
        self.sent.clear()
        return out

    def numerics(self) -> list[str]:
        return [m.split()[1] for m in self.read()]

    def answers(self, *lines: bytes) -> list[str]:
        """Feed ``lines``; the numerics (or commands) of the lines the client got since
        the last read."""
        for line in lines:
            self.line(line)
        return self.numerics()

    def register(self, nick="alice") -> "Client":
        self.line(f"NICK {nick}".encode())
        assert self.line(b"USER al 0 * :Alice L") == [Register(nick)]
        self.session.registered()
        self.read()
        return self

    def joined(self, channel, *members) -> "Client":
        assert self.line(f"JOIN #{channel}".encode()) == [Run(Command("join", (channel,)))]
        self.session.event(ev.Joined(channel, members))
        self.read()
        return self


class TestRegistration:
    def test_registration__nick_user_asks_the_ring_then_welcomes(self):
        c = Client()
        assert c.line(b"NICK alice") == []
        assert c.line(b"USER al 0 * :Alice L") == [Register("alice")]
        assert c.read() == []
        c.session.registered()
        lines = c.read()
        assert [m.split()[1] for m in lines] == [
            "001", "002", "003", "004", "005", "005", "375", "372", "376"]
        # RFC 1459 §2.3: at most 15 parameters a line, the 005s too
        assert all(len(parse(line).params) <= 15 for line in lines)
        assert lines[0] == (
            f":{SERVER} 001 alice :Welcome to the chordchat network, alice!al@127.0.0.1")
        isupport = lines[4].split() + lines[5].split()
        for token in ("CHANTYPES=#&", "NICKLEN=32", "CHANNELLEN=51", "TOPICLEN=300",
                      "CASEMAPPING=ascii", "NETWORK=chordchat",
                      "PREFIX=(ov)@+", "CHANMODES=beI,k,l,imnst", "EXCEPTS=e", "INVEX=I",
                      "WHOX"):
            assert token in isupport

    def test_registration__user_before_nick(self):
        c = Client()
        assert c.line(b"USER al 0 * :Alice") == []
        assert c.line(b"NICK alice") == [Register("alice")]

    def test_registration__without_motd_says_422(self):
        c = Client(motd=())
        c.register()
        c.session.registered()
        assert c.numerics()[-1] == "422"

    def test_registration__cap_ls_holds_registration_until_cap_end(self):
        c = Client()
        assert c.line(b"CAP LS 302") == []
        assert c.read() == [
            f":{SERVER} CAP * LS :batch echo-message message-tags multi-prefix server-time "
            "userhost-in-names"]
        c.line(b"NICK alice")
        assert c.line(b"USER al 0 * :Alice") == []
        assert c.line(b"CAP REQ :multi-prefix sasl") == []
        assert c.read() == [f":{SERVER} CAP alice NAK :multi-prefix sasl"]
        assert c.line(b"CAP END") == [Register("alice")]

    def test_cap__userhost_in_names_gives_every_member_as_a_mask(self):
        """IRCv3 userhost-in-names: 353 lists nick!user@host, the masks the client is
        shown elsewhere (its own as it registered, the others' on the ring)."""
        c = Client()
        c.line(b"CAP LS 302")
        c.read()
        c.line(b"CAP REQ :multi-prefix userhost-in-names")
        assert c.read() == [f":{SERVER} CAP * ACK :multi-prefix userhost-in-names"]
        c.line(b"CAP END")
        c.register().joined("a", "bob")
        assert c.read() == []
        c.line(b"NAMES #a")
        assert c.read()[0] == f":{SERVER} 353 alice = #a :bob!bob@ring alice!al@127.0.0.1"

    def test_registration__nick_taken_on_the_ring_is_433_and_another_nick_may_follow(self):
        c = Client()
        c.line(b"NICK alice")
        c.line(b"USER al 0 * :Alice")
        assert c.session.refused("alice", "alice is held by 10.0.0.2:4000", taken=True) == []
        assert c.read() == [f":{SERVER} 433 * alice :Nickname is already in use"]
        assert c.line(b"NICK alice_") == [Register("alice_")]

    def test_registration__ring_unreachable_closes_with_error(self):
        c = Client()
        c.line(b"NICK alice")
        c.line(b"USER al 0 * :Alice")
        assert c.session.refused("alice", "no node answers", taken=False) == [
            Close("cannot register alice: no node answers")]
        assert c.read()[0].startswith("ERROR :Closing link")

    def test_registration__nick_while_the_ring_is_asked_is_ignored(self):
        c = Client()
        c.line(b"NICK alice")
        c.line(b"USER al 0 * :Alice")
        assert c.line(b"NICK bob") == []
        assert c.session.nick == "alice"

    @pytest.mark.parametrize("line", [b"NICK", b"NICK :"])
    def test_nick__missing_is_431(self, line):
        c = Client()
        c.line(line)
        assert c.read() == [f":{SERVER} 431 * :No nickname given"]

    @pytest.mark.parametrize("nick", ["9lives", "a[b]", "x" * 33, "dash^", "-a"])
    def test_nick__erroneous_is_432(self, nick):
        c = Client()
        c.line(f"NICK {nick}".encode())
        assert c.read() == [f":{SERVER} 432 * {nick} :Erroneous nickname"]

    def test_nick__a_change_once_registered_asks_the_ring_same_nick_ignored(self):
        """RFC 2812 §3.1.2: NICK once registered changes the nick: the driver claims it
        (``Rename``); on its answer the client gets NICK from its old mask and is known by
        the new nick, its channels' members too; 433 if taken, 447 if it failed else."""
        c = Client().register().joined("a", "bob")
        assert c.line(b"NICK alice") == [] and c.read() == []
        assert c.line(b"NICK alice2") == [Rename("alice2")]
        c.session.rename_refused("alice2", "the ring is unreachable", taken=False)
        c.session.rename_refused("alice2", "taken", taken=True)
        assert c.numerics() == ["447", "433"]
        c.session.renamed("alice2")
        assert c.read() == [":alice!al@127.0.0.1 NICK alice2"]
        assert c.session.nick == "alice2" and c.session.channels["a"] == {
            "bob": "bob", "alice2": "alice2"}
        # the old nick leaving the channel, as the new user hears of it: not shown
        c.session.event(ev.MemberLeft("a", "alice", "exit"))
        assert c.read() == []
        # someone else with that nick later: shown
        c.session.event(ev.MemberJoined("a", "alice"))
        assert c.read() == [":alice!alice@ring JOIN #a"]

    def test_nick__no_change_of_case_only_nor_for_a_sasl_login(self):
        c = Client().register()
        assert c.answers(b"NICK ALICE") == ["447"]
        c.session.registration.account = "alice"
        assert c.line(b"NICK bob") == [] and c.numerics() == ["447"]

    def test_user__missing_params_is_461(self):
        c = Client()
        c.line(b"USER al 0")
        assert c.read() == [f":{SERVER} 461 * USER :Not enough parameters"]

    def test_user__again_after_registration_is_462(self):
        c = Client().register()
        assert c.answers(b"USER x 0 * :X", b"PASS secret") == ["462", "462"]

    @pytest.mark.parametrize("line", [b"JOIN #a", b"PRIVMSG #a :hi", b"WHO #a", b"FROB x"])
    def test_before_registration__other_commands_are_451(self, line):
        c = Client()
        assert c.line(line) == []
        assert c.numerics() == ["451"]

    def test_password__right_one_registers(self):
        c = Client(password="s3cret")
        c.line(b"PASS s3cret")
        c.line(b"NICK alice")
        assert c.line(b"USER al 0 * :Alice") == [Register("alice")]

    @pytest.mark.parametrize("given", [None, b"PASS wrong"])
    def test_password__wrong_or_missing_is_464_and_closes(self, given):
        c = Client(password="s3cret")
        if given:
            c.line(given)
        c.line(b"NICK alice")
        assert c.line(b"USER al 0 * :Alice") == [Close("Bad password")]
        lines = c.read()
        assert lines[0] == f":{SERVER} 464 * :Password incorrect"
        assert lines[1].startswith("ERROR :Closing link")
        assert c.line(b"PING x") == [] and c.read() == []   # closed: nothing more


class TestPingAndBadLines:
    def test_ping__answered_before_and_after_registration(self):
        c = Client()
        c.line(b"PING abc")
        assert c.read() == [f":{SERVER} PONG {SERVER} abc"]
        c.register()
        c.line(b"PING :two words")
        assert c.read() == [f":{SERVER} PONG {SERVER} :two words"]

    def test_ping__without_token_is_461(self):
        c = Client().register()
        assert c.answers(b"PING") == ["461"]

    def test_pong__is_silent(self):
        c = Client().register()
        assert c.line(b"PONG x") == [] and c.read() == []

    def test_unknown_command__421_and_the_session_goes_on(self):
        c = Client().register()
        c.line(b"FROBNICATE now")
        assert c.read() == [f":{SERVER} 421 alice FROBNICATE :Unknown command"]
        assert c.answers(b"PING x") == ["PONG"]

    def test_too_long_line__417_and_the_session_goes_on(self):
        c = Client().register()
        assert c.line(TOO_LONG) == []
        assert c.read() == [f":{SERVER} 417 alice :Input line was too long"]
        assert c.answers(b"PING x") == ["PONG"]

    def test_invalid_utf8__fail_and_nothing_is_sent_to_the_ring(self):
        c = Client().register().joined("chat")
        assert c.line(b"PRIVMSG #chat :caf\xe9") == []
        assert c.read() == [
            f":{SERVER} FAIL PRIVMSG INVALID_UTF8 :Message rejected: it is not UTF-8"]
        assert c.answers(b"PING x") == ["PONG"]

    def test_empty_or_prefix_only_line__ignored(self):
        c = Client().register()
        assert c.line(b":only.a.prefix") == [] and c.read() == []


class TestJoinPart:
    def test_join__asks_the_chat_then_echoes_with_names(self):
        c = Client().register()
        assert c.line(b"JOIN #General") == [Run(Command("join", ("general",)))]
        assert c.read() == []
        c.session.event(ev.Joined("general", ("bob", "carol")))
        assert c.read() == [
            ":alice!al@127.0.0.1 JOIN #general",
            f":{SERVER} 353 alice = #general :bob carol alice",
            f":{SERVER} 366 alice #general :End of /NAMES list",
        ]

    def test_join__names_include_the_joiner_once(self):
        c = Client().register()
        c.line(b"JOIN #a")
        c.session.event(ev.Joined("a", ("Alice", "bob")))
        assert c.read()[1] == f":{SERVER} 353 alice = #a :alice bob"

    def test_join__several_channels_by_commas(self):
        c = Client().register()
        assert c.line(b"JOIN #a,#b,#c key1,key2") == [
            Run(Command("join", ("a", "key1"))), Run(Command("join", ("b", "key2"))),
            Run(Command("join", ("c",)))]

    def test_join__a_channel_joined_or_being_joined_is_not_asked_again(self):
        c = Client().register()
        c.line(b"JOIN #a")
        assert c.line(b"JOIN #a") == []
        c.session.event(ev.Joined("a", ()))
        assert c.line(b"JOIN #A") == []

    @pytest.mark.parametrize("name", ["nohash", "#", "#bad!name", "#" + "x" * 51])
    def test_join__invalid_channel_is_403(self, name):
        c = Client().register()
        assert c.line(f"JOIN {name}".encode()) == []
        assert c.read() == [f":{SERVER} 403 alice {name} :No such channel"]

    def test_join__without_channel_is_461(self):
        c = Client().register()
        assert c.answers(b"JOIN") == ["461"]

    def test_join__refused_by_the_chat_is_403_with_the_reason(self):
        c = Client().register()
        (run,) = c.line(b"JOIN #a")
        c.session.failed(run, "the maintainer did not answer")
        assert c.read() == [f":{SERVER} 403 alice #a :Cannot join: the maintainer did not answer"]
        assert c.line(b"JOIN #a") == [run]   # may try again

    def test_join_zero__leaves_every_channel(self):
        c = Client().register().joined("a").joined("b")
        assert c.line(b"JOIN 0") == [Run(Command("leave", ("a",))), Run(Command("leave", ("b",)))]

    def test_part__asks_the_chat_then_echoes_with_the_reason(self):
        c = Client().register().joined("a", "bob")
        assert c.line(b"PART #a :see you") == [Run(Command("leave", ("a", "see you")))]
        c.session.event(ev.Left("a"))
        assert c.read() == [":alice!al@127.0.0.1 PART #a :see you"]
        assert "a" not in c.session.channels

    def test_part__not_on_channel_is_442_invalid_is_403_missing_is_461(self):
        c = Client().register()
        assert c.answers(b"PART #a", b"PART x", b"PART") == ["442", "403", "461"]


class TestMessages:
    def test_privmsg__to_a_channel_is_a_send_command(self):
        c = Client().register().joined("chat")
        assert c.line(b"PRIVMSG #Chat :hello there") == [
            Run(Command("send", ("chat", "hello there")))]

    def test_privmsg__to_a_nick_is_a_msg_command(self):
        c = Client().register()
        assert c.line(b"PRIVMSG bob :hi bob") == [Run(Command("msg", ("bob", "hi bob")))]

    def test_privmsg__several_targets(self):
        c = Client().register().joined("a")
        assert c.line(b"PRIVMSG #a,bob :x") == [
            Run(Command("send", ("a", "x"))), Run(Command("msg", ("bob", "x")))]

    def test_privmsg__no_recipient_411_no_text_412(self):
        c = Client().register()
        c.line(b"PRIVMSG")
        c.line(b"PRIVMSG #a")
        c.line(b"PRIVMSG #a :")
        assert c.read() == [
            f":{SERVER} 411 alice :No recipient given (PRIVMSG)",
            f":{SERVER} 412 alice :No text to send",
            f":{SERVER} 412 alice :No text to send",
        ]

    def test_privmsg__bad_nick_401_bad_channel_403(self):
        c = Client().register()
        assert c.line(b"PRIVMSG b[o]b :x") == []
        assert c.line(b"PRIVMSG #no!pe :x") == []
        assert c.numerics() == ["401", "403"]

    def test_privmsg__failure_from_the_chat_is_401_or_404(self):
        c = Client().register().joined("a")
        (to_nick,) = c.line(b"PRIVMSG bob :x")
        (to_channel,) = c.line(b"PRIVMSG #a :x")
        c.session.failed(to_nick, "nobody has the nick bob")
        c.session.failed(to_channel, "the maintainer did not acknowledge")
        assert c.read() == [
            f":{SERVER} 401 alice bob :No such nick: nobody has the nick bob",
            f":{SERVER} 404 alice #a :Cannot send: the maintainer did not acknowledge",
        ]

    def test_notice__never_answered_with_errors(self):
        c = Client().register()
        c.line(b"NOTICE")
        c.line(b"NOTICE #a")
        c.line(b"NOTICE b[o]b :x")
        (run,) = c.line(b"NOTICE bob :x")
        assert run == Run(Command("msg", ("bob", "/notice x")), quiet=True)
        c.session.failed(run, "nobody has the nick bob")
        assert c.read() == []

    def test_privmsg__formatting_is_stripped(self):
        c = Client().register().joined("a")
        assert c.line(b"PRIVMSG #a :\x02bold\x02 \x0304,01red\x03 plain\x0f") == [
            Run(Command("send", ("a", "bold red plain")))]

    def test_privmsg__ctcp_action_travels_as_a_signed_action(self):
        c = Client().register().joined("a")
        assert c.line(b"PRIVMSG #a :\x01ACTION waves\x01") == [
            Run(Command("me", ("#a", "waves")))]
        assert c.line(b"PRIVMSG bob :\x01ACTION nods\x01") == [
            Run(Command("me", ("bob", "nods")))]

    def test_privmsg__ctcp_query_is_dropped(self):
        c = Client().register()
        assert c.line(b"PRIVMSG bob :\x01VERSION\x01") == [] and c.read() == []

    def test_privmsg__only_formatting_is_412(self):
        c = Client().register()
        assert c.line(b"PRIVMSG #a :\x02\x02") == []
        assert c.numerics() == ["412"]

    def test_channel_message__from_others_is_privmsg_own_echo_is_dropped(self):
        c = Client().register().joined("a", "bob")
        c.session.event(ev.ChannelMessage("a", "bob", "hi all", "m1", 1))
        c.session.event(ev.ChannelMessage("a", "alice", "hi bob", "m2", 2))
        assert c.read() == [":bob!bob@ring PRIVMSG #a :hi all"]

    def test_channel_message__history_of_own_lines_is_shown_as_own(self):
        c = Client().register().joined("a")
        c.session.chat_events.replay = True   # a user with a database of its own
        c.session.event(ev.ChannelMessage("a", "alice", "earlier", "m1", 1, history=True))
        assert c.read() == [":alice!al@127.0.0.1 PRIVMSG #a :earlier"]

    def test_channel_message__slash_me_is_a_ctcp_action(self):
        c = Client().register().joined("a", "bob")
        c.session.event(ev.ChannelMessage("a", "bob", "/me waves", "m1", 1))
        assert c.read() == [":bob!bob@ring PRIVMSG #a :\x01ACTION waves\x01"]

    def test_channel_message__long_text_is_split_into_lines_of_512_bytes(self):
        c = Client().register().joined("a", "bob")
        text = " ".join(["word"] * 400)
        c.session.event(ev.ChannelMessage("a", "bob", text, "m1", 1))
        lines = c.read()
        assert len(lines) > 1
        assert all(len(line.encode()) + 2 <= 512 for line in lines)
        assert " ".join(line.split(" :", 1)[1] for line in lines) == text

    def test_private_message__incoming_is_privmsg_outgoing_is_dropped(self):
        c = Client().register()
        c.session.event(ev.PrivateMessage("bob", "alice", "psst", "m1"))
        c.session.event(ev.PrivateMessage("alice", "bob", "hi", "m2", outgoing=True))
        assert c.read() == [":bob!bob@ring PRIVMSG alice :psst"]

    def test_events_before_registration__are_not_shown(self):
        c = Client()
        c.session.event(ev.PrivateMessage("bob", "alice", "psst", "m1"))
        assert c.read() == []

    def test_info_and_error__are_server_notices(self):
        c = Client().register()
        c.session.event(ev.Info("line one\nline two"))
        c.session.event(ev.Error("bob is unreachable"))
        assert c.read() == [
            f":{SERVER} NOTICE alice :line one",
            f":{SERVER} NOTICE alice :line two",
            f":{SERVER} NOTICE alice :error: bob is unreachable",
        ]


class TestMembers:
    def test_member_joined__is_a_join_once(self):
        c = Client().register().joined("a")
        c.session.event(ev.MemberJoined("a", "bob"))
        c.session.event(ev.MemberJoined("a", "Bob"))
        c.session.event(ev.MemberJoined("a", "alice"))
        assert c.read() == [":bob!bob@ring JOIN #a"]

    def test_member_left__is_a_part(self):
        c = Client().register().joined("a", "bob")
        c.session.event(ev.MemberLeft("a", "bob"))
        c.session.event(ev.MemberLeft("a", "bob"))
        assert c.read() == [":bob!bob@ring PART #a"]

    def test_member_exit__is_a_quit_when_no_channel_is_shared_any_more(self):
        c = Client().register().joined("a", "bob").joined("b", "bob")
        c.session.event(ev.MemberLeft("a", "bob", reason="exit"))
        c.session.event(ev.MemberLeft("b", "bob", reason="exit"))
        assert c.read() == [":bob!bob@ring QUIT :Quit"]   # one QUIT, whatever is shared

    def test_members__of_channels_not_joined_are_ignored(self):
        c = Client().register()
        c.session.event(ev.MemberJoined("x", "bob"))
        c.session.event(ev.MemberLeft("x", "bob"))
        assert c.read() == []


class TestQueries:
    def test_names__of_a_joined_channel_and_of_an_unknown_one(self):
        c = Client().register().joined("a", "bob")
        c.session.event(ev.MemberJoined("a", "carol"))
        c.read()
        c.line(b"NAMES #a,#zzz")
        assert c.read() == [
            f":{SERVER} 353 alice = #a :bob alice carol",
            f":{SERVER} 366 alice #a :End of /NAMES list",
            f":{SERVER} 366 alice #zzz :End of /NAMES list",
        ]

    def test_names__many_members_fit_in_512_byte_lines(self):
        c = Client().register().joined("a", *[f"member{i:03}" for i in range(200)])
        c.line(b"NAMES #a")
        lines = c.read()
        assert len(lines) > 2 and all(len(line) + 2 <= 512 for line in lines)
        names = [n for line in lines[:-1] for n in line.split(" :", 1)[1].split()]
        assert len(names) == 201

    def test_who__channel_lists_members_then_315(self):
        c = Client().register().joined("a", "bob")
        c.line(b"WHO #a")
        assert c.read() == [
            f":{SERVER} 352 alice #a bob ring {SERVER} bob H :0 bob",
            f":{SERVER} 352 alice #a al 127.0.0.1 {SERVER} alice H :0 Alice L",
            f":{SERVER} 315 alice #a :End of WHO list",
        ]

    def test_who__a_known_nick_and_an_unknown_one(self):
        c = Client().register().joined("a", "bob")
        assert c.answers(b"WHO bob", b"WHO nobody") == ["352", "315", "315"]

    def test_whois__asks_the_ring_and_shows_node_address_and_fingerprint(self):
        c = Client().register().joined("a", "bob")
        assert c.line(b"WHOIS Bob") == [Lookup("Bob")]
        c.session.whois("Bob", Whois("bob", "ab" * 20, "10.0.0.2:4000", "ab12-cd34"))
        lines = c.read()
        assert [line.split()[1] for line in lines] == ["311", "319", "312", "318"]
        assert lines[1] == f":{SERVER} 319 alice bob :#a"
        assert lines[2] == (f":{SERVER} 312 alice bob {SERVER} :on node {'ab' * 20} at "
                            "10.0.0.2:4000; key fingerprint ab12-cd34")

    def test_whois__312_says_whether_the_key_is_the_one_pinned(self):
        c = Client().register()
        for pin, words in (("same", "key is the one pinned for bob"),
                           ("changed", "key is NOT the one pinned for bob: TRUST bob"),
                           ("new", "key is not pinned yet")):
            c.line(b"WHOIS bob")
            c.session.whois("bob", Whois("bob", "ab" * 20, "10.0.0.2:4000", "ab12", pin))
            server = [line for line in c.read() if line.split()[1] == "312"]
            assert len(server) == 1 and f"key fingerprint ab12: {words}" in server[0]

    def test_whois__unknown_nick_is_401_then_318(self):
        c = Client().register()
        assert c.line(b"WHOIS server.name nobody") == [Lookup("nobody")]
        c.session.whois("nobody", None)
        assert c.numerics() == ["401", "318"]

    def test_whois__without_nick_is_461_bad_nick_is_401(self):
        c = Client().register()
        assert c.answers(b"WHOIS", b"WHOIS b[o]b") == ["461", "401", "318"]

    def test_topic__none_set_is_331_setting_asks_the_chat(self):
        c = Client().register().joined("a")
        assert c.answers(b"TOPIC #a", b"TOPIC") == ["331", "461"]
        assert c.line(b"TOPIC #a :new topic") == [Run(Command("topic", ("a", "new topic")))]
        c.session.event(ev.Topic("a", "alice", "new topic", at=1e9))
        assert c.read() == ["@time=2001-09-09T01:46:40.000Z :alice!al@127.0.0.1 TOPIC #a "
                            ":new topic"][0:0] or [":alice!al@127.0.0.1 TOPIC #a :new topic"]
        assert c.answers(b"TOPIC #a") == ["332", "333"]

    def test_list__asks_the_node_and_lists_what_it_answers(self):
        c = Client().register()
        assert c.line(b"LIST") == [ListChannels()]
        c.session.listing([("b", 1), ("a", 3)])
        assert c.read() == [
            f":{SERVER} 321 alice Channel :Users  Name",
            f":{SERVER} 322 alice #a 3 :",
            f":{SERVER} 322 alice #b 1 :",
            f":{SERVER} 323 alice :End of /LIST (channels of this node's users only)",
        ]
        assert c.line(b"LIST #A,#zz") == [ListChannels(("#a", "#zz"))]
        c.session.listing([("b", 1), ("a", 3)], ("#a", "#zz"))
        assert [x.split()[1:4] for x in c.read()] == [["321", "alice", "Channel"],
                                                      ["322", "alice", "#a"],
                                                      ["323", "alice", ":End"]]
        c.session.listing([("bc", 1), ("ab", 3)], ("#b*",))
        assert [x.split()[3] for x in c.read()[1:-1]] == ["#bc"]

    def test_mode__channel_query_bans_and_change(self):
        c = Client().register().joined("a", "bob")
        assert c.answers(b"MODE #a", b"MODE #a b", b"MODE #a +z") == ["324", "368", "472"]
        # whether alice operates #a the maintainer decides: the change goes to the ring,
        # and its refusal is 482 (RFC 2812 §3.2.3)
        run = Run(Command("mode", ("a", "+o bob")))
        assert c.line(b"MODE #a +o bob") == [run]
        c.session.failed(run, "refused", "not_operator")
        # a member mode for a nick the gateway does not know at all: 401; one the ring
        # says is not in the channel: 441
        assert c.answers(b"MODE #a +o carol", b"MODE #a +bv x!*@* carol") == [
            "482", "401", "401"]
        c.session.failed(Run(Command("mode", ("a", "+b-v x!*@* bob"))), "refused",
                         "no_such_member")
        assert c.read()[0].split()[1:4] == ["441", "alice", "bob"]
        # a channel nobody here is in: 403 (modern.ircdocs.horse MODE)
        assert c.answers(b"MODE #zz", b"MODE #zz +o bob") == ["403", "403"]
        # a bad limit or key: 696, the key never echoed
        c.line(b"MODE #a +l -1")
        c.line(b"MODE #a +k :two words")
        assert [m.split()[1:6] for m in c.read()] == [
            ["696", "alice", "#a", "l", "-1"], ["696", "alice", "#a", "k", "*"]]

    def test_mode__an_operator_changes_modes_on_the_ring_and_sees_them(self):
        c = Client().register().joined("a", "bob")
        c.session.event(ev.Modes("a", "", "", ops=("alice",), created=1700000000.0,
                                 history=True))
        assert c.answers(b"MODE #a") == ["324", "329"]
        assert c.line(b"MODE #a +ntl-k 5") == [Run(Command("mode", ("a", "+ntl-k 5")))]
        assert c.line(b"MODE #a +ov bob bob") == [Run(Command("mode", ("a", "+ov bob bob")))]
        c.session.event(ev.Modes("a", "alice", "+ntl 5", ops=("alice",), voiced=("bob",),
                                 modes="+lnt", args=("5",),
                                 lists=(("b", "x!*@*", "alice", 1700000001.0),),
                                 created=1700000000.0))
        c.line(b"MODE #a")
        c.line(b"MODE #a +b")
        c.line(b"NAMES #a")
        assert c.read() == [
            ":alice!al@127.0.0.1 MODE #a +ntl 5",
            f":{SERVER} 324 alice #a +lnt :5",
            f":{SERVER} 329 alice #a :1700000000",
            f":{SERVER} 367 alice #a x!*@* alice :1700000001",
            f":{SERVER} 368 alice #a :End of channel ban list",
            f":{SERVER} 353 alice = #a :+bob @alice",
            f":{SERVER} 366 alice #a :End of /NAMES list"]

    def test_oper__the_driver_checks_then_381_and_plus_o_or_491_464_and_461(self):
        """RFC 2812 §3.1.4: OPER name password; 381 and the user's +o when they fit,
        ERR_NOOPERHOST for a name that is no operator, ERR_PASSWDMISMATCH for a wrong
        password, 461 without the password."""
        c = Client().register()
        assert c.line(b"OPER admin secret") == [Oper("admin", "secret")]
        assert "secret" not in repr(Oper("admin", "secret"))
        c.session.oper_failed(NO_SUCH_OPER)
        c.session.oper_failed("wrong password")
        assert c.answers(b"OPER admin") == ["491", "464", "461"]
        assert c.answers(b"KILL bob :go", b"WALLOPS :hi", b"MODE alice +o") == ["481", "481"]
        c.session.oper_failed("wrong password")
        c.read()
        c.line(b"OPER admin secret")
        c.session.opered("admin")
        got = c.read()
        assert [line.split()[1] for line in got] == ["381", "MODE"]
        assert got[1] == ":alice!al@127.0.0.1 MODE alice +o"
        assert c.answers(b"MODE alice") == ["221"]
        c.line(b"MODE alice -o")
        assert c.read() == [":alice!al@127.0.0.1 MODE alice -o"]
        assert c.answers(b"KILL bob :go", b"WALLOPS :hi") == ["481", "481"]

    def test_info__371_lines_then_374(self):
        c = Client().register()
        got = c.answers(b"INFO")
        assert got[-1] == "374" and set(got[:-1]) == {"371"} and len(got) > 1

    def test_who__an_operator_of_this_gateway_is_marked_star(self):
        c = Client().register().joined("a", "bob")
        c.line(b"OPER admin secret")
        c.session.opered("admin")
        c.line(b"AWAY :out")
        c.read()
        c.line(b"WHO alice")
        c.line(b"WHO bob")
        assert [line.split()[8] for line in c.read() if line.split()[1] == "352"] == [
            "G*", "H"]

    def test_kick_and_invite__checked_here_first_then_on_the_ring(self):
        c = Client().register().joined("a", "bob")
        assert c.answers(b"KICK #a", b"KICK #b bob", b"KICK #b!x bob",
                         b"KICK &ring bob") == ["461", "403", "403", "442"]
        assert c.line(b"KICK #a bob,carol") == [Run(Command("kick", ("a", "bob", ""))),
                                               Run(Command("kick", ("a", "carol", "")))]
        c.session.failed(Run(Command("kick", ("a", "bob", ""))), "refused", "not_operator")
        c.session.failed(Run(Command("kick", ("a", "carol", ""))), "refused",
                         "no_such_member")
        assert c.numerics() == ["482", "441"]
        assert c.answers(b"INVITE bob", b"INVITE bob #a", b"INVITE carol #b") == [
            "461", "443", "403"]
        assert c.line(b"INVITE carol #a") == [Run(Command("invite", ("a", "carol")))]
        c.session.event(ev.Modes("a", "", "", ops=("alice",), history=True))
        assert c.line(b"KICK #a bob :go away") == [Run(Command("kick", ("a", "bob",
                                                                        "go away")))]
        # what the ring said: the numerics of its refusals
        c.session.failed(Run(Command("invite", ("a", "carol"))), "refused", "not_operator")
        c.session.failed(Run(Command("join", ("k",))), "refused", "bad_key")
        c.session.failed(Run(Command("join", ("l",))), "refused", "channel_full")
        assert c.numerics() == ["482", "475", "471"]
        c.session.event(ev.Kicked("a", "alice", "bob", "go away"))
        c.session.event(ev.Invited("a", "carol", invitee="dave"))
        c.session.event(ev.Invited("b", "carol"))
        assert c.read() == [":alice!al@127.0.0.1 KICK #a bob :go away",
                            f":{SERVER} 341 alice dave :#a",
                            ":carol!carol@ring INVITE alice #b"]
        assert c.answers(b"NAMES #a") == ["353", "366"] and "bob" not in str(
            c.session.channels["a"])

    def test_mode__own_modes_other_users_and_unknown_flags(self):
        c = Client().register()
        c.line(b"MODE alice +i")
        c.line(b"MODE alice")
        c.line(b"MODE alice +i")
        c.line(b"MODE alice +x")
        c.line(b"MODE bob")
        assert c.read() == [
            ":alice!al@127.0.0.1 MODE alice +i",
            f":{SERVER} 221 alice :+i",
            f":{SERVER} 501 alice :Unknown MODE flag",
            f":{SERVER} 502 alice :Can't change mode for other users",
        ]
        c.line(b"MODE alice +wo")   # +o: only OPER makes an operator (RFC 2812 §3.1.5)
        c.line(b"MODE alice")
        c.line(b"MODE bob")
        assert c.read() == [
            ":alice!al@127.0.0.1 MODE alice +w",
            f":{SERVER} 221 alice :+iw",
            f":{SERVER} 502 alice :Can't change mode for other users",
        ]

    def test_userhost__known_nicks_only(self):
        c = Client().register().joined("a", "bob")
        c.line(b"USERHOST alice bob nobody")
        assert c.read() == [f":{SERVER} 302 alice :alice=+al@127.0.0.1 bob=+bob@ring"]

    def test_away__set_and_unset(self):
        c = Client().register()
        assert c.answers(b"AWAY :lunch", b"AWAY") == ["306", "305"]


class TestQuit:
    def test_quit__registered_user_quits_with_the_reason(self):
        c = Client().register()
        assert c.line(b"QUIT :bye now") == [Quit("bye now")]
        assert c.read() == ["ERROR :Closing link: 127.0.0.1 (Quit: bye now)"]
        assert c.line(b"PING x") == [] and c.read() == []

    def test_quit__before_registration_just_closes(self):
        c = Client()
        c.line(b"NICK alice")
        assert c.line(b"QUIT") == [Close("Client quit")]


class TestRingChannel:
    def test_ring_news__never_reach_a_client_outside_the_ring_channel(self):
        c = Client().register()
        c.session.node_event(ev.RingChange("successor", old="a:1", new="b:2"))
        c.session.node_event(ev.MigrationStep("leave", "channel", "chan", "a:1", "b:2"))
        assert c.read() == []

    def test_ring_news__go_to_the_ring_channel_once_joined(self):
        c = Client().register()
        assert c.line(b"JOIN &ring") == []
        assert [line.split()[1] for line in c.read()] == ["JOIN", "332", "353", "366"]
        c.session.node_event(
            ev.MigrationStep("send", "channel", "general", "a:1", "b:2", members=1))
        assert c.read() == [
            f":{SERVER} PRIVMSG &ring :migration: send channel general a:1 -> b:2 (1 member)"]
        assert c.answers(b"PRIVMSG &ring :hi", b"PART &ring") == ["404", "PART"]

    def test_ring_news__other_events_say_nothing(self):
        c = Client().register()
        c.session.node_event(ev.Log("debug line"))
        assert c.read() == []


def assert_well_formed(sent: list[Message]) -> None:
    """Every reply is one line of at most 512 bytes that reads back as the same command."""
    for m in sent:
        data = encode(m)
        assert len(data) <= 512 and data.count(b"\n") == 1
        assert parse(data).command == m.command


class TestRobustness:
    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.binary(max_size=600), max_size=20))
    def test_session__any_bytes_never_raise_and_every_reply_fits_512_bytes(self, chunks):
        c = Client().register().joined("a", "bob")
        buffer = LineBuffer()
        for chunk in chunks:
            for line in buffer.feed(chunk + b"\r\n"):
                for action in c.line(line):
                    assert isinstance(action, (Run, Lookup, ListChannels, Quit, Close))
        assert_well_formed(c.sent)

    @settings(max_examples=200, deadline=None)
    @given(st.sampled_from(["PRIVMSG", "NOTICE", "JOIN", "PART", "WHO", "WHOIS", "NAMES",
                            "MODE", "TOPIC", "NICK", "USER", "CAP", "PING", "LIST", "AWAY"]),
           st.lists(st.text(st.characters(codec="utf-8", blacklist_characters="\r\n\0 "),
                            max_size=40),
                    max_size=6), st.text(max_size=300))
    def test_session__any_command_with_any_params_never_raises(self, command, middles, text):
        c = Client().register().joined("a", "bob")
        line = " ".join([command, *[m.lstrip(":") or "x" for m in middles]]) + " :" + text
        c.line(line.replace("\r", "").replace("\n", "").replace("\0", "").encode())
        assert_well_formed(c.sent)
