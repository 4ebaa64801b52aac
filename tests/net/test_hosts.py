"""Hosts in network namespaces: the harness itself, then chordchat nodes on six hosts.

Needs root (skips otherwise). Each node runs as its own process inside its own host and
listens on that host's address, so every ring and chat message crosses the bridge.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.support import hosts
from tests.support.hosts import (
    PORT,
    join_all,
    start_ring_on,
    wait_one_ring,
)
from tests.support.procs import Cluster, Proc, kind

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ECHO = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
server = socket.socket(family)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen()
while True:
    conn, _ = server.accept()
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data)
"""


# -- the harness ---------------------------------------------------------------------------------

class TestNetwork:
    def test_network__two_hosts_reach_each_other_over_tcp_and_nowhere_else(self, network):
        a, b = network.add_hosts(2)
        assert (a.ipv4, b.ipv4) == ("198.18.0.1", "198.18.0.2")
        # a real process inside b (run), and an in-process server inside a (echo)
        b.run([sys.executable, "-c", ECHO, b.ipv4, "7000"])
        port = network.echo(a)
        a.wait_reachable(b.ipv4, 7000)
        b.wait_reachable(a.ipv4, port)
        a.wait_reachable(a.ipv4, port)  # a host reaches itself (its loopback is up)
        if network.ipv6:
            port6 = network.echo(b, b.ipv6)
            a.wait_reachable(b.ipv6, port6)
        # no route out: an address off the bridge's subnet fails at once, sending nothing
        with pytest.raises(OSError) as failed:
            a.connect("192.0.2.1", 80, timeout=2)
        assert failed.value.errno == 101  # ENETUNREACH
        routes = hosts.ip("-n", a.netns, "route").stdout
        assert "default" not in routes and "198.18.0.0/15" in routes

    def test_network__detached_host_is_unreachable_until_attached(self, network):
        a, b, c = network.add_hosts(3)
        ports = {h.name: network.echo(h) for h in (a, b, c)}
        a.wait_reachable(b.ipv4, ports["h2"])
        network.detach(b)
        assert not network.attached(b)
        assert not a.tcp_ping(b.ipv4, ports["h2"], timeout=1)
        assert not b.tcp_ping(a.ipv4, ports["h1"], timeout=1)
        a.wait_reachable(c.ipv4, ports["h3"])  # the rest of the network is untouched
        network.attach(b)
        assert network.attached(b)
        a.wait_reachable(b.ipv4, ports["h2"])
        b.wait_reachable(c.ipv4, ports["h3"])

    def test_network__partition_makes_islands_that_each_talk_among_themselves(self, network):
        a, b, c, d = network.add_hosts(4)
        ports = {h.name: network.echo(h) for h in (a, b, c, d)}
        network.partition([a, b], [c, d])
        a.wait_reachable(b.ipv4, ports["h2"])
        c.wait_reachable(d.ipv4, ports["h4"])
        assert not a.tcp_ping(c.ipv4, ports["h3"], timeout=1)
        assert not d.tcp_ping(b.ipv4, ports["h2"], timeout=1)
        network.heal()
        a.wait_reachable(c.ipv4, ports["h3"])
        d.wait_reachable(b.ipv4, ports["h2"])

    def test_network__close_removes_every_namespace_and_leftovers_of_killed_runs(self):
        if hosts.unavailable():
            pytest.skip(hosts.unavailable())
        net = hosts.Network()
        host = net.add_host()
        host.run(["sleep", "600"])
        made = [n for n in hosts.namespaces() if n.startswith(net.prefix)]
        assert sorted(made) == [f"{net.prefix}-h1", f"{net.prefix}-sw"]
        net.close()
        assert not [n for n in hosts.namespaces() if n.startswith(net.prefix)]
        # a run killed before its clean-up: namespaces named for a pid that is gone, with a
        # process still inside one. The pid is above pid_max, so no process can have it
        # (a pid of a process that just ended may be reused at once on a busy machine).
        with open("/proc/sys/kernel/pid_max") as f:
            gone = int(f.read()) + 1 + os.getpid() % 1000   # other sessions pick others
        leftover = f"{hosts.BASE}-{gone}-1-h1"
        hosts.ip("netns", "add", leftover)
        stray = None
        try:
            stray = subprocess.Popen(["ip", "netns", "exec", leftover, "sleep", "600"])
            # wait until the stray is inside: a process still on its way in would escape
            # the clean-up (nothing to kill yet) and then fail to enter a deleted namespace
            _wait(lambda: stray.pid in hosts.pids_in(leftover), "the stray in its namespace")
            hosts.remove_leftovers()   # (another session's clean-up may remove it first)
            assert leftover not in hosts.namespaces()
            assert stray.wait(20) == -9
        finally:
            hosts.ip("netns", "del", leftover, check=False)
            if stray is not None and stray.poll() is None:
                stray.kill()


