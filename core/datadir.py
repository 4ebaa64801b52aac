"""The data directory: one private folder per local user, a lock per user, atomic writes.

Layout (docs: DESIGN.md, "Data directory")::

    DIR/users/<nick lower>/identity.key     the user's ed25519 seed (core.chat.model.identity)
    DIR/users/<nick lower>/pins.json        keys pinned on first contact (core.chat.users.pins)
    DIR/users/<nick lower>/chat.sqlite3     history, outbox, … (core.store)
    DIR/users/<nick lower>/lock             held by the one process serving that user

``DIR`` is ``--data-dir``, else ``$XDG_DATA_HOME/chordchat``, else
``~/.local/share/chordchat``. Every error names the file or folder it is about.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

APP = "chordchat"
USER_MODE = 0o700    # a user's folder: only its owner may list or enter it
FILE_MODE = 0o600    # a user's files: keys, pins, databases

# The DESIGN rule for nicks (core.chat.model.commands checks the same); here it also keeps a
# nick from naming a path outside DIR/users ("../x", "a/b", "").
NICK_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")


class DataDirError(Exception):
    """A data directory, or a file in it, that cannot be used; the message names it."""


class UserLocked(DataDirError):
    """Another process already serves this user from this data directory."""


def valid_nick(nick: object) -> bool:
    return isinstance(nick, str) and NICK_RE.fullmatch(nick) is not None


def _describe(e: OSError) -> str:
    return e.strerror or str(e)


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if needed and make it mode 0700; return it."""
    try:
        path.mkdir(mode=USER_MODE, parents=True, exist_ok=True)
    except FileExistsError:
        raise DataDirError(f"{path} exists and is not a directory") from None
    except OSError as e:
        raise DataDirError(f"cannot create the directory {path}: {_describe(e)}") from None
    if not path.is_dir():
        raise DataDirError(f"{path} exists and is not a directory")
    try:
        os.chmod(path, USER_MODE)
    except OSError as e:
        raise DataDirError(f"cannot make {path} private (mode 0700): {_describe(e)}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataDirError(f"the directory {path} is not writable")
    return path


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # some file systems cannot open a folder; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, replace: bool = True,
                 mode: int = FILE_MODE) -> bool:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never half.

    The data goes to a temporary file in the same folder (created with ``mode``), is
    flushed to disk, then renamed over ``path``. With ``replace=False`` an existing
    ``path`` is never overwritten (the temporary file is hard-linked, which fails if
    ``path`` exists): returns False then, True when written.

    Raises:
        DataDirError: the folder or file cannot be written.
    """
    folder = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise DataDirError(f"cannot write {path}: {_describe(e)}") from None
    try:
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if replace:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return False
        except OSError as e:
            raise DataDirError(f"cannot write {path}: {_describe(e)}") from None
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    _fsync_dir(folder)
    return True


class UserLock:
    """An exclusive lock on one user's folder, held while the file stays open."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the file drops the flock

    def __enter__(self) -> UserLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


class DataDir:
    """The root of the data directory; it hands out per-user folders and locks."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"DataDir({str(self.path)!r})"

    @classmethod
    def default(cls, environ: Mapping[str, str] | None = None) -> DataDir:
        """``$XDG_DATA_HOME/chordchat``, else ``~/.local/share/chordchat``.

        An empty or relative ``XDG_DATA_HOME`` is ignored, as the XDG spec says.
        """
        env = os.environ if environ is None else environ
        xdg = env.get("XDG_DATA_HOME", "")
        if xdg and os.path.isabs(xdg):
            return cls(Path(xdg) / APP)
        home = env.get("HOME") or str(Path.home())
        return cls(Path(home) / ".local" / "share" / APP)

    @property
    def users(self) -> Path:
        return self.path / "users"

    def user_path(self, nick: str) -> Path:
        """Where ``nick``'s folder is (nothing is created)."""
        if not valid_nick(nick):
            raise ValueError(f"not a valid nick: {nick!r}")
        return self.users / nick.lower()

    def user_dir(self, nick: str) -> Path:
        """``nick``'s folder, created with mode 0700 (the data directory too) if missing.

        Raises:
            ValueError: ``nick`` is not a valid nick.
            DataDirError: a folder cannot be created or written.
        """
        path = self.user_path(nick)
        make_private_dir(self.path)
        make_private_dir(self.users)
        return make_private_dir(path)

    def lock(self, nick: str) -> UserLock:
        """Take ``nick``'s process lock (``DIR/users/<nick>/lock``) without waiting.

        The lock is released by ``UserLock.release()`` or when the process ends.

        Raises:
            UserLocked: another process (or another open lock here) holds it.
            DataDirError: the lock file cannot be created.
        """
        path = self.user_dir(nick) / "lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as e:
            raise DataDirError(f"cannot open the lock file {path}: {_describe(e)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_pid(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f"process {holder}" if holder else "another process"
                raise UserLocked(f"{nick} is already running from this data directory: "
                                 f"{who} holds the lock {path}") from None
            raise DataDirError(f"cannot lock {path}: {_describe(e)}") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is only a hint for the message above
        return UserLock(path, fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
