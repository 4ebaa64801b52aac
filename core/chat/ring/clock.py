"""The ring's time: this node's wall clock corrected by the offset measured against peers.

Users sign times (name records' sequence numbers, joins, leaves, messages, mailbox takes)
and maintainers check them against their own clocks (``REPLAY_WINDOW``, ``SKEW_MS``). A
node whose clock runs minutes off would be refused everywhere with no word about clocks.
So a node asks a few neighbours for their time (``chat.clock``), and if the median of the
differences, its own vote (the offset it holds) included, is ``THRESHOLD`` or more, it
signs and checks with its clock moved by that much, and says so to its users. Counting its
own vote keeps one skewed peer from moving a node whose other peers agree with it; two
nodes alone cannot tell which of them is wrong, and then neither moves (of two middle
values, the one nearer what it holds); but a node that has just joined does not vote: the
ring it joined ran before it, and its time is the ring's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.chord import Local, RpcError

from ..wire import verbs as p

THRESHOLD = 30.0   # seconds: closer than this, clocks are taken to agree
PEERS = 5          # how many neighbours are asked


def median_offset(samples: list[float], own: float | None = 0.0) -> float:
    """The median of ``samples`` and our own vote ``own`` (the offset we hold now; None:
    no vote); of two middle values the one nearer ``own`` (nearer 0 without a vote)."""
    values = sorted(samples if own is None else [own, *samples])
    n = len(values)
    if n % 2:
        return values[n // 2]
    low, high = values[n // 2 - 1], values[n // 2]
    anchor = own or 0.0
    return low if abs(low - anchor) <= abs(high - anchor) else high


def describe(offset: float) -> str:
    """``offset`` (ours minus the ring's, seconds) in words: '15 min 2 s ahead'."""
    seconds = round(abs(offset))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    parts = ([f"{hours} h"] if hours else []) + ([f"{minutes} min"] if minutes else []) \
        + ([f"{seconds} s"] if seconds or not (hours or minutes) else [])
    return f"{' '.join(parts)} {'ahead of' if offset > 0 else 'behind'}"


class PeerClock:
    """``now()``: the wall clock ``raw`` plus the offset measured against peers."""

    def __init__(self, raw: Callable[[], float]) -> None:
        self.raw = raw
        self.offset = 0.0   # added to ``raw``: the ring's time minus ours

    def now(self) -> float:
        return self.raw() + self.offset

    def handlers(self) -> dict[p.Verb, p.Handler]:
        return {p.CLOCK: self.rpc_clock}

    async def rpc_clock(self, d: dict) -> dict:
        return {"ok": True, "clock": self.now()}

    async def sample(self, node: Local, peer) -> float | None:
        """The peer's clock minus our raw one, the call's round trip halved; None if it
        does not answer."""
        before = self.raw()
        try:
            reply = await node.user_command(peer, p.CLOCK.type, {})
        except RpcError:
            return None
        after = self.raw()
        clock = reply.get("clock") if isinstance(reply, dict) else None
        if not isinstance(clock, (int, float)):
            return None
        return float(clock) - (before + after) / 2

    async def measure(self, node: Local, joining: bool = False) -> float | None:
        """Ask up to ``PEERS`` neighbours; adopt their median offset if it is over the
        threshold (else none). Returns the new offset if it changed noticeably, else None.

        ``joining``: we just joined a ring that ran before us, so its nodes' time is the
        ring's: our own clock is not counted (else, with one neighbour, nobody moves)."""
        me = node.address
        peers = []
        for remote in (*node.successors(), node.predecessor(), *node.fingers()):
            if remote is not None and remote.address != me and remote.address not in peers:
                peers.append(remote.address)
        if not peers:
            return None
        got = await asyncio.gather(*(self.sample(node, a) for a in peers[:PEERS]))
        samples = [s for s in got if s is not None]
        if not samples:
            return None
        measured = median_offset(samples, None if joining else self.offset)
        new = measured if abs(measured) >= THRESHOLD else 0.0
        if abs(new - self.offset) < THRESHOLD / 2:
            return None
        self.offset = new
        return new
