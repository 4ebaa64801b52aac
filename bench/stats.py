"""Small statistics for the benchmark tables: percentiles, means, formatting."""

from __future__ import annotations

import io
import math
import pstats
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def half_log2(n: int) -> float:
    """The paper's mean path length, ½·log2 N (Stoica et al. 2001, §6.3)."""
    return 0.5 * math.log2(n)


def us(seconds: float) -> str:
    """Seconds as microseconds for a table cell."""
    return "—" if math.isnan(seconds) else f"{seconds * 1e6:,.0f} µs"


def ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1e3:,.2f} ms"


def num(x: float, digits: int = 2) -> str:
    return "—" if isinstance(x, float) and math.isnan(x) else f"{x:,.{digits}f}"


def short_paths(text: str) -> str:
    """Profile output without this machine's directories."""
    root = str(Path(__file__).resolve().parent.parent) + "/"
    stdlib = sysconfig.get_paths()["stdlib"] + "/"
    return (text.replace(root, "").replace(stdlib, "<stdlib>/")
            .replace(sys.prefix, "<venv>"))


def profile_table(profiler) -> str:
    """A cProfile's top 18 functions by own time, without this machine's directories."""
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(18)
    body = text.getvalue()
    return short_paths(body[body.find("   ncalls"):] if "   ncalls" in body else body)
