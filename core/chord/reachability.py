"""Reachability, found and not guessed: may this node be a full member of the ring?

A node that others cannot dial must not take a place in the ring: the keys that fall to
it would be lost, its neighbours would fail to reach it, its registrations would time
out. Whether others can dial it is asked of the ring, not guessed from the addresses a
machine has (AutoNAT's idea, libp2p):

- the starting node picks **helpers**: its bootstrap and the nodes of the bootstrap's
  successor list, distinct hosts first (distinct /24s or /48s first where addresses are
  global, ``placement.prefix_of``), up to ``HELPERS``;
- it asks each ``dial_back(ports, nonce)``. A helper takes the host the request came
  from (the connection's source, ``CALLER_HOST``), opens a **new** connection to that
  host at each port asked (the claimed port, and the listen port if another), and calls
  ``dialled(nonce)`` there: only the asker knows the nonce, so a yes means "I reached
  you". It answers where it saw the asker and which ports it reached;
- that is done in ``rounds`` rounds ``gap`` seconds apart (a fresh connection each
  time): the node is **reachable** only if, in every round, at least
  min(``NEEDED``, helpers) helpers reached it at the same address (a helper that does
  not answer the asker at all is not counted among the helpers: connectivity need not be
  transitive, and a NAT lets its node out, so only a firewall between the two of them
  explains it). Then its address is
  that one (the host seen, the port claimed): a wildcard listen learns its address this
  way, and a node listening on a LAN address behind a forwarded port learns the public one;
- otherwise it is **not reachable** and must not join as a full member (``Local.start``
  raises ``NotReachable``): it is a client of the ring, through relays.

A helper that refuses because it is **busy** (its bound for the asker's host, below: other
nodes on that host, or behind the same NAT address, asked just before) checked nothing: it
is left out of the count, not counted as a helper that could not reach us. If every helper
asked was busy, nothing was checked and the claimed address is taken as given (as when the
check itself fails: the runtime starts a full member), unless it is a wildcard.

``--advertise HOST:PORT`` is the operator's word: it is checked like any claim when the
helpers see the node call from HOST; when they see another host (a machine whose
outgoing traffic leaves by another address than the one it is dialled at) the helpers
cannot check it — they dial only the host they see — and it is taken as given. A node
that creates a ring (no bootstrap) has nobody to ask and is taken as reachable.

What a helper refuses, so that the verb cannot be used to make nodes dial at will: it
dials only the requester's own observed host, never an address named in the request (no
reflection onto third parties), at most ``MAX_PORTS`` ports per request, each dial
bounded by ``DIAL_TIMEOUT``; per requesting host at most ``PER_HOST`` requests per
``WINDOW`` seconds, and at most ``CONCURRENT`` dials at once in all.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from . import wire
from .address import Address, AddressError, ip_of
from .errors import JoinError, PeerUnreachable, RemoteError, RpcError
from .placement import prefix_of

log = logging.getLogger(__name__)

HELPERS = 3          # asked per round
NEEDED = 2           # that must reach us in every round (fewer if fewer helpers exist)
ROUNDS = 2
ATTEMPTS = 3   # tries of one round before it counts as failed
BOOTSTRAP_TRIES = 3   # asks of the bootstrap for its state (the helpers) before a start fails
DIAL_TIMEOUT = 2.0   # one dial back, connect and answer
MAX_PORTS = 2
PER_HOST = 120       # dial-back requests served per requesting host per WINDOW (many nodes
#                      share a host: a NAT, a machine; each dial goes back only there)
WINDOW = 60.0
CONCURRENT = 16      # dials in flight at once, from all requesters

_NONCE = re.compile(r"[0-9a-f]{16,64}")
BUSY = "too many dial-back requests"   # a helper's refusal: it checked nothing

Dial = Callable[[Address, str, float], Awaitable[bool]]
"""Open a new connection to an address and ask ``dialled(nonce)``: True if it said yes."""


@dataclass(frozen=True)
class Verdict:
    """What the helpers found: reachable or not, where, by how many, and why."""

    reachable: bool
    address: Address | None      # reachable: where others dial it; else None
    seen: str | None             # the host the helpers saw it call from (most of them)
    reached: int                 # helpers that reached it in every round
    asked: int                   # helpers asked
    why: str                     # one line, for the ring log
    checked: bool = True         # False: nobody to ask, or an advertised address taken as given

    def text(self) -> str:
        """The ring log's line."""
        if self.reachable and self.checked:
            return (f"reachable at {self.address} (dialled back by {self.reached} of "
                    f"{self.asked})")
        if self.reachable:
            return f"reachable at {self.address} ({self.why})"
        return f"not reachable from outside: client of the ring through relays ({self.why})"


def unchecked(address: Address, why: str) -> Verdict:
    return Verdict(True, address, None, 0, 0, why, checked=False)


# -- the helper's side: dial back the caller's own host, bounded --------------------------------

