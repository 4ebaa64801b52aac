"""core.store with real SQLite files: history, outbox, channels, pins, peers, search, the
errors a file can give, a second process, kill -9, and the worker-thread wrapper."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import core.store
from core.store import (
    ASYNC_METHODS,
    FILENAME,
    MIGRATIONS,
    PEERS_KEPT,
    AsyncStore,
    InlineStore,
    Message,
    NoStore,
    StoreError,
    UserStore,
    fts5_available,
)

ROOT = Path(__file__).resolve().parents[2]
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SEARCH_PATHS = [pytest.param(True, id="fts5"), pytest.param(False, id="scan")]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / FILENAME


@pytest.fixture
def store(path: Path):
    with UserStore.open(path) as opened:
        yield opened


def raw(path: Path) -> contextlib.closing[sqlite3.Connection]:
    """Another program's connection to the file (autocommit)."""
    return contextlib.closing(sqlite3.connect(path, isolation_level=None))


def run_python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    """A real second process running ``code`` with this checkout's ``core``."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def chat(store: UserStore, conversation: str, n: int, start: float = 0.0) -> list[str]:
    ids = [f"{conversation}-{i}" for i in range(n)]
    for i, msg_id in enumerate(ids):
        store.add_message(conversation, msg_id, "alice", f"line {i}", start + i, False)
    return ids


# -- opening ---------------------------------------------------------------------------

class TestOpen:
    def test_open__new_database_is_wal_full_sync_current_schema(self, path):
        with UserStore.open(path):
            pass
        assert not path.with_name(FILENAME + "-wal").exists()   # checkpointed on close
        with raw(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)

    def test_open__connection_enforces_foreign_keys_and_syncs_every_commit(self, store):
        assert store.connection.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert store.connection.execute("PRAGMA synchronous").fetchone() == (2,)   # FULL

    def test_open__reopen_keeps_everything(self, path):
        with UserStore.open(path) as first:
            chat(first, "#general", 3)
            first.add_outbox("o1", "channel", "general", {"text": "hi"}, 5.0)
            first.set_joined("#general", True)
            first.pin("bob", b"k" * 32)
            first.saw_peer("10.0.0.1:4000", 1.0)
        with UserStore.open(path) as second:
            assert [m.msg_id for m in second.recent("#general")] == ["#general-0", "#general-1",
                                                                    "#general-2"]
            assert [o.msg_id for o in second.outbox()] == ["o1"]
            assert second.joined() == ["#general"]
            assert second.pinned("bob") == b"k" * 32
            assert second.peers() == ["10.0.0.1:4000"]

    def test_open__newer_schema_refused_and_left_untouched(self, path):
        with UserStore.open(path) as store:
            chat(store, "#general", 1)
        with raw(path) as db:
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
        before = path.read_bytes()
        with pytest.raises(StoreError, match="newer") as raised:
            UserStore.open(path)
        assert raised.value.kind == "newer" and str(path) in str(raised.value)
        assert path.read_bytes() == before

    def test_open__migration_hook_runs_each_new_step_once(self, path):
        with UserStore.open(path) as store:
            chat(store, "#general", 2)
        runs = []

        def add_column(db):
            runs.append(1)
            db.execute("ALTER TABLE messages ADD COLUMN seq INTEGER")

        steps = (*MIGRATIONS, add_column)
        for _ in range(2):
            with UserStore.open(path, migrations=steps) as store:
                assert len(store.recent("#general")) == 2
        assert runs == [1]
        with raw(path) as db:
            assert db.execute("PRAGMA user_version").fetchone() == (len(steps),)

    def test_open__failed_migration_rolls_back_its_step(self, path):
        with UserStore.open(path):
            pass

        def half_done(db):
            db.execute("CREATE TABLE half (x)")
            raise RuntimeError("step failed")

        with pytest.raises(RuntimeError):
            UserStore.open(path, migrations=(*MIGRATIONS, half_done))
        with raw(path) as db:
            assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
            assert db.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchall() \
                == []
        UserStore.open(path).close()   # and the lock was released

    def test_close__twice_is_harmless_and_use_after_close_is_an_error(self, path):
        store = UserStore.open(path)
        store.close()
        store.close()
        with pytest.raises(StoreError, match="closed"):
            store.outbox()


# -- bad storage -------------------------------------------------------------------------

class TestBadStorage:
    def test_open__garbage_file_is_set_aside_never_overwritten(self, path):
        garbage = bytes(range(256)) * 64
        path.write_bytes(garbage)
        with UserStore.open(path) as store:
            assert store.set_aside is not None
            assert store.set_aside.name.startswith(FILENAME + ".corrupt-")
            assert store.set_aside.read_bytes() == garbage
            assert str(path) in store.notice and str(store.set_aside) in store.notice
            assert store.add_message("#general", "m1", "alice", "after", 1.0, False)
        with UserStore.open(path) as store:
            assert store.set_aside is None and store.notice is None
            assert [m.text for m in store.recent("#general")] == ["after"]

    def test_open__damaged_pages_are_found_and_set_aside(self, path):
        with UserStore.open(path) as store:
            store.add_messages([Message("#general", f"m{i}", "alice", "x" * 500, i, False,
                                        "delivered") for i in range(200)])
        data = bytearray(path.read_bytes())
        assert len(data) > 16 * 4096
        data[8192:-4096] = b"\xa5" * (len(data) - 8192 - 4096)   # keep the header page
        path.write_bytes(bytes(data))
        with UserStore.open(path) as store:
            assert store.set_aside is not None
            assert store.set_aside.read_bytes() == bytes(data)
            assert store.recent("#general") == []

    def test_open__a_corrupt_databases_wal_goes_aside_with_it(self, path):
        wal = path.with_name(FILENAME + "-wal")
        path.write_bytes(b"not a database" * 100)
        wal.write_bytes(b"stale wal" * 100)
        with UserStore.open(path) as store:
            assert store.set_aside.with_name(store.set_aside.name + "-wal").read_bytes() \
                == b"stale wal" * 100
            assert store.add_message("#general", "m1", "alice", "fresh", 1.0, False)

    def test_open__two_corrupt_files_in_one_second_both_kept(self, path):
        for text in (b"first garbage" * 100, b"second garbage" * 100):
            path.write_bytes(text)
            UserStore.open(path).close()
        kept = sorted(p.read_bytes() for p in path.parent.glob(FILENAME + ".corrupt-*"))
        assert kept == [b"first garbage" * 100, b"second garbage" * 100]

    @pytest.mark.skipif(AS_ROOT, reason="root writes through a read-only mode: chmod proves "
                                        "nothing (the /proc case below covers root)")
    def test_open__unwritable_directory_names_the_file(self, path):
        path.parent.chmod(0o500)
        try:
            with pytest.raises(StoreError) as raised:
                UserStore.open(path)
        finally:
            path.parent.chmod(0o700)
        assert raised.value.kind == "unwritable" and str(path) in str(raised.value)

    @pytest.mark.skipif(AS_ROOT, reason="root writes through a read-only mode: chmod proves "
                                        "nothing")
    def test_open__read_only_database_file_names_the_file(self, path):
        UserStore.open(path).close()
        path.chmod(0o400)
        try:
            with pytest.raises(StoreError) as raised:
                UserStore.open(path)
        finally:
            path.chmod(0o600)
        assert raised.value.kind == "unwritable" and str(path) in str(raised.value)

    @pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
    def test_open__directory_nobody_can_write_even_root_names_the_file(self):
        path = Path("/proc") / FILENAME
        with pytest.raises(StoreError) as raised:
            UserStore.open(path)
        assert raised.value.kind == "unwritable" and str(path) in str(raised.value)

    def test_open__path_under_a_regular_file_names_the_file(self, tmp_path):
        (tmp_path / "plain").write_text("not a directory")
        path = tmp_path / "plain" / FILENAME
        with pytest.raises(StoreError) as raised:
            UserStore.open(path)
        assert raised.value.kind == "unwritable" and str(path) in str(raised.value)

    def test_open__database_locked_by_another_program_names_the_file(self, path):
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("CREATE TABLE theirs (x)")
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreError) as raised:
                UserStore.open(path, busy_timeout=0.05)
        finally:
            other.close()
        assert raised.value.kind == "locked" and str(path) in str(raised.value)
        UserStore.open(path).close()   # free again: nothing was left behind

    def test_write__locked_by_another_program_fails_cleanly_then_works(self, path):
        with UserStore.open(path, busy_timeout=0.05) as store:
            other = sqlite3.connect(path, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                with pytest.raises(StoreError) as raised:
                    store.add_outbox("o1", "channel", "general", {}, 1.0)
                assert raised.value.kind == "locked" and str(path) in str(raised.value)
            finally:
                other.close()
            assert store.outbox() == []
            assert store.add_outbox("o1", "channel", "general", {}, 1.0)


# -- one process at a time ---------------------------------------------------------------

HOLD = """
    import sys
    from core.store import UserStore
    store = UserStore.open(sys.argv[1])
    print("open", flush=True)
    sys.stdin.readline()
    store.close()
