"""Identity keys: the key file, fingerprints, canonical signing, and verify on hostile input."""

import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.chat.model.identity import (
    Identity,
    IdentityError,
    canonical,
    fingerprint,
    is_key,
    key_bytes,
    verify,
)
from core.chat.users import keyfile
from core.chat.users.keyfile import KEY_FILE
from core.datadir import DataDir

FIELDS = {"nick": "alice", "seq": 3, "text": "héllo ✓", "at": 1.5, "ok": True, "none": None}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8)
field_dicts = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


@pytest.fixture(scope="module")
def alice():
    return Identity.generate("alice")


class TestKeyFile:
    def test_load_or_create__makes_a_private_key_once(self, tmp_path):
        folder = DataDir(tmp_path).user_dir("Alice")
        first = keyfile.load_or_create(folder, "Alice")
        path = folder / KEY_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        again = keyfile.load_or_create(folder)
        assert again.key == first.key
        assert first.nick == "Alice" and again.nick == "alice"  # the folder's name by default
        assert sorted(os.listdir(folder)) == [KEY_FILE]

    def test_load_or_create__never_overwrites(self, tmp_path):
        first = keyfile.load_or_create(tmp_path, "alice")
        before = (tmp_path / KEY_FILE).read_bytes()
        for _ in range(3):
            assert keyfile.load_or_create(tmp_path, "alice").key == first.key
        assert (tmp_path / KEY_FILE).read_bytes() == before

    def test_load_or_create__file_holds_the_seed_in_one_line(self, tmp_path):
        identity = keyfile.load_or_create(tmp_path, "alice")
        header, seed = (tmp_path / KEY_FILE).read_text().split()
        assert header == "chordchat-ed25519-seed-v1"
        assert Identity(bytes.fromhex(seed)).key == identity.key

    @pytest.mark.parametrize("content", [
        b"", b"garbage", b"chordchat-ed25519-seed-v1", b"chordchat-ed25519-seed-v1 abcd",
        b"chordchat-ed25519-seed-v1 " + b"zz" * 32, b"other-header " + b"00" * 32,
        b"chordchat-ed25519-seed-v1 " + b"00" * 32 + b" extra", b"\xff\xfe" * 40])
    def test_load_or_create__malformed_file_names_the_file(self, tmp_path, content):
        path = tmp_path / KEY_FILE
        path.write_bytes(content)
        os.chmod(path, 0o600)
        with pytest.raises(IdentityError, match=str(path)):
            keyfile.load_or_create(tmp_path, "alice")
        assert path.read_bytes() == content  # left as it was

    def test_load_or_create__key_open_to_others_is_refused(self, tmp_path):
        keyfile.load_or_create(tmp_path, "alice")
        path = tmp_path / KEY_FILE
        os.chmod(path, 0o644)
        with pytest.raises(IdentityError, match=r"chmod 600 .*identity\.key"):
            keyfile.load_or_create(tmp_path, "alice")

    def test_load_or_create__key_path_is_a_folder(self, tmp_path):
        (tmp_path / KEY_FILE).mkdir()
        with pytest.raises(IdentityError, match=KEY_FILE):
            keyfile.load_or_create(tmp_path, "alice")

    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
    def test_load_or_create__unreadable_file_names_the_file(self, tmp_path):
        keyfile.load_or_create(tmp_path, "alice")
        path = tmp_path / KEY_FILE
        os.chmod(path, 0o000)
        with pytest.raises(IdentityError, match=str(path)):
            keyfile.load_or_create(tmp_path, "alice")

    def test_load_or_create__missing_folder_names_the_file(self, tmp_path):
        with pytest.raises(IdentityError, match=KEY_FILE):
            keyfile.load_or_create(tmp_path / "missing", "alice")

    def test_identity__seed_must_be_32_bytes(self):
        with pytest.raises(ValueError):
            Identity(b"short")

    def test_identity__repr_shows_no_secret(self, alice):
        assert alice.fingerprint in repr(alice)
        assert alice.seed().hex() not in repr(alice)


class TestFingerprint:
    def test_fingerprint__four_groups_of_four_base32(self, alice):
        groups = alice.fingerprint.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]
        assert set("".join(groups)) <= set("abcdefghijklmnopqrstuvwxyz234567")

    def test_fingerprint__same_from_bytes_and_hex(self, alice):
        assert fingerprint(alice.public_key) == fingerprint(alice.key) == alice.fingerprint

    def test_fingerprint__differs_between_keys(self):
        prints = {Identity.generate().fingerprint for _ in range(50)}
        assert len(prints) == 50

    @pytest.mark.parametrize("bad", [b"x", "ab", "G" * 64, None, 5, "AB" * 32])
    def test_fingerprint__refuses_a_non_key(self, bad):
        with pytest.raises(ValueError):
            fingerprint(bad)

    def test_key_helpers__lower_case_hex_only(self, alice):
        assert is_key(alice.key) and not is_key(alice.key.upper()) and not is_key(b"x")
        assert key_bytes(alice.key) == alice.public_key == key_bytes(alice.public_key)
        assert key_bytes(alice.key[:-2]) is None and key_bytes(b"\0" * 31) is None


