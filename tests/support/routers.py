"""Homes behind routers, beside the public bridge of tests/support/hosts.py (issue 20).

The bridge of ``hosts.Network`` is "the internet": hosts on it have public addresses from
198.18.0.0/15 and fd00:c0a7::/64. A ``Router`` is such a host with a second side: a LAN
bridge (``lan0``) inside its own namespace, home hosts on it (10.K.0.2.., default route
via 10.K.0.1), IP forwarding on, and an nftables ruleset that does what home routers do:

- ``KEEP``: IPv4 masquerade that keeps the source port where it is free (Linux's default
  port-preserving NAT; one mapping per local endpoint as long as ports do not collide,
  the "endpoint-independent mapping" a TCP simultaneous open needs);
- ``RANDOM``: IPv4 masquerade with ``fully-random`` source ports, a new one per
  connection (symmetric-like: the port one peer sees is not the port another will);
- ``FIREWALL``: IPv6 without NAT, home hosts have addresses of their own
  (fd00:c0a8:K::N/64, routed by every public host made with ``Internet.public``), and a
  stateful firewall: ``ct state established,related accept``, inbound ``drop`` (the
  other routers route there as well, so two such homes can reach each other). It also
  masquerades IPv4 like ``KEEP`` (a dual-stack home).

Every router drops unsolicited inbound (to itself and to its LAN) silently, as home
routers do: nothing answers a stranger's SYN, no RST comes back (only IPv6 neighbour
discovery is let in, without which nothing on the public side could find the router).

    with Network() as net:
        internet = Internet(net)
        server = internet.public()                 # h1: 198.18.0.1
        home = internet.router(KEEP)               # h2: 198.18.0.2 outside, 10.1.0.1 inside
        a, b = home.add_homes(2)                   # 10.1.0.2, 10.1.0.3 behind it
        port = internet.whoami(server)             # answers "HOST PORT\\n": the caller as seen
        assert internet.seen_from(a, server.ipv4, port) == ("198.18.0.2", <a's local port>)

``router.move_home(home)`` carries a home, with whatever runs in it, to ``router``'s LAN
(its old cable and addresses go, it gets new ones: a laptop moving between networks).

Home hosts are ``hosts.Host`` objects (run, socket, connect, tcp_ping work from inside
them) but are not on the public bridge: ``Network.detach``/``partition`` do not move them
(detach their router instead).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field

from .hosts import Host, Network, family_of, ip

KEEP = "keep"
RANDOM = "random"
FIREWALL = "firewall"
KINDS = (KEEP, RANDOM, FIREWALL)

HOME_V6 = ipaddress.IPv6Network("fd00:c0a8::/32")   # fd00:c0a8:K::/64 behind router K


def _lan_v4(k: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.{k}.0.0/24")


def _lan_v6(k: int) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(f"fd00:c0a8:{k:x}::/64")


def ruleset(kind: str) -> str:
    """The router's nftables ruleset (``nft -f -``) for ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"a router is one of {KINDS}, not {kind!r}")
    flags = " fully-random" if kind == RANDOM else ""
    return f"""
flush ruleset
table ip nat {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "eth0" masquerade{flags}
    }}
}}
table inet filter {{
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "eth0" ct state established,related accept
        iifname "eth0" icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert }} accept
        iifname "eth0" drop
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname "lan0" oifname "eth0" accept
        iifname "lan0" oifname "lan0" accept
    }}
}}
"""


