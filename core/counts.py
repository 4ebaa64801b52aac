"""How the core and its front ends say a number of things: "1 member", "5 members"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for exactly one: ``counted(1, "member") == "1 member"``."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
