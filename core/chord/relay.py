"""Relays: a full member forwards calls to client nodes that nobody can dial.

A client (core/chord/client.py) keeps an outbound connection to a relay and holds a
**reservation** there (after libp2p's Circuit Relay v2): a slot, renewed every second or
so, that names the client by its **client id** and remembers the connection the client
opened. Others reach the client at its **relayed address** ``relay-host:port/<client id>``
(``RelayedAddress``): ``Local.user_command`` sends such a call to the relay as
``relay.forward {to, type, payload}``, and the relay makes the call ``user {type,
payload}`` back over the client's own connection (``transport.CALLER_LINK``).

What a relay refuses (each answer says why, ``{"ok": false, "refused": reason, "error"}``):

- ``full``: it holds ``RelayLimits.clients`` reservations already (or ``per_host`` from
  that host); the client tries another relay;
- ``unknown``: a forward to a client id with no live reservation here — a relay is no
  open proxy, it reaches only its own clients, only with the user command types it was
  told to forward (``types``), never a ring call;
- ``busy``: the client's share of bytes per second (``rate``, ``burst``), the relay's
  total (``total_rate``) or the calls waiting on one client (``in_flight``) is used up;
- ``bad_secret``: a reservation whose secret does not hash to its client id (so nobody
  can take over another client's id: the id is the first 128 bits of SHA-256(secret)).

A relay never reads what it forwards: payloads go on as they came (private messages are
sealed end to end before they leave their sender, core/chat/model/sealed.py), with one
field added: ``origin``, the host the relay got the call from (the connection's source
address; its own host for its own call), replacing any the caller put there. A client
sees every relayed call as coming from its relay's host; ``caller_origin`` gives it the
host the call really came from, so it can bind a call to its sender as a full member does
with ``CALLER_HOST`` (a maintainer's deliveries: core/chat/users/maintainers.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass, field

from . import wire
from .address import Address, AddressError, ip_of
from .bucket import Bucket
from .detour import detour_origin, ring_hosts
from .errors import PeerUnreachable, RemoteError
from .ids import hash_string
from .transport import CALLER_HOST, CALLER_LINK

log = logging.getLogger(__name__)

RESERVE = "relay.reserve"
RELEASE = "relay.release"
FORWARD = "relay.forward"
PUNCH = "holepunch"   # the coordination of a direct connection (core/chord/punching.py)
ORIGIN = "origin"     # the field a relay stamps: the host it got the forwarded call from
_CLIENT_RE = re.compile(r"[0-9a-f]{32}")


class RelayRefused(PeerUnreachable):
    """The relay would not (or could not) reach the client: unreachable, as far as the
    caller can tell (it retries, or gives up as for a dead node)."""


# -- relayed addresses ---------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class RelayedAddress(Address):
    """A client reached through a relay: ``host:port`` is the relay's, ``client`` the
    client's id. Its ring id is the hash of the client id alone, so it stays the same
    whichever relay the client uses."""

    client: str = field(default="")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _CLIENT_RE.fullmatch(self.client):
            raise AddressError(f"bad client id {self.client!r}: 32 lower-case hex digits")
        object.__setattr__(self, "id", hash_string(f"client/{self.client}"))
        object.__setattr__(self, "_hash", hash((self.host, self.port, self.client)))

    def __str__(self) -> str:
        return f"{self.relay}/{self.client}"

    def __hash__(self) -> int:
        return self._hash

    @property
    def relay(self) -> Address:
        """The relay's own address."""
        return Address(self.host, self.port)


def reachable(value: object) -> Address:
    """A node or a user's address from the wire: ``host:port``, or a client's relayed
    ``host:port/<client id>`` (a ``RelayedAddress``). AddressError (a ValueError) if it is
    neither. The ring's own calls accept plain addresses only (``Address.from_wire``): a
    node's id must be the hash of where it is dialled."""
    if not isinstance(value, str):
        raise AddressError(f"an address on the wire must be a string, not {type(value).__name__}")
    relay, slash, client = value.partition("/")
    plain = Address.from_wire(relay)
    if not slash:
        return plain
    return RelayedAddress(plain.host, plain.port, client)


def describe(address: str) -> str:
    """How a user at ``address`` is reached: "direct" or "relayed via HOST:PORT"."""
    try:
        parsed = reachable(address)
    except ValueError:
        return "unreachable (a malformed address)"
    if isinstance(parsed, RelayedAddress):
        return f"relayed via {parsed.relay}"
    return "direct"


def new_client() -> tuple[str, str]:
    """A fresh (client id, secret): the id is the hex of SHA-256(secret), cut to 128 bits."""
    secret = secrets.token_hex(16)
    return client_id(secret), secret


def client_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


# -- the relay's side ----------------------------------------------------------------------

