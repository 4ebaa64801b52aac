"""The peers a node remembers, so that two rings can find each other again after a partition.

Ring unification (T. M. Shafaat, A. Ghodsi, S. Haridi, "Dealing with network partitions
in structured overlay networks", Peer-to-Peer Networking and Applications 2(4), 2009)
needs one thing a Chord node does not keep: nodes it no longer routes through. When a
network splits, each side drops the other side's nodes from its successor list and fingers
as dead; this table keeps them, marked lost, so that the node can probe a few now and then
and notice when one answers again from another ring. Pure: time is passed in.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from .address import Address

REMEMBERED = 64        # peers kept at most
FORGET_LOST = 3600.0   # a peer lost this long (s) is forgotten


@dataclass
class Peer:
    last_seen: float
    lost_at: float | None = None   # when it was dropped as dead; None: in view when last seen


class Peers:
    """A bounded table of remembered peers; the lost ones are kept first."""

    def __init__(self, me: Address, limit: int = REMEMBERED,
                 forget_lost: float = FORGET_LOST) -> None:
        self.me = me
        self.limit = limit
        self.forget_lost = forget_lost
        self.entries: dict[Address, Peer] = {}

    def saw(self, addresses: Iterable[Address | None], now: float) -> None:
        """These peers are alive and known (in our view, or answered a probe)."""
        for a in addresses:
            if a is not None and a != self.me:
                self.entries[a] = Peer(now)
        self._trim(now)

    def lost(self, address: Address, now: float) -> None:
        """``address`` was dropped as dead: remember it as lost (from now, if not already)."""
        if address == self.me:
            return
        peer = self.entries.get(address)
        if peer is None:
            self.entries[address] = Peer(now, now)
        elif peer.lost_at is None:
            peer.lost_at = now
        self._trim(now)

    def candidates(self, in_view: Iterable[Address | None], k: int,
                   rng: random.Random) -> list[Address]:
        """Up to ``k`` peers to probe that are not in our view: lost ones first (after a
        partition, exactly the nodes of the other side), then others, each group shuffled."""
        view = set(in_view)
        lost = [a for a, p in self.entries.items() if p.lost_at is not None and a not in view]
        rest = [a for a, p in self.entries.items() if p.lost_at is None and a not in view]
        rng.shuffle(lost)
        rng.shuffle(rest)
        return (lost + rest)[:k]

    def _trim(self, now: float) -> None:
        for a in [a for a, p in self.entries.items()
                  if p.lost_at is not None and now - p.lost_at > self.forget_lost]:
            del self.entries[a]
        if len(self.entries) > self.limit:
            # the live ones seen longest ago go first: the lost are what a heal needs
            order = sorted(self.entries, key=lambda a: (self.entries[a].lost_at is not None,
                                                        self.entries[a].last_seen))
            for a in order[:len(self.entries) - self.limit]:
                del self.entries[a]

    def seen(self) -> list[Address]:
        """The peers in our view when last seen, not since dropped as dead."""
        return [a for a, p in self.entries.items() if p.lost_at is None]

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, address: object) -> bool:
        return address in self.entries
