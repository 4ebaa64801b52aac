"""The one command parser: every command, its IRC forms, and a specific error for bad input."""

from __future__ import annotations

import pytest

from core.chat.commands import (
    COMMANDS,
    MAX_TEXT,
    Command,
    CommandError,
    channel_name,
    check_nick,
    completions,
    help_text,
    parse,
)


@pytest.mark.parametrize("line, expected", [
    ("msg bob hello there", Command("msg", ("bob", "hello there"))),
    ("/msg bob  two  spaces ", Command("msg", ("bob", "two  spaces"))),
    ("msg @CD27C063 by id", Command("msg", ("@cd27c063", "by id"))),
    ("msg @" + "a" * 40 + " full id", Command("msg", ("@" + "a" * 40, "full id"))),
    ("join #General", Command("join", ("general",))),
    ("/join general", Command("join", ("general",))),
    ("leave #general", Command("leave", ("general",))),
    ("/part general", Command("leave", ("general",))),
    ("send #Dev-Talk hi all", Command("send", ("dev-talk", "hi all"))),
    ("exit", Command("exit")),
    ("/quit", Command("exit")),
    ("HELP", Command("help")),
    ("status", Command("status")),
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
    ("join a b", "join takes one channel"),
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
    ("send general bell\x07", "control character (0x07)"),
    ("msg bob tab\there", "control character (0x09)"),
])
def test_parse__bad_input_gets_a_specific_error(line, message):
    with pytest.raises(CommandError) as e:
        parse(line)
    assert message in str(e.value)


def test_parse__text_of_exactly_the_limit_is_fine():
    assert parse("send g " + "y" * MAX_TEXT).args[1] == "y" * MAX_TEXT


def test_nick_and_channel__rules():
    assert check_nick("a") == "a" and check_nick("Z" + "9" * 31)
    assert channel_name("#Foo.Bar_1") == "foo.bar_1"
    for bad in ("", "_x", "-x", "a b"):
        with pytest.raises(CommandError):
            check_nick(bad)


def test_commands__table_drives_help_and_completion():
    text = help_text()
    for spec in COMMANDS:
        assert spec.usage in text
    assert completions("/j") == ["/join"]
    assert "leave" in completions("le") and completions("zz") == []
    names = [spec.name for spec in COMMANDS]
    assert names == sorted(set(names), key=names.index)  # no duplicates
    for spec in COMMANDS:
        parse(spec.usage.replace("<nick>", "bob").replace("<channel>", "c").replace(
            "<text>", "t"))  # every usage line parses as written


def test_command__destination_names_the_channel_or_the_nick():
    assert parse("send #General hi").destination == "#general"
    assert parse("join general").destination == parse("/part #general").destination
    assert parse("msg Bob hi").destination == parse("msg bob there").destination == "bob"
    assert parse("msg @ABCDEF12 hi").destination == "@abcdef12"
    assert parse("status").destination is None
