"""Signed channel entries: any altered field fails; the maintainer's seq is not signed."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.chat.model.entries import (
    REPLAY_WINDOW,
    EntryError,
    SignedEntry,
    may_leave,
    sign_entry,
)
from core.chat.model.identity import Identity

ALICE = Identity.generate("alice")
MALLORY = Identity.generate("mallory")
AT = 1_700_000_000.25
ALTERED = {"channel": "other", "kind": "leave", "nick": "mallory", "key": MALLORY.key,
           "address": "10.6.6.6:1", "msg_id": "f" * 32, "text": "hello!", "at": AT + 1}


def msg(text="hello", **kw) -> SignedEntry:
    args = {"address": "10.0.0.1:4000", "text": text, "at": AT, **kw}
    return sign_entry(ALICE, "general", "msg", "a" * 32, **args)


class TestSign:
    @pytest.mark.parametrize("kind", ["join", "leave", "msg"])
    def test_sign_entry__valid_for_each_kind(self, kind):
        entry = sign_entry(ALICE, "general", kind, "b" * 32, address="10.0.0.1:4000", at=AT)
        assert entry.valid()
        assert entry.nick == "alice" and entry.key == ALICE.key
        assert entry.sign_kind == f"channel.{kind}"

    def test_sign_entry__at_defaults_to_now(self):
        entry = sign_entry(ALICE, "general", "msg", "c" * 32, address="10.0.0.1:4000")
        assert entry.valid() and entry.at > 1_600_000_000

    @pytest.mark.parametrize("channel, kind", [("#general", "msg"), ("General", "msg"),
                                               ("", "msg"), ("general", "ban")])
    def test_sign_entry__refuses_bad_fields(self, channel, kind):
        with pytest.raises(EntryError):
            sign_entry(ALICE, channel, kind, "d" * 32, address="10.0.0.1:4000")

    @pytest.mark.parametrize("field", sorted(ALTERED))
    def test_valid__any_altered_field_fails(self, field):
        forged = dataclasses.replace(msg(), **{field: ALTERED[field]})
        forged.check_shape()  # still well formed: only the signature gives it away
        assert not forged.valid()

    def test_valid__signature_of_a_join_is_no_leave(self):
        join = sign_entry(ALICE, "general", "join", "e" * 32, address="10.0.0.1:4000", at=AT)
        assert not dataclasses.replace(join, kind="leave").valid()

    def test_valid__int_at_signed_as_int(self):
        entry = msg(at=1_700_000_000)
        assert entry.valid()
        assert not dataclasses.replace(entry, at=1_700_000_000.0).valid()

    @given(text=st.text())
    def test_valid__any_text(self, text):
        assert msg(text).valid()

    def test_valid__garbage_signature(self):
        for signature in ("", "zz" * 64, "00" * 64, None, 5):
            assert not dataclasses.replace(msg(), signature=signature).valid()


class TestWire:
    def test_wire__round_trip(self):
        entry = msg("héllo ✓")
        assert SignedEntry.from_wire(entry.to_wire()) == entry

    def test_wire__maintainer_seq_is_not_signed(self):
        entry = msg()
        for seq in (1, 2, 99):
            got = SignedEntry.from_wire({**entry.to_wire(), "seq": seq})
            assert got.valid() and got == entry

    @pytest.mark.parametrize("change", [
        {"channel": "#x"}, {"channel": 3}, {"kind": "ban"}, {"nick": ""}, {"key": "x"},
        {"address": ""}, {"address": None}, {"msg_id": ""}, {"msg_id": "x" * 129},
        {"text": None}, {"at": "now"}, {"at": True}, {"at": float("inf")},
        {"signature": 1}])
    def test_from_wire__wrong_shapes(self, change):
        with pytest.raises(EntryError):
            SignedEntry.from_wire({**msg().to_wire(), **change})

    def test_from_wire__missing_field_is_named(self):
        d = msg().to_wire()
        del d["msg_id"]
        with pytest.raises(EntryError, match="msg_id"):
            SignedEntry.from_wire(d)

    @given(st.one_of(st.none(), st.lists(st.integers()), st.dictionaries(
        st.sampled_from(["channel", "kind", "nick", "key", "address", "msg_id", "text", "at",
                         "signature"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.floats()))))
    def test_from_wire__garbage_raises_entry_error_only(self, d):
        try:
            entry = SignedEntry.from_wire(d)
        except EntryError:
            return
        assert not entry.valid()


class TestRules:
    def test_may_leave__only_the_joining_key(self):
        leave = sign_entry(ALICE, "general", "leave", "f" * 32, address="10.0.0.1:4000")
        assert may_leave(ALICE.key, leave)
        assert not may_leave(MALLORY.key, leave)
        forged = sign_entry(MALLORY, "general", "leave", "f" * 32, address="10.0.0.1:4000")
        assert not may_leave(ALICE.key, dataclasses.replace(forged, key=ALICE.key))
        join = sign_entry(ALICE, "general", "join", "f" * 32, address="10.0.0.1:4000")
        assert not may_leave(ALICE.key, join)

    def test_fresh__within_the_window(self):
        entry = msg()
        assert entry.fresh(AT) and entry.fresh(AT + REPLAY_WINDOW)
        assert entry.fresh(AT - REPLAY_WINDOW)
        assert not entry.fresh(AT + REPLAY_WINDOW + 1) and not entry.fresh(AT - 3600)


class TestAction:
    def test_action__is_signed_so_nobody_can_add_or_remove_it(self):
        action = msg("waves", action=True)
        assert action.valid() and action.action
        assert SignedEntry.from_wire(action.to_wire()) == action
        assert not dataclasses.replace(action, action=False).valid()   # stripped
        assert not dataclasses.replace(msg("waves"), action=True).valid()   # added

    def test_action__absent_from_a_plain_message_which_signs_as_before(self):
        plain = msg("hello")
        assert "action" not in plain.to_wire() and plain.valid()

    @pytest.mark.parametrize("bad", [1, "yes", None])
    def test_action__only_true_or_absent_on_a_message(self, bad):
        with pytest.raises(EntryError):
            SignedEntry.from_wire({**msg("waves", action=True).to_wire(), "action": bad})
        with pytest.raises(EntryError):
            sign_entry(ALICE, "general", "join", "e" * 32, address="10.0.0.1:4000",
                       action=True)

    def test_several_lines__sign_and_verify_as_one_message(self):
        entry = msg("first line\nsecond line")
        assert entry.valid() and SignedEntry.from_wire(entry.to_wire()).text.count("\n") == 1
