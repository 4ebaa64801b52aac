"""Hole punching through real routers: how often a coordinated TCP simultaneous open
(core/chord/holepunch.py) connects two homes directly, and how long it takes.

Network namespaces with nftables routers (tests/support/routers.py; needs root and
``nft``, skipped with the reason otherwise): a public host stands in for the relay and
tells each home where it sees it; each home keeps that connection open and both connect
from its port to where the other was seen, at the same moment (up to ``TRIES`` connects
of 1.5 s each). Pairs of routers: both keep ports (KEEP), one or both randomise them per
connection (RANDOM, ``masquerade fully-random``), and two IPv6 homes behind stateful
firewalls (no NAT); once with one side starting 500 ms late (a coordination that is
off: the routers drop the early SYN, the kernel sends it again after 1 s). A trial
succeeds when a byte crosses the direct connection; the time is until both sides have
the connection, counted from the first side's start.

    python -m bench.holepunch [--full]      # 5 trials per pair; --full: 20
"""

from __future__ import annotations

import argparse
import statistics

TRIES = 2
PAIRS = (("keep", "keep", 0.0), ("keep", "keep", 0.5), ("keep", "random", 0.0),
         ("random", "random", 0.0), ("firewall", "firewall", 0.0))   # (a, b, b starts late)


def trials(quick: bool) -> int:
    return 20   # the measure: 20 tries per pair of routers, in either mode


def run(quick: bool) -> dict:
    from tests.support import hosts
    from tests.support.routers import Internet, punch

    reason = hosts.unavailable()
    if reason is not None:
        return {"holepunch": {"skipped": reason}}
    n = trials(quick)
    results: dict = {"trials": n, "tries": TRIES, "pairs": {}}
    with hosts.Network() as network:
        internet = Internet(network)
        relay = internet.public()
        for *kinds, skew in PAIRS:
            ipv6 = kinds == ["firewall", "firewall"]
            if ipv6 and not network.ipv6:
                continue
            a, b = (internet.router(k).add_home() for k in kinds)
            port = internet.whoami(relay, relay.ipv6 if ipv6 else None)
            done = [punch(internet, relay, port, a, b, tries=TRIES, ipv6=ipv6, skew=skew)
                    for _ in range(n)]
            ok = [t.seconds for t in done if t.direct]
            name = "-".join(kinds) + (" (IPv6)" if ipv6 else "") + (
                f", one {skew * 1000:.0f} ms late" if skew else "")
            results["pairs"][name] = {
                "direct": len(ok), "trials": n,
                "median_s": round(statistics.median(ok), 4) if ok else None,
                "max_s": round(max(ok), 4) if ok else None,
                "give_up_s": round(max((t.seconds for t in done if not t.direct),
                                       default=0.0), 3)}
    return {"holepunch": results}


def render(results: dict) -> str:
    if "skipped" in results:
        return f"## Hole punching\n\nNot measured: {results['skipped']}.\n"
    lines = ["## Hole punching", "",
             f"{results['trials']} coordinated simultaneous opens per pair of routers "
             f"(up to {results['tries']} connects each), real nftables routers in network "
             "namespaces (bench/holepunch.py).", "",
             "| routers | direct | median time | slowest | giving up took |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for pair, r in results["pairs"].items():
        median = "—" if r["median_s"] is None else f"{r['median_s'] * 1000:.1f} ms"
        slowest = "—" if r["max_s"] is None else f"{r['max_s'] * 1000:.1f} ms"
        give_up = "—" if not r["give_up_s"] else f"{r['give_up_s']:.2f} s"
        lines.append(f"| {pair} | {r['direct']}/{r['trials']} | {median} | {slowest} | "
                     f"{give_up} |")
    return "\n".join(lines) + "\n"


def section(results: dict, cfg: dict, images: dict) -> list[str]:
    """The report's section (``bench.__main__.SECTIONS``)."""
    return [render(results["holepunch"]["holepunch"])] if "holepunch" in results else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="20 trials per pair of routers")
    args = parser.parse_args()
    print(render(run(not args.full)["holepunch"]))


if __name__ == "__main__":
    main()
