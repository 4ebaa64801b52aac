"""The routers of tests/support/routers.py: homes behind NAT and a stateful firewall.

Needs root (skips otherwise). Each test builds a public bridge with real nftables routers
and checks what a home router does: out is open, in is closed, and which source port
the far end sees.
"""

from __future__ import annotations

import pytest

from tests.support.routers import FIREWALL, KEEP, RANDOM, Internet, bound, observed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def internet(network):
    return Internet(network)


def test_routers__a_home_dials_out_but_nobody_dials_in(internet, network):
    server = internet.public()
    router = internet.router(KEEP)
    home = router.add_home()
    port = network.echo(server)
    home.wait_reachable(server.ipv4, port)                 # out: open
    inside = network.echo(home)
    home.wait_reachable(home.ipv4, inside)                 # (it serves: on its own LAN)
    # in: the LAN address is not routed on the public side
    assert not server.tcp_ping(home.ipv4, inside, timeout=1)
    # and the router's own address does not forward (nor answer) a stranger's SYN
    with pytest.raises(TimeoutError):
        server.connect(router.ipv4, inside, timeout=1.5)
    # the public side sees the home as its router
    seen_host, _, _ = internet.seen_from(home, server.ipv4, internet.whoami(server))
    assert seen_host == router.ipv4


def test_routers__the_keeping_router_keeps_the_port_the_random_one_does_not(internet):
    server = internet.public()
    keep_router = internet.router(KEEP)
    keep, rand = keep_router.add_home(), internet.router(RANDOM).add_home()
    port = internet.whoami(server)
    kept = [internet.seen_from(keep, server.ipv4, port) for _ in range(10)]
    assert all(seen == local for _, seen, local in kept)
    # one local endpoint, two destinations: one mapping (endpoint-independent)
    other = internet.whoami(server)
    first = bound(keep, 0)
    try:
        local = first.getsockname()[1]
        assert observed(first, server.ipv4, port) == (keep_router.ipv4, local)
        second = bound(keep, local)
        with second:
            assert observed(second, server.ipv4, other) == (keep_router.ipv4, local)
    finally:
        first.close()
    moved = [internet.seen_from(rand, server.ipv4, port) for _ in range(10)]
    assert sum(seen != local for _, seen, local in moved) >= 9   # 1 in ~28,000 by chance


def test_routers__two_homes_behind_one_router_share_its_address_and_reach_each_other(
        internet, network):
    server = internet.public()
    router = internet.router(KEEP)
    a, b = router.add_homes(2)
    port = network.echo(b)
    a.wait_reachable(b.ipv4, port)                         # on their LAN
    whoami = internet.whoami(server)
    assert {internet.seen_from(h, server.ipv4, whoami)[0] for h in (a, b)} == {router.ipv4}


def test_routers__the_firewall_lets_ipv6_out_and_drops_unsolicited_ipv6_in(internet, network):
    if not network.ipv6:
        pytest.skip("IPv6 is disabled in this kernel")
    server = internet.public()
    home = internet.router(FIREWALL).add_home()
    assert home.ipv6 is not None and home.ipv6.startswith("fd00:c0a8:")
    port = network.echo(server, server.ipv6)
    home.wait_reachable(server.ipv6, port)                 # out: open, no NAT ...
    seen_host, _, _ = internet.seen_from(home, server.ipv6, internet.whoami(server,
                                                                              server.ipv6))
    assert seen_host == home.ipv6                          # ... its own address is seen
    inside = network.echo(home, home.ipv6)
    home.wait_reachable(home.ipv6, inside)
    with pytest.raises(TimeoutError):                      # in: routed, then dropped
        server.connect(home.ipv6, inside, timeout=1.5)


def test_routers__a_router_made_just_now_forwards_ipv6_at_once(internet, network):
    """A home's first connection through a router made just before gets through at once,
    as through a router that has been up a while: no address of the router's is still
    tentative (duplicate-address detection held a router's forwarding back for about 2 s,
    and a node's first call to its bootstrap, 1.5 s, timed out)."""
    if not network.ipv6:
        pytest.skip("IPv6 is disabled in this kernel")
    server = internet.public()
    port = network.echo(server, server.ipv6)
    home = internet.router(FIREWALL).add_home()
    assert home.tcp_ping(server.ipv6, port, timeout=1.0)   # the first try, not a wait
