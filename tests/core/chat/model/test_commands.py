"""The one command parser: every command, its IRC forms, a specific error for bad input, and
in a conversation, text that stays text unless it starts with "/"."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.chat.model.commands import (
    COMMANDS,
    MAX_TEXT,
    Command,
    CommandError,
    UnknownCommand,
    Where,
    action_command,
    argument_kinds,
    channel_name,
    check_nick,
    command_words,
    help_text,
    parse,
    text_command,
)
from core.chat.model.text import is_clean


@pytest.mark.parametrize("line, expected", [
    ("msg bob hello there", Command("msg", ("bob", "hello there"))),
    ("/msg bob  two  spaces ", Command("msg", ("bob", "two  spaces"))),
    ("msg @CD27C063 by id", Command("msg", ("@cd27c063", "by id"))),
    ("msg @" + "a" * 40 + " full id", Command("msg", ("@" + "a" * 40, "full id"))),
    ("join #General", Command("join", ("general",))),
    ("join #vault sesame", Command("join", ("vault", "sesame"))),
    ("/join general", Command("join", ("general",))),
    ("leave #general", Command("leave", ("general",))),
    ("/part general", Command("leave", ("general",))),
    ("send #Dev-Talk hi all", Command("send", ("dev-talk", "hi all"))),
    ("exit", Command("exit")),
    ("/quit", Command("exit")),
    ("quit", Command("exit")),
    ("HELP", Command("help")),
    ("status", Command("status")),
    ("bell", Command("bell")),
    ("/bell OFF", Command("bell", ("off",))),
    ("  join general \n", Command("join", ("general",))),
])
def test_parse__accepts_every_command_and_its_irc_form(line, expected):
    assert parse(line) == expected


@pytest.mark.parametrize("line, message", [
    ("", "empty command"),
    ("frobnicate x", "unknown command 'frobnicate'"),
    ("msg", "msg needs a nick (or @id) and a text"),
    ("msg bob", "msg needs a text after 'bob'"),
    ("send general", "send needs a text after 'general'"),
    ("send", "send needs a channel and a text"),
    ("join", "join needs a channel"),
    ("join a b c", "join takes a channel and its key, not 3 words"),
    ("join a " + "k" * 24, "a key is 1 to 23 printable ASCII characters"),
    ("join a b,c", "no spaces or commas"),
    ("leave", "leave needs a channel"),
    ("exit now", "exit takes no arguments"),
    ("msg 9bob hi", "invalid nick '9bob'"),
    ("msg b@d hi", "invalid nick 'b@d'"),
    ("msg " + "a" * 33 + " hi", "invalid nick"),
    ("msg @xyz12345 hi", "invalid node id '@xyz12345'"),
    ("msg @abc hi", "invalid node id"),
    ("join #", "invalid channel name '#'"),
    ("join #a/b", "invalid channel name"),
    ("join -x", "invalid channel name"),
    ("send general " + "x" * (MAX_TEXT + 1), f"at most {MAX_TEXT}"),
    ("send general bell\x07", "contains a control character"),
    ("msg bob tab\there", "contains a control character"),
    ("bell loud", "bell takes on or off, not 'loud'"),
    ("leave", "leave needs a channel"),
    ("hello there", "unknown command 'hello'"),
    ("//hello", "// sends text starting with / in a channel"),
])
def test_parse__bad_input_gets_a_specific_error(line, message):
    with pytest.raises(CommandError) as e:
        parse(line)
    assert message in str(e.value)
    assert isinstance(e.value, UnknownCommand) == message.startswith(("unknown", "//"))


@pytest.mark.parametrize("line", [
    "exit strategy is clear", "leave it to me", "send it later", "join the fun",
    "msg me later", "help me out", "quit it", "status: fine", "bell", "exit", "hello"])
def test_parse__in_a_channel_a_line_without_a_slash_is_text(line):
    assert parse(line, "#General") == Command("send", ("general", line))
    assert parse(line, "Bob") == Command("msg", ("Bob", line))
    assert parse(line, "@ABCDEF12") == Command("msg", ("@abcdef12", line))


@pytest.mark.parametrize("line, expected", [
    ("/exit", Command("exit")),
    ("/quit", Command("exit")),
    ("/leave", Command("leave", ("general",))),
    ("/part", Command("leave", ("general",))),
    ("/leave other", Command("leave", ("other",))),
    ("/join the-fun", Command("join", ("the-fun",))),
    ("/msg bob later", Command("msg", ("bob", "later"))),
    ("/send #other hi", Command("send", ("other", "hi"))),
    ("//shrug", Command("send", ("general", "/shrug"))),
    ("  //  spaced ", Command("send", ("general", "/  spaced"))),
    ("///", Command("send", ("general", "//"))),
])
def test_parse__in_a_channel_a_slash_makes_a_command_and_two_send_one(line, expected):
    assert parse(line, "#general") == expected


@pytest.mark.parametrize("line, conversation, message", [
    ("/exit now", "#general", "exit takes no arguments"),
    ("/frobnicate", "#general", "unknown command '/frobnicate'"),
    ("/leave", "bob", "leave needs a channel"),
    ("x" * (MAX_TEXT + 1), "#general", f"at most {MAX_TEXT}"),
    ("bell\x07", "bob", "contains a control character"),
    ("   ", "#general", "the message is empty"),
    ("hi", "#a/b", "invalid channel name"),
    ("hi", "9bob", "invalid nick"),
])
def test_parse__in_a_conversation_bad_input_gets_a_specific_error(line, conversation, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(line, conversation)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1,
               max_size=200).filter(lambda t: t.strip() and not t.strip().startswith("/")
                                    and is_clean(t)))
def test_parse__any_text_in_a_conversation_is_sent_as_typed_up_to_outer_spaces(text):
    assert parse(text, "#general") == Command("send", ("general", text.strip()))
    assert parse(text, "bob") == Command("msg", ("bob", text.strip()))
    assert parse("//" + text.strip(), "#general") == Command("send", ("general",
                                                                     "/" + text.strip()))


def test_parse__text_of_exactly_the_limit_is_fine():
    assert parse("send g " + "y" * MAX_TEXT).args[1] == "y" * MAX_TEXT


def test_nick_and_channel__rules():
    assert check_nick("a") == "a" and check_nick("Z" + "9" * 31)
    assert channel_name("#Foo.Bar_1") == "foo.bar_1"
    for bad in ("", "_x", "-x", "a b"):
        with pytest.raises(CommandError):
            check_nick(bad)


def test_commands__table_drives_help_completion_and_dispatch():
    text = help_text()
    assert "//text sends /text" in text
    for spec in COMMANDS:
        assert spec.usage in text and spec.help in text
    spellings = command_words()
    assert len(spellings) == len(set(spellings))  # no spelling names two commands
    assert {"part", "quit", "bell"} <= set(spellings)
    assert argument_kinds("/part") == ["channel"] and argument_kinds("msg") == ["nick", "text"]
    assert argument_kinds("bell") == ["on|off"] and argument_kinds("zz") == []
    for spec in COMMANDS:
        line = spec.usage.replace("<nick>", "bob").replace("<channel>", "c").replace(
            "<text>", "t").replace("[on|off]", "on").replace("[#channel]", "#c").replace(
            "<+-modes> [arguments]", "+o bob").replace("[reason]", "bye")
        if spec.name == "me":   # an action: in a conversation (the home pane names one)
            line = line.replace("me ", "me #c ")
        command = parse(line)  # every usage line parses as written, as the row's command
        assert command.name == spec.name and command.spec is spec
        if spec.name != "me":
            assert parse("/" + line, "#c") == command  # and with a "/" in a conversation


def test_commands__each_is_handled_where_the_contract_says():
    where = {spec.name: spec.where for spec in COMMANDS}
    assert where == {"help": Where.FRONT_END, "bell": Where.FRONT_END, "exit": Where.RUNTIME,
                     "search": Where.FRONT_END,
                     "msg": Where.CHAT, "join": Where.CHAT, "leave": Where.CHAT,
                     "send": Where.CHAT, "status": Where.CHAT, "whois": Where.CHAT,
                     "trust": Where.CHAT, "topic": Where.CHAT, "mode": Where.CHAT,
                     "kick": Where.CHAT, "invite": Where.CHAT,
                     "me": Where.CHAT}


def test_mode_kick_invite__name_the_channel_or_take_the_one_shown():
    assert parse("mode #General +ntk-o beer bob") == Command("mode", ("general",
                                                                      "+ntk-o beer bob"))
    assert parse("/mode +l 05", "#general") == Command("mode", ("general", "+l 5"))
    assert parse("/kick bob spam and more", "#general") == Command(
        "kick", ("general", "bob", "spam and more"))
    assert parse("kick #a bob") == Command("kick", ("a", "bob", ""))
    assert parse("/invite Bob", "#general") == parse("invite Bob #general") == Command(
        "invite", ("general", "Bob"))
    assert parse("mode #a +o bob").destination == "#a"


@pytest.mark.parametrize("line, conversation, message", [
    ("mode +t", None, "mode needs a channel"),
    ("/mode +z", "#a", "unknown mode 'z'"),
    ("/mode +k", "#a", "mode +k needs an argument"),
    ("/mode +l 0", "#a", "a limit is a whole number"),
    ("/mode +k two words", "#a", "more arguments than modes"),
    ("/kick", "#a", "kick needs a nick"),
    ("/kick b@d", "#a", "nick"),
    ("invite bob", None, "invite needs a channel"),
    ("/invite", "#a", "invite needs a nick"),
])
def test_mode_kick_invite__bad_input_gets_a_specific_error(line, conversation, message):
    with pytest.raises(CommandError) as e:
        parse(line, conversation)
    assert message in str(e.value)


def test_command__prints_as_a_line_that_parses_back_to_it():
    for line in ("send #general hi  there", "msg @abcdef12 x", "join #a", "leave #a", "exit",
                 "bell on", "status", "whois bob", "trust Bob", "me #general waves  hi",
                 "me bob waves", "me @abcdef12 waves", "mode #a +ov-k bob bob",
                 "kick #a bob", "kick #a bob go away", "invite bob #a"):
        command = parse(line)
        assert str(command) == line and parse(str(command)) == command


def test_command__destination_names_the_channel_or_the_nick():
    assert parse("send #General hi").destination == "#general"
    assert parse("join general").destination == parse("/part #general").destination
    assert parse("msg Bob hi").destination == parse("msg bob there").destination == "bob"
    assert parse("msg @ABCDEF12 hi").destination == "@abcdef12"
    assert parse("status").destination is None


def test_me__is_an_action_in_the_conversation_shown_or_the_one_named():
    assert parse("/me waves", "#General") == Command("me", ("#general", "waves"))
    assert parse("/me waves at you", "Bob") == Command("me", ("Bob", "waves at you"))
    assert parse("me #general waves") == parse("/me waves", "#general")
    assert parse("/me waves", "#general").destination == "#general"
    assert parse("/me waves", "Bob").destination == parse("msg bob x").destination
    assert "text" in argument_kinds("me")
    for line, conversation, message in (("/me", "#general", "me needs a text"),
                                        ("me waves", None, "me needs a channel or nick"),
                                        ("me #BAD! waves", None, "invalid channel name")):
        with pytest.raises(CommandError, match=message):
            parse(line, conversation)


def test_text_command__sends_several_lines_as_one_message_never_as_a_command():
    assert text_command("#General", "one\ntwo") == Command("send", ("general", "one\ntwo"))
    assert text_command("bob", "/exit\r\nnot a command\n") == Command(
        "msg", ("bob", "/exit\nnot a command"))
    assert parse("some\nlines", "#general") == Command("send", ("general", "some\nlines"))
    assert action_command("#g", "waves\nand smiles") == Command("me", ("#g",
                                                                       "waves\nand smiles"))
    for text, message in (("\n\n", "empty"), ("a\tb", "control character U\\+0009"),
                          ("x" * (MAX_TEXT + 1), "at most")):
        with pytest.raises(CommandError, match=message):
            text_command("#general", text)


@pytest.mark.parametrize("line, shown", [
    ("join #door sesame", "join #door (key)"),
    ("mode #door +k sesame", "mode #door +k (key)"),
    ("mode #door +lk 5 sesame", "mode #door +lk 5 (key)"),
    ("mode #door +o-k alice", "mode #door +o-k alice"),
    ("join #door", "join #door"),
    ("mode #door +o alice", "mode #door +o alice"),
])
def test_shown__a_channel_key_never_reaches_notices_and_logs(line, shown):
    command = parse(line)
    assert command.shown == shown
    assert parse(str(command)) == command   # str still parses back whole, key and all
    assert ("sesame" in str(command)) == ("sesame" in line)
