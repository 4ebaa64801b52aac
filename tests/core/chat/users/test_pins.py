"""TOFU pins: first key pinned, a change reported until trusted, kept in a private JSON file."""

import json
import os
import stat

import pytest

from core.chat.model.identity import Identity
from core.chat.users.pins import PINS_FILE, Pins, PinsError

K1 = Identity.generate().key
K2 = Identity.generate().key


@pytest.fixture
def pins(tmp_path):
    return Pins.in_dir(tmp_path)


class TestPins:
    def test_check__new_then_same_then_changed(self, pins):
        assert pins.check("alice", K1) == "new"
        assert pins.pin("alice", K1) == "new"
        assert pins.check("alice", K1) == "same"
        assert pins.check("alice", K2) == "changed"

    def test_check__does_not_pin(self, pins):
        pins.check("alice", K1)
        assert pins.get("alice") is None and len(pins) == 0

    def test_pin__never_replaces_another_key(self, pins):
        pins.pin("alice", K1)
        assert pins.pin("alice", K2) == "changed"
        assert pins.get("alice") == K1
        assert pins.pin("alice", K1) == "same"

    def test_trust__replaces_the_key(self, pins):
        pins.pin("alice", K1)
        pins.trust("alice", K2)
        assert pins.get("alice") == K2
        assert pins.check("alice", K1) == "changed"

    def test_trust__a_first_key(self, pins):
        pins.trust("bob", K1)
        assert pins.check("bob", K1) == "same"

    def test_nick__case_insensitive(self, pins):
        pins.pin("Alice", K1)
        assert pins.check("ALICE", K1) == "same"
        assert pins.get("alice") == K1
        assert pins.nicks() == ["Alice"]

    def test_key__bytes_or_hex(self, pins):
        pins.pin("alice", bytes.fromhex(K1))
        assert pins.check("alice", K1) == "same"

    @pytest.mark.parametrize("nick, key", [("../x", K1), ("", K1), ("alice", "zz"),
                                           ("alice", K1.upper()), ("alice", b"short")])
    def test_pin__refuses_bad_input(self, pins, nick, key):
        with pytest.raises(ValueError):
            pins.pin(nick, key)


class TestFile:
    def test_file__survives_a_restart(self, tmp_path):
        Pins.in_dir(tmp_path).pin("alice", K1)
        again = Pins.in_dir(tmp_path)
        assert again.get("alice") == K1 and len(again) == 1

    def test_file__private_and_no_temporary_left(self, tmp_path, pins):
        pins.pin("alice", K1)
        pins.trust("alice", K2)
        assert stat.S_IMODE((tmp_path / PINS_FILE).stat().st_mode) == 0o600
        assert os.listdir(tmp_path) == [PINS_FILE]

    def test_file__missing_is_empty(self, tmp_path):
        assert len(Pins(tmp_path / "nothing.json")) == 0
        assert not (tmp_path / "nothing.json").exists()

    @pytest.mark.parametrize("content", [
        "", "{", "[]", '{"version": 2, "pins": {}}', '{"version": 1}',
        '{"version": 1, "pins": []}', '{"version": 1, "pins": {"alice": 5}}',
        json.dumps({"version": 1, "pins": {"alice": {"nick": "bob", "key": K1}}}),
        '{"version": 1, "pins": {"alice": {"nick": "alice", "key": "xx"}}}'])
    def test_file__corrupt_names_the_file_and_is_kept(self, tmp_path, content):
        path = tmp_path / PINS_FILE
        path.write_text(content)
        with pytest.raises(PinsError, match=str(path)):
            Pins(path)
        assert path.read_text() == content

    def test_file__not_utf8(self, tmp_path):
        path = tmp_path / PINS_FILE
        path.write_bytes(b"\xff\xfe")
        with pytest.raises(PinsError, match=str(path)):
            Pins(path)

    def test_file__unwritable_names_the_file(self, tmp_path):
        pins = Pins(tmp_path / "missing-folder" / PINS_FILE)
        with pytest.raises(PinsError, match=PINS_FILE):
            pins.pin("alice", K1)
        assert pins.get("alice") is None  # nothing half-applied

    def test_file__is_readable_json(self, tmp_path, pins):
        pins.pin("Alice", K1)
        data = json.loads((tmp_path / PINS_FILE).read_text())
        assert data["version"] == 1
        assert data["pins"]["alice"]["nick"] == "Alice" and data["pins"]["alice"]["key"] == K1
