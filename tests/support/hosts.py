"""Hosts in Linux network namespaces for tests: one bridge, no way out, partitions on demand.

Each ``Host`` is a network namespace with one interface (``eth0``) holding an address from
198.18.0.0/15 (the benchmarking range, never routed) and a ULA address fd00:c0a7::N/64.
Every host's ``eth0`` is one end of a veth pair whose other end (``pN``) is a port of one
bridge (``br0``). The bridge lives in a namespace of its own (``<prefix>-sw``), not in the
root namespace: the machine's own interfaces, routes and firewall are never touched, the
hosts have no route anywhere but the bridge's subnet, sessions running at once each have
their own bridge (so they may use the same addresses), and deleting the switch namespace
takes the bridge and every veth pair with it.

    with Network() as net:                       # or the ``network`` fixture (tests/net)
        a, b, c, d = net.add_hosts(4)            # h1..h4: 198.18.0.1.., fd00:c0a7::1..
        node = a.run(["python3", "-m", "tui", "--listen", a.address(4000), ...])
        port = net.echo(a)                       # an in-process TCP echo server inside a
        assert b.tcp_ping(a.ipv4, port)          # connect from inside b
        net.detach(a)                            # a's cable is pulled: unreachable
        net.attach(a)                            # and plugged back in
        net.partition([a, b], [c, d])            # two islands, each talking among itself
        net.heal()                               # one network again
        proxy = net.proxy(b, (a.ipv4, 4000), delay=0.1)   # b:proxy.port -> a:4000

``detach`` takes the host's port off the bridge (``nomaster``): the host keeps its link
and addresses, like a machine whose switch uplink is cut, so its peers see timeouts, not
errors; ``partition`` moves groups of ports onto bridges of their own. Processes started
with ``run`` (or with ``host.wrapper`` before their argv, as tests/support/procs.py does) live in
the host; ``socket_in`` makes sockets there for the test process itself. ``Proxy`` is a
small fault-injecting TCP proxy (delay, freeze, drop, refuse, reset) for where a slow or
lossy link is needed (the kernel here has no netem).

Names: every namespace is ``cch-<pid>-<n>-<name>`` (pid of the test session, n counts
networks within it), so ``remove_leftovers()`` can tell the namespaces of a killed run
(its pid is gone) from those of a session still running.

The last part puts chordchat nodes (processes of tests/support/procs.py) on hosts: a ring with one
node per host, a wait until the nodes' successors make one ring, every node joining a
channel; tests/net/test_hosts.py and tests/net/test_partition.py share them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import ipaddress
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .procs import FAST_ARGS, Cluster, Proc, kind

BASE = "cch"
IPV4_NET = ipaddress.IPv4Network("198.18.0.0/15")
IPV6_NET = ipaddress.IPv6Network("fd00:c0a7::/64")
IP_TIMEOUT = 30.0  # one `ip` command, even on a loaded machine
CLONE_NEWNET = 0x40000000
_NAME = re.compile(rf"^{BASE}-(\d+)-(\d+)-")
_counter = iter(range(1, 1 << 30))
_counter_lock = threading.Lock()


class HarnessError(RuntimeError):
    """A namespace, link or address could not be made."""


# -- the `ip` tool ------------------------------------------------------------------------------

def ip(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``ip ARGS``; raise HarnessError with its stderr if it fails and ``check``."""
    done = subprocess.run(["ip", *args], input=input, capture_output=True, text=True,
                          timeout=IP_TIMEOUT)
    if check and done.returncode != 0:
        raise HarnessError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done


