"""The errors of the Chord layer, in one place that imports nothing (no I/O)."""

from __future__ import annotations


class RpcError(Exception):
    """A call that did not produce a result."""


class PeerUnreachable(RpcError):
    """The peer could not be reached or did not answer in time; it is now suspected."""


class RemoteError(RpcError):
    """The peer answered with an error (its handler raised, or the call was refused)."""


class JoinError(RpcError):
    """The node could not join the ring through its bootstrap."""


class LookupFailed(RpcError):
    """No live owner could be found for a key."""


class ListenError(OSError):
    """The node cannot listen on its address (in use, not local, not permitted)."""