def _in(netns: str, *argv: str, input: str | None = None) -> None:
    import subprocess
    done = subprocess.run(["ip", "netns", "exec", netns, *argv], input=input,
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {netns}: {done.stderr.strip()}")


@dataclass(eq=False)
class Router:
    """A host on the public bridge that is also the gateway of a home LAN."""

    internet: Internet = field(repr=False)
    kind: str
    k: int                      # 10.K.0.0/24, fd00:c0a8:K::/64
    host: Host                  # its public side (eth0 on the bridge)
    homes: list[Host] = field(default_factory=list)
    _plugged: int = field(default=0, repr=False)   # LAN ports made so far (addresses)

    @property
    def ipv4(self) -> str:
        """The router's public IPv4 address: where its homes' IPv4 traffic comes from."""
        return self.host.ipv4

    @property
    def netns(self) -> str:
        return self.host.netns

    def add_home(self, name: str | None = None) -> Host:
        """A new host on this router's LAN, its default route through the router."""
        network = self.internet.network
        name = name or f"{self.host.name}h{len(self.homes) + 1}"
        netns = network.add_namespace(name)
        home = Host(network, name, 0, netns, *self._cable(netns))
        self.homes.append(home)
        return home

    def move_home(self, home: Host) -> Host:
        """Unplug ``home`` from its router's LAN and plug it into this one's, while what
        runs in it goes on (a laptop carried to another network): its old addresses go
        with the old cable, so its connections die unanswered; it gets this LAN's
        addresses (``home.ipv4``/``home.ipv6`` change) and default route."""
        for router in self.internet.routers:
            if home in router.homes:
                router.homes.remove(home)
        ip("-n", home.netns, "link", "del", "eth0")   # both ends of the veth pair
        home.ipv4, home.ipv6, home.port = self._cable(home.netns)
        self.homes.append(home)
        return home

    def _cable(self, netns: str) -> tuple[str, str | None, str]:
        """A veth pair from this router's LAN bridge to ``eth0`` in ``netns``, with the
        next free LAN address (and IPv6 behind a FIREWALL) and a default route: (IPv4,
        IPv6 or None, the LAN port's name)."""
        self._plugged += 1
        j = self._plugged
        v4 = _lan_v4(self.k)
        address = str(v4.network_address + 1 + j)
        gateway = str(v4.network_address + 1)
        port = f"l{j}"
        ip("-n", self.netns, "-batch", "-", input=(
            f"link add {port} type veth peer name eth0 netns {netns}\n"
            f"link set {port} master lan0 up\n"))
        commands = (f"addr add {address}/{v4.prefixlen} dev eth0\n"
                    "link set eth0 up\nlink set lo up\n"
                    f"route add default via {gateway}\n")
        ipv6 = None
        if self.kind == FIREWALL:
            v6 = _lan_v6(self.k)
            ipv6 = str(v6.network_address + 1 + j)
            commands += (f"addr add {ipv6}/{v6.prefixlen} dev eth0 nodad\n"
                         f"route add default via {v6.network_address + 1}\n")
        ip("-n", netns, "-batch", "-", input=commands)
        return address, ipv6, port

    def add_homes(self, n: int) -> list[Host]:
        return [self.add_home() for _ in range(n)]


class Internet:
    """The public bridge of ``network`` with routers and homes (see the module's text)."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.routers: list[Router] = []
        self.public_hosts: list[Host] = []

    def public(self, name: str | None = None) -> Host:
        """A host on the public bridge that routes to the IPv6 homes behind firewalls."""
        host = self.network.add_host(name)
        for router in self.routers:
            if router.kind == FIREWALL:
                self._route_v6(host, router)
        self.public_hosts.append(host)
        return host

    def publics(self, n: int) -> list[Host]:
        return [self.public() for _ in range(n)]

    def router(self, kind: str, name: str | None = None) -> Router:
        """A router of ``kind`` (KEEP, RANDOM, FIREWALL) on the public bridge."""
        text = ruleset(kind)
        k = len(self.routers) + 1
        host = self.network.add_host(name or f"r{k}")
        v4 = _lan_v4(k)
        commands = ("link add lan0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0\n"
                    "link set lan0 up\n"
                    f"addr add {v4.network_address + 1}/{v4.prefixlen} dev lan0\n")
        if kind == FIREWALL:
            v6 = _lan_v6(k)
            commands += f"addr add {v6.network_address + 1}/{v6.prefixlen} dev lan0 nodad\n"
        ip("-n", host.netns, "-batch", "-", input=commands)
        _in(host.netns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1")
        _in(host.netns, "nft", "-f", "-", input=text)
        router = Router(self, kind, k, host)
        for other in self.routers:   # the routers route to each other's IPv6 homes too
            if other.kind == FIREWALL:
                self._route_v6(host, other)
        self.routers.append(router)
        if kind == FIREWALL:
            for other in [*self.public_hosts, *(r.host for r in self.routers if r is not router)]:
                self._route_v6(other, router)
        return router

    @staticmethod
    def _route_v6(host: Host, router: Router) -> None:
        if host.ipv6 is None or router.host.ipv6 is None:
            return
        ip("-n", host.netns, "-6", "route", "add", str(_lan_v6(router.k)),
           "via", router.host.ipv6)

    # -- an observer: where does a connection come from, as the far end sees it? --------

    def whoami(self, host: Host, address: str | None = None, port: int = 0) -> int:
        """Serve on ``host`` a TCP server that answers each connection with the caller's
        address as seen there ("HOST PORT\\n"), held open until the caller closes it;
        return its port."""
        return self.network.serve(host, _whoami, address, port)

    @staticmethod
    def seen_from(host: Host, address: str, port: int,
                  timeout: float = 3.0) -> tuple[str, int, int]:
        """Connect from ``host`` to a ``whoami`` server: (the host it saw, the port it
        saw, our local port)."""
        with host.socket(family_of(address)) as sock:
            seen_host, seen_port = observed(sock, address, port, timeout)
            return seen_host, seen_port, sock.getsockname()[1]


def bound(host: Host, port: int = 0, family: int = socket.AF_INET) -> socket.socket:
    """A TCP socket of ``host`` bound to local ``port`` with SO_REUSEADDR and SO_REUSEPORT
    (so several connections, or a listener, can share the port: hole punching's need)."""
    sock = host.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    return sock


def observed(sock: socket.socket, address: str, port: int,
             timeout: float = 3.0) -> tuple[str, int]:
    """Connect ``sock`` to a ``whoami`` server: (host, port) it saw us at. Leaves it open."""
    sock.settimeout(timeout)
    sock.connect((address, port))
    got = b""
    while not got.endswith(b"\n"):
        chunk = sock.recv(256)
        if not chunk:
            break
        got += chunk
    seen_host, seen_port = got.decode().split()
    return seen_host, int(seen_port)


async def _whoami(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername")
    try:
        writer.write(f"{peer[0]} {peer[1]}\n".encode())
        await writer.drain()
        while await reader.read(4096):   # held open until the caller closes (as a relay is)
            pass
    except OSError:
        pass
    finally:
        writer.close()


# -- a hole punch between two homes (tests/net/test_holepunch.py, bench/holepunch.py) --------

@dataclass(frozen=True)
class PunchTrial:
    """One coordinated simultaneous open between two homes, seen from outside."""

    direct: bool          # a connection was made and a byte crossed it
    seconds: float        # until both sides had a connection, or gave up
    seen: tuple[str, str]  # where the relay saw each home


def punch(internet: Internet, relay: Host, relay_port: int, a: Host, b: Host,
          tries: int = 3, ipv6: bool = False, skew: float = 0.0) -> PunchTrial:
    """Each home connects to a ``whoami`` server on ``relay`` (standing in for the relay:
    it tells each where it is seen) from a reusable port and keeps that connection open;
    then both connect from that port to where the other was seen, at the same moment.
    ``ipv6``: over IPv6 (the relay's ``whoami`` must listen on its IPv6 address);
    ``skew``: b starts this many seconds after a (a coordination that is off)."""
    from core.chord import Address
    from core.chord.holepunch import close_quietly, open_reusable, simultaneous_open

    async def run() -> PunchTrial:
        loop = asyncio.get_running_loop()
        target = Address(relay.ipv6 if ipv6 else relay.ipv4, relay_port)
        socks: list[socket.socket] = []
        try:
            seen = []
            for home in (a, b):
                sock = await open_reusable(target, make=home.socket)
                socks.append(sock)
                got = b""
                async with asyncio.timeout(3):
                    while not got.endswith(b"\n"):
                        got += await loop.sock_recv(sock, 256)
                host, port = got.decode().split()
                seen.append((Address(host, int(port)), sock.getsockname()[1]))
            (seen_a, port_a), (seen_b, port_b) = seen
            async def late(coro):
                await asyncio.sleep(skew)   # the skew itself, not a wait for a condition
                return await coro

            ends = await asyncio.gather(
                simultaneous_open(port_a, seen_b, tries=tries, make=a.socket),
                late(simultaneous_open(port_b, seen_a, tries=tries, make=b.socket)))
            socks += [e.sock for e in ends if e.sock is not None]
            seconds = max(e.seconds for e in ends)
            direct = all(e.sock is not None for e in ends)
            if direct:
                await loop.sock_sendall(ends[0].sock, b"x")
                async with asyncio.timeout(3):
                    direct = await loop.sock_recv(ends[1].sock, 1) == b"x"
            return PunchTrial(direct, seconds, (str(seen_a), str(seen_b)))
        finally:
            for sock in socks:
                close_quietly(sock)

    return internet.network.loop.call(run(), timeout=60)
