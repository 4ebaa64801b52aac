"""A node's network address (host and port) and its id on the ring."""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field

from .ids import hash_string

_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
WILDCARDS = frozenset({"0.0.0.0", "::"})


class AddressError(ValueError):
    """A text that is not a usable HOST:PORT."""


@dataclass(frozen=True, order=True)
class Address:
    """Where a node listens. Its id is the hash of ``host:port``, as the design fixes."""

    host: str
    port: int
    id: int = field(init=False, compare=False, repr=False)
    _hash: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # one node, one spelling: "[FD00::0001]:4000" and "[fd00::1]:4000" are one address
        # with one id (IP literals in their compressed form, names in lower case)
        if ":" in self.host or self.host != self.host.lower():
            object.__setattr__(self, "host", _canonical(self.host))
        object.__setattr__(self, "id", hash_string(str(self)))
        # Addresses are dict keys and set members on every hop (avoid sets, suspicion):
        # hash once.
        object.__setattr__(self, "_hash", hash((self.host, self.port)))

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    def __hash__(self) -> int:
        return self._hash

    @property
    def is_wildcard(self) -> bool:
        """True for 0.0.0.0 and ::, where a node listens but nobody can dial it."""
        return self.host in WILDCARDS

    @classmethod
    def parse(cls, text: str, *, allow_any_port: bool = False) -> Address:
        """Read ``HOST:PORT`` (or ``[v6]:PORT``); raise AddressError saying what is wrong.

        Port 0 (let the system choose) is accepted only with ``allow_any_port``.
        """
        text = text.strip()
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            if not sep or not rest.startswith(":"):
                raise AddressError(f"bad address {text!r}: expected [IPv6]:PORT")
            port_text = rest[1:]
            if "%" in host:
                raise AddressError(f"bad address {text!r}: a zone ({host[host.index('%'):]}) "
                                   "means something on this host only; give a global or "
                                   "unique-local IPv6 address")
            try:
                host = ipaddress.IPv6Address(host).compressed
            except ValueError:
                raise AddressError(
                    f"bad address {text!r}: {host!r} is not an IPv6 address") from None
        else:
            host, sep, port_text = text.rpartition(":")
            if not sep or not host:
                raise AddressError(f"bad address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:4000")
            host = _host_name_or_ipv4(text, host)
        if not port_text.isdigit():
            raise AddressError(f"bad address {text!r}: port {port_text!r} is not a number")
        port = int(port_text)
        if not (0 if allow_any_port else 1) <= port < 65536:
            raise AddressError(f"bad address {text!r}: port {port} is outside 1-65535")
        return cls(host, port)

    def to_wire(self) -> str:
        return str(self)

    @classmethod
    def from_wire(cls, value: object) -> Address:
        if not isinstance(value, str):
            raise AddressError(
                f"an address on the wire must be a string, not {type(value).__name__}")
        return _from_wire(value)


def ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address to compare: without its zone (``%eth0``), an IPv4-mapped
    IPv6 address (an IPv4 caller on a dual-stack listen) as that IPv4 address; None for a
    host name or anything else that is not an IP address (brackets included)."""
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _canonical(host: str) -> str:
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.lower()


def _host_name_or_ipv4(text: str, host: str) -> str:
    """The canonical spelling of a host name (lower case, RFC 1123 labels; ``_`` allowed,
    as container names use it) or of an IPv4 address."""
    if all(c.isdigit() or c == "." for c in host):
        try:
            return ipaddress.IPv4Address(host).compressed
        except ValueError:
            raise AddressError(f"bad address {text!r}: {host!r} is not an IPv4 address") from None
    name = host.lower()
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise AddressError(f"bad address {text!r}: {host!r} is not a host name or IPv4 address")
    return name


@functools.lru_cache(maxsize=4096)
def _from_wire(text: str) -> Address:
    # Every reply names addresses; parsing and hashing one (a SHA-1) per hop adds up, and
    # the same few neighbours come back again and again. Addresses are immutable.
    return Address.parse(text)
