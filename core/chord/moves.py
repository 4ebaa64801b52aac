"""Has this host's address changed under a running full member? (a laptop carried to
another network; docs/nat.md, "A full member that moves")

A full member's ring id is the hash of its address, so a member whose address is gone
must start again elsewhere (``Local.relocate``). Whether it is gone is asked of the host,
cheaply, not guessed from failing calls (a member that loses every neighbour at once may
as well have lost its cable for a moment, or be cut off by a partition, where starting
again would be wrong):

- a member that listens on a specific address, or whose address is one of this host's
  own (a wildcard listen that learned it), still has it while the kernel lets a socket
  bind it: ``bindable``, one ``bind()`` of a UDP socket on port 0, nothing sent. The
  kernel refuses (EADDRNOTAVAIL) the moment the address is gone from every interface;
- a member whose address is not one of the host's own (behind a forwarded port: the
  router's public address) is watched by the address its packets toward the ring leave
  from (``source_toward``: a UDP socket ``connect()``ed to a ring node, nothing sent; the
  kernel picks the source by its routes). When that changes, the host is on another
  network.

Neither says whether the ring can reach the new address: the dial-back at the new start
does (reachability.py), and it makes the node a full member again or a client.
"""

from __future__ import annotations

import socket

from .address import Address, ip_of

CHECK_EVERY = 1.0   # seconds between two looks (a bind or a connect of a UDP socket)
# where a node that knows no other node looks for its way out (the documentation
# addresses, RFC 5737 and 3849: only the route to them is looked up, nothing is sent)
ANYWHERE = {socket.AF_INET: Address("192.0.2.1", 9), socket.AF_INET6: Address("2001:db8::1", 9)}


def _family(host: str) -> int:
    ip = ip_of(host)
    return socket.AF_INET6 if ip is not None and ip.version == 6 else socket.AF_INET


def bindable(host: str) -> bool:
    """Whether ``host`` is (still) one of this host's addresses."""
    try:
        with socket.socket(_family(host), socket.SOCK_DGRAM) as sock:
            sock.bind((host, 0))
    except OSError:
        return False
    return True


def source_toward(peer: Address) -> str | None:
    """The local address packets to ``peer`` leave from now (None: no route)."""
    try:
        with socket.socket(_family(peer.host), socket.SOCK_DGRAM) as sock:
            sock.connect((peer.host, peer.port))
            host = sock.getsockname()[0]
    except OSError:
        return None
    ip = ip_of(host)
    return ip.compressed if ip is not None else None


class AddressWatch:
    """Tells when a running full member's address has gone (``gone``), and from which
    local address it may start again (``new_listen``).

    Args:
        listen: the address the node was told to listen on (a wildcard, or a host's own).
        address: the address it took (its ring address: advertised or learned).
    """

    def __init__(self, listen: Address, address: Address) -> None:
        self.listen = listen
        self.address = address
        # the address to watch by binding it: the listen address, else the learned one
        # when it is this host's own; None: watch the way out instead
        host = None if listen.is_wildcard else listen.host
        if host is None and bindable(address.host):
            host = address.host
        self.own = host
        self.source: str | None = None   # the way out at the first look (own is None)

    def gone(self, ring: list[Address]) -> str | None:
        """Why the address is gone (a line for the ring log); None while it is not.
        ``ring``: ring nodes to find the way out toward (successors, the bootstrap)."""
        if self.own is not None:
            if bindable(self.own):
                return None
            return f"{self.own} is no longer an address of this host"
        for peer in ring:
            source = source_toward(peer)
            if source is None:
                continue
            if self.source is None:
                self.source = source
                return None
            if source != self.source:
                return (f"packets to the ring leave from {source} now, no longer from "
                        f"{self.source}")
            return None
        return None

    def new_listen(self, ring: list[Address]) -> Address | None:
        """Where to listen at the new address: the same wildcard, or this host's address
        toward the ring on the same port; None while there is no way to the ring yet. A
        node that knows no other node takes its way out toward anywhere (its default
        route)."""
        ring = ring or [ANYWHERE[_family(self.own or self.listen.host)]]
        if self.listen.is_wildcard:
            return self.listen if any(source_toward(p) for p in ring) else None
        for peer in ring:
            source = source_toward(peer)
            if source is not None and source != self.own:
                return Address(source, self.listen.port)
        return None
