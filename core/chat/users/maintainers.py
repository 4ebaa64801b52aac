"""Who may deliver a channel to this node's users: its maintainer, as this node finds it.

A ``chat.deliver`` is believed per entry (each one signed), but checking a frame's worth
of signatures costs CPU, and a delivery moves the member's gap detection (``gaps.py``).
So before any of that a member checks who sends it: the host the frame came from (the
connection's, ``CALLER_HOST``; for a client node the host its relay stamped,
``core.chord.relay.caller_origin``) must be the host of a node this node knows as the
channel's maintainer:

- the node that answered the user's own join or send of that channel (the routed reply's
  ``via``: the owner our lookup found), or
- the owner our own lookup of the channel's key finds now: asked when a delivery comes
  from another host, at most once per ``ttl`` per channel (a channel that moved to a new
  maintainer is delivered again by it: its feed backs off and retries).

A few hosts are remembered per channel (``KEPT``). A refused delivery is answered
``{"refused": "not_maintainer"}``: no signature checked, nothing shown, the membership's
last word from its maintainer (``heard``) not refreshed. The ring log says so once per
channel and host (``say``; the first ``TOLD`` pairs), naming the hosts believed instead.

Limit: one host is one identity. Nodes sharing the maintainer's host (loopback, one NAT
address) pass the check; then the signatures are what hold, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from core.chord import RpcError
from core.chord.address import ip_of

from ..model.ids import channel_key
from ..wire.calls import Caller, now

log = logging.getLogger(__name__)

KEPT = 4   # maintainer hosts remembered per channel (the latest)
TOLD = 64  # (channel, host) pairs whose refusal the ring log was told (then: not told)


def _host(host: str) -> str:
    bare = host.strip("[]").partition("%")[0]
    ip = ip_of(bare)
    return bare.lower() if ip is None else ip.compressed


class Maintainers:
    """The maintainers this node knows, per channel, and the check of a delivery's sender.

    Args:
        caller: finds a channel's owner (``Caller.owner``: robust if the node uses it).
        ttl: at most one lookup per channel this often.
        say: a line for the ring log (a refusal, once per channel and host).
    """

    def __init__(self, caller: Caller, ttl: float = 1.0,
                 say: Callable[[str], None] | None = None) -> None:
        self.caller = caller
        self.ttl = ttl
        self.say = say
        self._told: set[tuple[str, str]] = set()
        self._hosts: dict[str, list[str]] = {}      # channel -> maintainer hosts, latest last
        self._looked: dict[str, float] = {}         # channel -> when last looked up
        self._looking: dict[str, asyncio.Future] = {}
        self.lookups = 0    # lookups made for deliveries from an unknown host
        self.refused = 0    # deliveries refused

    def saw(self, channel: str, address: object) -> None:
        """``address`` (a node's ``host:port``, as a routed reply's ``via`` names it)
        answered for ``channel`` as its maintainer."""
        if isinstance(address, str) and address:
            host, _, _ = address.rpartition(":")
            self._note(channel, _host(host or address))

    def _note(self, channel: str, host: str) -> None:
        hosts = self._hosts.setdefault(channel, [])
        if host in hosts:
            hosts.remove(host)
        hosts.append(host)
        del hosts[:-KEPT]

    def forget(self, channel: str) -> None:
        self._hosts.pop(channel, None)
        self._looked.pop(channel, None)

    async def admits(self, channel: str, origin: str | None) -> bool:
        """Whether a delivery of ``channel`` from host ``origin`` (None: this node itself)
        comes from its maintainer; looks the owner up (bounded) if the host is unknown."""
        if origin is None:
            return True
        host = _host(origin)
        if host in self._hosts.get(channel, ()):
            return True
        if now() - self._looked.get(channel, float("-inf")) >= self.ttl:
            self._looked[channel] = now()
            self._looking[channel] = asyncio.ensure_future(self._look_up(channel))
        looking = self._looking.get(channel)
        if looking is not None:
            await asyncio.shield(looking)
            if host in self._hosts.get(channel, ()):
                return True
        self.refused += 1
        if (channel, host) in self._told or len(self._told) >= TOLD:
            log.debug("refused a delivery of #%s from %s: not its maintainer", channel, origin)
        else:
            self._told.add((channel, host))
            known = ", ".join(self._hosts.get(channel, ())) or "none found"
            text = (f"refused deliveries of #{channel} from {origin}: not its maintainer by "
                    f"our lookup (the maintainer's host: {known}); said once")
            if self.say is not None:
                self.say(text)
            else:
                log.info("%s", text)
        return False

    async def _look_up(self, channel: str) -> None:
        self.lookups += 1
        try:
            owner = await self.caller.owner(channel_key(channel))
            self._note(channel, _host(owner.address.host))
        except RpcError as e:
            log.info("looking up the maintainer of #%s failed: %s", channel, e)
        finally:
            self._looking.pop(channel, None)
