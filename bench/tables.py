"""The markdown every report section writes with: tables, and the verdict on a target."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table, as lines: the header, its rule, then one line per row."""
    return [_line(header), _line(["---"] * len(header)), *(_line(row) for row in rows)]


def _line(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def verdict(ok: bool) -> str:
    """A target met or missed, as the report says it."""
    return "met" if ok else "**missed**"
