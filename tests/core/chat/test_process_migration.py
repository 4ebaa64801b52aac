"""Real processes: the exit sequence through stdin, nick races and start-up errors and their
exit codes (migration itself is tested on the simulator: ring/test_migration.py)."""

from __future__ import annotations

import socket

import pytest

from core.chat.model.ids import channel_key
from core.chord import Address, hash_string, in_half_open
from tests.support.ports import port_with_id_in
from tests.support.procs import Cluster, kind


@pytest.fixture
def cluster(tmp_path):
    with Cluster(tmp_path) as c:
        yield c


def owner_of(procs, key: int):
    ordered = sorted((p for p in procs if p.alive), key=lambda p: int(p.id, 16))
    return next((p for p in ordered if int(p.id, 16) >= key), ordered[0])


def everyone_gets(members, text, since=None):
    for p in members:
        p.wait_for(kind("channel", text=text), since=(since or {}).get(p.nick, 0),
                   what=f"{text!r} at {p.nick}")


@pytest.mark.slow
def test_exit__maintainer_hands_channels_and_names_to_successor(cluster):
    procs = cluster.start_ring(["alice", "bob", "carol", "dave", "erin"])
    key = channel_key("lobby")
    m = owner_of(procs, key)
    others = [p for p in procs if p is not m]
    members = [m, *others[:3]]
    for p in members:
        p.send("join lobby")
        p.wait_for(kind("joined", channel="lobby"))
    m.send("exit")
    assert m.wait_exit() == 0
    steps = [(x["step"], x["kind"], x["key"]) for x in m.matching(kind("migration"))]
    assert ("leave", "channel", "lobby") in steps
    assert ("unname", "name", m.nick) in steps
    assert ("send", "channel", "lobby") in steps and ("delete", "channel", "lobby") in steps
    assert steps[-1][0] == "leave-ring" and m.events[-1]["event"] == "bye"
    successor = owner_of(others, key)
    successor.wait_for(kind("migration", step="receive", kind="channel", key="lobby"))
    stay = members[1:]
    for p in stay:
        p.wait_for(kind("member_left", channel="lobby", nick=m.nick, reason="exit"))
    marks = {p.nick: p.mark() for p in stay}
    stay[0].send("send lobby still here")
    everyone_gets(stay, "still here", marks)
    mark = others[-1].mark()
    others[-1].send(f"msg {m.nick} are you gone")
    failed = others[-1].wait_for(kind("failed"), since=mark)   # said once: no error after
    assert f"unknown nick '{m.nick}'" in failed["reason"]
    for p in others:
        assert p.stop() == 0



@pytest.mark.slow
def test_nick__two_nodes_claiming_one_nick_at_once_exactly_one_wins(cluster):
    a, b, c = cluster.start_ring(["alice", "bob", "carol"])
    x = cluster.start("zed", bootstrap=a, wait_ready=False)
    y = cluster.start("zed", bootstrap=c, wait_ready=False)
    codes = {}
    for p in (x, y):
        p.wait_for(lambda ev: ev["event"] in ("ready", "error"), what="ready or error")
    winners = [p for p in (x, y) if p.matching(kind("ready"))]
    losers = [p for p in (x, y) if not p.matching(kind("ready"))]
    assert len(winners) == 1 and len(losers) == 1
    err = losers[0].wait_for(kind("error"))
    assert "already taken" in err["message"] and "zed" in err["message"]
    codes["loser"] = losers[0].wait_exit()
    assert codes["loser"] == 2
    a.send("msg zed hi zed")
    winners[0].wait_for(kind("private", text="hi zed"))
    for p in (a, b, c, winners[0]):
        assert p.stop() == 0


@pytest.mark.slow
def test_startup__bad_addresses_busy_port_and_dead_bootstrap_exit_2(cluster, tmp_path):
    bad = cluster.start("alice", listen="127.0.0.1:notaport", wait_ready=False)
    assert bad.wait_exit() == 2 and "--listen" in bad.stderr()
    bad = cluster.start("alice", bootstrap="nohost", wait_ready=False)
    assert bad.wait_exit() == 2 and "--bootstrap" in bad.stderr()
    bad = cluster.start("9lives", wait_ready=False)
    assert bad.wait_exit() == 2 and "invalid nick" in bad.stderr()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        p = cluster.start("alice", listen=f"127.0.0.1:{port}", wait_ready=False)
        err = p.wait_for(kind("error"))
        assert f"127.0.0.1:{port}" in err["message"] and "in use" in err["message"]
        assert p.wait_exit() == 2
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{closed.getsockname()[1]}"
    p = cluster.start("alice", bootstrap=dead, wait_ready=False)
    err = p.wait_for(kind("error"))
    assert dead in err["message"]
    assert p.wait_exit() == 2


def test_ids__a_port_picked_by_id_lands_in_the_asked_range():
    lo, hi = hash_string("a"), hash_string("b")
    port = port_with_id_in(lo, hi)
    assert in_half_open(Address("127.0.0.1", port).id, lo, hi)
