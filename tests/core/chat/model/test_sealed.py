"""End-to-end private messages: only the recipient opens, only the sender seals, no replays."""

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.chat.model.identity import Identity
from core.chat.model.sealed import box_public, claimed_key, open_sealed, seal

ALICE = Identity.generate("alice")
BOB = Identity.generate("bob")
CAROL = Identity.generate("carol")
BOB_OTHER_NICK = Identity(BOB.seed(), "robert")   # bob's key under another nick
MSG_ID = "1" * 32


def sealed_for_bob(text="hi bob", **kw) -> dict:
    return seal(ALICE, BOB.key, text, MSG_ID, to="bob", **kw)


def flip(b64: str, index: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[index] ^= 1
    return base64.b64encode(bytes(raw)).decode()


class TestSeal:
    def test_seal__opens_for_the_recipient(self):
        sealed = sealed_for_bob("héllo ✓")
        assert open_sealed(BOB, ALICE.key, sealed) == "héllo ✓"
        assert open_sealed(BOB, ALICE.public_key, sealed) == "héllo ✓"

    def test_seal__envelope_is_plain_json_without_the_text(self):
        sealed = sealed_for_bob("a secret")
        assert json.loads(json.dumps(sealed)) == sealed
        assert sealed["from"] == "alice" and sealed["to"] == "bob"
        assert sealed["key"] == ALICE.key and sealed["msg_id"] == MSG_ID
        assert "secret" not in json.dumps(sealed)

    def test_seal__fresh_nonce_each_time(self):
        assert sealed_for_bob()["nonce"] != sealed_for_bob()["nonce"]

    def test_seal__recipient_nick_compared_case_insensitively(self):
        sealed = seal(ALICE, BOB.key, "hi", MSG_ID, to="Bob")
        assert open_sealed(BOB, ALICE.key, sealed) == "hi"

    @given(text=st.text())
    def test_seal__any_text(self, text):
        assert open_sealed(BOB, ALICE.key, sealed_for_bob(text)) == text

    @pytest.mark.parametrize("bad", ["zz" * 32, "00" * 31, b"\0" * 5, None])
    def test_seal__unusable_recipient_key(self, bad):
        with pytest.raises(ValueError):
            seal(ALICE, bad, "hi", MSG_ID, to="bob")

    def test_box_public__small_order_point_refused(self):
        with pytest.raises(ValueError):
            box_public(b"\0" * 32)


class TestOpen:
    def test_open__wrong_sender_key(self):
        assert open_sealed(BOB, CAROL.key, sealed_for_bob()) is None

    def test_open__wrong_recipient(self):
        sealed = sealed_for_bob()
        assert open_sealed(CAROL, ALICE.key, sealed) is None
        assert open_sealed(CAROL, ALICE.key, {**sealed, "to": "carol"}) is None

    def test_open__replay_to_the_same_key_under_another_nick(self):
        sealed = sealed_for_bob()
        assert open_sealed(BOB_OTHER_NICK, ALICE.key, sealed) is None
        assert open_sealed(BOB_OTHER_NICK, ALICE.key, {**sealed, "to": "robert"}) is None

    def test_open__replay_under_another_msg_id(self):
        assert open_sealed(BOB, ALICE.key, {**sealed_for_bob(), "msg_id": "2" * 32}) is None

    def test_open__envelope_claims_another_sender(self):
        assert open_sealed(BOB, ALICE.key, {**sealed_for_bob(), "from": "carol"}) is None

    def test_open__a_forger_cannot_seal_as_alice(self):
        forged = seal(CAROL, BOB.key, "I am alice", MSG_ID, to="bob")
        forged = {**forged, "from": "alice", "key": ALICE.key}
        assert open_sealed(BOB, ALICE.key, forged) is None

    def test_open__tampered_ciphertext(self):
        sealed = sealed_for_bob()
        size = len(base64.b64decode(sealed["box"]))
        for index in (0, 5, size // 2, size - 1):
            assert open_sealed(BOB, ALICE.key, {**sealed, "box": flip(sealed["box"], index)}) \
                is None

    def test_open__tampered_nonce(self):
        sealed = sealed_for_bob()
        nonce = ("0" if sealed["nonce"][0] != "0" else "1") + sealed["nonce"][1:]
        assert open_sealed(BOB, ALICE.key, {**sealed, "nonce": nonce}) is None

    def test_open__truncated_box(self):
        sealed = sealed_for_bob()
        raw = base64.b64decode(sealed["box"])
        for cut in (0, 10, len(raw) - 1):
            box = base64.b64encode(raw[:cut]).decode()
            assert open_sealed(BOB, ALICE.key, {**sealed, "box": box}) is None

    @pytest.mark.parametrize("change", [
        {"v": 2}, {"v": None}, {"from": None}, {"to": 5}, {"msg_id": []}, {"nonce": "xyz"},
        {"nonce": "00" * 23}, {"nonce": None}, {"box": "not base64!"}, {"box": None},
        {"box": "A" * ((1 << 20) + 4)}])
    def test_open__malformed_envelope(self, change):
        assert open_sealed(BOB, ALICE.key, {**sealed_for_bob(), **change}) is None

    @pytest.mark.parametrize("sender_key", [None, "zz", b"\0" * 32, "00" * 32, 7])
    def test_open__unusable_sender_key(self, sender_key):
        assert open_sealed(BOB, sender_key, sealed_for_bob()) is None

    @given(st.one_of(st.none(), st.text(), st.lists(st.integers()), st.dictionaries(
        st.sampled_from(["v", "from", "to", "key", "msg_id", "nonce", "box"]),
        st.one_of(st.none(), st.integers(), st.text(), st.binary()))))
    def test_open__garbage_is_none(self, sealed):
        assert open_sealed(BOB, ALICE.key, sealed) is None

    def test_claimed_key__from_the_envelope(self):
        assert claimed_key(sealed_for_bob()) == ALICE.key
        assert claimed_key({"key": "x"}) is None and claimed_key(None) is None


def test_open_letter__gives_the_sealed_time_and_action_and_they_cannot_be_changed():
    from core.chat.model.sealed import open_letter
    sealed = sealed_for_bob("waves", at=1_700_000_000.5, action=True)
    opened = open_letter(BOB, ALICE.key, sealed)
    assert (opened.text, opened.at, opened.action) == ("waves", 1_700_000_000.5, True)
    plain = open_letter(BOB, ALICE.key, sealed_for_bob("hi", at=5))
    assert (plain.at, plain.action) == (5, False)
    # the time and the flag are inside the box: a changed byte of it does not open
    assert open_letter(BOB, ALICE.key, {**sealed, "box": flip(sealed["box"], 30)}) is None
