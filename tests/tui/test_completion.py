"""Tab completion of commands, channels and nicks, and cycling on a repeated Tab."""

from tui.completion import Completer, Sources

ARGS = {"join": ["channel"], "leave": ["channel"], "send": ["channel", "text"],
        "msg": ["nick", "text"]}


def completer(channels=("general", "games", "rust"), nicks=("bob", "Bella", "carol")):
    return Completer(Sources(
        commands=lambda: ["msg", "join", "leave", "send", "status", "help", "exit"],
        arguments=lambda word: ARGS.get(word, []),
        channels=lambda: list(channels),
        nicks=lambda: list(nicks),
    ))


def tab(c, text, cursor=None):
    return c.complete(text, len(text) if cursor is None else cursor)


class TestCompleter:
    def test_completer__completes_a_command_name(self):
        assert tab(completer(), "jo") == ("join ", 5)

    def test_completer__keeps_the_slash_of_irc_forms(self):
        assert tab(completer(), "/jo") == ("/join ", 6)

    def test_completer__completes_channels_after_join(self):
        assert tab(completer(), "join ru") == ("join rust ", 10)

    def test_completer__keeps_the_hash_the_user_typed(self):
        assert tab(completer(), "send #ru") == ("send #rust ", 11)

    def test_completer__completes_nicks_after_msg_case_insensitively(self):
        assert tab(completer(), "msg CA") == ("msg carol ", 10)

    def test_completer__cycles_through_candidates_on_repeated_tab(self):
        c = completer()
        first = tab(c, "join g")
        assert first == ("join games ", 11)
        second = c.complete(*first)
        assert second == ("join general ", 13)
        assert c.complete(*second) == ("join games ", 11)

    def test_completer__nicks_inside_plain_text(self):
        c = completer()
        assert tab(c, "hello b") == ("hello Bella ", 12)
        assert c.complete("hello Bella ", 12) == ("hello bob ", 10)

    def test_completer__a_nick_at_the_start_of_a_line_is_addressed_with_a_colon(self):
        c = completer()
        assert tab(c, "car") == ("carol: ", 7)
        assert tab(c, "b") == ("Bella: ", 7)
        assert c.complete("Bella: ", 7) == ("bob: ", 5)   # Tab again: the next, same form
        assert tab(c, "carol: hi b") == ("carol: hi Bella ", 16)   # elsewhere a blank
        assert tab(c, "first line\nca") == ("first line\ncarol: ", 18)
        assert tab(c, "first line\njo") is None   # a second line is never a command

    def test_completer__completes_in_the_middle_of_a_line(self):
        text = "msg b hello"
        assert completer().complete(text, 5) == ("msg Bella hello", 10)

    def test_completer__nothing_matches(self):
        assert tab(completer(), "join zz") is None
        assert tab(completer(), "xyz") is None

    def test_completer__new_candidates_are_seen_at_once(self):
        nicks = ["bob"]
        c = completer(nicks=nicks)
        nicks.append("dave")
        assert tab(c, "msg d") == ("msg dave ", 9)

    def test_completer__typing_after_a_completion_starts_afresh(self):
        c = completer()
        assert tab(c, "join g") == ("join games ", 11)
        assert tab(c, "join games x") is None
