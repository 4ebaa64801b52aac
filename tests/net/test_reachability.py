"""Reachability found by dial-backs, with real nodes on public hosts and behind real routers
(tests/support/routers.py): a public node becomes a full member, saying who dialled it
back; a node behind NAT or a stateful firewall never takes a place in the ring.

A node that is not reachable says so and starts as a client of the ring through relays;
the tests check it took no place in the ring.
"""

from __future__ import annotations

import time

import pytest

from tests.support.hosts import PORT, RING_ARGS, start_ring_on, successor, wait_one_ring
from tests.support.procs import Cluster, kind
from tests.support.routers import FIREWALL, KEEP, Internet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def said(proc, start: str) -> list[str]:
    return [e["text"] for e in proc.matching(kind("log")) if e["text"].startswith(start)]


def refused(cluster, home, listen: str, bootstrap: str, nick: str = "homer"):
    """Start a node at home; it must say it is not reachable and start as a client."""
    proc = cluster.start(nick, bootstrap=bootstrap, wrapper=home.wrapper, listen=listen,
                         fast=False, args=RING_ARGS, timeout=60)
    lines = said(proc, "not reachable from outside: client of the ring through relays")
    assert lines, f"no verdict in {proc.events[-5:]}"
    assert proc.alive and proc.matching(kind("ready"))
    relay, slash, _ = proc.address.partition("/")
    assert slash, f"{proc.address} is not a relayed address"
    return proc, lines[0]


def test_reachability__public_nodes_join_and_homes_behind_routers_do_not(network, tmp_path):
    internet = Internet(network)
    publics = internet.publics(3)
    keep = internet.router(KEEP)
    home = keep.add_home()
    with Cluster(tmp_path) as cluster:
        procs = start_ring_on(cluster, publics[:2])
        wait_one_ring(procs)
        # a public node on a wildcard listen: dialled back, it learns its address
        third = cluster.start("carol", bootstrap=procs[0], wrapper=publics[2].wrapper,
                              listen=f"0.0.0.0:{PORT}", fast=False, args=RING_ARGS, timeout=60)
        assert third.address == publics[2].address(PORT)
        assert said(third, f"reachable at {third.address} (dialled back by 2 of 2)")
        procs.append(third)
        wait_one_ring(procs)
        ring = {p.nick: successor(p) for p in procs}

        # behind NAT: a wildcard listen (today: exit 2, "a call back there failed")
        _, line = refused(cluster, home, f"0.0.0.0:{PORT}", procs[0].address)
        assert f"{keep.ipv4}:{PORT}: dialled back by 0 of 3" in line
        # behind NAT: its LAN address (today: it "joins" where nobody reaches it)
        _, line = refused(cluster, home, home.address(PORT), procs[1].address, "homer2")
        assert f"{keep.ipv4}:{PORT}: dialled back by 0 of 3" in line
        # the ring never saw them: the same successors as before, and nobody else's
        deadline = time.monotonic() + 3 * 0.3   # a few stabilize rounds of RING_ARGS
        while time.monotonic() < deadline:
            assert {p.nick: successor(p) for p in procs} == ring
            time.sleep(0.1)   # samples the ring during those rounds, not a wait for it


def test_reachability__behind_an_ipv6_firewall_a_node_does_not_join(network, tmp_path):
    if not network.ipv6:
        pytest.skip("IPv6 is disabled in this kernel")
    internet = Internet(network)
    publics = internet.publics(2)
    home = internet.router(FIREWALL).add_home()
    with Cluster(tmp_path) as cluster:
        procs = start_ring_on(cluster, publics, ipv6=True)
        wait_one_ring(procs)
        # no NAT: it is seen at its own address, and the firewall drops the dial-backs
        _, line = refused(cluster, home, home.address(PORT, ipv6=True), procs[0].address)
        assert f"[{home.ipv6}]:{PORT}: dialled back by 0 of 2" in line
