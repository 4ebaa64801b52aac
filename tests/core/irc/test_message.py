"""The IRC line codec: parsing, formatting, the 512-byte limit, invalid UTF-8, line framing."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.irc.message import (
    MAX_LINE,
    TOO_LONG,
    InvalidUtf8,
    LineBuffer,
    Message,
    ParseError,
    encode,
    escape_tag_value,
    format_message,
    parse,
    split_text,
    unescape_tag_value,
)


class TestParse:
    def test_parse__command_and_middle_params(self):
        m = parse(b"USER alice 0 * :Alice Liddell\r\n")
        assert m == Message("USER", ("alice", "0", "*", "Alice Liddell"))

    def test_parse__command_is_upper_cased(self):
        assert parse("privmsg #a hi").command == "PRIVMSG"

    def test_parse__prefix(self):
        m = parse(":bob!b@host PRIVMSG #chat :hello there")
        assert (m.prefix, m.command) == ("bob!b@host", "PRIVMSG")
        assert m.params == ("#chat", "hello there")

    def test_parse__trailing_keeps_colons_and_spaces(self):
        assert parse("PRIVMSG #a :: a :b  c ").params == ("#a", ": a :b  c ")

    def test_parse__empty_trailing(self):
        assert parse("TOPIC #a :").params == ("#a", "")

    def test_parse__repeated_spaces_between_params(self):
        assert parse("JOIN   #a    key").params == ("#a", "key")

    def test_parse__tags_unescaped(self):
        m = parse(r"@time=2024-01-01;msg=a\sb\:c\\d;flag :srv NOTICE x :hi")
        assert m.tags == {"time": "2024-01-01", "msg": "a b;c\\d", "flag": ""}
        assert (m.prefix, m.command, m.params) == ("srv", "NOTICE", ("x", "hi"))

    def test_parse__bare_lf_and_crlf(self):
        assert parse(b"PING x\n") == parse(b"PING x\r\n") == Message("PING", ("x",))

    @pytest.mark.parametrize("line", [b"", b"   ", b":prefix-only", b"@a=b", b"@a=b :p", b" :x"])
    def test_parse__no_command_is_an_error(self, line):
        with pytest.raises(ParseError):
            parse(line)

    def test_parse__invalid_utf8_names_the_command(self):
        with pytest.raises(InvalidUtf8) as caught:
            parse(b":p privmsg #a :caf\xe9\r\n")
        assert caught.value.command == "PRIVMSG"

    def test_parse__more_than_fifteen_params_fold_into_the_last(self):
        m = parse("CMD " + " ".join(str(i) for i in range(20)))
        assert len(m.params) == 15 and m.params[-1] == "14 15 16 17 18 19"

    def test_message__param_with_default(self):
        m = Message("PART", ("#a",))
        assert (m.param(0), m.param(1), m.param(1, "x")) == ("#a", "", "x")


class TestFormat:
    def test_format__trailing_colon_only_when_needed(self):
        assert str(Message("PING", ("token",))) == "PING token"
        assert str(Message("PRIVMSG", ("#a", "two words"), "me")) == ":me PRIVMSG #a :two words"
        assert str(Message("CAP", ("*", "LS", ""))) == "CAP * LS :"
        assert str(Message("PRIVMSG", ("#a", ":)"))) == "PRIVMSG #a ::)"

    def test_format__never_puts_cr_lf_or_nul_on_the_wire(self):
        line = format_message(Message("PRIVMSG", ("#a", "x\r\nQUIT :y\0")))
        assert "\r" not in line and "\n" not in line and "\0" not in line

    def test_format__middle_params_lose_spaces_and_empty_becomes_star(self):
        assert str(Message("X", ("a b", "", "last"))) == "X ab * last"

    def test_format__tags_escaped(self):
        assert str(Message("X", (), tags={"k": "a b;c", "f": ""})) == r"@k=a\sb\:c;f X"

    @given(st.text())
    def test_tag_escaping__round_trips(self, value):
        assert unescape_tag_value(escape_tag_value(value)) == value

    @given(st.lists(st.text(st.characters(blacklist_categories=["Cc", "Cs", "Zs"]), min_size=1),
                    max_size=5),
           st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=["Cs"])))
    def test_format__round_trips_through_parse(self, middles, trailing):
        middles = [m.lstrip(":") for m in middles if m.lstrip(":")]
        m = Message("PRIVMSG", (*middles, trailing), "src")
        assert parse(format_message(m)) == m


class TestEncode:
    def test_encode__crlf(self):
        assert encode(Message("PING", ("x",))) == b"PING x\r\n"

    def test_encode__cut_to_512_bytes_on_a_character_boundary(self):
        data = encode(Message("PRIVMSG", ("#a", "é" * 600), "server"))
        assert len(data) <= MAX_LINE and data.endswith(b"\r\n")
        data.decode("utf-8")   # no half character

    def test_encode__tags_do_not_count_against_the_limit(self):
        data = encode(Message("PRIVMSG", ("#a", "x" * 600), tags={"k": "v" * 100}))
        tags, _, rest = data.partition(b" ")
        assert len(rest) == MAX_LINE and tags == b"@k=" + b"v" * 100


class TestSplitText:
    def test_split_text__short_text_is_one_piece(self):
        assert split_text("hello", 100) == ["hello"]

    def test_split_text__prefers_spaces(self):
        assert split_text("aaaa bbbb cccc", 10) == ["aaaa bbbb", "cccc"]

    @given(st.text(min_size=0, max_size=2000), st.integers(4, 600))
    def test_split_text__pieces_fit_and_lose_at_most_the_cut_spaces(self, text, room):
        pieces = split_text(text, room)
        assert all(len(p.encode()) <= room for p in pieces)
        assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


class TestLineBuffer:
    def test_line_buffer__lines_across_chunks(self):
        buf = LineBuffer()
        assert buf.feed(b"NICK al") == []
        assert buf.feed(b"ice\r\nUSER a 0 * :A\nPI") == [b"NICK alice", b"USER a 0 * :A"]
        assert buf.feed(b"NG x\r\n") == [b"PING x"]

    def test_line_buffer__skips_empty_lines(self):
        assert LineBuffer().feed(b"\r\n\n  \r\nPING x\r\n") == [b"PING x"]

    def test_line_buffer__512_bytes_with_crlf_is_allowed_513_is_too_long(self):
        ok = b"PRIVMSG #a :" + b"x" * (MAX_LINE - 2 - 12)
        assert LineBuffer().feed(ok + b"\r\n") == [ok]
        assert LineBuffer().feed(ok + b"y\r\n") == [TOO_LONG]

    def test_line_buffer__a_long_line_in_pieces_is_reported_once_then_framing_resumes(self):
        buf = LineBuffer()
        out = []
        for _ in range(20):
            out += buf.feed(b"x" * 1000)
        out += buf.feed(b"tail of it\r\nPING y\r\n")
        assert out == [TOO_LONG, b"PING y"]

    def test_line_buffer__tags_may_add_up_to_4096_bytes(self):
        line = b"@k=" + b"v" * 4000 + b" PRIVMSG #a :hi"
        assert LineBuffer().feed(line + b"\r\n") == [line]
        assert LineBuffer().feed(b"@k=" + b"v" * 5000 + b" PING x\r\n") == [TOO_LONG]
