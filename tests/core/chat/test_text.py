"""What chat text may contain (``core.chat.model.text``) and how the rest is shown."""

import pytest

from core import events as ev
from core.chat.model.text import TextError, bad_char, check, is_clean, visible, visible_fields

HONEST = ["héllo ✓ 日本", "two\nlines", "שלום \u200f!", "👩\u200d💻 *bold*", "a^[b"]
HOSTILE = ["\x1b[2J", "\x01ACTION x\x01", "bell\x07", "tab\there", "cr\rx", "del\x7f",
           "csi\x9b31m", "\x85next line", "user\u202egnp.exe", "\u2066iso\u2069",
           "nul\x00", "lone \ud800 surrogate", "\x02bold\x02 \x0304red"]


@pytest.mark.parametrize("text", HONEST)
def test_honest_text__passes_and_shows_unchanged(text):
    assert is_clean(text) and check(text) == text and bad_char(text) is None
    assert visible(text) == text


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text__is_refused_and_shown_without_a_control_character(text):
    assert not is_clean(text)
    with pytest.raises(TextError, match="control character U\\+"):
        check(text)
    shown = visible(text)
    assert is_clean(shown)
    assert not any(ord(c) < 0x20 and c != "\n" or 0x7f <= ord(c) <= 0x9f for c in shown)


def test_visible__caret_notation_for_c0_and_del_replacement_for_the_rest():
    assert visible("a\x1b[31mb\x7f") == "a^[[31mb^?"
    assert visible("\x01ACTION hi\x01") == "^AACTION hi^A"
    assert visible("x\x9by\u202ez") == "x\ufffdy\ufffdz"
    assert visible("one\ntwo") == "one\ntwo" and visible("one\ntwo", newlines=False) == "one two"


def test_visible_fields__cleans_every_string_of_an_event_and_keeps_clean_ones_as_they_are():
    e = ev.ChannelMessage(channel="general", from_="mallory", text="\x1b]0;pwned\x07",
                          msg_id="m1")
    shown = visible_fields(e)
    assert shown.text == "^[]0;pwned^G" and shown.from_ == "mallory"
    clean = ev.ChannelMessage(channel="general", from_="bob", text="hi", msg_id="m2")
    assert visible_fields(clean) is clean
    h = ev.History(conversation="#general", messages=[{"from": "m", "text": "\x9b", "n": 1}])
    assert visible_fields(h).messages == [{"from": "m", "text": "\ufffd", "n": 1}]