@dataclass
class RelayLimits:
    """What one relay gives its clients (bytes are the forwarded payloads, encoded)."""
    clients: int = 32               # reservations at once
    per_host: int = 8               # reservations from one source host
    rate: float = 64 * 1024         # bytes a second forwarded to one client ...
    burst: float = 256 * 1024       # ... saved up to this much
    total_rate: float = 1024 * 1024  # bytes a second forwarded to all clients together
    in_flight: int = 32             # forwards waiting on one client at once
    ttl: float = 10.0               # a reservation not renewed this long ends


@dataclass
class Reservation:
    client: str
    secret: str
    link: object          # the client's connection (CALLER_LINK)
    host: str | None
    expires: float
    bucket: Bucket
    in_flight: int = 0
    forwarded: int = 0    # calls forwarded
    bytes: int = 0        # payload bytes forwarded


@dataclass
class RelayStats:
    reserved: int = 0
    refused_full: int = 0
    forwarded: int = 0
    refused_unknown: int = 0
    refused_busy: int = 0
    refused_type: int = 0
    failed: int = 0            # the client did not answer
    bytes: int = 0
    by_reason: dict = field(default_factory=dict)


def _now() -> float:
    return asyncio.get_running_loop().time()


class Relay:
    """The relay a full member runs for client nodes (served as user commands).

    Args:
        node: the full member; the relay's commands are registered on it.
        limits: ``RelayLimits``.
        types: the user command types it forwards (the chat's calls to a user's node:
            core/chat/ring/relaying.py); anything else is refused.
    """

    def __init__(self, node, limits: RelayLimits | None = None,
                 types: frozenset[str] = frozenset()) -> None:
        self.node = node
        self.limits = limits or RelayLimits()
        self.types = frozenset(types)
        self.stats = RelayStats()
        self._reservations: dict[str, Reservation] = {}
        self._total: Bucket | None = None
        node.register_command(RESERVE, self.rpc_reserve)
        node.register_command(RELEASE, self.rpc_release)
        node.register_command(FORWARD, self.rpc_forward)

    @property
    def clients(self) -> list[str]:
        """The client ids holding a live reservation."""
        self._expire()
        return sorted(self._reservations)

    def _expire(self) -> None:
        now = _now()
        for client, r in list(self._reservations.items()):
            if r.expires < now or getattr(r.link, "closed", True):
                del self._reservations[client]

    def _refuse(self, reason: str, error: str) -> dict:
        self.stats.by_reason[reason] = self.stats.by_reason.get(reason, 0) + 1
        return {"ok": False, "refused": reason, "error": error}

    # -- reservations ----------------------------------------------------------------------

    async def rpc_reserve(self, d: object) -> dict:
        """Take or renew a slot for ``client``, over the connection this call came on."""
        if not isinstance(d, dict) or not isinstance(d.get("client"), str) \
                or not isinstance(d.get("secret"), str) or len(d["secret"]) > 64:
            raise RemoteError("relay.reserve needs 'client' and 'secret' (strings)")
        client, secret = d["client"], d["secret"]
        if not _CLIENT_RE.fullmatch(client) or client_id(secret) != client:
            return self._refuse("bad_secret", "the secret does not hash to that client id")
        link = CALLER_LINK.get()
        if link is None:
            return self._refuse("no_link", "a reservation is made over the client's own "
                                           "connection, not by this node")
        self._expire()
        now, lim = _now(), self.limits
        current = self._reservations.get(client)
        host = CALLER_HOST.get()
        if current is None:
            if len(self._reservations) >= lim.clients:
                self.stats.refused_full += 1
                return self._refuse("full", f"this relay serves {lim.clients} clients "
                                            "(at most): try another")
            from_host = sum(r.host == host for r in self._reservations.values())
            if host is not None and from_host >= lim.per_host:
                self.stats.refused_full += 1
                return self._refuse("full", f"this relay serves {from_host} clients from "
                                            f"{host} (at most {lim.per_host})")
            current = self._reservations[client] = Reservation(
                client, secret, link, host, now + lim.ttl,
                Bucket(lim.rate, lim.burst, lim.burst, now))
            self.stats.reserved += 1
            log.info("%s: relaying for client %s (%d of %d)", self.node.address, client[:8],
                     len(self._reservations), lim.clients)
        else:   # a renewal, maybe over a new connection (the client moved)
            current.link, current.host, current.expires = link, host, now + lim.ttl
        granted = {"ok": True, "ttl": lim.ttl, "rate": lim.rate,
                   "clients": len(self._reservations), "of": lim.clients}
        seen = seen_at(link)
        if seen is not None:
            granted["seen"] = seen   # where the client is seen: where a punch reaches it
        return granted

    async def rpc_release(self, d: object) -> dict:
        if isinstance(d, dict) and isinstance(d.get("secret"), str) \
                and len(d["secret"]) <= 64:
            current = self._reservations.get(client_id(d["secret"]))
            if current is not None and current.secret == d["secret"]:
                del self._reservations[current.client]
        return {"ok": True}

    # -- forwarding ------------------------------------------------------------------------

    async def rpc_forward(self, d: object) -> dict:
        if not isinstance(d, dict) or not isinstance(d.get("to"), str) \
                or not isinstance(d.get("type"), str):
            raise RemoteError("relay.forward needs 'to' and 'type' (strings) and 'payload'")
        return await self.forward(d["to"], d["type"], d.get("payload"))

    async def forward(self, to: str, type: str, payload: object) -> dict:
        """Call ``type`` on client ``to`` over its own connection; the client's reply, or
        why not."""
        if type not in self.types:
            self.stats.refused_type += 1
            return self._refuse("type", f"this relay does not forward {type[:40]!r}")
        self._expire()
        r = self._reservations.get(to)
        if r is None:
            self.stats.refused_unknown += 1
            return self._refuse("unknown", f"no client {to[:32]} is attached to this relay")
        size = len(wire.encode({"p": payload}))
        now, lim = _now(), self.limits
        if self._total is None:
            self._total = Bucket(lim.total_rate, max(lim.total_rate, lim.burst),
                                  max(lim.total_rate, lim.burst), now)
        if r.in_flight >= lim.in_flight:
            self.stats.refused_busy += 1
            return self._refuse("busy", f"{lim.in_flight} calls wait on client {to[:8]}")
        if not r.bucket.take(size, now):
            self.stats.refused_busy += 1
            return self._refuse("busy", f"client {to[:8]} is over {lim.rate:g} bytes/s")
        if not self._total.take(size, now):
            self.stats.refused_busy += 1
            return self._refuse("busy", f"this relay is over {lim.total_rate:g} bytes/s")
        vouched = None
        if isinstance(payload, dict):   # where the call came from, whatever it says (a
            # detour hop that is a ring node we know may say whose call it carries)
            came = detour_origin(payload, CALLER_HOST.get(), ring_hosts(self.node))
            payload = {**payload, ORIGIN: came or self.node.address.host}
        if type == PUNCH:
            # a hole punch dials only where this relay sees each side: the caller's address
            # goes to the client, the client's back to the caller, whatever either says
            caller, vouched = seen_at(CALLER_LINK.get()), seen_at(r.link)
            if caller is None or vouched is None or not isinstance(payload, dict):
                return self._refuse("type", "a hole punch needs both sides' addresses")
            payload = {**payload, "seen": caller}
        r.in_flight += 1
        try:
            reply = await r.link.request("user", {"type": type, "payload": payload},
                                         max(0.5, 0.8 * self.node.timeout))
        except RemoteError as e:
            return {"ok": False, "refused": "remote", "error": str(e)}
        except (OSError, TimeoutError) as e:
            self.stats.failed += 1
            if getattr(r.link, "closed", False) and self._reservations.get(to) is r:
                del self._reservations[to]
            return self._refuse("unreachable", f"client {to[:8]} did not answer: "
                                               f"{type_of(e)}")
        finally:
            r.in_flight -= 1
        r.forwarded += 1
        r.bytes += size
        self.stats.forwarded += 1
        self.stats.bytes += size
        if vouched is not None and isinstance(reply, dict):
            reply = {**reply, "seen": vouched}
        return {"ok": True, "reply": reply}


