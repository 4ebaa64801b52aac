"""The Chord overlay: ids, addresses, the wire, calls between nodes, and the node itself."""

from .address import Address, AddressError
from .ids import hash_string, hex_id, in_half_open, in_open, short_id
from .node import JoinError, Local, LookupFailed, Remote
from .rpc import ListenError, PeerUnreachable, RemoteError, RpcError, TcpTransport, Transport

__all__ = [
    "Address", "AddressError", "JoinError", "ListenError", "Local", "LookupFailed",
    "PeerUnreachable", "Remote", "RemoteError", "RpcError", "TcpTransport", "Transport",
    "hash_string", "hex_id", "in_half_open", "in_open", "short_id",
]