class TestProxy:
    def test_proxy__forwards_with_delay_and_freezes_until_thawed(self, network):
        a, b = network.add_hosts(2)
        port = network.echo(b)
        proxy = network.proxy(a, (b.ipv4, port), delay=0.2)
        host, _, proxy_port = proxy.address.rpartition(":")
        with a.connect(host, int(proxy_port), timeout=10) as conn:
            started = time.monotonic()
            conn.sendall(b"one\n")
            assert conn.recv(64) == b"one\n"
            assert time.monotonic() - started >= 0.4  # 0.2 s each way: a lower bound only
            proxy.delay = 0.0
            proxy.freeze()
            conn.sendall(b"two\n")
            conn.settimeout(0.5)
            with pytest.raises(TimeoutError):
                conn.recv(64)  # held while frozen; the connection stays open
            proxy.thaw()
            conn.settimeout(10)
            assert conn.recv(64) == b"two\n"
            assert proxy.connections == 1

    def test_proxy__drops_refuses_and_resets(self, network):
        a, b = network.add_hosts(2)
        port = network.echo(b)
        proxy = network.proxy(a, (b.ipv4, port))
        host, _, proxy_port = proxy.address.rpartition(":")
        with a.connect(host, int(proxy_port), timeout=10) as conn:
            conn.sendall(b"hi\n")
            assert conn.recv(64) == b"hi\n"
            assert proxy.drop() == 1
            assert _closed(conn)
        proxy.refuse = True
        assert _connect_and_closed(a, host, int(proxy_port))
        proxy.refuse, proxy.reset_rate = False, 1.0  # every chunk is lost with its link
        with a.connect(host, int(proxy_port), timeout=10) as conn:
            conn.sendall(b"lost\n")
            assert _closed(conn)
        assert proxy.resets == 1
        proxy.reset_rate = 0.0
        with a.connect(host, int(proxy_port), timeout=10) as conn:  # healthy again
            conn.sendall(b"back\n")
            assert conn.recv(64) == b"back\n"

    def test_proxy__keeps_the_byte_order_under_jitter_over_ipv6(self, network):
        a, b = network.add_hosts(2)
        if not network.ipv6:
            pytest.skip("this kernel does not take IPv6 addresses in a namespace")
        port = network.echo(b, b.ipv6)
        proxy = network.proxy(a, (b.ipv6, port), address=a.ipv6, delay=0.02, jitter=0.05)
        assert proxy.address == f"[{a.ipv6}]:{proxy.port}"
        sent = b"".join(b"%d," % i for i in range(200))
        with b.connect(a.ipv6, proxy.port, timeout=10) as conn:
            for i in range(200):
                conn.sendall(b"%d," % i)
            got = b""
            while len(got) < len(sent):
                chunk = conn.recv(4096)
                assert chunk, "closed early"
                got += chunk
        assert got == sent

    def test_proxy__follows_its_host_when_detached(self, network):
        a, b, c = network.add_hosts(3)
        port = network.echo(c)
        proxy = network.proxy(b, (c.ipv4, port), connect_timeout=1.0)
        host, _, proxy_port = proxy.address.rpartition(":")
        a.wait_reachable(host, int(proxy_port))
        network.detach(c)  # the proxy's upstream is gone: the client's link is reset
        assert not a.tcp_ping(host, int(proxy_port), timeout=10)


def _connect_and_closed(host: hosts.Host, address: str, port: int) -> bool:
    """True if a new connection is closed or reset by the peer, even before ``connect``
    returns (on a loaded machine the reset can arrive before this thread runs again)."""
    try:
        conn = host.connect(address, port, timeout=10)
    except ConnectionResetError:
        return True
    with conn:
        return _closed(conn)


def _wait(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.02)


def _closed(conn: socket.socket) -> bool:
    """True if the peer closed or reset the connection (within 10 s)."""
    conn.settimeout(10)
    try:
        return conn.recv(64) == b""
    except ConnectionResetError:
        return True


# -- chordchat on six hosts ----------------------------------------------------------------------

