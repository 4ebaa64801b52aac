"""Direct connections through NATs: a coordinated TCP simultaneous open (DCUtR's idea).

Two clients of the ring behind NATs talk through a relay. Where their routers keep one
port mapping per local endpoint (Linux's default masquerade, most home routers), each
can reach the other directly: both connect, at the same moment, *from the local port
their relay connection uses* to the address the relay sees the other at. Each outgoing
SYN opens its own router's mapping for the other's address; the other's SYN, crossing
it, is let in as an answer, and TCP's simultaneous open makes one connection of the two.
Behind a router that picks a new source port per connection (``masquerade random``,
symmetric NAT) the port the relay saw is not the port the SYN leaves from: the attempt
fails and the clients stay on the relay.

The low-level part lives here; wiring it into client mode is natrelay's (issue 20, part
B):

- ``reusable_socket`` / ``open_reusable``: a TCP socket bound with SO_REUSEADDR and
  SO_REUSEPORT, so the relay connection and the punch can share one local port. The
  relay connection must be opened this way for a punch to be possible at all.
- ``simultaneous_open(local_port, peer)``: a few connects from that port to the peer's
  observed address, each bounded; the connected socket, or None.
- the coordination, relayed: ``connect_message`` (A → B: "my observed addresses"), the
  same back (B → A; A measures the round trip), ``sync_message`` (A → B). A starts half a
  round trip after sending sync, B on receiving it (``Coordinator``), so both SYNs leave
  at about the same time. ``parse`` checks a message from the network (hostile until
  checked: a step, at most ``MAX_ADDRESSES`` addresses that are neither wildcards nor
  port 0).

A client must dial only addresses its relay vouches for (the address the *relay* saw the
other client at), never the ones a peer names about itself: otherwise a peer could make
it send SYNs anywhere. ``parse`` returns what the peer said; the relay's word is the
caller's to compare with.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from .address import Address, AddressError

KIND = "holepunch"
STEPS = ("connect", "sync")
MAX_ADDRESSES = 4
TRIES = 3              # connects per punch
ATTEMPT_TIMEOUT = 1.5  # each (a kernel SYN retransmit comes after 1 s)
SPACING = 0.1          # between a failed connect and the next

MakeSocket = Callable[[int], socket.socket]   # a new TCP socket of an address family


def reusable_socket(family: int = socket.AF_INET, local_port: int = 0,
                    make: MakeSocket = socket.socket) -> socket.socket:
    """A non-blocking TCP socket bound to ``local_port`` (0: any) with SO_REUSEADDR and
    SO_REUSEPORT: another socket made so may bind the same port while this one is in use."""
    sock = make(family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", local_port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _family(address: Address) -> int:
    return socket.AF_INET6 if ":" in address.host else socket.AF_INET


async def open_reusable(address: Address, local_port: int = 0, timeout: float = 3.0,
                        make: MakeSocket = socket.socket) -> socket.socket:
    """A connection to ``address`` (a relay) from a reusable local port: the port a later
    ``simultaneous_open`` connects from. Raises OSError or TimeoutError."""
    sock = reusable_socket(_family(address), local_port, make)
    try:
        async with asyncio.timeout(timeout):
            await asyncio.get_running_loop().sock_connect(sock, (address.host, address.port))
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass(frozen=True)
class Punched:
    """How a punch ended: the socket (None: failed), tries made, seconds taken."""

    sock: socket.socket | None
    tries: int
    seconds: float


async def simultaneous_open(local_port: int, peer: Address, *, tries: int = TRIES,
                            attempt_timeout: float = ATTEMPT_TIMEOUT, spacing: float = SPACING,
                            make: MakeSocket = socket.socket) -> Punched:
    """Connect from ``local_port`` to ``peer`` up to ``tries`` times, each within
    ``attempt_timeout``; the peer does the same towards us at the same moment."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    for attempt in range(1, tries + 1):
        sock = reusable_socket(_family(peer), local_port, make)
        try:
            async with asyncio.timeout(attempt_timeout):
                await loop.sock_connect(sock, (peer.host, peer.port))
            return Punched(sock, attempt, time.monotonic() - started)
        except (OSError, TimeoutError):
            sock.close()
        except BaseException:   # cancelled: the socket goes too
            sock.close()
            raise
        if attempt < tries:
            await asyncio.sleep(spacing)
    return Punched(None, tries, time.monotonic() - started)


# -- the coordination, carried by the relay ---------------------------------------------------

class PunchError(ValueError):
    """A coordination message that is not one."""


@dataclass(frozen=True)
class Punch:
    step: str                        # "connect" or "sync"
    addresses: tuple[Address, ...]   # "connect": where the sender was seen; "sync": ()


def connect_message(addresses: list[Address]) -> dict:
    """A → B, and B → A: the addresses the sender's relay connection is seen at."""
    if not 1 <= len(addresses) <= MAX_ADDRESSES:
        raise PunchError(f"1 to {MAX_ADDRESSES} addresses")
    return {"kind": KIND, "step": "connect", "addresses": [str(a) for a in addresses]}


def sync_message() -> dict:
    """A → B: start now (A starts half a round trip later)."""
    return {"kind": KIND, "step": "sync"}


def parse(message: object) -> Punch:
    """A coordination message from the network, checked; PunchError if it is not one."""
    if not isinstance(message, dict) or message.get("kind") != KIND:
        raise PunchError("not a hole-punch message")
    step = message.get("step")
    if step not in STEPS:
        raise PunchError(f"a hole-punch step is one of {STEPS}")
    if step == "sync":
        return Punch("sync", ())
    texts = message.get("addresses")
    if not isinstance(texts, list) or not 1 <= len(texts) <= MAX_ADDRESSES:
        raise PunchError(f"a connect names 1 to {MAX_ADDRESSES} addresses")
    addresses = []
    for text in texts:
        try:
            address = Address.from_wire(text)
        except (AddressError, TypeError, ValueError) as e:
            raise PunchError(f"not an address: {e}") from None
        if address.is_wildcard or address.port == 0:
            raise PunchError(f"{address} cannot be dialled")
        addresses.append(address)
    return Punch("connect", tuple(addresses))


class Coordinator:
    """The initiator's clock: the round trip of connect → connect, and when to start."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sent: float | None = None
        self.rtt: float | None = None

    def sent_connect(self) -> None:
        self._sent = self._clock()

    def got_connect(self) -> None:
        if self._sent is None:
            raise PunchError("a connect answered before ours was sent")
        self.rtt = self._clock() - self._sent

    def delay_after_sync(self) -> float:
        """Seconds to wait after sending sync: half the relayed round trip, when B gets it."""
        if self.rtt is None:
            raise PunchError("no round trip measured yet")
        return self.rtt / 2


def close_quietly(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()
