"""The machine a run measured on (``results["machine"]``), the open-file limit it raises,
and the top of results.md that describes both."""

from __future__ import annotations

import os
import platform
import resource
from datetime import UTC, datetime
from pathlib import Path

from core import loops
from core.chord import wire


def machine() -> dict:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "cpu": cpu,
            "system": f"{platform.system()} {platform.release()}",
            "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "loop": loops.name(loops.new_event_loop()), "codec": wire.CODEC,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def raise_file_limit() -> int:
    """Hundreds of nodes in one process keep thousands of loopback connections open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1 << 18  # 256 nodes that each reach most others: two fds per connection
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):  # not root: as far as the hard limit allows
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def section(results: dict, cfg: dict, images: dict) -> list[str]:
    m = results["machine"]
    only = ([f"- Only these phases were run (`--only`): {', '.join(results['only'])}."]
            if results.get("only") else [])
    return [
        "# chordchat benchmark results",
        "",
        f"Written by `make bench` ({results['mode']} mode) on {m['date']}; whole run "
        f"{results['seconds']:.0f} s. Regenerate with `make bench` "
        "(or `make bench BENCH_ARGS=--full`).",
        "",
        f"- Machine: {m['cores']} cores, {m['cpu']}, {m['system']}; load average "
        f"{m['load']:.2f} at the start (other work was running: absolute times are noisy).",
        f"- Python {m['python']} ({m['implementation']}), event loop: "
        f"{m.get('loop', 'asyncio')}, wire codec: {m.get('codec', 'json')}.",
        "- Targets are reported here, never asserted in tests.",
        *only,
        "",
    ]
