"""Placement that costs: how many of the nodes holding one key may share a network prefix.

A node's id is the hash of its address, so whoever holds many addresses holds many ids;
addresses in one IPv4 /24 or one IPv6 /48 are cheap to get together (one machine, one
customer, one cloud subnet). The holders of a key (its owner and its replicas) are
therefore taken with at most ``per_prefix`` nodes from any one such prefix: nodes beyond
the quota are skipped and the next successor is taken instead (Castro et al. 2002,
"constrained routing tables"; Sit and Morris 2002). Loopback, private, link-local and
unique-local addresses have no prefix here (a test ring on 127.0.0.1 or a LAN shares one
prefix by nature), and neither have host names: the rule is off for them. Pure, no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from .address import Address, ip_of

IPV4_PREFIX = 24
IPV6_PREFIX = 48


def prefix_of(host: str) -> str | None:
    """The network a global address counts under (``"198.51.100.0/24"``,
    ``"2001:db8:1::/48"``), or None where the rule does not apply: host names, loopback,
    private, link-local, unique-local and other non-global addresses. An IPv4-mapped IPv6
    address counts as its IPv4 address."""
    ip = ip_of(host.strip("[]"))
    if ip is None or not ip.is_global:
        return None
    bits = IPV4_PREFIX if ip.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def within_quota(candidates: Iterable[Address], count: int, per_prefix: int | None,
                 held: Iterable[Address] = ()) -> list[Address]:
    """Up to ``count`` of ``candidates``, in their order, skipping any that would put more
    than ``per_prefix`` holders in one prefix (``held``: nodes already holding the key,
    e.g. its owner, counted but not returned). ``per_prefix`` None: no limit. Repeats
    and ``held`` nodes are skipped."""
    if count <= 0:
        return []
    seen = set(held)
    used: dict[str, int] = {}
    if per_prefix is not None:
        for a in seen:
            prefix = prefix_of(a.host)
            if prefix is not None:
                used[prefix] = used.get(prefix, 0) + 1
    chosen: list[Address] = []
    for a in candidates:
        if a in seen:
            continue
        seen.add(a)
        if per_prefix is not None:
            prefix = prefix_of(a.host)
            if prefix is not None:
                if used.get(prefix, 0) >= per_prefix:
                    continue
                used[prefix] = used.get(prefix, 0) + 1
        chosen.append(a)
        if len(chosen) == count:
            break
    return chosen
