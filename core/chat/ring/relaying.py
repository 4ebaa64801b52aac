"""What a relay forwards to the client nodes it serves: the chat's calls to a user's own
node, and nothing else (core/chord/relay.py has the relay itself, its limits and refusals).

A client node's users are reached at their relayed address (``relay-host:port/<client
id>``, signed in their name records and channel joins like any address), so each of these
calls goes through the relay: a maintainer's deliveries, a private message (sealed end to
end: the relay forwards it unread), the liveness challenge of a name record, the nudge
that mail waits, the news of a name conflict, and the ``@id`` question.
"""

from __future__ import annotations

from core.chord import Local
from core.chord.relay import PUNCH

from ..wire import verbs as p

FORWARDED = frozenset(v.type for v in (p.DELIVER, p.PRIVATE, p.NAME_ALIVE, p.MAIL_WAITING,
                                       p.NAME_CONFLICT, p.USERS)) | {PUNCH}
"""... and the coordination of a hole punch between two clients (core/chord/punching.py),
which the relay stamps with the address it sees each side at."""


def configure(node: Local) -> None:
    """Let the node's relay (if it runs one) forward the chat's calls to a user's node."""
    if node.relay is not None:
        node.relay.types = FORWARDED
