"""The chat's wire in one table: every message type, its payload, and its replies.

Each ``Verb`` names a user command of the overlay (a word without whitespace) and the
fields its payload must have. The object that serves a verb has an ``rpc_<verb>`` method
beside the ``call_<verb>`` that sends it to another node (names.py, channels.py, feeds.py,
replication.py, migration.py, takeover.py, users.py). ``serve`` registers them on the node,
checks payloads (a wrong shape raises ``ProtocolError``: a remote error at the caller,
and the node keeps serving) and answers a routed request for a key this node does not
serve with ``not_owner``. docs/protocol.md describes each verb.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.chord import Address, Local

from ..model.errors import ChatError

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)   # each verb is one object: hashed by identity
class Verb:
    type: str                                   # the overlay's command type
    fields: dict[str, type] = field(default_factory=dict)
    routed: bool = False                        # sent to the owner of a key ("key" in hex)


# requests routed to the owner of a key
# (name records and channel entries are signed by their users: records.py, entries.py)
NAME_SET = Verb("chat.name.set", {"record": dict}, routed=True)
NAME_GET = Verb("chat.name.get", {"nick": str}, routed=True)
NAME_DEL = Verb("chat.name.del", {"record": dict}, routed=True)
JOIN = Verb("chat.channel.join", {"entry": dict}, routed=True)
LEAVE = Verb("chat.channel.leave", {"entry": dict}, routed=True)
SEND = Verb("chat.channel.send", {"entry": dict}, routed=True)
TOPIC = Verb("chat.channel.topic", {"entry": dict}, routed=True)
MODE = Verb("chat.channel.mode", {"entry": dict}, routed=True)      # an operator's changes
KICK = Verb("chat.channel.kick", {"entry": dict}, routed=True)      # an operator's kick
INVITE = Verb("chat.channel.invite", {"entry": dict}, routed=True)  # a member's invitation
MAIL_PUT = Verb("chat.mail.put", {"nick": str, "letter": dict}, routed=True)
MAIL_TAKE = Verb("chat.mail.take", {"nick": str, "at": float, "sig": str}, routed=True)
MAIL_DONE = Verb("chat.mail.done", {"nick": str, "msg_ids": list, "at": float, "sig": str},
                 routed=True)
MAIL_STATUS = Verb("chat.mail.status", {"nick": str, "msg_ids": list}, routed=True)
MAIL_WAITING = Verb("chat.mail.waiting", {"to": str})   # owner -> the nick's node: collect
# calls to one node
DELIVER = Verb("chat.deliver", {"channel": str, "to": str, "entries": list})
PRIVATE = Verb("chat.private", {"msg_id": str, "to": str, "to_id": str, "sealed": dict})
USERS = Verb("chat.users", {"to_id": str})
# the inviter's node -> the invitee's: the inviter's signed invite entry (users/invitations.py)
INVITED = Verb("chat.invited", {"to": str, "to_id": str, "entry": dict})
MIGRATE = Verb("chat.migrate", {"from": str, "items": list})    # from: the sender's address
REPLICATE = Verb("chat.replicate", {"from": str, "items": list})
HANDOFF = Verb("chat.handoff", {"to": str, "start": str, "end": str})
NAME_CONFLICT = Verb("chat.name.conflict", {"nick": str, "kept": dict, "lost": dict})
NAME_COPY = Verb("chat.name.copy", {"nick": str})   # this node's copy, maintained or replica
# a member past a maintainer that drops or withholds: a holder's entries of a channel
REPLICA_GET = Verb("chat.replica.get", {"channel": str, "after_seq": int})
# owner of a nick -> the node its record names: "sign this nonce with the holder's key"
NAME_ALIVE = Verb("chat.name.alive", {"nick": str, "key": str, "nonce": str})
CLOCK = Verb("chat.clock", {})   # "what time is it for you?" (ring/clock.py)

# replies: one word per meaning
OK = {"ok": True}
NOT_OWNER = {"not_owner": True}   # routing raced a join: look the owner up again


def retry(why: str) -> dict:
    """Not yet replicated: the same owner, asked again with the same message id."""
    return {"retry": True, "why": why}


class ProtocolError(ValueError):
    """A payload of the wrong shape."""


def refusal(reply: dict, what: str) -> dict:
    """``reply``, unless the node refused the request: then a ChatError saying why (how a
    local user reads a ``Refused`` answer)."""
    if "refused" in reply:
        raise ChatError(f"{what}: refused: {reply.get('error', reply['refused'])}",
                        str(reply["refused"]))
    return reply


class Refused(Exception):
    """A request that is well formed but not allowed: a bad signature, someone else's
    name, a replay. Answered ``{"refused": reason, "error": message}``, logged once."""

    def __init__(self, reason: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.extra = extra

    def reply(self) -> dict:
        return {"refused": self.reason, "error": self.message, **self.extra}


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


def need_address(payload: dict, name: str = "address") -> Address:
    try:
        return Address.from_wire(payload[name])
    except (KeyError, ValueError) as e:
        raise ProtocolError(f"{name!r} is not an address: {e}") from None


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


Handler = Callable[[dict], Awaitable[dict]]
Admit = Callable[[str, object], "str | None"]   # (verb, payload) -> None, or why it must wait


def serve(node: Local, handlers: dict[Verb, Handler], serves: Callable[[int], bool],
          admit: Admit | None = None) -> None:
    """Register ``handlers`` on ``node``; a routed verb is served only where ``serves(key)``;
    with ``admit`` (``rate.RateLimiter.admit``), a request it turns away is answered
    ``retry`` ("busy") before its handler runs."""
    for verb, handler in handlers.items():
        node.register_command(verb.type,
                              functools.partial(_serve, verb, handler, serves, admit))


async def _serve(verb: Verb, handler: Handler, serves: Callable[[int], bool],
                 admit: Admit | None, payload: object) -> dict:
    if admit is not None:
        busy = admit(verb.type, payload)
        if busy is not None:
            log.debug("busy %s: %s", verb.type, busy)
            return retry(f"busy: {busy}")
    d = need(payload, **verb.fields)
    if verb.routed and not serves(key_of(d)):
        return NOT_OWNER
    try:
        return await handler(d)
    except Refused as e:
        log.warning("refused %s: %s", verb.type, e.message)
        return e.reply()
