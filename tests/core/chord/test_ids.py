"""Interval arithmetic and hashing on the ring: pure logic, checked exhaustively."""

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from core.chord.ids import RING, distance, finger_start, hash_string, in_half_open, in_open

ids = st.integers(min_value=0, max_value=RING - 1)


def test_hash_string__is_sha1_of_utf8_as_big_endian_int():
    assert hash_string("général") == int(hashlib.sha1("général".encode()).hexdigest(), 16)
    assert hash_string("127.0.0.1:4000") < RING


def test_in_open__around_the_wrap_point_against_enumeration():
    # A window of ids straddling 0; walking clockwise from a, the window's later ids come
    # first, then (after the long way round) its earlier ones.
    window = [(RING - 4 + k) % RING for k in range(8)]
    for ia, a in enumerate(window):
        walk = window[ia + 1:] + window[:ia]
        for b in window:
            for x in window:
                if a == b:
                    expected = x != a
                else:
                    expected = x in walk[:walk.index(b)]
                assert in_open(x, a, b) == expected, (x, a, b)
                assert in_half_open(x, a, b) == (expected or x == b or a == b), (x, a, b)


@given(ids, ids, ids)
def test_in_half_open__is_open_interval_plus_its_end(x, a, b):
    if a == b:
        assert in_half_open(x, a, b)
    else:
        assert in_half_open(x, a, b) == (in_open(x, a, b) or x == b)


@given(ids, ids)
def test_in_open__endpoints_never_inside(a, b):
    assert not in_open(a, a, b)
    assert not in_open(b, a, b)


@given(ids, ids)
def test_in_open__from_a_to_itself_is_the_whole_ring_but_a(a, x):
    assert in_open(x, a, a) == (x != a)
    assert in_open((a + 1) % RING, a, a)


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
