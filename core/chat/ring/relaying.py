"""What a relay forwards to the client nodes it serves: the chat's calls to a user's own
node, and nothing else (core/chord/relay.py has the relay itself, its limits and refusals).

A client node's users are reached at their relayed address (``relay-host:port/<client
id>``, signed in their name records and channel joins like any address), so each of these
calls goes through the relay: a maintainer's deliveries, a private message (sealed end to
end: the relay forwards it unread), the liveness challenge of a name record, the nudge
that mail waits, the news of a name conflict, an invitation, and the ``@id`` question.
``DETOURED`` is what a node may send through a common neighbour to a node it cannot reach
itself.
"""

from __future__ import annotations

from core.chord import Local
from core.chord.relay import PUNCH

from ..wire import verbs as p

FORWARDED = frozenset(v.type for v in (p.DELIVER, p.PRIVATE, p.NAME_ALIVE, p.MAIL_WAITING,
                                       p.NAME_CONFLICT, p.USERS, p.INVITED)) | {PUNCH}
"""... and the coordination of a hole punch between two clients (core/chord/punching.py),
which the relay stamps with the address it sees each side at."""

# what may go to a node through a common neighbour when it is out of our own reach
# (core/chord/detour.py): the calls to a user's node, and the requests routed to a key's
# owner — each signed by its user or a plain read, checked by the target as if direct.
# Never a frame that moves state (migrate, replicate, hand-off, a replica's copy): the
# receiver believes those only from the connection's own source host (neighbours.py).
DETOURED = FORWARDED | frozenset(v.type for v in (
    p.NAME_SET, p.NAME_GET, p.NAME_DEL, p.JOIN, p.LEAVE, p.SEND, p.TOPIC, p.MODE, p.KICK,
    p.INVITE, p.MAIL_PUT,
    p.MAIL_TAKE, p.MAIL_DONE, p.MAIL_STATUS))


def configure(node: Local) -> None:
    """Let the node's relay (if it runs one) forward the chat's calls to a user's node, and
    let calls to a node out of reach take a detour through a neighbour."""
    if node.relay is not None:
        node.relay.types = FORWARDED
    node.detours.types = DETOURED