class DialBacks:
    """What a node does for others' reachability checks, and the nonces of its own."""

    def __init__(self, dial: Dial, clock: Callable[[], float], *,
                 per_host: int = PER_HOST, window: float = WINDOW,
                 concurrent: int = CONCURRENT, dial_timeout: float = DIAL_TIMEOUT) -> None:
        self._dial = dial
        self._clock = clock
        self.per_host, self.window = per_host, window
        self.concurrent, self.dial_timeout = concurrent, dial_timeout
        self._recent: dict[str, list[float]] = {}
        self._in_flight = 0
        self._nonces: set[str] = set()
        self.served = 0
        self.refused = 0

    # our own checks: the nonces a helper's dial must name
    def new_nonce(self) -> str:
        nonce = secrets.token_hex(16)
        self._nonces.add(nonce)
        return nonce

    def forget(self, nonce: str) -> None:
        self._nonces.discard(nonce)

    def expects(self, nonce: object) -> bool:
        """``dialled(nonce)``: is this one of the nonces our own check handed out?"""
        return isinstance(nonce, str) and nonce in self._nonces

    # another node's check
    async def serve(self, caller_host: str | None, ports: object, nonce: object) -> dict:
        """Dial the caller's host at ``ports``; {"seen": host, "reached": [ports]}."""
        host = observed_host(caller_host)
        wanted = _ports(ports)
        if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
            raise RemoteError("a dial-back nonce is 16 to 64 lower-case hex digits")
        self._admit(host)
        self.served += 1
        self._in_flight += len(wanted)
        try:
            results = await asyncio.gather(*(self._try(Address(host, p), nonce)
                                             for p in wanted))
        finally:
            self._in_flight -= len(wanted)
        return {"seen": host, "reached": [p for p, ok in zip(wanted, results, strict=True) if ok]}

    def _admit(self, host: str) -> None:
        now = self._clock()
        recent = [t for t in self._recent.get(host, ()) if now - t < self.window]
        if len(recent) >= self.per_host or self._in_flight + MAX_PORTS > self.concurrent:
            self.refused += 1
            self._recent[host] = recent
            raise RemoteError(f"{BUSY}: try again later")
        recent.append(now)
        self._recent[host] = recent
        if len(self._recent) > 4096:   # forget quiet hosts, so strangers cannot grow it
            self._recent = {h: ts for h, ts in self._recent.items()
                            if ts and now - ts[-1] < self.window}

    async def _try(self, address: Address, nonce: str) -> bool:
        try:
            return await self._dial(address, nonce, self.dial_timeout)
        except (OSError, TimeoutError, RpcError, wire.FrameError, ValueError, KeyError):
            return False


def observed_host(caller_host: str | None) -> str:
    """The caller's host as an address literal (an IPv4 caller on a dual-stack listen as
    IPv4, no zone); RemoteError if there is none."""
    if caller_host is None:
        raise RemoteError("cannot tell where this call came from")
    ip = ip_of(caller_host)
    if ip is None:
        raise RemoteError(f"cannot dial back {caller_host!r}")
    return ip.compressed


def _ports(value: object) -> list[int]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_PORTS:
        raise RemoteError(f"ask for 1 to {MAX_PORTS} ports")
    ports = []
    for port in value:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise RemoteError("a port is an integer from 1 to 65535")
        if port not in ports:
            ports.append(port)
    return ports


