"""Channel operators and modes: the pure rules (core.chat.model.modes) and their merge."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.chat.model.channel import Channel
from core.chat.model.modes import (
    ModeError,
    Modes,
    changes_text,
    mask_matches,
    parse_changes,
)
from core.chat.testing import signed

FOUND = 100.0


def founder(nick: str = "ann", at: float = FOUND):
    return signed("general", "join", nick, f"join-{nick}-{at!r}", "", at)


def mode(nick: str, text: str, at: float):
    return signed("general", "mode", nick, f"mode-{nick}-{text}-{at!r}", text, at)


class TestParse:
    def test_changes_and_arguments(self):
        assert parse_changes("+ntk-o beer ann") == [
            ("+", "n", ""), ("+", "t", ""), ("+", "k", "beer"), ("-", "o", "ann")]
        assert parse_changes("+l-lk 007") == [("+", "l", "7"), ("-", "l", ""),
                                              ("-", "k", "")]
        assert changes_text(parse_changes("+b-b+v x!*@* y!*@* bo")) == "+b-b+v x!*@* y!*@* bo"

    @pytest.mark.parametrize("text, letter", [
        ("+z", "z"), ("+k", "k"), ("+k two words", ""), ("+l 0", "l"), ("+l -1", "l"),
        ("+l abc", "l"), ("+k " + "x" * 24, "k"), ("+o", "o"), ("+o a,b", "o"),
        ("n", ""), ("+", ""), ("+t extra", ""), ("+" + "t" * 13, "")])
    def test_bad_changes_say_which_letter(self, text, letter):
        with pytest.raises(ModeError) as e:
            parse_changes(text)
        assert e.value.letter == letter

    def test_masks_match_nick_user_host_without_case(self):
        assert mask_matches("bar!*@*", "Bar") and mask_matches("B?R!*@ring", "bar")
        assert mask_matches("*", "x") and not mask_matches("bar!*@*", "barry")
        assert not mask_matches("[b]ar!*@*", "bar")   # brackets are plain characters


class TestOperators:
    def test_the_founder_is_operator_and_grants_chain_from_it(self):
        m = Modes(founder())
        assert m.is_op("ann") and not m.is_op("bo")
        m.add(mode("ann", "+o bo", 101))
        m.add(mode("bo", "+o cy", 102))
        assert m.is_op("bo") and m.is_op("cy")
        m.add(mode("ann", "-o bo", 103))   # bo's grants end with its own
        assert not m.is_op("bo") and not m.is_op("cy") and m.is_op("ann")

    def test_no_entry_makes_its_own_author_an_operator(self):
        m = Modes(founder())
        m.add(mode("mal", "+o mal", 101))
        m.add(mode("eve", "+o mal", 102))
        m.add(mode("mal", "+o eve", 103))   # two non-operators granting each other
        assert not m.is_op("mal") and not m.is_op("eve")
        m.add(mode("mal", "+m", 104))
        assert not m.flag("m")
        # none of them counts: a copy that carries them has them left out on receipt
        copy, dropped = Modes.from_wire(m.to_wire(), "general")
        assert dropped == 4 and copy.entries == {} and copy.is_op("ann")

    def test_a_de_opped_founder_keeps_the_grants_it_gave(self):
        m = Modes(founder())
        m.add(mode("ann", "+o bo", 101))
        m.add(mode("bo", "-o ann", 102))
        assert not m.is_op("ann") and m.is_op("bo")

    def test_the_latest_change_of_each_letter_and_mask_stands(self):
        m = Modes(founder())
        m.add(mode("ann", "+tk+b beer x!*@*", 102))
        m.add(mode("ann", "-t+b y!*@*", 101))    # older for t: t stays
        m.add(mode("ann", "-k", 103))
        assert m.flag("t") and m.value("k") is None
        assert [mask for mask, _, _ in m.listed("b")] == ["x!*@*", "y!*@*"]
        assert m.summary() == ("+t", [])

    def test_a_new_life_forgets_the_old_one(self):
        m = Modes(founder())
        m.add(mode("ann", "+ik+o sesame bo", 101))
        m.found(founder("cy", 200))
        assert m.is_op("cy") and not m.is_op("ann") and not m.is_op("bo")
        assert not m.flag("i") and m.value("k") is None and m.entries == {}
        m.add(mode("ann", "+m", 150))    # an old operator's word in the new life: nothing
        assert not m.flag("m")


class TestCopies:
    def test_a_copy_drops_what_does_not_verify_or_does_not_count(self):
        ch = Channel("general", modes=Modes(founder()))
        ch.modes.add(mode("ann", "+m", 101))
        wire = ch.to_wire()
        forged = dict(mode("ann", "+s", 102).to_wire(), text="+n")   # signature broken
        wire["modes"]["entries"] += [forged, mode("mal", "+o mal", 103).to_wire(),
                                     signed("other", "mode", "ann", "o1", "+t", 104).to_wire()]
        copy = Channel.from_wire(wire)
        assert copy.dropped == 3
        assert copy.modes.flag("m") and not copy.modes.flag("n") and not copy.modes.flag("t")
        assert not copy.modes.is_op("mal")


    def test_what_is_signed_in_the_future_is_left_out_of_a_copy(self):
        m = Modes(founder())
        m.add(mode("ann", "+t", 101))
        m.add(mode("ann", "+b x!*@*", 10_000))   # far ahead: would outlast every -b
        assert m.before(1_000) is not m and m.before(20_000) is m
        kept = m.before(1_000)
        assert kept.flag("t") and kept.listed("b") == [] and kept.is_op("ann")


changes = st.sampled_from(["+o bo", "-o bo", "+o cy", "-o ann", "+t", "-t", "+k a", "-k",
                           "+l 3", "-l", "+b x!*@*", "-b x!*@*", "+m", "+i-m"])
entries = st.lists(st.tuples(st.sampled_from(["ann", "bo", "cy", "mal"]), changes,
                             st.integers(90, 130)), max_size=10)


def state(m: Modes):
    return (sorted(m.reached), sorted((k, v[0], v[1]) for k, v in m.slots.items()),
            sorted(m.entries), m.founder)


@settings(max_examples=150, deadline=None)
@given(entries, entries, st.sampled_from([FOUND, 95.0, 110.0]))
def test_merge_is_commutative_associative_idempotent(a, b, other_found):
    x = Modes(founder(), {e.signature: e for e in (mode(*t) for t in a)})
    y = Modes(founder("bo", other_found), {e.signature: e for e in (mode(*t) for t in b)})
    z = Modes(founder())
    assert state(x.merge(y)) == state(y.merge(x))
    assert state(x.merge(y).merge(z)) == state(x.merge(y.merge(z)))
    assert state(x.merge(x)) == state(x)
    # what a copy carries over the wire stands the same at the receiver (only entries that
    # do not count are left out)
    copy, dropped = Modes.from_wire(x.to_wire(), "general")
    assert state(copy)[:2] == state(x)[:2] and set(copy.entries) <= set(x.entries)
    assert dropped == len(x.entries) - len(copy.entries)
