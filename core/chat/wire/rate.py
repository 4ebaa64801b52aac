"""Requests and bytes per peer host per second: a token bucket per host, asked once per
served chat request (``verbs.serve``), before its handler runs.

The host is the connection's source address as the transport saw it
(``core.chord.transport.CALLER_HOST``); a call a node makes to itself has none and is never
limited. An over-limit request is answered ``retry`` (``{"retry": true, "why": "busy…"}``):
an honest sender backs off and asks again (``calls.Backoff``), an attacker's request costs
the node a dictionary lookup and no handler.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable

from core.chord.address import ip_of
from core.chord.bucket import Bucket
from core.chord.transport import CALLER_HOST

from ..model.limits import Limits

MAX_HOSTS = 10_000   # buckets kept (least recently used dropped: it starts full again)


def caller_host() -> str | None:
    """The host the request being served came from (None: this node itself), normalized
    (an IPv4 caller on a dual-stack listen is its IPv4 address, no zone)."""
    host = CALLER_HOST.get()
    return None if host is None else normal_host(host)


def normal_host(host: str) -> str:
    """``host`` as compared: an IP address in its compressed form, IPv4-mapped IPv6 as
    IPv4, no zone; a host name lower-cased."""
    bare = host.strip("[]").partition("%")[0]
    ip = ip_of(bare)
    return bare.lower() if ip is None else ip.compressed


CLAIMS = frozenset({"chat.name.set"})   # verbs that also take from the claim bucket


class RateLimiter:
    """The buckets of every peer host: requests, payload bytes and name claims."""

    def __init__(self, limits: Limits, clock: Callable[[], float] | None = None) -> None:
        self.limits = limits
        self._clock = clock
        self._hosts: collections.OrderedDict[str, dict[str, Bucket]] = \
            collections.OrderedDict()
        self.refused = 0

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def _buckets(self, host: str, now: float) -> dict[str, Bucket]:
        buckets = self._hosts.get(host)
        if buckets is None:
            lim = self.limits
            buckets = self._hosts[host] = {
                "requests": Bucket(lim.requests_per_second, lim.request_burst,
                                   lim.request_burst, now),
                "bytes": Bucket(lim.bytes_per_second, lim.byte_burst, lim.byte_burst, now),
                "claims": Bucket(lim.claims_per_second, lim.claim_burst, lim.claim_burst, now),
            }
            while len(self._hosts) > MAX_HOSTS:
                self._hosts.popitem(last=False)
        else:
            self._hosts.move_to_end(host)
        return buckets

    def admit(self, verb: str, payload: object, host: str | None = None) -> str | None:
        """None if the request may be served now; else why not. ``host``: the caller
        (default: the request being served; None there means this node itself)."""
        host = caller_host() if host is None else host
        if host is None:
            return None
        now = self._now()
        buckets = self._buckets(host, now)
        why = None
        if not buckets["requests"].take(1, now):
            why = f"more than {self.limits.requests_per_second:g} requests a second from {host}"
        elif not buckets["bytes"].take(payload_size(payload), now):
            why = f"more than {self.limits.bytes_per_second:g} bytes a second from {host}"
        elif verb in CLAIMS and not buckets["claims"].take(1, now):
            why = f"more than {self.limits.claims_per_second:g} name claims a second from {host}"
        if why is not None:
            self.refused += 1
        return why


def payload_size(payload: object) -> int:
    """The payload's size as JSON (what it cost the peer to send, roughly)."""
    try:
        return len(json.dumps(payload, separators=(",", ":")))
    except (TypeError, ValueError):
        return 0
