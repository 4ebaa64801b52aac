"""Non-transitive connectivity between real hosts: five chordchat processes in network
namespaces, two of them cut from each other by nftables rules in their own namespaces
(``Network.cut``), every other pair fine. Every node joins (no traceback, no give-up),
private messages between the two arrive both ways (through a common neighbour:
core/chord/detour.py), and in one channel of all five every message reaches every member
once, whichever node maintains it. Once with the cut made before the nodes start, once
made while they chat.

The node ids are the hashes of the hosts' fixed addresses: hosts 3 and 4 (carol, dave) are
neighbours on the ring, so carol cannot reach its own successor; hosts 1 and 3 (alice,
carol) are not."""

from __future__ import annotations

import time

import pytest

from tests.support.hosts import NICKS, PORT, RING_ARGS, join_all
from tests.support.procs import Cluster, kind

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

DEADLINE = 60.0


def start(cluster, hosts, cut=()):
    """A node per host, each through the one before (or the one before that, if cut)."""
    procs = []
    for i, host in enumerate(hosts):
        bootstrap = None
        if i:
            bootstrap = procs[i - 2] if {i - 1, i} == set(cut) else procs[i - 1]
        procs.append(cluster.start(NICKS[i], bootstrap=bootstrap, wrapper=host.wrapper,
                                   listen=host.address(PORT), fast=False, args=RING_ARGS,
                                   timeout=60))
    return procs


def shown(proc, channel="room") -> list[str]:
    return [e["msg_id"] for e in proc.matching(kind("channel", channel=channel))]


def check_chat(procs, a, c, tag: str) -> int:
    """Private messages a -> c and c -> a, and a message from every node to #room: each
    acknowledged and shown where it should be, once. Returns the room messages checked."""
    a.send(f"msg {c.nick} {tag}-to-{c.nick}")
    c.send(f"msg {a.nick} {tag}-to-{a.nick}")
    for p in procs:
        p.send(f"send room {tag} {p.nick}")
    for sender, to in ((a, c), (c, a)):
        text = f"{tag}-to-{to.nick}"
        to.wait_for(lambda e, t=text: (e.get("event") == "private" and e.get("text") == t
                                       and not e.get("outgoing")),
                    timeout=DEADLINE, what=f"the private message from {sender.nick}")
        sender.wait_for(kind("delivered", conversation=to.nick), timeout=DEADLINE,
                        what=f"the private message to {to.nick} acknowledged as delivered")
    for p in procs:
        p.wait_for(kind("sent", channel="room", text=f"{tag} {p.nick}"), timeout=DEADLINE,
                   what=f"{p.nick}'s #room message acknowledged")
    acked = {e["msg_id"] for p in procs for e in p.matching(kind("sent", channel="room"))}
    deadline = time.monotonic() + DEADLINE
    for p in procs:
        while not acked <= set(shown(p)):
            assert time.monotonic() < deadline, (
                f"{p.nick} misses {len(acked - set(shown(p)))} acknowledged messages")
            time.sleep(0.2)   # polling the process's output until the deadline
    for p in procs:
        ids = shown(p)
        assert len(ids) == len(set(ids)), f"{p.nick} was shown a message twice"
        private = [e["msg_id"] for e in p.events
                   if e.get("event") == "private" and not e.get("outgoing")]
        assert len(private) == len(set(private)), f"{p.nick} was shown a private message twice"
    return len(acked)


def no_tracebacks(procs) -> None:
    for p in procs:
        assert p.alive, f"{p.nick} exited"
        err = p.stderr_path.read_text()
        assert "Traceback" not in err, f"{p.nick}: {err[-2000:]}"
        assert not p.matching(kind("error")), (p.nick, p.matching(kind("error")))


@pytest.mark.parametrize("cut", [(0, 2), (2, 3)], ids=["apart-on-the-ring", "neighbours"])
def test_nontransitive__two_hosts_cut_from_the_start_still_chat(network, tmp_path, cut):
    hosts = network.add_hosts(5)
    network.cut(hosts[cut[0]], hosts[cut[1]])
    assert not hosts[cut[0]].tcp_ping(hosts[cut[1]].ipv4, network.echo(hosts[cut[1]]), 1.0)
    with Cluster(tmp_path) as cluster:
        procs = start(cluster, hosts, cut)
        join_all(procs, "room")
        a, c = procs[cut[0]], procs[cut[1]]
        check_chat(procs, a, c, "one")
        n = check_chat(procs, c, a, "two")
        no_tracebacks(procs)
        detoured = [p.nick for p in (a, c)]
        print(f"\nnon-transitive ({cut}): all five ready; private messages both ways "
              f"between {detoured}; {n} room messages shown once to all five")
        for p in procs:
            assert p.stop() == 0


def test_nontransitive__a_cut_made_while_the_ring_chats(network, tmp_path):
    hosts = network.add_hosts(5)
    with Cluster(tmp_path) as cluster:
        procs = start(cluster, hosts)
        join_all(procs, "room")
        for p in procs:
            p.send(f"send room before {p.nick}")
        network.cut(hosts[2], hosts[3])   # neighbours on the ring
        a, c = procs[2], procs[3]
        for i in range(5):   # chat on while the ring finds its way around the cut
            for p in procs:
                p.send(f"send room during{i} {p.nick}")
            time.sleep(1.0)   # paces the traffic, not a wait
        n = check_chat(procs, a, c, "after")
        no_tracebacks(procs)
        print(f"\nnon-transitive, cut while chatting: {n} room messages shown once to all "
              "five; private messages both ways between the two cut hosts")
        for p in procs:
            assert p.stop() == 0
