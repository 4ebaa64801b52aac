"""Identifiers on the 160-bit Chord ring and wrap-around interval arithmetic (no I/O)."""

from __future__ import annotations

import hashlib

M = 160
RING = 1 << M


def hash_string(s: str) -> int:
    """The SHA-1 of the UTF-8 bytes of ``s`` as a 160-bit integer id."""
    return int.from_bytes(hashlib.sha1(s.encode("utf-8")).digest(), "big")


def distance(a: int, b: int) -> int:
    """How far clockwise ``b`` lies from ``a``."""
    return (b - a) % RING


def in_open(x: int, a: int, b: int) -> bool:
    """``x`` lies in (a, b) going clockwise; (a, a) is the whole ring but ``a``."""
    if a == b:
        return x != a
    return 0 < distance(a, x) < distance(a, b)


def in_half_open(x: int, a: int, b: int) -> bool:
    """``x`` lies in (a, b] going clockwise; (a, a] is the whole ring."""
    if a == b:
        return True
    return 0 < distance(a, x) <= distance(a, b)


def finger_start(n: int, i: int) -> int:
    """The start of finger ``i`` of node ``n``: n + 2**i (Chord §4.2, zero-based)."""
    return (n + (1 << i)) % RING


def hex_id(n: int) -> str:
    """The full id as 40 hex digits."""
    return f"{n:040x}"


def short_id(n: int) -> str:
    """The first 8 hex digits, as the UI shows ids."""
    return hex_id(n)[:8]