def chat_across_hosts(procs: list[Proc]) -> None:
    """Every node messages every other privately; four members share a channel that a
    non-member sends to; each message is shown once, to the right nodes only."""
    for sender in procs:
        for receiver in procs:
            if receiver is not sender:
                sender.send(f"msg {receiver.nick} from {sender.nick} to {receiver.nick}")
    for receiver in procs:
        for sender in procs:
            if sender is not receiver:
                text = f"from {sender.nick} to {receiver.nick}"
                got = receiver.wait_for(kind("private", text=text, outgoing=False),
                                        what=f"private {text!r}")
                assert got["from"] == sender.nick
        assert len(receiver.matching(kind("private", outgoing=False))) == len(procs) - 1
    members, outsider = procs[1:5], procs[0]
    join_all(members, "across")
    for p in members:
        p.send(f"send across hello from {p.nick}")
    outsider.send("send #across from outside")
    outsider.wait_for(kind("sent", channel="across"), what="ack of the outsider's send")
    texts = [f"hello from {p.nick}" for p in members] + ["from outside"]
    for p in members:
        for text in texts:
            p.wait_for(kind("channel", channel="across", text=text), what=f"{text!r}")
    orders = set()
    for p in members:
        seen = p.matching(kind("channel", channel="across"))
        assert sorted(e["text"] for e in seen) == sorted(texts)  # each exactly once
        orders.add(tuple(e["msg_id"] for e in seen))
    assert len(orders) == 1  # one order at every member
    assert not procs[5].matching(kind("channel"))


def test_ring__six_hosts_form_one_ring_and_chat_across_hosts(network, tmp_path):
    six = network.add_hosts(6)
    with Cluster(tmp_path) as cluster:
        procs = start_ring_on(cluster, six)
        assert [p.address for p in procs] == [h.address(PORT) for h in six]
        wait_one_ring(procs)
        chat_across_hosts(procs)
        for p in procs:
            assert p.stop() == 0


def test_ring__six_hosts_on_ipv6_addresses(network, tmp_path):
    six = network.add_hosts(6)
    if not network.ipv6:
        pytest.skip("this kernel does not take IPv6 addresses in a namespace")
    with Cluster(tmp_path) as cluster:
        procs = start_ring_on(cluster, six, ipv6=True)
        assert [p.address for p in procs] == [h.address(PORT, ipv6=True) for h in six]
        wait_one_ring(procs)
        chat_across_hosts(procs)
        for p in procs:
            assert p.stop() == 0


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "[::]"])
def test_ring__six_hosts_on_wildcard_listens_with_advertise(network, tmp_path, wildcard):
    six = network.add_hosts(6)
    ipv6 = wildcard.startswith("[")
    if ipv6 and not network.ipv6:
        pytest.skip("this kernel does not take IPv6 addresses in a namespace")
    with Cluster(tmp_path) as cluster:
        procs = start_ring_on(cluster, six, ipv6, wildcard=wildcard)
        # every host listens on the same wildcard address and port, each under its own name
        assert [p.address for p in procs] == [h.address(PORT, ipv6) for h in six]
        assert len({p.id for p in procs}) == 6
        wait_one_ring(procs)
        chat_across_hosts(procs)
        for p in procs:
            assert p.stop() == 0


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "[::]"])
def test_ring__wildcard_listen_without_advertise_learns_its_address_or_refuses_clearly(
        network, tmp_path, wildcard):
    a, b, c = network.add_hosts(3)
    ipv6 = wildcard.startswith("[")
    if ipv6 and not network.ipv6:
        pytest.skip("this kernel does not take IPv6 addresses in a namespace")
    with Cluster(tmp_path) as cluster:
        # a first node has nobody to learn its address from (no bootstrap, no known peer):
        # refused, naming --advertise
        lone = cluster.start("lone", listen=f"{wildcard}:{PORT}", wrapper=a.wrapper,
                             wait_ready=False)
        assert lone.wait_exit() == 2
        said = [e["message"] for e in lone.matching(kind("error"))]
        assert any("--advertise" in m and "wildcard" in m for m in said), said
        alice = cluster.start("alice", listen=f"{wildcard}:{PORT}", wrapper=a.wrapper,
                              args=("--advertise", a.address(PORT, ipv6)))
        # the others learn theirs from the bootstrap (the address it sees them call from)
        bob = cluster.start("bob", bootstrap=alice, wrapper=b.wrapper,
                            listen=f"{wildcard}:{PORT}")
        carol = cluster.start("carol", bootstrap=bob, wrapper=c.wrapper,
                              listen=f"{wildcard}:{PORT}")
        assert bob.address == b.address(PORT, ipv6)
        assert carol.address == c.address(PORT, ipv6)
        bob.send("msg alice across")
        alice.wait_for(kind("private", text="across"), what="bob's message")
        carol.send("msg bob and back")
        bob.wait_for(kind("private", text="and back"), what="carol's message")
