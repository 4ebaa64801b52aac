"""Opening a user's database safely: one process at a time, corruption found without
writing and set aside, the schema migrated, and SQLite's errors named by file."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ._records import StoreError
from ._schema import Migration

# FULL, not NORMAL. In WAL mode both survive kill -9 of this process: a commit is in the
# WAL file (the OS page cache) when it returns. NORMAL syncs the WAL only at checkpoints,
# so a power loss or kernel crash can lose the last commits; FULL syncs the WAL on every
# commit, so what the outbox has accepted is on the disk. The price is one fsync per
# write (a line typed by a person, or one batch of received messages: ``add_messages``),
# paid on the store's worker thread, never on the event loop.
SYNCHRONOUS = "FULL"
BUSY_TIMEOUT = 2.0   # seconds to wait for another program's lock on the file


class Corrupt(Exception):
    """A corrupt database found while opening: set it aside and start afresh."""


_CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_LOCKED = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_BUGS = (sqlite3.ProgrammingError, sqlite3.IntegrityError, sqlite3.InterfaceError)


@contextlib.contextmanager
def errors(path: Path, opening: bool = False) -> Iterator[None]:
    """Turn what the file and SQLite say into StoreError naming the file; a corrupt
    database found while ``opening`` raises ``Corrupt``. Our own bugs pass unchanged."""
    try:
        yield
    except sqlite3.Error as exc:
        if isinstance(exc, _BUGS):
            raise
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code in _CORRUPT:
            if opening:
                raise Corrupt(str(exc)) from exc
            raise StoreError(f"{path} is corrupt ({exc}); it is set aside at the next start",
                             path, "corrupt") from exc
        if code in _LOCKED:
            raise StoreError(f"{path} is locked by another program ({exc})",
                             path, "locked") from exc
        raise StoreError(f"{path} cannot be written ({exc})", path, "unwritable") from exc


def lock(path: Path) -> int:
    """Take ``<path>.lock`` for this process alone; the pid inside names the holder."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(f"{path} cannot be used: its lock file {lock_path} cannot be"
                         f" created ({exc.strerror})", path, "unwritable") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise StoreError(f"{lock_path} cannot be locked ({exc.strerror})",
                             lock_path, "unwritable") from exc
        raise StoreError(f"{path} is in use by another chordchat process (pid {holder}):"
                         " one process per nick and data directory", path, "in_use") from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def connect(path: Path, busy_timeout: float, migrations: Sequence[Migration],
            fts: bool) -> sqlite3.Connection:
    """Check, open and migrate; raises ``Corrupt`` or StoreError (closing what it opened)."""
    if path.exists():
        _check(path, busy_timeout)
    with errors(path, opening=True):
        db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    try:
        with errors(path, opening=True):
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA journal_mode = WAL")   # the first read: a non-database fails here
            db.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
            _migrate(db, path, migrations)
            if fts:
                _index(db)
            # prove the file writable now rather than at the first message
            with transaction(db):
                db.execute("REPLACE INTO meta (key, value) VALUES ('opened_at', ?)",
                           (time.time(),))
    except BaseException:
        db.close()
        raise
    return db


def _check(path: Path, busy_timeout: float) -> None:
    """Look for corruption through a read-only connection: closing a writable one would
    checkpoint its WAL into the damaged file (or delete the WAL) before we set them aside."""
    with errors(path, opening=True):
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                             timeout=busy_timeout)
        try:
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
        finally:
            db.close()
    if problems != ["ok"]:
        raise Corrupt("; ".join(problems[:3]))


def _migrate(db: sqlite3.Connection, path: Path, migrations: Sequence[Migration]) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise StoreError(f"{path} was made by a newer chordchat (schema {version}; this one"
                         f" knows up to {len(migrations)})", path, "newer")
    for step in range(version, len(migrations)):
        with transaction(db):
            migrations[step](db)
            db.execute(f"PRAGMA user_version = {step + 1}")


def _index(db: sqlite3.Connection) -> None:
    """Create the search index if missing and index the messages added without it (by a
    scan-only open): message ids only grow, so a high-water mark says what is indexed."""
    with transaction(db):
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5"
                   "(text, content='messages', content_rowid='id', tokenize='trigram')")
        row = db.execute("SELECT value FROM meta WHERE key = 'fts_indexed'").fetchone()
        mark = row[0] if row else 0
        db.execute("INSERT INTO messages_fts (rowid, text)"
                   " SELECT id, text FROM messages WHERE id > ? ORDER BY id", (mark,))
        db.execute("REPLACE INTO meta (key, value)"
                   " SELECT 'fts_indexed', coalesce(max(id), 0) FROM messages")


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """Commit on leaving, roll back on an error (connections are in autocommit mode)."""
    db.execute("BEGIN IMMEDIATE")   # the write lock now, never an upgrade half-way
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def move_aside(path: Path) -> Path:
    """Rename a corrupt database (and its WAL and shared-memory files) out of the way."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        # the WAL first: a stale WAL beside a fresh database would be replayed into it
        for suffix in ("-wal", "-shm", ""):
            source = path.with_name(path.name + suffix)
            if source.exists():
                source.rename(target.with_name(target.name + suffix))
    except OSError as exc:
        raise StoreError(f"{path} is corrupt and cannot be moved aside ({exc.strerror})",
                         path, "corrupt") from exc
    return target
