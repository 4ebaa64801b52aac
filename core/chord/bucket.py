"""A token bucket, the one rate limit the overlay and the chat share: the relay's bytes per
client and in all (``relay.py``), the chat's requests, bytes and claims per peer host
(``core.chat.wire.rate``) — pure."""

from __future__ import annotations

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
