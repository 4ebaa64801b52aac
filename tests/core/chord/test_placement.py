"""The per-prefix quota on the holders of a key (core/chord/placement.py)."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from core.chord import Address
from core.chord.placement import prefix_of, within_quota


def test_prefixes_of_global_addresses():
    assert prefix_of("8.8.8.8") == "8.8.8.0/24"
    assert prefix_of("8.8.8.200") == prefix_of("8.8.8.1")
    assert prefix_of("8.8.9.1") != prefix_of("8.8.8.1")
    assert prefix_of("2001:4860:1:2::1") == "2001:4860:1::/48"
    assert prefix_of("2001:4860:1:ffff::9") == prefix_of("2001:4860:1::1")
    assert prefix_of("::ffff:8.8.4.4") == "8.8.4.0/24"


def test_no_prefix_where_the_rule_is_off():
    for host in ("127.0.0.1", "10.1.2.3", "192.168.0.7", "172.16.0.1", "::1", "fd00::1",
                 "fe80::1", "169.254.0.1", "localhost", "node-3.example", "192.0.2.1"):
        assert prefix_of(host) is None, host


def test_quota_skips_the_third_of_one_prefix():
    a = [Address(f"8.8.8.{i}", 4000) for i in range(1, 4)] + [Address("9.9.9.9", 4000)]
    assert within_quota(a, 3, 2) == [a[0], a[1], a[3]]
    assert within_quota(a, 3, None) == a[:3]
    # the owner counts against the quota but is not returned
    assert within_quota(a[1:], 3, 2, held=[a[0]]) == [a[1], a[3]]


def test_private_rings_are_not_limited():
    a = [Address("10.0.0.1", 4000 + i) for i in range(5)]
    assert within_quota(a, 4, 1) == a[:4]


hosts = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i))),
    st.integers(0, 2**128 - 1).map(lambda i: ipaddress.IPv6Address(i).compressed),
    st.sampled_from(["8.8.8.1", "8.8.8.2", "8.8.8.3", "2001:4860::1", "2001:4860::2"]),
)


@given(st.lists(st.tuples(hosts, st.integers(1, 65535)), max_size=30),
       st.integers(0, 10), st.one_of(st.none(), st.integers(1, 4)))
def test_quota_properties(pairs, count, per_prefix):
    candidates = [Address(h, port) for h, port in pairs]
    chosen = within_quota(candidates, count, per_prefix)
    assert len(chosen) <= count
    assert len(set(chosen)) == len(chosen)
    # a subsequence of the candidates, in their order
    it = iter(candidates)
    assert all(any(c == x for x in it) for c in chosen)
    if per_prefix is not None:
        counts: dict[str, int] = {}
        for c in chosen:
            p = prefix_of(c.host)
            if p is not None:
                counts[p] = counts.get(p, 0) + 1
        assert all(n <= per_prefix for n in counts.values())
    else:
        assert chosen == list(dict.fromkeys(candidates))[:count]
    # nothing skipped that would have fit: every distinct candidate left out before the
    # last chosen one is over the quota
    if per_prefix is not None and chosen:
        last = candidates.index(chosen[-1])
        for c in dict.fromkeys(candidates[:last]):
            if c not in chosen:
                p = prefix_of(c.host)
                assert p is not None
                assert sum(prefix_of(x.host) == p for x in chosen) >= per_prefix
