"""``Remote``: another node as this one knows it, an address and the calls on it."""

from __future__ import annotations

import asyncio
import weakref

from .address import Address
from .ids import short_id
from .protocol import RingProtocol
from .tcp import TcpTransport
from .transport import Transport

_default_transports: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _default_transport() -> Transport:
    """One TCP transport per event loop, for ``Remote`` objects made without a node."""
    loop = asyncio.get_running_loop()
    transport = _default_transports.get(loop)
    if transport is None:
        transport = _default_transports[loop] = TcpTransport()
    return transport


class Remote:
    """Another node, as this one knows it: its address, its id, and calls on it."""

    __slots__ = ("address", "_transport")

    def __init__(self, address: Address, transport: Transport | None = None) -> None:
        self.address = address
        self._transport = transport

    @property
    def id(self) -> int:
        return self.address.id

    @property
    def transport(self) -> Transport:
        return self._transport or _default_transport()

    async def user_command(self, type: str, payload: object = None,
                           timeout: float | None = None) -> object:
        """Deliver a user command to this node's handler for ``type``; its reply comes back."""
        return await RingProtocol(self.transport).call_user(self.address, type, payload, timeout)

    async def ping(self, timeout: float | None = None) -> bool:
        """True if the node answers within ``timeout``."""
        return await RingProtocol(self.transport).call_ping(self.address, timeout)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Remote) and other.address == self.address

    def __hash__(self) -> int:
        return hash(self.address)

    def __repr__(self) -> str:
        return f"Remote({self.address}, {short_id(self.id)})"