"""

TRY_OPEN = """
    import sys
    from core.store import StoreError, UserStore
    try:
        UserStore.open(sys.argv[1]).close()
    except StoreError as exc:
        print(exc.kind, exc, sep="|")
        sys.exit(1)
    print("opened")
"""


class TestOneProcess:
    def test_open__second_process_is_refused_naming_file_and_holder(self, path):
        with UserStore.open(path):
            proc = run_python(TRY_OPEN, str(path))
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        kind, message = out.strip().split("|", 1)
        assert kind == "in_use"
        assert str(path) in message and f"pid {os.getpid()}" in message

    def test_open__refused_while_another_process_holds_it_then_free_after_close(self, path):
        holder = run_python(HOLD, str(path), stdin=subprocess.PIPE)
        try:
            assert holder.stdout.readline().strip() == "open"
            with pytest.raises(StoreError, match=f"pid {holder.pid}") as raised:
                UserStore.open(path)
            assert raised.value.kind == "in_use"
            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.wait(timeout=60) == 0
        finally:
            holder.kill()
        UserStore.open(path).close()

    def test_open__lock_of_a_killed_process_is_free(self, path):
        holder = run_python(HOLD, str(path), stdin=subprocess.PIPE)
        assert holder.stdout.readline().strip() == "open"
        holder.kill()
        holder.wait(timeout=60)
        UserStore.open(path).close()

    def test_open__second_open_in_the_same_process_is_refused(self, path):
        with UserStore.open(path), pytest.raises(StoreError) as raised:
            UserStore.open(path)
        assert raised.value.kind == "in_use"
        UserStore.open(path).close()


# -- durability -----------------------------------------------------------------------------

BURST = """
    import sys
    from core.store import UserStore
    store = UserStore.open(sys.argv[1])
    n = 0
    while True:
        store.add_outbox(f"m{n}", "channel", "general", {"text": "x" * 200, "n": n}, n)
        print(f"m{n}", flush=True)
        n += 1
