"""Issue 20 over IPv6: users behind stateful IPv6 firewalls chat on their own addresses
(real processes in network namespaces behind real nftables routers, tests/support/routers.py).

The ring is two public members on IPv6 addresses (alice, bob). Behind two FIREWALL homes
(IPv6 without NAT, inbound dropped), fay and gus listen on their own IPv6 addresses: the
dial-backs find them unreachable, so each is a client through an IPv6 relay
(``[relay]:port/<client id>``). Every pair talks privately both ways, all share a channel,
fay gets the message left while she was away once, and fay and gus end on a direct
connection: a stateful firewall lets a simultaneous open through.
"""

from __future__ import annotations

import time

import pytest

from tests.support.delivery import carried_client_keeps_up, hello_everyone, private_every_pair
from tests.support.hosts import PORT, RING_ARGS, start_ring_on, wait_one_ring
from tests.support.procs import Cluster, kind, relay_of, whois_until
from tests.support.routers import FIREWALL, Internet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_nat6__homes_behind_ipv6_firewalls_chat_over_ipv6(network, tmp_path):
    if not network.ipv6:
        pytest.skip("IPv6 is disabled in this kernel: no IPv6 addresses for the hosts")
    internet = Internet(network)
    publics = internet.publics(2)
    homes = {"fay": internet.router(FIREWALL).add_home(),
             "gus": internet.router(FIREWALL).add_home()}
    # unasked, a firewalled home cannot be dialled, not even by the other home
    inside = network.echo(homes["gus"], homes["gus"].ipv6)
    assert not homes["fay"].tcp_ping(homes["gus"].ipv6, inside, timeout=1)
    assert not publics[0].tcp_ping(homes["gus"].ipv6, inside, timeout=1)
    with Cluster(tmp_path) as cluster:
        fulls = start_ring_on(cluster, publics, ipv6=True)
        wait_one_ring(fulls)
        alice, bob = fulls
        allowed = {p.address for p in fulls}
        assert all(a.startswith("[fd00:c0a7::") for a in allowed), allowed

        def start(nick, bootstrap, data_dir=None):
            home = homes[nick]
            proc = cluster.start(nick, bootstrap=bootstrap, wrapper=home.wrapper,
                                 listen=home.address(PORT, ipv6=True), fast=False,
                                 args=RING_ARGS, timeout=60, data_dir=data_dir)
            assert relay_of(proc.address) in allowed, f"{nick} at {proc.address}"
            lines = [e["text"] for e in proc.matching(kind("log"))
                     if "not reachable from outside" in e["text"]]
            assert lines and f"[{home.ipv6}]:{PORT}: dialled back by 0 of 2" in lines[0], lines
            return proc

        fay, gus = start("fay", alice), start("gus", bob)
        everyone = [alice, bob, fay, gus]

        # every pair, both ways
        private_every_pair(everyone, timeout=40)
        assert whois_until(alice, "fay", "direct", timeout=1).startswith("relayed via [")
        assert whois_until(fay, "alice", "direct", timeout=1) == "direct"

        # one channel: every message reaches every member once
        for p in everyone:
            p.send("join #six")
        for p in everyone:
            p.wait_for(kind("joined", channel="six"), timeout=30, what="joined #six")
        hello_everyone(everyone, "six")

        # a PM to the firewalled user while she is offline waits, and arrives once
        assert fay.stop() == 0
        alice.send("msg fay while-you-were-away")
        alice.wait_for(lambda e: e.get("event") == "info" and "waits for it" in e.get("text", ""),
                       timeout=30, what="the message mailed")
        fay = start("fay", bob, data_dir=fay.data_dir)
        fay.wait_for(kind("private", text="while-you-were-away"), timeout=30, what="mail")
        fay.wait_for(kind("joined", channel="six"), timeout=30, what="fay back in #six")
        everyone = [alice, bob, fay, gus]

        # the two firewalled users end on a direct (hole-punched) connection over IPv6
        fay.send("msg gus fay-is-back")
        gus.wait_for(kind("private", text="fay-is-back"), timeout=30, what="fay's PM")
        gus.send("msg fay welcome-back")
        fay.wait_for(kind("private", text="welcome-back"), timeout=30, what="gus's PM")
        assert whois_until(fay, "gus", "direct", timeout=20) == "direct (hole-punched)"
        assert whois_until(gus, "fay", "direct", timeout=20) == "direct (hole-punched)"
        mark = fay.mark()
        gus.send("msg fay over-the-punch")
        fay.wait_for(kind("private", text="over-the-punch"), since=mark, timeout=10,
                     what="a PM over the direct connection")
        gus.send("send six after-the-punch")
        for p in everyone:
            p.wait_for(kind("channel", channel="six", text="after-the-punch"), timeout=30,
                       what=f"the last channel message at {p.nick}")

        # nothing shown twice, anywhere
        time.sleep(1.0)   # lets late duplicates arrive before they are counted
        for p in everyone:
            shown = [e["msg_id"] for e in p.matching(kind("channel", channel="six"))]
            assert len(shown) == len(set(shown)), f"{p.nick} showed a message twice"
            private = [e["msg_id"] for e in p.matching(kind("private"))
                       if not e.get("outgoing")]
            assert len(private) == len(set(private)), f"{p.nick} showed a PM twice"
        assert len(fay.matching(kind("private", text="while-you-were-away"))) == 1


def test_nat6__a_running_client_carried_to_another_network_keeps_its_channels_and_mail(
        network, tmp_path):
    """A laptop moves between networks while its node runs: the harness unplugs gus's home
    from one firewalled LAN and plugs it into another (new IPv6 address, its connections
    dead). What was sent meanwhile reaches it, once, and it goes on chatting."""
    if not network.ipv6:
        pytest.skip("IPv6 is disabled in this kernel: no IPv6 addresses for the hosts")
    internet = Internet(network)
    publics = internet.publics(2)
    first, second = internet.router(FIREWALL), internet.router(FIREWALL)
    home = first.add_home()
    with Cluster(tmp_path) as cluster:
        fulls = start_ring_on(cluster, publics, ipv6=True)
        wait_one_ring(fulls)
        gus = cluster.start("gus", bootstrap=fulls[0], wrapper=home.wrapper, listen=f"[::]:{PORT}",
                            fast=False, args=RING_ARGS, timeout=60)
        assert relay_of(gus.address) in {p.address for p in fulls}, gus.address

        def move() -> None:
            old = home.ipv6
            second.move_home(home)
            assert home.ipv6 != old
        carried_client_keeps_up(fulls, gus, "six", move, relayed="relayed via [")
