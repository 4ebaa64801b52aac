"""Real processes whose clocks run 15 minutes off (libfaketime, per process) beside one
with the right time: each starts, registers, chats in a channel and privately, and is told
by how much its clock is off. (The logic: ring/test_clock.py.)"""

from __future__ import annotations

import glob
import shutil

import pytest

from tests.support.procs import Cluster, kind

pytestmark = pytest.mark.slow

LIBS = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))


def skewed(offset: str) -> list[str]:
    """A wrapper argv: the node's wall clock moved by ``offset`` (libfaketime's
    "+15m"), its monotonic clock left alone (timers and timeouts stay true)."""
    return ["env", f"LD_PRELOAD={LIBS[0]}", f"FAKETIME={offset}",
            "FAKETIME_DONT_FAKE_MONOTONIC=1"]


@pytest.fixture
def cluster(tmp_path):
    if not LIBS or shutil.which("env") is None:
        pytest.skip("libfaketime is not installed (apt-get install faketime)")
    with Cluster(tmp_path) as c:
        yield c


def test_clock__users_15_minutes_fast_and_slow_register_and_chat_both_ways(cluster):
    norm = cluster.start("norm")
    fast = cluster.start("fast", bootstrap=norm, wrapper=skewed("+15m"))
    slow = cluster.start("slow", bootstrap=norm, wrapper=skewed("-15m"))
    told = fast.wait_for(kind("info"), what="the note on the clock")["text"]
    assert "15 min" in told and "ahead of" in told, told
    told = slow.wait_for(kind("info"), what="the note on the clock")["text"]
    assert "15 min" in told and "behind" in told, told
    assert norm.matching(lambda e: e.get("event") == "info" and "clock" in e.get("text", "")) \
        == []
    procs = [norm, fast, slow]
    for p in procs:
        p.send("join #tick")
        p.wait_for(kind("joined", channel="tick"))
    for p in procs:
        for q in procs:   # every member is in before anything is sent
            p.wait_for(lambda e, q=q: e.get("event") in ("member_joined", "joined")
                       and (e.get("nick") in (q.nick, None)), what=f"{q.nick} in")
    for p in procs:
        p.send(f"send tick hello from {p.nick}")
    for p in procs:
        for q in procs:
            p.wait_for(kind("channel", channel="tick", text=f"hello from {q.nick}"),
                       what=f"{q.nick}'s message at {p.nick}")
    for sender, to in ((norm, fast), (fast, slow), (slow, norm), (fast, norm)):
        sender.send(f"msg {to.nick} psst from {sender.nick}")
        got = to.wait_for(kind("private", text=f"psst from {sender.nick}"))
        assert got["from"] == sender.nick and got["verified"] is True
    for p in procs:
        assert p.matching(kind("error")) == [], p.nick
        assert p.stop() == 0
