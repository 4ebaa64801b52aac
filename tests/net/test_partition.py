"""A partition between real hosts that heals: six chordchat processes in network namespaces,
split 3 + 3 while both sides chat, then one network again (issue 12's must-show)."""

from __future__ import annotations

import time

import pytest

from tests.support.hosts import join_all, start_ring_on, successor, wait_one_ring
from tests.support.procs import Cluster, kind

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

APART = 25.0    # seconds the network stays split
MERGE = 60.0    # one ring of six within this after the heal


def chat_for(procs, seconds: float, tag: str, every: float = 1.0) -> None:
    """Every node sends to #room every ``every`` s for ``seconds``."""
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        for p in procs:
            p.send(f"send room {tag} {p.nick} {i}")
        i += 1
        time.sleep(every)  # paces the traffic, not a wait


def test_partition__three_and_three_chat_apart_then_heal_into_one_ring(network, tmp_path):
    six = network.add_hosts(6)
    with Cluster(tmp_path) as cluster:
        # wildcard listens, each host advertising its own address
        procs = start_ring_on(cluster, six, wildcard="0.0.0.0")
        wait_one_ring(procs)
        join_all(procs, "room")
        for p in procs:
            p.send(f"send room before {p.nick}")

        left, right = six[:3], six[3:]
        network.partition(left, right)
        cut_at = time.monotonic()
        chat_for(procs, APART, "apart")
        network.heal()
        healed_at = time.monotonic()
        healed = {p.nick: p.mark() for p in procs}
        wait_one_ring(procs, timeout=MERGE)
        one_ring = time.monotonic() - healed_at
        for p in procs:
            p.send(f"send room after {p.nick}")

        def acked() -> set[str]:
            return {e["msg_id"] for p in procs for e in p.matching(kind("sent", channel="room"))}

        # every send is answered (acked, or an error after retry_for): then count
        for p in procs:
            p.wait_for(kind("sent", channel="room", text=f"after {p.nick}"),
                       timeout=60, what="its message after the heal acknowledged")
        wanted = acked()
        deadline = time.monotonic() + 60
        for p in procs:
            while not wanted <= {e["msg_id"] for e in p.matching(kind("channel",
                                                                        channel="room"))}:
                missing = len(wanted - {e["msg_id"] for e in
                                        p.matching(kind("channel", channel="room"))})
                assert time.monotonic() < deadline, f"{p.nick} misses {missing} acked messages"
                time.sleep(0.2)
        apart = {e["msg_id"] for p in procs for e in p.matching(kind("sent", channel="room"))
                 if e["text"].startswith("apart")}
        senders = {e["text"].split()[1] for p in procs for e in
                   p.matching(kind("sent", channel="room")) if e["text"].startswith("apart")}
        # both sides kept chatting while apart
        assert senders & {p.nick for p in procs[:3]} and senders & {p.nick for p in procs[3:]}
        for p in procs:
            shown = [e["msg_id"] for e in p.matching(kind("channel", channel="room"))]
            assert len(shown) == len(set(shown)), f"{p.nick} was shown a message twice"
        # the messages sent after the heal: one order at every member
        after = {e["msg_id"] for p in procs for e in p.matching(kind("sent", channel="room"))
                 if e["text"].startswith("after")}
        orders = {tuple(e["msg_id"] for e in p.matching(kind("channel", channel="room"))
                        if e["msg_id"] in after) for p in procs}
        assert len(orders) == 1
        print(f"\npartition: {len(wanted)} acked ({len(apart)} while apart, from "
              f"{sorted(senders)}); one ring {one_ring:.1f} s after the heal "
              f"(apart {healed_at - cut_at:.1f} s); successors "
              f"{[(p.nick, successor(p)) for p in procs]}")
        # everyone stayed online: after the heal no one is shown to have quit (a removal
        # one side made of the other is old news once the copies merge)
        time.sleep(5)   # longer than a removal is held before it is shown (SETTLE)
        for p in procs:
            quits = [e for e in p.events[healed[p.nick]:] if e["event"] == "member_left"]
            assert quits == [], f"{p.nick} was told of quits that never happened: {quits}"
        for p in procs:
            assert p.stop() == 0
        # through the partition and the heal, stdout held only JSON lines (a log line or a
        # traceback, such as "Task exception was never retrieved", would be unparsed) and
        # stderr nothing: those go to the log file
        for p in procs:
            unparsed = [e["line"] for e in p.events if e["event"] == "unparsed"]
            assert unparsed == [], f"{p.nick} printed non-JSON lines: {unparsed[:5]}"
            assert p.stderr() == "", f"{p.nick} wrote to stderr: {p.stderr()}"
