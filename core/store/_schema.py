"""The database's tables and the steps that bring an older file up to date."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable


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


def _action_v2(db: sqlite3.Connection) -> None:
    """A message may be an action (``/me``)."""
    db.execute("ALTER TABLE messages ADD COLUMN action INTEGER NOT NULL DEFAULT 0")


def _channel_key_v3(db: sqlite3.Connection) -> None:
    """A channel joined keeps the key (+k) it was joined with: the rejoin at the next
    start gives it again."""
    db.execute("ALTER TABLE joined ADD COLUMN key TEXT")


# MIGRATIONS[i] takes a database from schema version i to i + 1 (PRAGMA user_version), in
# one transaction with the version bump. Append; never edit a released step.
Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: tuple[Migration, ...] = (_schema_v1, _action_v2, _channel_key_v3)


@functools.cache
def fts5_available() -> bool:
    """Whether this sqlite3 module has FTS5 with the trigram tokenizer (SQLite >= 3.34)."""
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as db:
            db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')")
        return True
    except sqlite3.Error:
        return False
