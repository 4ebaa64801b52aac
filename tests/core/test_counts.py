"""Counts in what the core and the front ends print: singular for exactly one."""

from core.counts import counted


def test_counted__one_is_singular_zero_and_many_are_plural():
    assert counted(1, "member") == "1 member"
    assert counted(0, "member") == "0 members"
    assert counted(5, "member") == "5 members"
    assert counted(2, "replica", "replicas") == "2 replicas"
