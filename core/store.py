"""One local user's SQLite database: history, the outbox, joined channels, pinned keys and
known peers (the standard library's sqlite3; no ring I/O here).

``UserStore`` is synchronous and belongs to one thread. The asyncio core never calls it
directly: it uses ``AsyncStore``, which runs every call, in call order, on one dedicated
worker thread, so the event loop (and the UI behind it) never waits on the disk.

Guarantees:
- A write has been committed to disk when its method returns (``AsyncStore``: when its
  future is done): an outbox row survives kill -9 of the process, and power loss too
  (``synchronous=FULL``, see ``_SYNCHRONOUS``).
- Message ids are unique: adding a message or an outbox row again is a no-op.
- One process at a time: an exclusive ``flock`` on ``<db>.lock`` refuses a second one.
- A corrupt database is renamed aside, never overwritten, and ``set_aside`` says where.
- Every SQLite or file error surfaces as ``StoreError`` naming the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

FILENAME = "chat.sqlite3"
STATES = ("pending", "delivered")   # an outgoing message's state; received ones are delivered
PEERS_KEPT = 200                    # known peers remembered, most recently seen
BUSY_TIMEOUT = 2.0                  # seconds to wait for another program's lock on the file

# FULL, not NORMAL. In WAL mode both survive kill -9 of this process: a commit is in the
# WAL file (the OS page cache) when it returns. NORMAL syncs the WAL only at checkpoints,
# so a power loss or kernel crash can lose the last commits; FULL syncs the WAL on every
# commit, so what the outbox has accepted is on the disk. The price is one fsync per
# write (a line typed by a person, or one batch of received messages: ``add_messages``),
# paid on the store's worker thread, never on the event loop.
_SYNCHRONOUS = "FULL"


class StoreError(Exception):
    """The database cannot be used; ``str()`` names the file and says why.

    ``kind``: "locked" (another program holds the database), "in_use" (another chordchat
    process has it), "corrupt", "unwritable", or "newer" (made by a newer version).
    ``set_aside``: where a corrupt database was moved, when it was.
    """

    def __init__(self, message: str, path: Path, kind: str, set_aside: Path | None = None):
        super().__init__(message)
        self.path = path
        self.kind = kind
        self.set_aside = set_aside


class Message(NamedTuple):
    conversation: str   # "#channel" or a nick
    msg_id: str
    sender: str
    text: str
    at: float
    outgoing: bool
    state: str          # one of STATES


class Hit(NamedTuple):
    """A search result: where the line is and what it says."""
    conversation: str
    msg_id: str
    sender: str
    text: str
    at: float


class Conversation(NamedTuple):
    name: str
    last_at: float
    messages: int


class Outgoing(NamedTuple):
    """An outbox row: a message to (re)send until acknowledged, with its original id."""
    msg_id: str
    kind: str
    destination: str
    payload: dict
    at: float


# -- the schema and its migrations ----------------------------------------------------------

def _schema_v1(db: sqlite3.Connection) -> None:
    for statement in (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
        """CREATE TABLE conversations (
               name TEXT PRIMARY KEY COLLATE NOCASE,
               last_at REAL NOT NULL)""",
        # id: insertion order (ties of ``at``) and the search index's rowid
        """CREATE TABLE messages (
               id INTEGER PRIMARY KEY,
               msg_id TEXT NOT NULL UNIQUE,
               conversation TEXT NOT NULL COLLATE NOCASE
                   REFERENCES conversations(name) ON DELETE CASCADE,
               sender TEXT NOT NULL,
               text TEXT NOT NULL,
               at REAL NOT NULL,
               outgoing INTEGER NOT NULL,
               state TEXT NOT NULL CHECK (state IN ('pending', 'delivered')))""",
        "CREATE INDEX messages_by_conversation ON messages (conversation, at, id)",
        """CREATE TABLE outbox (
               id INTEGER PRIMARY KEY,
               msg_id TEXT NOT NULL UNIQUE,
               kind TEXT NOT NULL,
               destination TEXT NOT NULL,
               payload TEXT NOT NULL,
               at REAL NOT NULL)""",
        "CREATE TABLE joined (channel TEXT PRIMARY KEY COLLATE NOCASE, at REAL NOT NULL)",
        "CREATE TABLE pins (nick TEXT PRIMARY KEY COLLATE NOCASE, key BLOB NOT NULL,"
        " at REAL NOT NULL)",
        "CREATE TABLE peers (address TEXT PRIMARY KEY, last_seen REAL NOT NULL)",
        "CREATE INDEX peers_by_time ON peers (last_seen)",
    ):
        db.execute(statement)


# MIGRATIONS[i] takes a database from schema version i to i + 1 (PRAGMA user_version), in
# one transaction with the version bump. Append; never edit a released step.
Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: tuple[Migration, ...] = (_schema_v1,)


@functools.cache
def fts5_available() -> bool:
    """Whether this sqlite3 module has FTS5 with the trigram tokenizer (SQLite >= 3.34)."""
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as db:
            db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')")
        return True
    except sqlite3.Error:
        return False


# -- the store ---------------------------------------------------------------------------

class UserStore:
    """One user's database, open for writing by this process. Use from one thread only."""

    def __init__(self, path: Path, db: sqlite3.Connection, lock_fd: int, fts: bool,
                 set_aside: Path | None):
        self.path = path
        self.fts = fts              # search uses FTS5 (else a scan)
        self.set_aside = set_aside  # where a corrupt database found at open was moved
        self._db = db
        self._lock_fd: int | None = lock_fd

    @property
    def notice(self) -> str | None:
        """What to tell the user about this open (a corrupt database set aside), if anything."""
        if self.set_aside is None:
            return None
        return (f"{self.path} was corrupt: moved aside to {self.set_aside}; "
                "starting with an empty history")

    @classmethod
    def open(cls, path: str | os.PathLike, *, fts: bool = True,
             busy_timeout: float = BUSY_TIMEOUT,
             migrations: Sequence[Migration] = MIGRATIONS) -> UserStore:
        """Open (or create) the database at ``path`` for this process alone.

        Args:
            path: the database file, normally ``DataDir(...).user_dir(nick) / FILENAME``;
                its directory must exist.
            fts: search with FTS5 when this sqlite3 has it (False: always scan).
            busy_timeout: seconds to wait for another program holding the file.
            migrations: the schema steps (tests add some).

        Returns:
            The store; ``set_aside`` is the path a corrupt database was moved to, if any.

        Raises:
            StoreError: in use by another process, locked, unwritable, newer schema, or
                corrupt and impossible to set aside.
        """
        path = Path(path)
        lock_fd = _lock(path)
        try:
            use_fts = fts and fts5_available()
            set_aside = None
            try:
                db = _connect(path, busy_timeout, migrations, use_fts)
            except _Corrupt:
                set_aside = _set_aside(path)
                try:
                    db = _connect(path, busy_timeout, migrations, use_fts)
                except _Corrupt as exc:  # a fresh file cannot be corrupt, but say so if it is
                    raise StoreError(f"{path}: still corrupt after setting the old file aside",
                                     path, "corrupt", set_aside) from exc
                except StoreError as exc:
                    exc.set_aside = set_aside
                    raise
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(path, db, lock_fd, use_fts, set_aside)

    def close(self) -> None:
        """Close the database and release the process lock (again: no-op)."""
        if self._lock_fd is None:
            return
        try:
            self._db.close()
        finally:
            os.close(self._lock_fd)   # closing the descriptor releases the flock
            self._lock_fd = None

    def __enter__(self) -> UserStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- conversations and history -------------------------------------------------------

    def add_message(self, conversation: str, msg_id: str, sender: str, text: str, at: float,
                    outgoing: bool, state: str = "delivered") -> bool:
        """Record one message; an id already recorded is ignored. Returns: whether added."""
        with self._write():
            return self._insert_message(conversation, msg_id, sender, text, at, outgoing, state)

    def add_messages(self, messages: Sequence[Message]) -> int:
        """Record a batch (a replayed history) in one commit. Returns: how many were new."""
        with self._write():
            return sum(self._insert_message(*m) for m in messages)

    def add_outgoing(self, message: Message, kind: str, destination: str,
                     payload: dict) -> bool:
        """A line the user typed: its history row and its outbox row, in one commit.

        Returns: whether it was new (an id already recorded changes nothing).
        """
        with self._write():
            added = self._insert_message(*message)
            return self._insert_outbox(message.msg_id, kind, destination, payload,
                                       message.at) or added

    def get(self, msg_id: str) -> Message | None:
        row = self._read("SELECT conversation, msg_id, sender, text, at, outgoing, state"
                         " FROM messages WHERE msg_id = ?", (msg_id,))
        return _message(row[0]) if row else None

    def recent(self, conversation: str, limit: int = 100) -> list[Message]:
        """The last ``limit`` messages of a conversation, oldest first (by ``at``, then
        insertion)."""
        rows = self._read("SELECT conversation, msg_id, sender, text, at, outgoing, state"
                          " FROM messages WHERE conversation = ?"
                          " ORDER BY at DESC, id DESC LIMIT ?", (conversation, limit))
        return [_message(row) for row in reversed(rows)]

    def conversations(self) -> list[Conversation]:
        """Every conversation with messages, most recently active first."""
        rows = self._read("SELECT c.name, c.last_at, count(m.id) FROM conversations c"
                          " LEFT JOIN messages m ON m.conversation = c.name"
                          " GROUP BY c.name ORDER BY c.last_at DESC, c.name")
        return [Conversation(*row) for row in rows]

    def set_state(self, msg_id: str, state: str) -> bool:
        """Mark a message pending or delivered. Only forward: a delivered message stays
        delivered (a late retry must not undo a receipt). Returns: whether it changed."""
        _check_state(state)
        with self._write():
            return self._db.execute(
                "UPDATE messages SET state = ? WHERE msg_id = ? AND state != ?"
                " AND NOT (state = 'delivered' AND ? = 'pending')",
                (state, msg_id, state, state)).rowcount == 1

    # -- the outbox ----------------------------------------------------------------------

    def add_outbox(self, msg_id: str, kind: str, destination: str, payload: dict,
                   at: float) -> bool:
        """Queue a message until ``ack``; committed (durable) on return.

        Returns: whether it was new (an id already queued is left as it is).
        """
        with self._write():
            return self._insert_outbox(msg_id, kind, destination, payload, at)

    def outbox(self) -> list[Outgoing]:
        """Every message not yet acknowledged, in the order they were queued."""
        rows = self._read("SELECT msg_id, kind, destination, payload, at FROM outbox"
                          " ORDER BY id")
        return [Outgoing(m, k, d, json.loads(p), at) for m, k, d, p, at in rows]

    def ack(self, msg_id: str) -> bool:
        """Drop an acknowledged message from the outbox. Returns: whether it was there."""
        with self._write():
            return self._db.execute("DELETE FROM outbox WHERE msg_id = ?",
                                    (msg_id,)).rowcount == 1

    # -- joined channels ---------------------------------------------------------------

    def joined(self) -> list[str]:
        """The channels to rejoin, in the order they were joined."""
        return [row[0] for row in self._read("SELECT channel FROM joined ORDER BY at, rowid")]

    def set_joined(self, channel: str, joined: bool, at: float | None = None) -> None:
        with self._write():
            if joined:
                self._db.execute("INSERT OR IGNORE INTO joined (channel, at) VALUES (?, ?)",
                                 (channel, time.time() if at is None else at))
            else:
                self._db.execute("DELETE FROM joined WHERE channel = ?", (channel,))

    # -- pinned keys (trust on first use) ------------------------------------------------

    def pinned(self, nick: str) -> bytes | None:
        rows = self._read("SELECT key FROM pins WHERE nick = ?", (nick,))
        return bytes(rows[0][0]) if rows else None

    def check(self, nick: str, key: bytes) -> str:
        """Compare a key with the pin: "new" (none yet), "same" or "changed"."""
        _check_key(key)
        return _compare(self.pinned(nick), key)

    def pin(self, nick: str, key: bytes, at: float | None = None) -> str:
        """Pin ``key`` for ``nick`` unless a key is pinned already (first use wins).

        Returns: what ``check`` said before: "new" (now pinned), "same", or "changed"
        (the old pin stays; only ``trust`` replaces it).
        """
        _check_key(key)
        with self._write():
            verdict = _compare(self.pinned(nick), key)
            if verdict == "new":
                self._db.execute("INSERT INTO pins (nick, key, at) VALUES (?, ?, ?)",
                                 (nick, key, time.time() if at is None else at))
            return verdict

    def trust(self, nick: str, key: bytes, at: float | None = None) -> None:
        """Pin ``key`` for ``nick``, replacing any earlier pin (the user said so)."""
        _check_key(key)
        with self._write():
            self._db.execute("INSERT OR REPLACE INTO pins (nick, key, at) VALUES (?, ?, ?)",
                             (nick, key, time.time() if at is None else at))

    # -- known peers ----------------------------------------------------------------------

    def saw_peer(self, address: str, at: float) -> None:
        """Remember a node address seen alive at ``at``; only the latest PEERS_KEPT stay."""
        with self._write():
            self._db.execute("INSERT INTO peers (address, last_seen) VALUES (?, ?)"
                             " ON CONFLICT (address) DO UPDATE"
                             " SET last_seen = max(last_seen, excluded.last_seen)",
                             (address, at))
            self._db.execute("DELETE FROM peers WHERE address NOT IN (SELECT address"
                             " FROM peers ORDER BY last_seen DESC, address LIMIT ?)",
                             (PEERS_KEPT,))

    def peers(self, limit: int = PEERS_KEPT) -> list[str]:
        """Known peer addresses, most recently seen first: the ones to try without
        ``--bootstrap``."""
        rows = self._read("SELECT address FROM peers ORDER BY last_seen DESC, address"
                          " LIMIT ?", (limit,))
        return [row[0] for row in rows]

    # -- search ---------------------------------------------------------------------------

    def search(self, text: str, limit: int = 50) -> list[Hit]:
        """Messages containing every word of ``text`` (case-insensitive substrings),
        newest first.

        Both paths decide with the same test (``instr(lower(text), lower(word))``: SQLite's
        ``lower`` folds ASCII only), so they return the same lines; FTS5's trigram index
        only narrows the candidates, for the words of three characters or more.
        """
        words = text.split()
        if not words:
            return []
        where = " AND ".join(["instr(lower(m.text), lower(?)) > 0"] * len(words))
        columns = "m.conversation, m.msg_id, m.sender, m.text, m.at"
        indexed = [w for w in words if len(w) >= 3]
        if self.fts and indexed:
            query = " ".join('"' + w.replace('"', '""') + '"' for w in indexed)
            sql = (f"SELECT {columns} FROM messages_fts f JOIN messages m ON m.id = f.rowid"
                   f" WHERE messages_fts MATCH ? AND {where}")
            args: tuple = (query, *words)
        else:
            sql = f"SELECT {columns} FROM messages m WHERE {where}"
            args = tuple(words)
        rows = self._read(sql + " ORDER BY m.at DESC, m.id DESC LIMIT ?", (*args, limit))
        return [Hit(*row) for row in rows]

    # -- internals ---------------------------------------------------------------------

    def _insert_message(self, conversation: str, msg_id: str, sender: str, text: str,
                        at: float, outgoing: bool, state: str) -> bool:
        _check_state(state)
        conversation, sender, text = _clean(conversation), _clean(sender), _clean(text)
        self._db.execute("INSERT INTO conversations (name, last_at) VALUES (?, ?)"
                         " ON CONFLICT (name) DO UPDATE"
                         " SET last_at = max(last_at, excluded.last_at)", (conversation, at))
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO messages"
            " (msg_id, conversation, sender, text, at, outgoing, state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (msg_id, conversation, sender, text, at, int(outgoing), state))
        if cursor.rowcount != 1:
            return False
        if self.fts:
            self._db.execute("INSERT INTO messages_fts (rowid, text) VALUES (?, ?)",
                             (cursor.lastrowid, text))
            self._db.execute("REPLACE INTO meta (key, value) VALUES ('fts_indexed', ?)",
                             (cursor.lastrowid,))
        return True

    def _insert_outbox(self, msg_id: str, kind: str, destination: str, payload: dict,
                       at: float) -> bool:
        encoded = json.dumps(payload, separators=(",", ":"))   # TypeError before any write
        return self._db.execute(
            "INSERT OR IGNORE INTO outbox (msg_id, kind, destination, payload, at)"
            " VALUES (?, ?, ?, ?, ?)", (msg_id, kind, destination, encoded, at)).rowcount == 1

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One transaction: the write lock up front, committed (synced) on leaving."""
        self._open_db()
        with _errors(self.path), _transaction(self._db):
            yield

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        self._open_db()
        with _errors(self.path):
            return self._db.execute(sql, args).fetchall()

    def _open_db(self) -> None:
        if self._lock_fd is None:
            raise StoreError(f"{self.path}: the store is closed", self.path, "closed")


# -- opening: lock, connect, check, migrate ---------------------------------------------

class _Corrupt(Exception):
    """A corrupt database found while opening: set it aside and start afresh."""


_CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_LOCKED = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_BUGS = (sqlite3.ProgrammingError, sqlite3.IntegrityError, sqlite3.InterfaceError)


@contextlib.contextmanager
def _errors(path: Path, opening: bool = False) -> Iterator[None]:
    """Turn what the file and SQLite say into StoreError naming the file; a corrupt
    database found while ``opening`` raises ``_Corrupt``. Our own bugs pass unchanged."""
    try:
        yield
    except sqlite3.Error as exc:
        if isinstance(exc, _BUGS):
            raise
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code in _CORRUPT:
            if opening:
                raise _Corrupt(str(exc)) from exc
            raise StoreError(f"{path} is corrupt ({exc}); it is set aside at the next start",
                             path, "corrupt") from exc
        if code in _LOCKED:
            raise StoreError(f"{path} is locked by another program ({exc})",
                             path, "locked") from exc
        raise StoreError(f"{path} cannot be written ({exc})", path, "unwritable") from exc


def _lock(path: Path) -> int:
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


def _connect(path: Path, busy_timeout: float, migrations: Sequence[Migration],
             fts: bool) -> sqlite3.Connection:
    """Check, open and migrate; raises ``_Corrupt`` or StoreError (closing what it opened)."""
    if path.exists() and path.stat().st_size > 0:
        _check(path, busy_timeout)
    with _errors(path, opening=True):
        db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    try:
        with _errors(path, opening=True):
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA journal_mode = WAL")   # the first read: a non-database fails here
            db.execute(f"PRAGMA synchronous = {_SYNCHRONOUS}")
            _migrate(db, path, migrations)
            if fts:
                _index(db)
            # prove the file writable now rather than at the first message
            with _transaction(db):
                db.execute("REPLACE INTO meta (key, value) VALUES ('opened_at', ?)",
                           (time.time(),))
    except BaseException:
        db.close()
        raise
    return db


def _check(path: Path, busy_timeout: float) -> None:
    """Look for corruption through a read-only connection: closing a writable one would
    checkpoint its WAL into the damaged file (or delete the WAL) before we set them aside."""
    with _errors(path, opening=True):
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                             timeout=busy_timeout)
        try:
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
        finally:
            db.close()
    if problems != ["ok"]:
        raise _Corrupt("; ".join(problems[:3]))


def _migrate(db: sqlite3.Connection, path: Path, migrations: Sequence[Migration]) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise StoreError(f"{path} was made by a newer chordchat (schema {version}; this one"
                         f" knows up to {len(migrations)})", path, "newer")
    for step in range(version, len(migrations)):
        with _transaction(db):
            migrations[step](db)
            db.execute(f"PRAGMA user_version = {step + 1}")


def _index(db: sqlite3.Connection) -> None:
    """Create the search index if missing and index the messages added without it (by a
    scan-only open): message ids only grow, so a high-water mark says what is indexed."""
    with _transaction(db):
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5"
                   "(text, content='messages', content_rowid='id', tokenize='trigram')")
        row = db.execute("SELECT value FROM meta WHERE key = 'fts_indexed'").fetchone()
        mark = row[0] if row else 0
        db.execute("INSERT INTO messages_fts (rowid, text)"
                   " SELECT id, text FROM messages WHERE id > ? ORDER BY id", (mark,))
        db.execute("REPLACE INTO meta (key, value)"
                   " SELECT 'fts_indexed', coalesce(max(id), 0) FROM messages")


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
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


def _set_aside(path: Path) -> Path:
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


# -- small helpers --------------------------------------------------------------------------

def _message(row: tuple) -> Message:
    conversation, msg_id, sender, text, at, outgoing, state = row
    return Message(conversation, msg_id, sender, text, at, bool(outgoing), state)


def _check_state(state: str) -> None:
    if state not in STATES:
        raise ValueError(f"state must be one of {STATES}, not {state!r}")


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes):
        raise TypeError(f"a key is bytes, not {type(key).__name__}")


def _compare(pinned: bytes | None, key: bytes) -> str:
    if pinned is None:
        return "new"
    return "same" if pinned == key else "changed"


def _clean(text: str) -> str:
    """Text as SQLite can hold it: a lone surrogate (JSON allows "\\ud800") becomes "?"."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


