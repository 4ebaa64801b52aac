"""The Chord overlay: ids, addresses, the wire, calls between nodes, and the node itself."""

from .address import Address, AddressError
from .errors import JoinError, ListenError, LookupFailed, PeerUnreachable, RemoteError, RpcError
from .ids import hash_string, hex_id, in_half_open, in_open, short_id
from .node import Local
from .reachability import NotReachable, Verdict
from .remote import Remote
from .tasks import TaskSet
from .tcp import TcpTransport
from .transport import Transport

__all__ = [
    "Address", "AddressError", "JoinError", "ListenError", "Local", "LookupFailed",
    "NotReachable", "PeerUnreachable", "Remote", "RemoteError", "RpcError", "TaskSet",
    "TcpTransport", "Transport", "Verdict", "hash_string", "hex_id", "in_half_open", "in_open",
    "short_id",
]