async def dial_tcp(address: Address, nonce: str, timeout: float) -> bool:
    """A new TCP connection (never a pooled one: it must show the address answers now)
    carrying one ``dialled(nonce)`` request; True if the answer is yes."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(address.host, address.port)
        try:
            writer.write(wire.encode({"id": 1, "method": "dialled", "args": {"nonce": nonce}}))
            frames = wire.Frames()
            while True:
                data = await reader.read(4096)
                if not data:
                    return False
                for body in frames.feed(data):
                    rid, ok, value = wire.check_reply(wire.decode_body(body))
                    if rid == 1:
                        return ok and isinstance(value, dict) and value.get("ok") is True
        finally:
            writer.close()


# -- the asker's side ---------------------------------------------------------------------------

Ask = Callable[[Address, list[int], str], Awaitable[dict]]
"""Call ``dial_back(ports, nonce)`` on a helper: its reply."""


def pick_helpers(candidates: Sequence[Address], me: Sequence[Address],
                 count: int = HELPERS) -> list[Address]:
    """Up to ``count`` helpers, distinct prefixes first, then distinct hosts, then any;
    never ourselves."""
    pool = [c for i, c in enumerate(candidates) if c not in me and c not in candidates[:i]]
    chosen: list[Address] = []
    for key in (lambda a: prefix_of(a.host) or a.host, lambda a: a.host, lambda a: a):
        taken = {key(a) for a in chosen}
        for candidate in pool:
            if len(chosen) >= count:
                return chosen
            if candidate not in chosen and key(candidate) not in taken:
                chosen.append(candidate)
                taken.add(key(candidate))
    return chosen


async def check(ask: Ask, helpers: Sequence[Address], dial_backs: DialBacks, *,
                claimed: Address, listen_port: int, advertised: bool,
                rounds: int = ROUNDS, gap: float = 1.0, needed: int = NEEDED) -> Verdict:
    """Ask ``helpers`` to dial us back, ``rounds`` times ``gap`` seconds apart.

    ``claimed``: the address we would take (advertised, or listened on; a wildcard host
    if neither says where), whose port the helpers must reach at the host they see.
    """
    if not helpers:
        return unchecked(claimed, "nobody to ask: it starts the ring")
    ports = [claimed.port] + ([listen_port] if listen_port != claimed.port else [])
    seen: str | None = None
    reached = len(helpers)
    for round_ in range(rounds):
        if round_:
            await asyncio.sleep(gap)
        for _attempt in range(ATTEMPTS):
            # a dial back that timed out on a loaded helper proves nothing: a round fails
            # only when ATTEMPTS tries of it all fall short
            nonce = dial_backs.new_nonce()
            try:
                replies = await asyncio.gather(*(_ask_one(ask, h, ports, nonce)
                                                 for h in helpers))
            finally:
                dial_backs.forget(nonce)
            # a helper we cannot reach ourselves (no answer at all, while others answer: a
            # firewall between the two of us, not a NAT in front of us, which lets us out)
            # says nothing either way, nor does a busy one; one that answers and refuses
            # or lies still counts
            busy = sum(r == _BUSY for r in replies)
            answered = [r for r in replies if isinstance(r, tuple) and r is not UNREACHED]
            checking = len(helpers) - busy - sum(r is UNREACHED for r in replies)
            if busy and not checking:
                if claimed.is_wildcard:
                    return Verdict(False, None, None, 0, len(helpers),
                                   f"the {len(helpers)} nodes asked were busy: nobody told "
                                   "this node its address")
                return unchecked(claimed, f"the {len(helpers)} nodes asked were busy with "
                                          "other dial-backs: not checked")
            need = min(needed, max(1, checking))
            hosts = [r[0] for r in answered]
            if not hosts:
                verdict = Verdict(False, None, None, 0, len(helpers),
                                  f"none of the {len(helpers)} nodes asked answered")
                continue
            seen = max(set(hosts), key=hosts.count)
            if advertised and seen != claimed.host:
                return unchecked(claimed, f"as advertised; the ring sees this node call from "
                                          f"{seen} and dials back only there, so it is not "
                                          "checked")
            here = sum(1 for host, ok_ports in answered
                       if host == seen and claimed.port in ok_ports)
            if here >= need:
                reached = min(reached, here)
                break
            verdict = Verdict(False, None, seen, here, len(helpers),
                              _why_not(seen, claimed, here, len(helpers), round_, listen_port,
                                       answered))
        else:
            return verdict
    address = Address(seen, claimed.port)
    return Verdict(True, address, seen, reached, len(helpers), "")


_BUSY = "busy"
UNREACHED = ("", [])   # _ask_one: the helper did not answer at all (PeerUnreachable)


async def _ask_one(ask: Ask, helper: Address, ports: list[int],
                   nonce: str) -> tuple[str, list[int]] | str | None:
    """(the host it saw, the ports it reached); ``_BUSY`` if it refused as busy (it
    checked nothing); None if it failed."""
    try:
        reply = await ask(helper, ports, nonce)
        host = reply["seen"]
        ok = [p for p in reply["reached"] if p in ports]
        Address(str(host), ports[0])   # a host we could name (else: a lying helper)
        return str(host), ok
    except PeerUnreachable as e:
        log.info("reachability: %s did not answer: %s", helper, e)
        return UNREACHED
    except RemoteError as e:
        log.info("reachability: %s could not help: %s", helper, e)
        return _BUSY if BUSY in str(e) else None
    except (RpcError, KeyError, TypeError, AddressError, ValueError) as e:
        log.info("reachability: %s could not help: %s", helper, e)
        return None


def _why_not(seen: str, claimed: Address, here: int, asked: int, round_: int,
             listen_port: int, answered: list) -> str:
    at = str(Address(seen, claimed.port))
    if round_:
        return f"dialled back at {at} at first, then by only {here} of {asked}"
    if listen_port != claimed.port and any(listen_port in ok for _, ok in answered):
        return (f"{at} did not answer {asked - here} of {asked} dial-backs, though "
                f"{Address(seen, listen_port)} did: is --advertise right?")
    return f"{at}: dialled back by {here} of {asked}"


# -- for Local: the error a node that nobody reaches gets from start() ---------------------------

class NotReachable(JoinError):
    """The ring cannot dial this node: it must not join as a full member (``verdict``)."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.text())
        self.verdict = verdict
