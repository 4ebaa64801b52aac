"""Interval arithmetic and hashing on the ring: pure logic, checked exhaustively."""

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from core.chord.ids import RING, distance, finger_start, hash_string, in_half_open, in_open

ids = st.integers(min_value=0, max_value=RING - 1)


def test_hash_string__is_sha1_of_utf8_as_big_endian_int():
    assert hash_string("général") == int(hashlib.sha1("général".encode()).hexdigest(), 16)
    assert hash_string("127.0.0.1:4000") < RING


def test_in_open__small_cases_against_enumeration():
    # Small ids near 0, where the wrap-around rule can be spelled out case by case
    # (enumerating the arc itself would mean 2**160 members when it wraps).
    for a in range(8):
        for b in range(8):
            for x in range(8):
                if a == b:
                    expected = x != a
                elif a < b:
                    expected = a < x < b
                else:  # the arc wraps past 2**160 - 1 back to 0
                    expected = x > a or x < b
                assert in_open(x, a, b) == expected, (x, a, b)


@given(ids, ids, ids)
def test_in_half_open__is_open_interval_plus_its_end(x, a, b):
    if a == b:
        assert in_half_open(x, a, b)
    else:
        assert in_half_open(x, a, b) == (in_open(x, a, b) or x == b)


@given(ids, ids)
def test_in_open__endpoints_never_inside(a, b):
    assert not in_open(a, a, b)
    assert not in_open(b, a, b) or a == b and b != a


@given(ids, ids, ids)
def test_in_half_open__every_key_in_exactly_one_of_two_complementary_arcs(x, a, b):
    if a != b:
        assert in_half_open(x, a, b) != in_half_open(x, b, a)


@given(ids, ids)
def test_distance__wraps_and_adds_up(a, b):
    assert 0 <= distance(a, b) < RING
    assert (distance(a, b) + distance(b, a)) % RING == 0


@given(ids, st.integers(min_value=0, max_value=159))
def test_finger_start__is_two_to_the_i_clockwise(n, i):
    assert distance(n, finger_start(n, i)) == 1 << i
