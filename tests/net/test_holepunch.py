"""A TCP simultaneous open between two homes (core/chord/holepunch.py) through real
nftables routers: direct between two port-keeping NATs, never with a randomising one
(the clients stay on their relay)."""

from __future__ import annotations

import pytest

from tests.support.routers import FIREWALL, KEEP, RANDOM, Internet, punch

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_holepunch__two_port_keeping_homes_connect_directly(network):
    internet = Internet(network)
    relay = internet.public()
    ra, rb = internet.router(KEEP), internet.router(KEEP)
    a, b = ra.add_home(), rb.add_home()
    port = internet.whoami(relay)
    # neither can dial the other unasked: each router drops a stranger's SYN
    inside = network.echo(b)
    assert not a.tcp_ping(rb.ipv4, inside, timeout=1)
    trials = [punch(internet, relay, port, a, b) for _ in range(3)]
    assert all(t.direct for t in trials), trials
    for t in trials:
        assert t.seen[0].startswith(f"{ra.ipv4}:") and t.seen[1].startswith(f"{rb.ipv4}:")
        assert t.seconds < 3.0


def test_holepunch__a_randomising_nat_stays_on_the_relay(network):
    internet = Internet(network)
    relay = internet.public()
    a, b = internet.router(KEEP).add_home(), internet.router(RANDOM).add_home()
    port = internet.whoami(relay)
    trial = punch(internet, relay, port, a, b, tries=2)
    assert not trial.direct
    # giving up is bounded: two tries of ATTEMPT_TIMEOUT (1.5 s) and a spacing
    assert trial.seconds < 2 * 1.5 + 1.0


def test_holepunch__two_ipv6_homes_behind_stateful_firewalls_connect_directly(network):
    if not network.ipv6:
        pytest.skip("IPv6 is disabled in this kernel")
    internet = Internet(network)
    relay = internet.public()
    a, b = internet.router(FIREWALL).add_home(), internet.router(FIREWALL).add_home()
    inside = network.echo(b, b.ipv6)
    assert not a.tcp_ping(b.ipv6, inside, timeout=1)   # unasked: dropped
    port = internet.whoami(relay, relay.ipv6)
    trial = punch(internet, relay, port, a, b, ipv6=True, skew=0.3)
    assert trial.direct and trial.seen == (f"[{a.ipv6}]:" + trial.seen[0].rsplit(":", 1)[1],
                                           f"[{b.ipv6}]:" + trial.seen[1].rsplit(":", 1)[1])