"""

EXIT_AFTER_ADD = """
    import os, sys
    from core.store import Message, UserStore
    store = UserStore.open(sys.argv[1])
    for n in range(5):
        store.add_outgoing(Message("#general", f"m{n}", "me", f"line {n}", n, True, "pending"),
                           "channel", "general", {"text": f"line {n}"})
    os._exit(0)   # no close, no checkpoint, no atexit
"""


class TestDurability:
    @pytest.mark.timeout(120)
    def test_outbox__every_row_returned_survives_kill_9_mid_burst(self, path):
        proc = run_python(BURST, str(path))
        printed = []
        try:
            while len(printed) < 50:
                line = proc.stdout.readline()
                assert line, proc.stderr.read()
                printed.append(line.strip())
        finally:
            proc.kill()     # SIGKILL, in the middle of the burst
        out, _ = proc.communicate(timeout=60)
        printed += out.split()
        assert proc.returncode == -9
        with UserStore.open(path) as store:
            queued = store.outbox()
        ids = [o.msg_id for o in queued]
        assert ids[:len(printed)] == printed            # all of them, in order
        assert len(ids) <= len(printed) + 1             # at most the one being committed
        assert all(o.payload == {"text": "x" * 200, "n": i} for i, o in enumerate(queued))

    def test_outbox__rows_survive_os_exit_without_close(self, path):
        proc = run_python(EXIT_AFTER_ADD, str(path))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        with UserStore.open(path) as store:
            assert [o.msg_id for o in store.outbox()] == [f"m{n}" for n in range(5)]
            assert [(m.text, m.state) for m in store.recent("#general")] == \
                [(f"line {n}", "pending") for n in range(5)]


# -- history -------------------------------------------------------------------------------

class TestHistory:
    def test_add_message__same_id_twice_is_recorded_once(self, store):
        assert store.add_message("#general", "m1", "alice", "hi", 1.0, False)
        assert not store.add_message("#general", "m1", "alice", "hi again", 2.0, False)
        assert [(m.msg_id, m.text) for m in store.recent("#general")] == [("m1", "hi")]

    def test_add_message__own_echo_keeps_the_outgoing_row(self, store):
        store.add_message("#general", "m1", "me", "hi", 1.0, True, "pending")
        assert not store.add_message("#general", "m1", "me", "hi", 1.5, False)
        assert store.get("m1") == Message("#general", "m1", "me", "hi", 1.0, True, "pending")

    def test_recent__last_messages_oldest_first_by_time_then_insertion(self, store):
        store.add_message("#general", "late", "bob", "c", 3.0, False)
        store.add_message("#general", "early", "bob", "a", 1.0, False)
        store.add_message("#general", "tie-1", "bob", "b1", 2.0, False)
        store.add_message("#general", "tie-2", "bob", "b2", 2.0, False)
        store.add_message("bob", "private", "bob", "p", 2.5, False)
        assert [m.msg_id for m in store.recent("#general")] == ["early", "tie-1", "tie-2", "late"]
        assert [m.msg_id for m in store.recent("#general", 2)] == ["tie-2", "late"]
        assert [m.msg_id for m in store.recent("bob")] == ["private"]
        assert store.recent("nobody") == []

    def test_recent__conversation_names_compare_case_insensitively(self, store):
        store.add_message("Bob", "m1", "bob", "hi", 1.0, False)
        store.add_message("bob", "m2", "bob", "again", 2.0, False)
        assert [m.msg_id for m in store.recent("BOB")] == ["m1", "m2"]
        assert [c.name for c in store.conversations()] == ["Bob"]

    def test_conversations__most_recently_active_first_with_counts(self, store):
        chat(store, "#general", 3, start=0.0)
        chat(store, "alice", 1, start=10.0)
        chat(store, "#rust", 2, start=5.0)
        store.add_message("#general", "old", "carol", "backfill", -5.0, False)
        assert [(c.name, c.last_at, c.messages) for c in store.conversations()] == [
            ("alice", 10.0, 1), ("#rust", 6.0, 2), ("#general", 2.0, 4)]

    def test_set_state__pending_to_delivered_and_never_back(self, store):
        store.add_message("alice", "m1", "me", "hi", 1.0, True, "pending")
        assert not store.set_state("m1", "pending")
        assert store.set_state("m1", "delivered")
        assert not store.set_state("m1", "delivered")
        assert not store.set_state("m1", "pending")
        assert store.get("m1").state == "delivered"
        assert not store.set_state("unknown", "delivered")

    def test_set_state__unknown_state_is_a_programming_error(self, store):
        with pytest.raises(ValueError):
            store.set_state("m1", "lost")
        with pytest.raises(ValueError):
            store.add_message("alice", "m1", "me", "hi", 1.0, True, "sent")
        assert store.conversations() == []

    def test_add_messages__one_batch_counts_only_new_ones(self, store):
        store.add_message("#general", "m1", "bob", "seen", 1.0, False)
        batch = [Message("#general", f"m{i}", "bob", f"t{i}", i, False, "delivered")
                 for i in range(1, 4)]
        assert store.add_messages(batch) == 2
        assert store.add_messages(batch) == 0
        assert len(store.recent("#general")) == 3

    def test_add_each__says_which_of_a_batch_were_new(self, store):
        store.add_message("#general", "m2", "bob", "seen", 1.0, False)
        batch = [Message("#general", f"m{i}", "bob", f"t{i}", i, False, "delivered")
                 for i in range(1, 4)]
        assert store.add_each(batch) == [True, False, True]
        assert store.add_each(batch) == [False, False, False]

    def test_forget__removes_the_line_its_outbox_row_and_its_search_entry(self, store):
        message = Message("nobody", "m1", "me", "lost words", 1.0, True, "pending")
        store.add_outgoing(message, "private", "nobody", {"text": "lost words"})
        assert store.forget("m1")
        assert store.get("m1") is None and store.outbox() == []
        assert store.search("lost") == [] and not store.forget("m1")

    def test_add_outgoing__history_and_outbox_rows_in_one_commit(self, store):
        message = Message("alice", "m1", "me", "hi", 1.0, True, "pending")
        assert store.add_outgoing(message, "private", "alice", {"text": "hi"})
        assert store.get("m1") == message
        assert [(o.msg_id, o.payload) for o in store.outbox()] == [("m1", {"text": "hi"})]
        assert not store.add_outgoing(message, "private", "alice", {"text": "hi"})
        with pytest.raises(TypeError):   # not JSON: neither row is written
            store.add_outgoing(message._replace(msg_id="m2"), "private", "alice", {"x": {1, 2}})
        assert store.get("m2") is None and len(store.outbox()) == 1

    def test_add_message__a_lone_surrogate_from_the_wire_is_stored_replaced(self, store):
        assert store.add_message("bob", "m1", "bob", "bad \ud800 text", 1.0, False)
        assert store.recent("bob")[0].text == "bad ? text"


# -- the outbox -----------------------------------------------------------------------------

class TestOutbox:
    def test_outbox__insertion_order_not_time_and_ack_removes(self, store):
        for msg_id, at in (("c", 3.0), ("a", 1.0), ("b", 2.0)):
            assert store.add_outbox(msg_id, "channel", "general", {"id": msg_id}, at)
        assert [o.msg_id for o in store.outbox()] == ["c", "a", "b"]
        assert store.ack("a")
        assert not store.ack("a")
        store.add_outbox("d", "private", "bob", {}, 0.0)
        assert [o.msg_id for o in store.outbox()] == ["c", "b", "d"]

    def test_ack__delivered_marks_the_history_row_in_the_same_commit(self, store):
        message = Message("#general", "m1", "me", "hi", 1.0, True, "pending")
        store.add_outgoing(message, "channel", "general", {"text": "hi"})
        store.add_outgoing(message._replace(conversation="bob", msg_id="m2"), "private", "bob",
                           {"text": "hi"})
        assert store.ack("m1", delivered=True)
        assert store.ack("m2")      # kept in bob's mailbox: not read by bob yet
        assert (store.get("m1").state, store.get("m2").state) == ("delivered", "pending")
        assert store.outbox() == []

    def test_unconfirmed__pending_lines_out_of_the_outbox(self, store):
        for msg_id in ("m1", "m2", "m3"):
            store.add_outgoing(Message("bob", msg_id, "me", "hi", 1.0, True, "pending"),
                               "private", "bob", {})
        store.ack("m1")                   # in bob's mailbox: waits for bob's receipt
        store.ack("m2", delivered=True)
        assert [m.msg_id for m in store.unconfirmed()] == ["m1"]
        store.set_state("m1", "delivered")
        assert store.unconfirmed() == []

    def test_add_outbox__same_id_again_keeps_the_original(self, store):
        store.add_outbox("m1", "channel", "general", {"text": "first"}, 1.0)
        assert not store.add_outbox("m1", "channel", "general", {"text": "second"}, 2.0)
        assert store.outbox()[0].payload == {"text": "first"}

    def test_add_outbox__payload_that_is_not_json_writes_nothing(self, store):
        with pytest.raises(TypeError):
            store.add_outbox("m1", "channel", "general", {"when": object()}, 1.0)
        assert store.outbox() == []

    def test_outbox__original_ids_and_payloads_after_a_restart(self, path):
        payload = {"text": "héllo", "to": ["bob"], "n": 1, "signed": {"sig": "ab" * 32}}
        with UserStore.open(path) as store:
            store.add_outbox("1f" * 16, "private", "bob", payload, 7.5)
        with UserStore.open(path) as store:
            [row] = store.outbox()
        assert row == ("1f" * 16, "private", "bob", payload, 7.5)


# -- channels, pins, peers -----------------------------------------------------------------

class TestJoined:
    def test_set_joined__join_leave_rejoin_in_join_order(self, store):
        store.set_joined("#rust", True, at=2.0)
        store.set_joined("#general", True, at=1.0)
        store.set_joined("#RUST", True, at=3.0)    # already in: keeps its place
        assert store.joined() == ["#general", "#rust"]
        store.set_joined("#Rust", False)
        assert store.joined() == ["#general"]
        store.set_joined("#general", False)
        store.set_joined("#general", False)
        assert store.joined() == []

    def test_set_joined__a_channels_key_is_kept_with_it_until_it_is_left(self, path):
        with UserStore.open(path, migrations=MIGRATIONS[:2]) as old:   # a file from before
            old.connection.execute("INSERT INTO joined (channel, at) VALUES ('#old', 1)")
            old.connection.commit()
        with UserStore.open(path) as store:          # migrated: the channel stays, no key
            assert store.joined() == ["#old"] and store.channel_keys() == {}
            store.set_joined("#vault", True, key="sesame")
            store.set_joined("#open", True)
        with UserStore.open(path) as store:
            assert store.channel_keys() == {"#vault": "sesame"}
            assert store.set_channel_key("#VAULT", "wine")     # an operator's new key
            assert not store.set_channel_key("#nowhere", "x")  # not a channel to rejoin
            assert store.joined() == ["#old", "#vault", "#open"]
            store.set_joined("#open", True, key="door")         # joined again, with a key
            assert store.channel_keys() == {"#vault": "wine", "#open": "door"}
            store.set_joined("#vault", False)
            store.set_joined("#vault", True)                    # left, joined without one
            assert store.channel_keys() == {"#open": "door"}


class TestPins:
    def test_pin__first_use_wins_and_check_tells(self, store):
        old, new = b"a" * 32, b"b" * 32
        assert store.check("bob", old) == "new"
        assert store.pin("bob", old) == "new"
        assert store.pin("Bob", old) == "same"
        assert store.check("BOB", new) == "changed"
        assert store.pin("bob", new) == "changed"
        assert store.pinned("bob") == old

    def test_trust__replaces_the_pin(self, store):
        store.pin("bob", b"a" * 32)
        store.trust("bob", b"b" * 32)
        assert store.check("bob", b"b" * 32) == "same"
        store.trust("carol", b"c" * 32)
        assert store.pinned("carol") == b"c" * 32
        assert store.pinned("dave") is None

    def test_pin__a_key_is_bytes(self, store):
        with pytest.raises(TypeError):
            store.pin("bob", "ab" * 32)


class TestPeers:
    def test_peers__most_recently_seen_first_and_never_older(self, store):
        store.saw_peer("10.0.0.1:1", 1.0)
        store.saw_peer("10.0.0.2:1", 3.0)
        store.saw_peer("10.0.0.3:1", 2.0)
        store.saw_peer("10.0.0.1:1", 4.0)
        store.saw_peer("10.0.0.2:1", 0.5)   # an older sighting changes nothing
        assert store.peers() == ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]
        assert store.peers(2) == ["10.0.0.1:1", "10.0.0.2:1"]

    def test_saw_peer__keeps_only_the_latest(self, store):
        for n in range(PEERS_KEPT + 5):
            store.saw_peer(f"10.0.{n // 256}.{n % 256}:1", float(n))
        kept = store.peers(PEERS_KEPT + 10)
        assert len(kept) == PEERS_KEPT
        assert kept[0] == f"10.0.0.{PEERS_KEPT + 4}:1" and "10.0.0.4:1" not in kept


# -- search ----------------------------------------------------------------------------------

def searchable(path: Path, fts: bool, texts: list[str]) -> UserStore:
    store = UserStore.open(path, fts=fts)
    store.add_messages([Message("#general" if i % 2 else "bob", f"m{i}", "alice", text,
                                float(i), False, "delivered") for i, text in enumerate(texts)])
    return store


class TestSearch:
    def test_open__searches_with_fts5_when_this_sqlite3_has_it(self, store):
        if not fts5_available():
            pytest.skip("this sqlite3 has no FTS5 trigram tokenizer; the scan is tested")
        assert store.fts

    @pytest.mark.parametrize("fts", SEARCH_PATHS)
    def test_search__every_word_case_insensitive_newest_first(self, path, fts):
        with searchable(path, fts, ["Hello World", "hello there", "world peace",
                                    "say HELLO to the world"]) as store:
            assert store.fts == (fts and fts5_available())
            assert [h.msg_id for h in store.search("hello")] == ["m3", "m1", "m0"]
            assert [h.msg_id for h in store.search("WORLD hello")] == ["m3", "m0"]
            assert [h.msg_id for h in store.search("hello", limit=1)] == ["m3"]
            assert store.search("hello")[0] == ("#general", "m3", "alice",
                                                "say HELLO to the world", 3.0)
            assert store.search("absent") == [] and store.search("   ") == []

    @pytest.mark.parametrize("fts", SEARCH_PATHS)
    def test_search__substrings_and_short_words(self, path, fts):
        with searchable(path, fts, ["chordchat rocks", "a b c", "ok go"]) as store:
            assert [h.msg_id for h in store.search("dcha")] == ["m0"]
            assert [h.msg_id for h in store.search("b")] == ["m1"]
            assert [h.msg_id for h in store.search("go ok")] == ["m2"]
            assert [h.msg_id for h in store.search("o")] == ["m2", "m0"]

    @pytest.mark.parametrize("fts", SEARCH_PATHS)
    @pytest.mark.parametrize("query", ['"', 'say "hi"', "AND", "NEAR(a b)", "a*", "-x", "c:d",
                                       "100%", "_", "x OR y", "(("])
    def test_search__query_syntax_is_plain_text(self, path, fts, query):
        texts = [f"before {query} after", "nothing here at all"]
        with searchable(path, fts, texts) as store:
            assert [h.msg_id for h in store.search(query)] == ["m0"]

    def test_search__messages_added_by_a_scan_only_open_are_indexed_later(self, path):
        if not fts5_available():
            pytest.skip("this sqlite3 has no FTS5 trigram tokenizer")
        with searchable(path, True, ["indexed first"]):
            pass
        with UserStore.open(path, fts=False) as store:
            store.add_message("bob", "late", "bob", "added without index", 5.0, False)
        with UserStore.open(path) as store:
            assert store.fts
            assert [h.msg_id for h in store.search("without index")] == ["late"]
            assert [h.msg_id for h in store.search("first")] == ["m0"]
            store.add_message("bob", "later", "bob", "index again", 6.0, False)
            assert [h.msg_id for h in store.search("index")] == ["later", "late", "m0"]


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
LETTERS = st.sampled_from(list("abcABC xyzÉéßẞİı\"*-:()%_") + ["NEAR", "AND", "OR"])
TEXT = st.lists(LETTERS, max_size=12).map("".join)


def tempstore():
    return tempfile.TemporaryDirectory(prefix="store-")


class TestSearchProperties:
    # Unicode letters whose case SQLite's lower() does not fold, FTS5 syntax, short words:
    # the index only narrows, so both paths must still give the same lines.
    @pytest.mark.skipif(not fts5_available(), reason="this sqlite3 has no FTS5 trigram")
    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(texts=st.lists(TEXT, max_size=8), query=TEXT)
    def test_search__fts5_and_scan_agree(self, texts, query):
        with tempstore() as tmp:
            path = Path(tmp) / FILENAME
            with searchable(path, True, texts) as store:
                indexed = store.search(query, limit=100)
            with UserStore.open(path, fts=False) as store:
                scanned = store.search(query, limit=100)
        assert indexed == scanned

    @settings(max_examples=40, deadline=None)
    @given(texts=st.lists(TEXT, max_size=8), query=TEXT)
    def test_search__scan_finds_lines_holding_every_word(self, texts, query):
        with tempstore() as tmp, searchable(Path(tmp) / FILENAME, False, texts) as store:
            found = {h.msg_id for h in store.search(query, limit=100)}
        words = query.translate(_ASCII_LOWER).split()
        expected = {f"m{i}" for i, text in enumerate(texts)
                    if words and all(w in text.translate(_ASCII_LOWER) for w in words)}
        assert found == expected


# -- everything against a model, across restarts ------------------------------------------

IDS = st.sampled_from([f"id{n}" for n in range(8)])
NICKS = st.sampled_from(["alice", "Alice", "bob", "carol"])
CONVERSATIONS = st.sampled_from(["#general", "#General", "#rust", "bob"])


class StoreMachine(RuleBasedStateMachine):
    """Random operations on one database, reopened now and then, against plain dicts."""

    def __init__(self):
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory(prefix="store-")
        self.path = Path(self.tmp.name) / FILENAME
        self.store = UserStore.open(self.path)
        self.messages: dict[str, Message] = {}        # by msg_id, in insertion order
        self.outbox: dict[str, tuple] = {}
        self.joined: dict[str, str] = {}               # lower -> as first joined
        self.pins: dict[str, bytes] = {}
        self.peers: dict[str, float] = {}
        self.clock = 0.0

    def teardown(self):
        self.store.close()
        self.tmp.cleanup()

    def tick(self) -> float:
        self.clock += 1.0
        return self.clock

    @rule(conversation=CONVERSATIONS, msg_id=IDS, outgoing=st.booleans(),
          text=st.text(max_size=5))
    def add_message(self, conversation, msg_id, outgoing, text):
        at = self.tick()
        state = "pending" if outgoing else "delivered"
        new = self.store.add_message(conversation, msg_id, "me", text, at, outgoing, state)
        assert new == (msg_id not in self.messages)
        self.messages.setdefault(msg_id, Message(conversation, msg_id, "me", text, at,
                                                 outgoing, state))

    @rule(msg_id=IDS)
    def deliver(self, msg_id):
        changed = self.store.set_state(msg_id, "delivered")
        known = self.messages.get(msg_id)
        assert changed == (known is not None and known.state == "pending")
        if known:
            self.messages[msg_id] = known._replace(state="delivered")

    @rule(msg_id=IDS, n=st.integers(0, 3))
    def queue(self, msg_id, n):
        new = self.store.add_outbox(msg_id, "channel", "general", {"n": n}, self.tick())
        assert new == (msg_id not in self.outbox)
        self.outbox.setdefault(msg_id, {"n": n})

    @rule(msg_id=IDS)
    def ack(self, msg_id):
        assert self.store.ack(msg_id) == (self.outbox.pop(msg_id, None) is not None)

    @rule(channel=CONVERSATIONS, joined=st.booleans())
    def set_joined(self, channel, joined):
        self.store.set_joined(channel, joined, at=self.tick())
        if joined:
            self.joined.setdefault(channel.lower(), channel)
        else:
            self.joined.pop(channel.lower(), None)

    @rule(nick=NICKS, key=st.sampled_from([b"k1", b"k2"]), trust=st.booleans())
    def pin(self, nick, key, trust):
        if trust:
            self.store.trust(nick, key)
            self.pins[nick.lower()] = key
        else:
            pinned = self.pins.setdefault(nick.lower(), key)
            assert self.store.pin(nick, key) in (("new", "same") if pinned == key
                                                 else ("changed",))

    @rule(peer=st.sampled_from(["a:1", "b:1", "c:1"]), at=st.floats(0, 10))
    def saw_peer(self, peer, at):
        self.store.saw_peer(peer, at)
        self.peers[peer] = max(at, self.peers.get(peer, at))

    @rule()
    def restart(self):
        self.store.close()
        self.store = UserStore.open(self.path)

    @invariant()
    def same_as_model(self):
        for conversation in ("#general", "#rust", "bob"):
            expected = [m for m in self.messages.values()
                        if m.conversation.lower() == conversation]
            got = self.store.recent(conversation, 100)
            assert [(m.msg_id, m.text, m.state, m.outgoing) for m in got] == \
                [(m.msg_id, m.text, m.state, m.outgoing) for m in expected]
        assert [(o.msg_id, o.payload) for o in self.store.outbox()] == list(self.outbox.items())
        assert self.store.joined() == list(self.joined.values())
        for nick in ("alice", "bob", "carol"):
            assert self.store.pinned(nick) == self.pins.get(nick)
        assert sorted(self.store.peers()) == sorted(self.peers)
        recency = [self.peers[p] for p in self.store.peers()]
        assert recency == sorted(recency, reverse=True)


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)


# -- the thread crossing ---------------------------------------------------------------------

class TestAsyncStore:
    def test_async_store__every_public_method_has_a_twin(self):
        public = {name for name, value in vars(UserStore).items()
                  if callable(value) and not name.startswith("_")} - {"open", "close"}
        assert public == set(ASYNC_METHODS)
        assert all(callable(getattr(AsyncStore, name)) for name in ASYNC_METHODS)

    async def test_async_store__calls_run_in_call_order_on_one_worker(self, path):
        store = await AsyncStore.open(path)
        try:
            # submitted without awaiting, so only the worker's queue keeps them in order
            futures = [store.add_outbox(f"m{n}", "channel", "general", {"n": n}, float(n))
                       for n in range(50)]
            futures.append(store.ack("m0"))
            listed = store.outbox()
            assert all(await asyncio.gather(*futures))
            assert [o.msg_id for o in await listed] == [f"m{n}" for n in range(1, 50)]
            threads = {await store.worker_thread() for _ in range(5)}
            assert len(threads) == 1 and threading.current_thread() not in threads
        finally:
            await store.close()
        UserStore.open(path).close()   # closed: the lock is free

    async def test_async_store__loop_runs_while_the_worker_waits_on_the_disk(self, path):
        store = await AsyncStore.open(path, busy_timeout=60)
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")        # another program holds the write lock
            write = store.add_outbox("m1", "channel", "general", {}, 1.0)
            ticks = 0
            while ticks < 100:                      # the loop is free meanwhile
                await asyncio.sleep(0)
                ticks += 1
            assert not write.done()
            other.execute("COMMIT")
            assert await asyncio.wait_for(write, 60)
        finally:
            other.close()
            await store.close()

    async def test_async_store__errors_arrive_at_the_awaiting_caller(self, path):
        path.write_bytes(b"garbage" * 100)
        store = await AsyncStore.open(path)
        assert store.set_aside is not None and str(store.set_aside) in store.notice
        with pytest.raises(ValueError):
            await store.set_state("m1", "lost")
        assert await store.recent("#general") == []
        await store.close()
        with UserStore.open(path):
            with pytest.raises(StoreError) as raised:
                await AsyncStore.open(path)
        assert raised.value.kind == "in_use"


class TestDoubles:
    async def test_inline_store__runs_each_call_at_once_on_the_callers_thread(self, path):
        store = await InlineStore.open(path)
        try:
            write = store.add_outbox("m1", "channel", "general", {}, 1.0)
            assert write.done() and await write
            failed = store.set_state("m1", "lost")
            assert failed.done()
            with pytest.raises(ValueError):
                await failed
            assert [o.msg_id for o in await store.outbox()] == ["m1"]
        finally:
            await store.close()

    async def test_no_store__keeps_nothing_and_every_message_is_new(self):
        store = NoStore()
        for name in ASYNC_METHODS:
            assert callable(getattr(store, name))
        batch = [Message("#general", "m1", "bob", "hi", 1.0, False, "delivered")] * 2
        assert await store.add_each(batch) == [True, True]
        assert await store.outbox() == [] and await store.joined() == []
        await store.close()


def test_store__every_module_has_a_docstring_and_imports_no_chat_ring_or_ui():
    modules = sorted(Path(core.store.__file__).parent.glob("*.py"))
    assert len(modules) > 1
    for module in modules:
        source = module.read_text()
        assert source.startswith('"""'), module
        for name in ("urwid", "tui", "core.chat", "core.chord"):
            assert f"import {name}" not in source and f"from {name}" not in source, module
