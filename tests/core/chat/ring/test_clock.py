"""The ring's time (ring/clock.py): the median offset, and nodes whose clocks run 15
minutes off on the simulator (the same with real processes: test_process_clock.py)."""

from __future__ import annotations

import pytest

from core import events as ev
from core.chat.model.commands import Command
from core.chat.ring.clock import THRESHOLD, describe, median_offset
from core.chat.testing import sim_ring
from core.chord.testing import virtual_time, wait_until


@pytest.mark.parametrize("samples, own, expected", [
    ([], 0.0, 0.0),
    ([-900.0], None, -900.0),          # just joined: the one neighbour's time is the ring's
    ([-900.0], 0.0, 0.0),              # two alone, neither corrected: nobody moves
    ([-900.0], -900.0, -900.0),        # ... and a corrected one stays corrected
    ([0.0, 900.0], 0.0, 0.0),          # one skewed neighbour does not move us
    ([-900.0, -901.0], 0.0, -900.0),   # two agreeing neighbours do
    ([-900.0, 3.0, -899.0, -901.0], None, -899.0),
])
def test_median_offset__own_vote_and_ties_toward_what_we_hold(samples, own, expected):
    assert median_offset(samples, own) == expected


def test_describe__minutes_and_direction():
    assert describe(900.4) == "15 min ahead of"
    assert describe(-902) == "15 min 2 s behind"
    assert describe(3 * 3600 + 5) == "3 h 5 s ahead of"


@virtual_time
async def test_clock__nodes_15_minutes_fast_and_slow_chat_with_the_ring_and_are_told():
    async with sim_ring(["norm", "also"]) as ring:
        norm = ring.nodes[0]
        fast = await ring.add("fast", skew=900.0)
        slow = await ring.add("slow", skew=-900.0)
        [note] = [e.text for e in fast.of(ev.Info) if "clock" in e.text]
        assert "15 min ahead of the ring's" in note
        [note] = [e.text for e in slow.of(ev.Info) if "clock" in e.text]
        assert "15 min behind the ring's" in note
        assert not [e for e in norm.of(ev.Info) if "clock" in e.text]
        for n in (fast, slow):   # signs with the ring's time now
            assert abs(n.service.stamp() - norm.service.stamp()) < THRESHOLD
        # its name record's sequence number is the ring's time too (not 15 min ahead)
        assert abs(fast.user.record.seq / 1000 - norm.service.stamp()) < THRESHOLD
        nodes = [norm, fast, slow]
        for n in nodes:
            await n.user.join("tick")
        for n in nodes:
            await n.user.send("tick", f"hello from {n.nick}")
        for n in nodes:
            await wait_until(lambda n=n: len(n.texts("tick")) == 3, what=n.nick)
        await norm.user.execute(Command("msg", ("fast", "psst")))
        await slow.user.execute(Command("msg", ("norm", "psst back")))
        await wait_until(lambda: fast.of(ev.PrivateMessage, text="psst"))
        await wait_until(lambda: norm.of(ev.PrivateMessage, text="psst back"))
        for n in nodes:
            assert not n.of(ev.Error), n.of(ev.Error)