def seen_at(link: object) -> str | None:
    """Where a connection's far end is seen (``host:port``), if the transport knows."""
    host, port = getattr(link, "peer_host", None), getattr(link, "peer_port", None)
    if not isinstance(host, str) or not isinstance(port, int):
        return None
    return str(Address(host, port))


def type_of(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _same_host(a: str, b: str) -> bool:
    ip_a, ip_b = ip_of(a.strip("[]")), ip_of(b.strip("[]"))
    return ip_a == ip_b if ip_a is not None and ip_b is not None else a.lower() == b.lower()


def caller_origin(payload: object, relay: Address | None) -> str | None:
    """The host the call being served came from (None: this node's own call): the
    connection's (``CALLER_HOST``); if that is our own relay's host (``relay``: a client's
    current relay), the host the relay stamped (``ORIGIN``). A stamp on a call that did not
    come from our relay is ignored."""
    host = CALLER_HOST.get()
    if host is None or relay is None or not _same_host(host, relay.host):
        return host
    stamped = payload.get(ORIGIN) if isinstance(payload, dict) else None
    return stamped if isinstance(stamped, str) and stamped else host


# -- the caller's side ---------------------------------------------------------------------

def answer(address: RelayedAddress, reply: object) -> object:
    """The client's reply inside a relay's answer to ``relay.forward``; RemoteError if the
    client's handler failed, ``RelayRefused`` if the relay would not or could not reach it."""
    if not isinstance(reply, dict):
        raise RemoteError(f"the relay {address.relay} answered nonsense")
    if reply.get("ok") is True:
        return reply.get("reply")
    reason, error = reply.get("refused"), str(reply.get("error", ""))[:300]
    if reason == "remote":
        raise RemoteError(error)
    raise RelayRefused(f"{address}: the relay refused ({reason}): {error}")