class TestCanonical:
    def test_canonical__sorted_compact_ascii_with_kind(self):
        assert canonical("name", {"b": 1, "a": "é"}) == b'chordchat/1/name\n{"a":"\\u00e9","b":1}'

    def test_canonical__key_order_does_not_matter(self):
        assert canonical("k", {"a": 1, "b": 2}) == canonical("k", {"b": 2, "a": 1})

    @pytest.mark.parametrize("kind", ["", "Name", "a b", "x\ny", "a" * 40, None, 3])
    def test_canonical__refuses_a_bad_kind(self, kind):
        with pytest.raises(ValueError):
            canonical(kind, {})

    @pytest.mark.parametrize("fields", [[], "x", {1: 2}, {"a": float("nan")}, {"a": object()},
                                        {"a": b"bytes"}])
    def test_canonical__refuses_non_json_fields(self, fields):
        with pytest.raises(ValueError):
            canonical("k", fields)

    def test_canonical__lone_surrogate_still_encodes(self):
        assert canonical("k", {"t": "\udcff"}).endswith(b'{"t":"\\udcff"}')


class TestSignVerify:
    def test_verify__own_signature(self, alice):
        signature = alice.sign("name", FIELDS)
        assert len(signature) == 128
        assert verify(alice.key, "name", FIELDS, signature)
        assert verify(alice.public_key, "name", dict(reversed(FIELDS.items())), signature)

    def test_verify__kind_separates_domains(self, alice):
        assert not verify(alice.key, "name.del", FIELDS, alice.sign("name", FIELDS))

    def test_verify__other_key_fails(self, alice):
        assert not verify(Identity.generate().key, "name", FIELDS, alice.sign("name", FIELDS))

    @pytest.mark.parametrize("field", sorted(FIELDS))
    def test_verify__any_changed_field_fails(self, alice, field):
        signature = alice.sign("name", FIELDS)
        for value in ("other", 4, 2.5, False, None, [1]):
            if value != FIELDS[field] or type(value) is not type(FIELDS[field]):
                assert not verify(alice.key, "name", {**FIELDS, field: value}, signature)
        assert not verify(alice.key, "name", {k: v for k, v in FIELDS.items() if k != field},
                          signature)
        assert not verify(alice.key, "name", {**FIELDS, "extra": 1}, signature)

    def test_verify__int_and_float_differ(self, alice):
        signature = alice.sign("k", {"at": 1})
        assert not verify(alice.key, "k", {"at": 1.0}, signature)

    @pytest.mark.parametrize("key, kind, fields, signature", [
        (None, "name", FIELDS, "00" * 64), ("zz" * 32, "name", FIELDS, "00" * 64),
        ("00" * 31, "name", FIELDS, "00" * 64), (b"\0" * 33, "name", FIELDS, "00" * 64),
        (["x"], "name", FIELDS, "00" * 64), ("00" * 32, "name", FIELDS, "00" * 64),
        ("ff" * 32, "name", FIELDS, "00" * 64), ("00" * 32, None, FIELDS, "00" * 64),
        ("00" * 32, "name", "notadict", "00" * 64), ("00" * 32, "name", {1: 1}, "00" * 64),
        ("00" * 32, "name", FIELDS, None), ("00" * 32, "name", FIELDS, "zz" * 64),
        ("00" * 32, "name", FIELDS, "00" * 63), ("00" * 32, "name", FIELDS, 12),
        ("00" * 32, "name", FIELDS, b"\0" * 64), ("00" * 32, "name", FIELDS, " 0" * 64),
    ])
    def test_verify__garbage_is_false_never_an_exception(self, key, kind, fields, signature):
        assert verify(key, kind, fields, signature) is False

    def test_verify__deeply_nested_fields_are_false(self, alice):
        deep: list = []
        for _ in range(100_000):
            deep = [deep]
        assert verify(alice.key, "k", {"x": deep}, "00" * 64) is False

    def test_sign__refuses_non_json(self, alice):
        with pytest.raises(ValueError):
            alice.sign("k", {"a": {1, 2}})

    @given(fields=field_dicts)
    def test_sign__any_json_fields_round_trip(self, alice, fields):
        signature = alice.sign("k", fields)
        assert verify(alice.key, "k", fields, signature)

    @given(key=st.one_of(st.binary(), st.text()), kind=st.text(), fields=json_values,
           signature=st.one_of(st.text(), st.binary(), st.integers()))
    def test_verify__random_garbage_is_false(self, key, kind, fields, signature):
        assert verify(key, kind, fields, signature) is False
