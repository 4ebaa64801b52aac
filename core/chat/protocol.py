"""The chat's user commands on the wire: their type names and checks of their payloads.

Every type is a word without whitespace, as the overlay requires. A payload that does
not have the fields a handler needs raises ``ProtocolError``, which the overlay returns
to the caller as a remote error; the node keeps serving. docs/protocol.md describes each.
"""

from __future__ import annotations

from core.chord import Address

# requests routed to the owner of a key (answered {"moved": true} by a node that does not own it)
NAME_SET = "chat.name.set"
NAME_GET = "chat.name.get"
NAME_DEL = "chat.name.del"
CHANNEL_JOIN = "chat.channel.join"
CHANNEL_LEAVE = "chat.channel.leave"
CHANNEL_SEND = "chat.channel.send"
# calls addressed to one node
DELIVER = "chat.deliver"        # maintainer -> member: log entries of a channel, in order
PRIVATE = "chat.private"        # sender -> the node of a nick or id
MIGRATE = "chat.migrate"        # old maintainer -> new one: channels and name maps (copy)
REPLICATE = "chat.replicate"    # maintainer -> its next r successors
HANDOFF = "chat.handoff"        # new node -> its successor: "migrate (start, end] to me now"

ROUTED = (NAME_SET, NAME_GET, NAME_DEL, CHANNEL_JOIN, CHANNEL_LEAVE, CHANNEL_SEND)
ALL = (*ROUTED, DELIVER, PRIVATE, MIGRATE, REPLICATE, HANDOFF)


class ProtocolError(ValueError):
    """A payload of the wrong shape."""


_TYPES = {str: "a string", int: "an integer", list: "a list", dict: "an object",
          bool: "a boolean", float: "a number"}


def need(payload: object, **fields: type) -> dict:
    """Check that ``payload`` is an object with ``fields`` of the given types; return it."""
    if not isinstance(payload, dict):
        raise ProtocolError(f"payload must be an object, not {type(payload).__name__}")
    for name, kind in fields.items():
        if name not in payload:
            raise ProtocolError(f"payload lacks {name!r}")
        value = payload[name]
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              if kind is float else isinstance(value, kind) and not
              (kind is int and isinstance(value, bool)))
        if not ok:
            raise ProtocolError(f"{name!r} must be {_TYPES.get(kind, kind.__name__)}")
    return payload


def need_address(payload: dict, field: str = "address") -> Address:
    try:
        return Address.from_wire(payload[field])
    except (KeyError, ValueError) as e:
        raise ProtocolError(f"{field!r} is not an address: {e}") from None


def key_of(payload: dict) -> int:
    """The ring key a routed request is for (hex on the wire)."""
    value = need(payload, key=str)["key"]
    try:
        key = int(value, 16)
    except ValueError:
        raise ProtocolError("'key' must be hex") from None
    if len(value) > 40:
        raise ProtocolError("'key' has more than 40 hex digits")
    return key


MOVED = {"moved": True}