# -- the thread crossing --------------------------------------------------------------------

class AsyncStore:
    """A ``UserStore`` on its own worker thread, for the asyncio core.

    Every method is submitted to the worker when it is *called* and returns an
    ``asyncio.Future``: calls run one at a time in call order, whether or not (and in
    whatever order) they are awaited; awaiting gives the result or raises the error. A
    write's future is done once the write is committed.

        store = await AsyncStore.open(path)
        await store.add_outgoing(message, "channel", "general", payload)  # durable now
        store.saw_peer(address, now)                                      # fire and forget
    """

    def __init__(self, store: UserStore, executor: ThreadPoolExecutor):
        self.store = store   # for its plain attributes (path, fts, set_aside, notice) only
        self._executor = executor

    @classmethod
    async def open(cls, path: str | os.PathLike, **options) -> AsyncStore:
        """``UserStore.open`` on a new worker thread (the connection belongs to it)."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        try:
            store = await asyncio.get_running_loop().run_in_executor(
                executor, functools.partial(UserStore.open, path, **options))
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(store, executor)

    async def close(self) -> None:
        """Close the store after every call submitted before, then end the worker."""
        try:
            await self._submit(UserStore.close)
        finally:
            self._executor.shutdown(wait=False)

    def _submit(self, method: Callable, *args, **kwargs) -> asyncio.Future:
        return asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(method, self.store, *args, **kwargs))


def _to_thread(name: str) -> Callable[..., asyncio.Future]:
    method = getattr(UserStore, name)

    def submit(self: AsyncStore, *args, **kwargs) -> asyncio.Future:
        return self._submit(method, *args, **kwargs)

    submit.__name__ = submit.__qualname__ = name
    submit.__doc__ = method.__doc__
    return submit


ASYNC_METHODS = ("add_message", "add_messages", "add_outgoing", "get", "recent",
                 "conversations", "set_state", "add_outbox", "outbox", "ack", "joined",
                 "set_joined", "pinned", "check", "pin", "trust", "saw_peer", "peers",
                 "search")
for _name in ASYNC_METHODS:
    setattr(AsyncStore, _name, _to_thread(_name))
