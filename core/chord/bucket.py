"""A token bucket, the one rate limit the overlay and the chat share: the relay's bytes per
client and in all (``relay.py``), the ring's requests per peer host (``protocol.py``,
``HostBuckets``), the chat's requests, bytes and claims per peer host
(``core.chat.wire.rate``) — pure."""

from __future__ import annotations

import collections
from dataclasses import dataclass


@dataclass
class Bucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""
    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, amount: float, now: float) -> bool:
        """Take ``amount`` tokens at time ``now`` if there are as many; False (none taken)
        if not."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < amount:
            return False
        self.tokens -= amount
        return True


class HostBuckets:
    """One ``Bucket`` per peer host (``rate`` a second, ``burst`` saved up), the least
    recently used forgotten past ``hosts`` of them (it starts full again)."""

    def __init__(self, rate: float, burst: float, hosts: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.hosts = hosts
        self._buckets: collections.OrderedDict[str, Bucket] = collections.OrderedDict()
        self.refused = 0

    def take(self, host: str, now: float, amount: float = 1.0) -> bool:
        bucket = self._buckets.get(host)
        if bucket is None:
            bucket = self._buckets[host] = Bucket(self.rate, self.burst, self.burst, now)
            while len(self._buckets) > self.hosts:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(host)
        if bucket.take(amount, now):
            return True
        self.refused += 1
        return False
