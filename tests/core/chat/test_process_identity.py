"""Real processes: the identity key's start-up errors (exit 2, naming the file), one process
per nick and data directory, a forger on a plain TCP connection, and a key change warned
about, shown by whois and accepted by trust, all through the headless JSON."""

from __future__ import annotations

import asyncio
import os
import re
import time

import pytest

from core.chat.model.identity import Identity
from core.chat.model.sealed import seal
from core.chat.users import keyfile
from core.chat.users.keyfile import KEY_FILE
from core.chat.wire import verbs as p
from core.chord import Address, Remote, TcpTransport
from tests.support.procs import Cluster, kind


@pytest.fixture
def cluster(tmp_path):
    with Cluster(tmp_path) as c:
        yield c


pytestmark = pytest.mark.slow


def test_startup__a_malformed_key_file_is_exit_2_naming_the_file(cluster, tmp_path):
    folder = tmp_path / "data" / "users" / "ann"
    folder.mkdir(parents=True)
    key = folder / KEY_FILE
    key.write_text("not a key\n")
    key.chmod(0o600)
    ann = cluster.start("ann", args=("--data-dir", str(tmp_path / "data")), wait_ready=False)
    assert ann.wait_exit(30) == 2
    error = ann.wait_for(kind("error"), timeout=5)
    assert str(key) in error["message"] and "not a chordchat identity key" in error["message"]
    assert key.read_text() == "not a key\n"                  # never overwritten


def test_startup__a_second_process_for_one_nick_and_data_dir_is_refused(cluster, tmp_path):
    data = str(tmp_path / "shared")
    first = cluster.start("ann", args=("--data-dir", data))
    second = cluster.start("ann", bootstrap=first, args=("--data-dir", data), wait_ready=False)
    assert second.wait_exit(30) == 2
    assert "already running" in second.wait_for(kind("error"), timeout=5)["message"]
    key = os.path.join(data, "users", "ann", KEY_FILE)
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"
    assert first.alive
    assert first.stop() == 0


def test_forger__a_private_message_as_alice_over_tcp_is_not_shown(cluster):
    alice = cluster.start("alice")
    bob = cluster.start("bob", bootstrap=alice)

    async def forge() -> object:
        fake = seal(Identity.generate("alice"), _key_of(bob), "it is me", "f" * 32, to="bob")
        transport = TcpTransport(timeout=5.0)
        try:
            return await Remote(Address.parse(bob.address), transport).user_command(
                p.PRIVATE.type, {"msg_id": "f" * 32, "to": "bob", "to_id": bob.id,
                                 "sealed": fake})
        finally:
            await transport.close()

    bob.send("whois bob")
    bob.wait_for(kind("whois", nick="bob"))
    reply = asyncio.run(forge())
    assert isinstance(reply, dict) and reply["ok"] is False
    alice.send("msg bob the real alice")
    got = bob.wait_for(kind("private", text="the real alice"))
    assert got["from"] == "alice" and got["verified"] is True
    assert not bob.matching(kind("private", text="it is me"))


def _until_successor(proc, successor, timeout: float = 30.0) -> None:
    """Ask ``proc`` for its status until it names ``successor`` (then it replicates to it)."""
    deadline = time.monotonic() + timeout
    while True:
        since = proc.mark()
        proc.send("status")
        info = proc.wait_for(kind("info"), since=since)
        if f"successor {successor.address}" in info["text"]:
            return
        assert time.monotonic() < deadline, f"{proc.nick}: successor never {successor}"


def _until_holding_names(proc, count: int, timeout: float = 30.0) -> None:
    """Ask ``proc`` for its status until it holds ``count`` name records, maintained or as
    replicas (then a crash of the node before it loses none of them)."""
    deadline = time.monotonic() + timeout
    while True:
        since = proc.mark()
        proc.send("status")
        text = proc.wait_for(kind("info"), since=since)["text"]
        held = re.search(r"and (\d+) names?, keeps replicas of \d+ channels? and (\d+) names?",
                         text)
        if held and int(held[1]) + int(held[2]) >= count:
            return
        assert time.monotonic() < deadline, f"{proc.nick}: never held {count} names: {text}"


def _key_of(proc) -> str:
    """The public key behind the fingerprint a process printed (read from its key file)."""
    args = proc.args
    folder = os.path.join(args[args.index("--data-dir") + 1], "users", proc.nick.lower())
    return keyfile.load(os.path.join(folder, KEY_FILE)).key


def test_keys__a_changed_key_is_warned_then_whois_and_trust(cluster):
    alice = cluster.start("alice")
    bob = cluster.start("bob", bootstrap=alice)
    alice.send("msg bob first")
    assert bob.wait_for(kind("private", text="first"))["verified"] is True
    old = alice.wait_for(kind("ready"))["fingerprint"]
    _until_successor(alice, bob)
    _until_holding_names(bob, 2)   # else bob's name record may be on alice alone (no replica)
    alice.kill()                                   # alice comes back with a new key
    again = cluster.start("alice", bootstrap=bob, timeout=60)
    new = again.wait_for(kind("ready"))["fingerprint"]
    assert new != old
    again.send("msg bob new laptop")
    again.wait_for(kind("private", text="new laptop", outgoing=True))
    changed = bob.wait_for(kind("key_changed"), timeout=30)
    assert (changed["nick"], changed["old"], changed["new"]) == ("alice", old, new)
    assert bob.wait_for(kind("private", text="new laptop"))["verified"] is False
    bob.send("whois alice")
    whois = bob.wait_for(kind("whois", nick="alice"))
    assert (whois["fingerprint"], whois["pin"], whois["id"]) == (new, "changed", again.id)
    assert whois["address"] == again.address
    bob.send("trust alice")
    bob.wait_for(kind("info", text=f"trusted alice's key {new}"))
    again.send("msg bob trusted")
    assert bob.wait_for(kind("private", text="trusted"))["verified"] is True
