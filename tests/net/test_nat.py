"""Issue 20's must-show: users behind home routers chat like everyone else (real processes
in network namespaces behind real nftables routers, tests/support/routers.py).

Two public members (alice, bob) and a third that will move (mia); behind routers: kim and
kai behind one port-keeping NAT, lee behind another, rex behind a randomising NAT, fay
behind the IPv6 firewall router (dual-stack: the ring here is IPv4, so fay's traffic is
masqueraded like kim's; users on their own IPv6 addresses behind firewalls are
tests/net/test_nat6.py's). Every node decides for itself, by dial-backs, what it is.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.delivery import (
    acked_all,
    carried_client_keeps_up,
    hello_everyone,
    private_every_pair,
)
from tests.support.hosts import PORT, RING_ARGS, start_ring_on, wait_one_ring
from tests.support.procs import Cluster, kind, relay_of, whois_until
from tests.support.routers import FIREWALL, KEEP, RANDOM, Internet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

HOME_NICKS = ("kim", "kai", "lee", "rex", "fay")


class OwnersSampler(threading.Thread):
    """Every 100 ms: each full member's successor list and predecessor, as its events tell,
    must name only full members (no node that cannot be dialled ever owns keys)."""

    def __init__(self, fulls, allowed: set[str]) -> None:
        super().__init__(daemon=True)
        self.fulls, self.allowed = fulls, allowed
        self.bad: list[tuple[str, dict]] = []
        self.samples = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            for p in self.fulls:
                for e in p.matching(kind("ring_change")):
                    new = e.get("new")
                    if isinstance(new, str) and new not in self.allowed:
                        self.bad.append((p.nick, e))
            self.samples += 1


def test_nat__homes_behind_every_router_chat_like_everyone_else(network, tmp_path):
    started = time.monotonic()
    internet = Internet(network)
    publics = internet.publics(3)
    keep_a, keep_b = internet.router(KEEP), internet.router(KEEP)
    randomising, firewall = internet.router(RANDOM), internet.router(FIREWALL)
    kim, kai = keep_a.add_homes(2)
    hosts = {"kim": kim, "kai": kai, "lee": keep_b.add_home(), "rex": randomising.add_home(),
             "fay": firewall.add_home()}
    mia_later = keep_b.add_home()   # where mia's laptop goes
    with Cluster(tmp_path) as cluster:
        fulls = start_ring_on(cluster, publics[:2])
        wait_one_ring(fulls)
        alice, bob = fulls
        mia = cluster.start("mia", bootstrap=alice, wrapper=publics[2].wrapper,
                            listen=f"0.0.0.0:{PORT}", fast=False, args=RING_ARGS, timeout=60)
        fulls.append(mia)
        wait_one_ring(fulls)
        allowed = {p.address for p in fulls}
        sampler = OwnersSampler(fulls, allowed)
        sampler.start()

        # the homes start together; each finds out by dial-backs that it is a client
        homes = {n: cluster.start(n, bootstrap=fulls[i % 2], wrapper=h.wrapper,
                                  listen=f"0.0.0.0:{PORT}", fast=False, args=RING_ARGS,
                                  wait_ready=False)
                 for i, (n, h) in enumerate(hosts.items())}
        for p in homes.values():
            ready = p.wait_for(kind("ready"), timeout=60, what="ready")
            p.address = ready["address"]
            assert relay_of(p.address) in allowed, f"{p.nick} at {p.address}"
            assert any("not reachable from outside" in e["text"]
                       for e in p.matching(kind("log")))
        kim, kai, lee, rex, fay = (homes[n] for n in HOME_NICKS)
        everyone = [*fulls, *homes.values()]

        # every pair, both ways
        private_every_pair(everyone, timeout=40)

        # direct where both routers keep ports, relayed with the randomising one
        assert whois_until(kim, "lee", "direct") == "direct (hole-punched)"
        assert whois_until(lee, "kim", "direct") == "direct (hole-punched)"
        assert whois_until(rex, "lee", "direct", timeout=2).startswith("relayed via ")
        assert whois_until(lee, "rex", "direct", timeout=2).startswith("relayed via ")
        assert whois_until(alice, "kim", "direct", timeout=1).startswith("relayed via ")
        assert whois_until(kim, "alice", "direct", timeout=1) == "direct"
        # and the direct way carries the private messages now
        lee.send("msg kim over-the-punch")
        kim.wait_for(kind("private", text="over-the-punch"), timeout=10, what="direct PM")

        # all in one channel: every message reaches every member once
        for p in everyone:
            p.send("join #all")
        for p in everyone:
            p.wait_for(lambda e: e.get("event") == "joined" and e.get("channel") == "all"
                       and len(e.get("members", [])) >= 1, what="joined #all", timeout=30)
        hello_everyone(everyone, "all")

        # a PM to a NAT'ed user who is offline waits in the mailbox, arrives once
        assert lee.stop() == 0
        alice.send("msg lee while-you-were-away")
        alice.wait_for(lambda e: e.get("event") == "info" and "waits for it" in e.get("text", ""),
                       timeout=30, what="the message mailed")
        lee = homes["lee"] = cluster.start("lee", bootstrap=bob, wrapper=hosts["lee"].wrapper,
                                           listen=f"0.0.0.0:{PORT}", fast=False,
                                           args=RING_ARGS, timeout=60, data_dir=lee.data_dir)
        lee.wait_for(kind("private", text="while-you-were-away"), timeout=30, what="mail")
        everyone = [*fulls, *homes.values()]
        lee.wait_for(kind("joined", channel="all"), timeout=30, what="lee back in #all")

        # kim's relay is killed (kill -9) while the channel is busy
        relay = next(p for p in fulls if p.address == relay_of(kim.address))
        senders = [p for p in everyone if p is not relay]
        mark = kim.mark()
        killed = 0.0
        for i in range(8):
            for s in senders:
                s.send(f"send all busy-{s.nick}-{i}")
            if i == 2:
                relay.kill()
                killed = time.monotonic()
            time.sleep(0.1)   # paces the senders, not a wait for a condition
        moved = kim.wait_for(lambda e: e.get("event") == "info"
                             and "reachable at" in e.get("text", ""), since=mark, timeout=10,
                             what="kim through another relay")
        assert moved["_t"] - killed < 5.0, moved["_t"] - killed
        # every line typed is acknowledged, those in flight to a maintainer killed with
        # the relay too (sent again to its successor: not counted at the moment kim moved)
        acked = acked_all([(s, f"busy-{s.nick}-{i}") for s in senders for i in range(8)], "all")
        for p in senders:
            for text in acked:
                p.wait_for(kind("channel", channel="all", text=text), timeout=40,
                           what=f"{text} at {p.nick}")

        # a full member moves: mia's laptop closes (kill -9), opens behind a NAT
        live_fulls = [p for p in fulls if p.alive and p is not mia]
        mia.kill()
        live_fulls[0].send("msg mia while-you-moved")
        mia2 = cluster.start("mia", bootstrap=live_fulls[0], wrapper=mia_later.wrapper,
                             listen=f"0.0.0.0:{PORT}", fast=False, args=RING_ARGS, timeout=60,
                             data_dir=mia.data_dir)
        assert relay_of(mia2.address) is not None   # a client now, the same user
        mia2.wait_for(kind("joined", channel="all"), timeout=30, what="mia back in #all")
        mia2.wait_for(kind("private", text="while-you-moved"), timeout=40, what="mia's PM")
        kai.send("send all after-mia-moved")
        mia2.wait_for(kind("channel", channel="all", text="after-mia-moved"), timeout=30,
                      what="a channel message at mia's new address")

        # nothing shown twice, anywhere
        time.sleep(1.0)   # lets late duplicates arrive before they are counted
        for p in [*senders, mia2]:
            shown = [e["msg_id"] for e in p.matching(kind("channel", channel="all"))]
            assert len(shown) == len(set(shown)), f"{p.nick} showed a message twice"
            private = [e["msg_id"] for e in p.matching(kind("private"))
                       if not e.get("outgoing")]
            assert len(private) == len(set(private)), f"{p.nick} showed a PM twice"
        sampler.stopped.set()
        sampler.join(5)
        assert sampler.samples > 50 and not sampler.bad, sampler.bad[:3]
        assert time.monotonic() - started < 150


def test_nat__a_running_client_carried_behind_another_nat_keeps_its_channels_and_mail(
        network, tmp_path):
    """A laptop moves between two home networks (IPv4 behind port-keeping NATs) while its
    node runs: the harness unplugs gus's home from one router's LAN and plugs it into the
    other's (a new LAN address, a new public address, its connections dead). Its node
    attaches again from there, what was sent meanwhile reaches it once, and it goes on."""
    internet = Internet(network)
    publics = internet.publics(2)
    first, second = internet.router(KEEP), internet.router(KEEP)
    home = first.add_home()
    with Cluster(tmp_path) as cluster:
        fulls = start_ring_on(cluster, publics)
        wait_one_ring(fulls)
        gus = cluster.start("gus", bootstrap=fulls[0], wrapper=home.wrapper,
                            listen=f"0.0.0.0:{PORT}", fast=False, args=RING_ARGS, timeout=60)
        assert relay_of(gus.address) in {p.address for p in fulls}, gus.address

        def move() -> None:
            old = home.ipv4
            second.move_home(home)
            assert home.ipv4 != old
        carried_client_keeps_up(fulls, gus, "four", move, relayed="relayed via ")
