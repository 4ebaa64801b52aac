"""The data directory: where it is, private per-user folders, the per-user lock, atomic writes."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.datadir import DataDir, DataDirError, UserLocked, valid_nick, write_atomic


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestDefault:
    def test_default__xdg_data_home(self, tmp_path):
        d = DataDir.default({"XDG_DATA_HOME": str(tmp_path / "xdg"), "HOME": "/nowhere"})
        assert d.path == tmp_path / "xdg" / "chordchat"

    def test_default__home_when_no_xdg(self, tmp_path):
        d = DataDir.default({"HOME": str(tmp_path)})
        assert d.path == tmp_path / ".local" / "share" / "chordchat"

    def test_default__empty_or_relative_xdg_is_ignored(self, tmp_path):
        for xdg in ("", "relative/dir"):
            d = DataDir.default({"XDG_DATA_HOME": xdg, "HOME": str(tmp_path)})
            assert d.path == tmp_path / ".local" / "share" / "chordchat"

    def test_default__reads_the_environment(self, tmp_path, monkeypatch):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
        assert DataDir.default().path == tmp_path / "chordchat"


class TestUserDir:
    def test_user_dir__lower_case_and_private(self, tmp_path):
        d = DataDir(tmp_path / "data")
        path = d.user_dir("Alice")
        assert path == tmp_path / "data" / "users" / "alice"
        assert path.is_dir()
        assert mode(path) == 0o700
        assert mode(tmp_path / "data") == 0o700

    def test_user_dir__same_folder_for_any_case(self, tmp_path):
        d = DataDir(tmp_path)
        assert d.user_dir("BOB") == d.user_dir("bob")

    def test_user_dir__existing_loose_folder_is_made_private(self, tmp_path):
        loose = tmp_path / "users" / "carol"
        loose.mkdir(parents=True, mode=0o755)
        os.chmod(loose, 0o755)
        DataDir(tmp_path).user_dir("carol")
        assert mode(loose) == 0o700

    @pytest.mark.parametrize("nick", ["", "../etc", "a/b", "1abc", "a" * 33, ".", "al ice"])
    def test_user_dir__refuses_a_nick_that_is_no_nick(self, tmp_path, nick):
        with pytest.raises(ValueError, match="not a valid nick"):
            DataDir(tmp_path).user_dir(nick)
        assert not (tmp_path / "users").exists()

    def test_user_dir__data_dir_under_a_file_names_the_path(self, tmp_path):
        blocker = tmp_path / "file"
        blocker.write_text("x")
        with pytest.raises(DataDirError, match=str(blocker)):
            DataDir(blocker / "data").user_dir("alice")

    def test_user_dir__user_path_is_a_file(self, tmp_path):
        (tmp_path / "users").mkdir()
        (tmp_path / "users" / "alice").write_text("x")
        with pytest.raises(DataDirError, match="not a directory"):
            DataDir(tmp_path).user_dir("alice")

    @pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
    def test_user_dir__unwritable_data_dir_names_the_path(self, tmp_path):
        ro = tmp_path / "ro"
        ro.mkdir()
        os.chmod(ro, 0o500)
        try:
            with pytest.raises(DataDirError, match=str(ro)):
                DataDir(ro / "data").user_dir("alice")
        finally:
            os.chmod(ro, 0o700)

    def test_valid_nick__the_design_rule(self):
        assert valid_nick("a") and valid_nick("Z9_-x") and valid_nick("a" * 32)
        assert not valid_nick(None) and not valid_nick(3) and not valid_nick("_a")


class TestLock:
    def test_lock__second_lock_is_refused_naming_the_file(self, tmp_path):
        d = DataDir(tmp_path)
        with d.lock("alice") as first:
            assert first.held
            with pytest.raises(UserLocked, match=str(first.path)) as info:
                d.lock("Alice")
            assert f"process {os.getpid()}" in str(info.value)
        assert not first.held

    def test_lock__released_lock_can_be_taken_again(self, tmp_path):
        d = DataDir(tmp_path)
        d.lock("alice").release()
        lock = d.lock("alice")
        assert lock.held
        lock.release()
        lock.release()  # twice is harmless

    def test_lock__other_users_are_independent(self, tmp_path):
        d = DataDir(tmp_path)
        with d.lock("alice"), d.lock("bob") as b:
            assert b.held

    def test_lock__another_process_is_refused(self, tmp_path):
        d = DataDir(tmp_path)
        code = ("import sys; from core.datadir import DataDir, UserLocked\n"
                "try:\n    DataDir(sys.argv[1]).lock('alice')\n"
                "except UserLocked as e:\n    print(e); sys.exit(3)\n")
        with d.lock("alice"):
            done = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                                  capture_output=True, text=True, timeout=60,
                                  cwd=Path(__file__).resolve().parents[2])
        assert done.returncode == 3, done.stderr
        assert str(tmp_path / "users" / "alice" / "lock") in done.stdout

    def test_lock__lock_file_is_private(self, tmp_path):
        with DataDir(tmp_path).lock("alice") as lock:
            assert mode(lock.path) == 0o600


class TestWriteAtomic:
    def test_write_atomic__writes_private_file(self, tmp_path):
        path = tmp_path / "f"
        assert write_atomic(path, b"one")
        assert path.read_bytes() == b"one"
        assert mode(path) == 0o600

    def test_write_atomic__replaces(self, tmp_path):
        path = tmp_path / "f"
        write_atomic(path, b"one")
        write_atomic(path, b"two")
        assert path.read_bytes() == b"two"
        assert os.listdir(tmp_path) == ["f"]  # no temporary file left

    def test_write_atomic__never_overwrites_when_asked(self, tmp_path):
        path = tmp_path / "f"
        assert write_atomic(path, b"one", replace=False)
        assert not write_atomic(path, b"two", replace=False)
        assert path.read_bytes() == b"one"
        assert os.listdir(tmp_path) == ["f"]

    def test_write_atomic__missing_folder_names_the_file(self, tmp_path):
        path = tmp_path / "missing" / "f"
        with pytest.raises(DataDirError, match=str(path)):
            write_atomic(path, b"x")
