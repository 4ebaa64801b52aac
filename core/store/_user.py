"""``UserStore``: the synchronous store of one local user, used from one thread."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ._files import BUSY_TIMEOUT, Corrupt, connect, errors, lock, move_aside, transaction
from ._records import Conversation, Hit, Message, OutboxRow, StoreError
from ._schema import MIGRATIONS, Migration, fts5_available

STATES = ("pending", "delivered")   # an outgoing message's state; received ones are delivered
PEERS_KEPT = 200                    # known peers remembered, most recently seen


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
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection, to read its settings (``PRAGMA``); from this store's thread
        only, and never to write around the store's methods."""
        return self._db

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
        lock_fd = lock(path)
        try:
            use_fts = fts and fts5_available()
            set_aside = None
            try:
                db = connect(path, busy_timeout, migrations, use_fts)
            except Corrupt:
                set_aside = move_aside(path)
                try:
                    db = connect(path, busy_timeout, migrations, use_fts)
                except Corrupt as exc:  # a fresh file cannot be corrupt, but say so if it is
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
                    outgoing: bool, state: str = "delivered", action: bool = False) -> bool:
        """Record one message; an id already recorded is ignored. Returns: whether added."""
        with self._write():
            return self._insert_message(conversation, msg_id, sender, text, at, outgoing, state,
                                        action)

    def add_messages(self, messages: Sequence[Message]) -> int:
        """Record a batch (a replayed history) in one commit. Returns: how many were new."""
        with self._write():
            return sum(self._insert_message(*m) for m in messages)

    def add_each(self, messages: Sequence[Message]) -> list[bool]:
        """Record a batch in one commit. Returns: for each message, whether it was new
        (a receiver shows only those: duplicates are dropped across restarts too)."""
        with self._write():
            return [self._insert_message(*m) for m in messages]

    def add_outgoing(self, message: Message, kind: str, destination: str,
                     payload: dict) -> bool:
        """A line the user typed: its history row and its outbox row, in one commit.

        Returns: whether it was new (an id already recorded changes nothing).
        """
        with self._write():
            added = self._insert_message(*message)
            return self._insert_outbox(message.msg_id, kind, destination, payload,
                                       message.at) or added

    def forget(self, msg_id: str) -> bool:
        """Remove a message and its outbox row (a line that could not be sent at all, e.g.
        to a nick nobody ever registered). Returns: whether there was one."""
        with self._write():
            self._db.execute("DELETE FROM outbox WHERE msg_id = ?", (msg_id,))
            if self.fts:
                # the index's content is the messages table: tell it what goes
                self._db.execute("INSERT INTO messages_fts (messages_fts, rowid, text)"
                                 " SELECT 'delete', id, text FROM messages WHERE msg_id = ?",
                                 (msg_id,))
            return self._db.execute("DELETE FROM messages WHERE msg_id = ?",
                                    (msg_id,)).rowcount == 1

    def get(self, msg_id: str) -> Message | None:
        row = self._read("SELECT conversation, msg_id, sender, text, at, outgoing, state, action"
                         " FROM messages WHERE msg_id = ?", (msg_id,))
        return _message(row[0]) if row else None

    def recent(self, conversation: str, limit: int = 100) -> list[Message]:
        """The last ``limit`` messages of a conversation, oldest first (by ``at``, then
        insertion)."""
        rows = self._read("SELECT conversation, msg_id, sender, text, at, outgoing, state, action"
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

    def outbox(self) -> list[OutboxRow]:
        """Every message not yet acknowledged, in the order they were queued."""
        rows = self._read("SELECT msg_id, kind, destination, payload, at FROM outbox"
                          " ORDER BY id")
        return [OutboxRow(m, k, d, json.loads(p), at) for m, k, d, p, at in rows]

    def unconfirmed(self) -> list[Message]:
        """OutboxRow messages still pending that left the outbox: handed to someone who keeps
        them (an offline nick's mailbox) and waiting for the recipient's receipt."""
        rows = self._read("SELECT conversation, msg_id, sender, text, at, outgoing, state, action"
                          " FROM messages WHERE outgoing = 1 AND state = 'pending' AND msg_id"
                          " NOT IN (SELECT msg_id FROM outbox) ORDER BY id")
        return [_message(row) for row in rows]

    def ack(self, msg_id: str, *, delivered: bool = False) -> bool:
        """Drop an acknowledged message from the outbox, and with ``delivered`` mark its
        history row delivered in the same commit. Returns: whether it was queued."""
        with self._write():
            if delivered:
                self._db.execute("UPDATE messages SET state = 'delivered' WHERE msg_id = ?",
                                 (msg_id,))
            return self._db.execute("DELETE FROM outbox WHERE msg_id = ?",
                                    (msg_id,)).rowcount == 1

    # -- joined channels ---------------------------------------------------------------

    def joined(self) -> list[str]:
        """The channels to rejoin, in the order they were joined."""
        return [row[0] for row in self._read("SELECT channel FROM joined ORDER BY at, rowid")]

    def channel_keys(self) -> dict[str, str]:
        """The key (+k) each channel to rejoin was joined with, or learnt since, by name."""
        return {row[0]: row[1] for row in
                self._read("SELECT channel, key FROM joined WHERE key IS NOT NULL")}

    def set_joined(self, channel: str, joined: bool, at: float | None = None,
                   key: str | None = None) -> None:
        """Remember (or forget) a channel to rejoin; ``key``: the key it was joined with
        (kept, with the channel, until it is left; a join without one keeps none)."""
        with self._write():
            if joined:
                self._db.execute("INSERT INTO joined (channel, at, key) VALUES (?, ?, ?)"
                                 " ON CONFLICT (channel) DO UPDATE SET key = excluded.key",
                                 (channel, time.time() if at is None else at, key))
            else:
                self._db.execute("DELETE FROM joined WHERE channel = ?", (channel,))

    def set_channel_key(self, channel: str, key: str | None) -> bool:
        """The key of a channel still to rejoin changed (an operator's +k or -k); whether
        the channel is one."""
        with self._write():
            return self._db.execute("UPDATE joined SET key = ? WHERE channel = ?",
                                    (key, channel)).rowcount == 1

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
                        at: float, outgoing: bool, state: str, action: bool = False) -> bool:
        _check_state(state)
        conversation, sender, text = _clean(conversation), _clean(sender), _clean(text)
        self._db.execute("INSERT INTO conversations (name, last_at) VALUES (?, ?)"
                         " ON CONFLICT (name) DO UPDATE"
                         " SET last_at = max(last_at, excluded.last_at)", (conversation, at))
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO messages"
            " (msg_id, conversation, sender, text, at, outgoing, state, action)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (msg_id, conversation, sender, text, at, int(outgoing), state, int(action)))
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
        with errors(self.path), transaction(self._db):
            yield

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        self._open_db()
        with errors(self.path):
            return self._db.execute(sql, args).fetchall()

    def _open_db(self) -> None:
        if self._lock_fd is None:
            raise StoreError(f"{self.path}: the store is closed", self.path, "closed")


def _message(row: tuple) -> Message:
    conversation, msg_id, sender, text, at, outgoing, state, action = row
    return Message(conversation, msg_id, sender, text, at, bool(outgoing), state, bool(action))


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