def namespaces() -> list[str]:
    """Names of the network namespaces that ``ip netns`` knows."""
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def pids_in(netns: str) -> list[int]:
    out = ip("netns", "pids", netns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _delete_namespace(netns: str, timeout: float = 20.0) -> None:
    """Kill what still runs in ``netns``, then delete it (its links go with it)."""
    deadline = time.monotonic() + timeout
    while (pids := pids_in(netns)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)  # until the kernel has reaped them (ip netns pids is empty)
    ip("netns", "del", netns, check=False)


def _alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie, killed but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def remove_leftovers() -> list[str]:
    """Delete the namespaces of earlier sessions that are gone (killed runs); return them."""
    gone = []
    for name in namespaces():
        match = _NAME.match(name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            _delete_namespace(name)
            gone.append(name)
    return gone


def remove_session() -> None:
    """Delete every namespace this process made (a backstop behind ``Network.close``)."""
    for name in namespaces():
        match = _NAME.match(name)
        if match and int(match.group(1)) == os.getpid():
            _delete_namespace(name)


@functools.cache
def unavailable() -> str | None:
    """Why namespaces cannot be made here (a skip reason), or None if they can."""
    return _why_unavailable()


def _why_unavailable() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "making network namespaces needs root (CI runs these tests as root)"
    if shutil.which("ip") is None:
        return "the `ip` tool (iproute2) is not installed"
    probe = f"{BASE}-{os.getpid()}-0-probe"
    try:
        ip("netns", "add", probe)
    except (HarnessError, OSError, subprocess.TimeoutExpired) as e:
        return f"`ip netns add` failed: {e}"
    ip("netns", "del", probe, check=False)
    return None


# -- entering a namespace from this process -----------------------------------------------------

def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python 3.12+
        os.setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


def socket_in(netns: str, family: int = socket.AF_INET,
              type: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket of ``netns``: made by a short-lived thread that entered the namespace.

    A socket belongs to the namespace it was made in for its whole life, whichever thread
    uses it later, so the test process (and the proxy's loop) can talk from inside a host.
    """
    made: list = []

    def make() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                _setns(fd)  # this thread only
            finally:
                os.close(fd)
            made.append(socket.socket(family, type))
        except BaseException as e:  # carried to the caller
            made.append(e)

    thread = threading.Thread(target=make, name=f"setns-{netns}")
    thread.start()
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


def family_of(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


# -- hosts and the network ----------------------------------------------------------------------

@dataclass(eq=False)
class Host:
    """One machine: a namespace with ``eth0`` on the bridge."""

    network: Network = field(repr=False)
    name: str
    index: int
    netns: str
    ipv4: str
    ipv6: str | None  # None where the kernel would not take the address
    port: str = field(repr=False)  # the bridge's end of this host's cable

    @property
    def wrapper(self) -> list[str]:
        """The argv prefix that runs a command inside this host."""
        return ["ip", "netns", "exec", self.netns]

    def run(self, argv: Sequence[str], **popen) -> subprocess.Popen:
        """Start ``argv`` inside this host (``ip netns exec``); killed when the network closes."""
        return self.network.run(self, argv, **popen)

    def address(self, port: int, ipv6: bool = False) -> str:
        """``HOST:PORT`` (``[v6]:PORT`` with ``ipv6``) of this host."""
        if ipv6:
            if self.ipv6 is None:
                raise HarnessError(f"{self.name} has no IPv6 address on this kernel")
            return f"[{self.ipv6}]:{port}"
        return f"{self.ipv4}:{port}"

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM):
        return socket_in(self.netns, family, type)

    def connect(self, address: str, port: int, timeout: float = 3.0) -> socket.socket:
        """A TCP connection from this host (raises OSError, TimeoutError)."""
        sock = self.socket(family_of(address))
        try:
            sock.settimeout(timeout)
            sock.connect((address, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def tcp_ping(self, address: str, port: int, timeout: float = 2.0) -> bool:
        """True if an echo server at address:port answers a ping from this host in time."""
        try:
            with self.connect(address, port, timeout) as sock:
                sock.sendall(b"ping\n")
                got = b""
                while not got.endswith(b"\n"):
                    chunk = sock.recv(64)
                    if not chunk:
                        break
                    got += chunk
                return got == b"ping\n"
        except OSError:  # refused, unreachable, timed out
            return False

    def wait_reachable(self, address: str, port: int, reachable: bool = True,
                       timeout: float = 20.0) -> None:
        """Ping until the answer is ``reachable``; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.tcp_ping(address, port, timeout=1.0) != reachable:
            if time.monotonic() > deadline:
                state = "reachable" if reachable else "unreachable"
                raise AssertionError(f"{address}:{port} not {state} from {self.name} "
                                     f"within {timeout} s")
            time.sleep(0.1)


class Network:
    """A bridge and the hosts on it; ``close`` (or leaving the ``with``) removes everything."""

    def __init__(self) -> None:
        reason = unavailable()
        if reason is not None:
            raise HarnessError(reason)
        with _counter_lock:
            self.prefix = f"{BASE}-{os.getpid()}-{next(_counter)}"
        self.switch = f"{self.prefix}-sw"
        self.hosts: list[Host] = []
        self.ipv6 = True
        self._procs: list[subprocess.Popen] = []
        self._loop: LoopThread | None = None
        self._proxies: list[Proxy] = []
        self._servers: list[asyncio.Server] = []
        self._made: list[str] = []
        self._faulted: set[str] = set()   # namespaces with a cch_fault nft table
        self._readdressed = 0              # hosts given new addresses (readdress)
        try:
            self._add_namespace(self.switch)
            ip("-n", self.switch, "-batch", "-", input=_bridge("br0") + "link set lo up\n")
        except BaseException:
            self.close()
            raise

    def _add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self._made.append(name)
        # No duplicate-address detection on the links made in it, the link-local addresses
        # included (the global ones are added ``nodad``): a router forwards IPv6 only once
        # its own link-local address is no longer tentative (the neighbour solicitation for
        # a forwarded packet's next hop needs one), about 2 s after the link came up, so a
        # home's first connection through a router made just before was dropped.
        subprocess.run(["ip", "netns", "exec", name, "sysctl", "-q", "-w",
                        "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"],
                       capture_output=True, timeout=IP_TIMEOUT, check=False)

    def add_namespace(self, name: str) -> str:
        """A bare namespace ``<prefix>-<name>`` (no links), deleted when the network closes;
        returns its full name (for machines built beside the bridge: tests/support/routers.py)."""
        netns = f"{self.prefix}-{name}"
        self._add_namespace(netns)
        return netns

    def add_host(self, name: str | None = None) -> Host:
        """A new host on the bridge, with the next free addresses."""
        index = len(self.hosts) + 1
        name = name or f"h{index}"
        if any(h.name == name for h in self.hosts):
            raise HarnessError(f"there is already a host named {name!r}")
        netns = f"{self.prefix}-{name}"
        ipv4 = str(IPV4_NET.network_address + index)
        ipv6 = str(IPV6_NET.network_address + index)
        port = f"p{index}"
        self._add_namespace(netns)
        ip("-n", self.switch, "-batch", "-", input=(
            f"link add {port} type veth peer name eth0 netns {netns}\n"
            f"link set {port} master br0 up\n"))
        ip("-n", netns, "-batch", "-", input=(
            f"addr add {ipv4}/{IPV4_NET.prefixlen} dev eth0\n"
            "link set eth0 up\n"
            "link set lo up\n"))
        if self.ipv6:
            # nodad: usable at once, no duplicate-address detection (we hand them out)
            done = ip("-n", netns, "addr", "add", f"{ipv6}/{IPV6_NET.prefixlen}", "dev", "eth0",
                      "nodad", check=False)
            if done.returncode != 0:
                self.ipv6 = False  # e.g. IPv6 disabled in this kernel
        host = Host(self, name, index, netns, ipv4, ipv6 if self.ipv6 else None, port)
        self.hosts.append(host)
        return host

    def add_hosts(self, n: int) -> list[Host]:
        return [self.add_host() for _ in range(n)]

    # -- processes ------------------------------------------------------------------------

    def run(self, host: Host, argv: Sequence[str], **popen) -> subprocess.Popen:
        """Start ``argv`` inside ``host``; it is SIGKILLed when the network closes."""
        process = subprocess.Popen([*host.wrapper, *argv], **popen)
        self._procs.append(process)
        return process

    def readdress(self, host: Host) -> Host:
        """Give ``host`` new addresses on the same bridge while what runs in it goes on (a
        machine that gets another address from its network): the old ones go at once, so
        connections to them die unanswered; ``host.ipv4``/``host.ipv6`` change. The new
        IPv4 address is in 198.18.1.0/24 (198.18.0.N are ``add_host``'s)."""
        self._readdressed += 1
        n = self._readdressed
        if n > 250:
            raise HarnessError("no more addresses to move hosts to")
        ipv4 = str(IPV4_NET.network_address + 256 + n)
        ipv6 = str(IPV6_NET.network_address + 0x10000 + n) if host.ipv6 else None
        commands = ("addr flush dev eth0 scope global\n"
                    f"addr add {ipv4}/{IPV4_NET.prefixlen} dev eth0\n")
        if ipv6 is not None:
            commands += f"addr add {ipv6}/{IPV6_NET.prefixlen} dev eth0 nodad\n"
        ip("-n", host.netns, "-batch", "-", input=commands)
        host.ipv4, host.ipv6 = ipv4, ipv6
        return host

    # -- partitions -----------------------------------------------------------------------

    def detach(self, *hosts: Host) -> None:
        """Pull the hosts' cables out of the switch: each reaches nobody, nobody reaches it."""
        for host in hosts:
            ip("-n", self.switch, "link", "set", host.port, "nomaster")

    def attach(self, *hosts: Host) -> None:
        """Plug the hosts back into the main bridge (no STP: forwarding at once)."""
        for host in hosts:
            ip("-n", self.switch, "link", "set", host.port, "master", "br0")

    def attached(self, host: Host) -> bool:
        """True if the host's cable is in the main bridge."""
        out = ip("-n", self.switch, "-o", "link", "show", host.port).stdout
        return " master br0 " in out

    def partition(self, *groups: Sequence[Host]) -> None:
        """Split the network into islands: the hosts of each group talk only among
        themselves (group i on bridge i; hosts in no group stay on the main bridge)."""
        for i, group in enumerate(groups[1:], start=1):
            bridge = f"br{i}"
            if ip("-n", self.switch, "link", "show", bridge, check=False).returncode != 0:
                ip("-n", self.switch, "-batch", "-", input=_bridge(bridge))
            for host in group:
                ip("-n", self.switch, "link", "set", host.port, "master", bridge)
        if groups:
            self.attach(*groups[0])

    def heal(self) -> None:
        """Every host back on the main bridge."""
        self.attach(*self.hosts)

    # -- firewall faults between two hosts (nftables in their namespaces) ------------------

    def cut(self, a: Host, b: Host) -> None:
        """``a`` and ``b`` stop reaching each other (their packets to each other dropped, in
        both namespaces), every other pair of hosts unchanged: non-transitive connectivity."""
        self.lossy(a, b, 100)
        self.lossy(b, a, 100)

    def lossy(self, source: Host, to: Host, percent: int) -> None:
        """Drop ``percent`` % of the packets from ``source`` to ``to`` (one direction: what
        ``to`` sends back passes). 100 is a one-way cut."""
        rule = (f"numgen random mod 100 < {percent} " if percent < 100 else "") + "drop"
        self._nft(source, f"add rule inet cch_fault out ip daddr {to.ipv4} {rule}")
        if source.ipv6 and to.ipv6:
            self._nft(source, f"add rule inet cch_fault out ip6 daddr {to.ipv6} {rule}")

    def uncut(self, *hosts: Host) -> None:
        """Remove every firewall fault of ``hosts`` (all hosts if none named)."""
        for host in hosts or self.hosts:
            if host.netns in self._faulted:
                _nft_in(host.netns, "delete table inet cch_fault")
                self._faulted.discard(host.netns)

    def _nft(self, host: Host, command: str) -> None:
        if host.netns not in self._faulted:
            _nft_in(host.netns, "add table inet cch_fault\n"
                    "add chain inet cch_fault out { type filter hook output priority 0; }")
            self._faulted.add(host.netns)
        _nft_in(host.netns, command)

    # -- in-process servers and proxies ---------------------------------------------------

    @property
    def loop(self) -> LoopThread:
        if self._loop is None:
            self._loop = LoopThread(f"{self.prefix}-loop")
        return self._loop

    def echo(self, host: Host, address: str | None = None, port: int = 0) -> int:
        """Serve a TCP echo on ``host`` (its IPv4 address unless told); return the port."""
        return self.serve(host, _echo, address, port)

    def serve(self, host: Host, handler, address: str | None = None, port: int = 0) -> int:
        """Serve TCP on ``host`` with ``handler(reader, writer)`` (an asyncio stream
        handler, run on the network's loop); return the port. Stopped when the network closes."""
        address = address or host.ipv4
        sock = host.socket(family_of(address))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(64)
        sock.setblocking(False)
        self._servers.append(self.loop.call(asyncio.start_server(handler, sock=sock)))
        return sock.getsockname()[1]

    def proxy(self, host: Host, target: tuple[str, int], address: str | None = None,
              port: int = 0, **faults) -> Proxy:
        """A ``Proxy`` living on ``host`` that forwards to ``target``; see ``Proxy``."""
        proxy = Proxy(self.loop, host, target, address or host.ipv4, port, **faults)
        self._proxies.append(proxy)
        return proxy

    # -- the end --------------------------------------------------------------------------

    def close(self) -> None:
        """Kill our processes, stop servers and proxies, delete every namespace we made."""
        for process in self._procs:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        for process in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        for proxy in self._proxies:
            with contextlib.suppress(Exception):
                proxy.close()
        if self._loop is not None:
            for server in self._servers:
                self._loop.soon(server.close)  # its socket holds the namespace alive
            self._loop.close()
            self._loop = None
        for name in reversed(self._made):  # hosts first, the switch last
            _delete_namespace(name)
        self._made.clear()

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _nft_in(netns: str, commands: str) -> None:
    """``nft -f -`` inside ``netns``; HarnessError with its stderr if it fails."""
    done = subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=commands,
                          capture_output=True, text=True, timeout=IP_TIMEOUT)
    if done.returncode != 0:
        raise HarnessError(f"nft in {netns}: {done.stderr.strip() or done.returncode}")


def _bridge(name: str) -> str:
    # no STP (a port forwards as soon as it is plugged in); no multicast snooping (IPv6
    # neighbour discovery is flooded, never held back waiting for a querier)
    return (f"link add {name} type bridge stp_state 0 forward_delay 0 mcast_snooping 0\n"
            f"link set {name} up\n")


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


# -- an asyncio loop on a thread of its own -----------------------------------------------------

class LoopThread:
    """An event loop running on a background thread; ``call`` runs a coroutine on it."""

    def __init__(self, name: str = "hosts-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def soon(self, fn, *args) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        if not self.loop.is_running():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.call(cancel_all(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


# -- the fault-injecting proxy ------------------------------------------------------------------

class Proxy:
    """A TCP proxy on a host that forwards to a target, with faults set while it runs.

    Faults (plain attributes, read for every chunk, so a test may change them any time):
    ``connect_timeout`` bounds the dial to the target (then the client is reset);
    ``delay`` seconds added to each chunk in each direction, plus up to ``jitter`` more
    (order is kept); ``reset_rate``, the chance that a chunk resets its connection instead
    of passing (a lossy link, as TCP sees one); ``refuse``, new connections are reset at
    once. ``freeze()`` holds every byte (connections stay open, nothing passes: a link
    that went silent) until ``thaw()``; ``drop()`` resets every open connection.
    """

    def __init__(self, loop: LoopThread, host: Host, target: tuple[str, int], address: str,
                 port: int = 0, *, delay: float = 0.0, jitter: float = 0.0,
                 reset_rate: float = 0.0, refuse: bool = False, connect_timeout: float = 10.0,
                 seed: int = 0) -> None:
        self._loop, self.host, self.target = loop, host, target
        self.delay, self.jitter, self.reset_rate, self.refuse = delay, jitter, reset_rate, refuse
        self.connect_timeout = connect_timeout
        self.accepted = 0
        self.resets = 0
        self._random = random.Random(seed)
        self._links: set[_Link] = set()
        sock = host.socket(family_of(address))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.address = f"[{address}]:{self.port}" if ":" in address else f"{address}:{self.port}"
        self._flowing = loop.call(_make_event())
        self._server = loop.call(asyncio.start_server(self._accept, sock=sock))

    # -- control (from the test's thread) -------------------------------------------------

    def freeze(self) -> None:
        """Hold every byte from now on (returns once the proxy has stopped passing them)."""
        self._loop.call(_run(self._flowing.clear))

    def thaw(self) -> None:
        """Pass bytes again, the held ones first."""
        self._loop.call(_run(self._flowing.set))

    def drop(self) -> int:
        """Reset every open connection; return how many there were."""
        async def drop_all() -> int:
            links = list(self._links)
            for link in links:
                link.reset()
            return len(links)
        return self._loop.call(drop_all())

    @property
    def connections(self) -> int:
        return len(self._links)

    def close(self) -> None:
        async def shut() -> None:
            self._server.close()
            for link in list(self._links):
                link.reset()
        self._loop.call(shut())

    # -- the forwarding (on the loop) -----------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.refuse:
            _reset(writer)
            return
        loop = asyncio.get_running_loop()
        # made on a thread that enters the namespace: do not hold up the loop meanwhile
        upstream = await loop.run_in_executor(None, self.host.socket, family_of(self.target[0]))
        upstream.setblocking(False)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.sock_connect(upstream, self.target)
            up_reader, up_writer = await asyncio.open_connection(sock=upstream)
        except (OSError, TimeoutError):
            upstream.close()
            _reset(writer)
            return
        link = _Link(self, (reader, writer), (up_reader, up_writer))
        self._links.add(link)
        try:
            await link.run()
        finally:
            self._links.discard(link)

    def _due(self, after: float) -> float:
        now = asyncio.get_running_loop().time()
        extra = self._random.uniform(0, self.jitter) if self.jitter else 0.0
        return max(after, now + self.delay + extra)

    def _lose(self) -> bool:
        return bool(self.reset_rate) and self._random.random() < self.reset_rate


class _Link:
    """One proxied connection: two directions, each a reader and a paced writer."""

    def __init__(self, proxy: Proxy, client, upstream) -> None:
        self.proxy = proxy
        self.client, self.upstream = client, upstream
        self.tasks: list[asyncio.Task] = []

    async def run(self) -> None:
        self.tasks = [asyncio.ensure_future(self._direction(*pair)) for pair in
                      ((self.client[0], self.upstream[1]), (self.upstream[0], self.client[1]))]
        # either side closing ends the connection (chordchat never half-closes)
        await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for writer in (self.client[1], self.upstream[1]):
            writer.close()

    async def _direction(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue = asyncio.Queue(maxsize=256)  # bounded: backpressure when frozen

        async def read() -> None:
            due = 0.0
            try:
                while data := await reader.read(65536):
                    due = self.proxy._due(due)
                    await queue.put((due, data))
            except OSError:
                pass
            await queue.put((due, b""))

        reading = asyncio.ensure_future(read())
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, data = await queue.get()
                await self.proxy._flowing.wait()
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                if not data:
                    return
                if self.proxy._lose():
                    self.proxy.resets += 1
                    self.reset()
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            return
        finally:
            reading.cancel()

    def reset(self) -> None:
        for writer in (self.client[1], self.upstream[1]):
            _reset(writer)
        for task in self.tasks:
            task.cancel()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (linger 0), as a lost link or a crashed peer looks to the other end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _run(fn, *args):
    return fn(*args)


async def _make_event() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


# -- chordchat nodes on hosts (processes of tests/support/procs.py) --------------------------

# the test settings of tests/support/procs.py, but with ring changes printed (for wait_one_ring)
RING_ARGS = tuple(a for a in FAST_ARGS if a != "--quiet")
NICKS = ["alice", "bob", "carol", "dave", "erin", "frank"]
PORT = 4000


def start_ring_on(cluster: Cluster, on: list[Host], ipv6: bool = False,
                  wildcard: str | None = None) -> list[Proc]:
    """A node per host, listening on the host's own address, or on ``wildcard`` and
    advertising the host's address; node i joins through node (i - 1) // 2, as in
    ``Cluster.start_ring``."""
    procs: list[Proc] = []
    for i, (host, nick) in enumerate(zip(on, NICKS, strict=False)):
        bootstrap = procs[(i - 1) // 2] if i else None
        address = host.address(PORT, ipv6)
        listen, args = ((address, RING_ARGS) if wildcard is None else
                        (f"{wildcard}:{PORT}", (*RING_ARGS, "--advertise", address)))
        procs.append(cluster.start(nick, bootstrap=bootstrap, wrapper=host.wrapper,
                                   listen=listen, fast=False, args=args, timeout=60))
    return procs


def successor(proc: Proc) -> str | None:
    changes = proc.matching(kind("ring_change", kind="successor"))
    return changes[-1]["new"] if changes else None


def wait_one_ring(procs: list[Proc], timeout: float = 60.0) -> None:
    """Wait until following successors from any node visits every node once."""
    addresses = {p.address: p for p in procs}
    deadline = time.monotonic() + timeout
    while True:
        walk, at = [], procs[0].address
        while at in addresses and at not in walk:
            walk.append(at)
            at = successor(addresses[at])
        if len(walk) == len(procs) and at == procs[0].address:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no single ring of {len(procs)} within {timeout} s: "
                                 f"successors {[(p.nick, successor(p)) for p in procs]}")
        time.sleep(0.1)


def join_all(procs: list[Proc], channel: str) -> None:
    """Every node joins ``#channel``; returns once each has been told it joined."""
    for p in procs:
        p.send(f"join #{channel}")
    for p in procs:
        p.wait_for(kind("joined", channel=channel), what=f"joined #{channel}")
