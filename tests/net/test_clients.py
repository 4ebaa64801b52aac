"""Client nodes behind a firewall that drops every connection from outside, in network
namespaces: each client host's own nft rule (``ct state new drop`` on input) lets its node
dial out and nothing in. The clients chat through relays, and move when theirs is killed.

Needs root and nft (skips otherwise, saying which).
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from tests.support import hosts
from tests.support.delivery import acked_all, private_every_pair
from tests.support.hosts import PORT, RING_ARGS, join_all, start_ring_on, wait_one_ring
from tests.support.procs import Cluster, kind

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

FIREWALL = """
table inet nat_test {
    chain input {
        type filter hook input priority 0; policy accept;
        iif lo accept
        ct state established,related accept
        ct state new drop
    }
}
"""


def firewall(host: hosts.Host) -> None:
    """Drop every connection that ``host`` did not open (a NAT's or firewall's inbound)."""
    done = subprocess.run(["ip", "netns", "exec", host.netns, "nft", "-f", "-"],
                          input=FIREWALL, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"nft cannot filter inside a namespace here: {done.stderr.strip()}")


@pytest.fixture
def clients_network(network):
    if shutil.which("nft") is None:
        pytest.skip("the nft tool (nftables) is not installed")
    return network


def relay_of(address: str) -> str:
    relay, slash, _ = address.partition("/")
    assert slash, f"{address} is not a relayed address"
    return relay


def test_clients__behind_firewalls_chat_through_relays_and_survive_a_relay_kill(
        clients_network, tmp_path):
    net = clients_network
    full_hosts, client_hosts = net.add_hosts(3), net.add_hosts(2)
    for h in client_hosts:
        firewall(h)
    # the firewall works: nothing gets in, everything gets out
    port = net.echo(client_hosts[0])
    client_hosts[0].wait_reachable(client_hosts[0].ipv4, port)
    assert not full_hosts[0].tcp_ping(client_hosts[0].ipv4, port, timeout=1)
    with Cluster(tmp_path) as cluster:
        fulls = start_ring_on(cluster, full_hosts)
        wait_one_ring(fulls)
        clients = [cluster.start(nick, bootstrap=fulls[i], wrapper=h.wrapper,
                                 listen=h.address(PORT), fast=False, timeout=60,
                                 args=(*RING_ARGS, "--client"))
                   for i, (nick, h) in enumerate(zip(("xena", "yan"), client_hosts,
                                                     strict=True))]
        for c in clients:
            assert relay_of(c.address) in [f.address for f in fulls]
        everyone = [*fulls, *clients]
        # private messages both ways between every pair
        private_every_pair(everyone, timeout=30)
        # one channel of all; then the relay of the first client is killed while it is busy
        join_all(everyone, "all")
        x = clients[0]
        relay = next(f for f in fulls if f.address == relay_of(x.address))
        senders = [p for p in everyone if p is not relay]
        mark = x.mark()
        for i in range(10):
            for s in senders:
                s.send(f"send all {s.nick}-{i}")
            if i == 3:
                relay.kill()
                killed = time.monotonic()
            time.sleep(0.1)
        moved = x.wait_for(lambda e: e.get("event") == "info"
                           and "reachable at" in e.get("text", ""), since=mark, timeout=10,
                           what="the client moving to another relay")
        assert moved["_t"] - killed < 5.0
        # every line typed is acknowledged, those in flight to a maintainer killed with
        # the relay too (sent again to its successor: not counted at the moment x moved)
        acked = acked_all([(s, f"{s.nick}-{i}") for s in senders for i in range(10)], "all")
        for p in senders:
            for text in acked:
                p.wait_for(kind("channel", channel="all", text=text), timeout=30,
                           what=f"{text} at {p.nick}")
        time.sleep(1.0)
        for p in senders:
            shown = [e["text"] for e in p.matching(kind("channel", channel="all"))]
            assert len(shown) == len(set(shown)), f"{p.nick} showed a message twice"
        # and a private message finds the client at its new relay
        other = next(f for f in fulls if f is not relay)
        other.send("msg xena after-the-kill")
        x.wait_for(kind("private", text="after-the-kill"), timeout=20, what="the message")
