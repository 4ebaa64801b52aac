"""What the core tells its front ends: frozen dataclasses of plain data, never widgets.

The runtime posts these from the asyncio thread; the UI and the headless front end
render them. ``to_json`` gives the headless ``--json`` line of each.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class Event:
    """``at`` is when it happened, in seconds of the wall clock: for a message, the time
    its author signed (or sealed) with it; for the rest, when the core posted it."""
    at: float = field(default_factory=_now, kw_only=True)

    name = "event"

    def to_json(self) -> dict:
        data = {"event": self.name}
        for f in dataclasses.fields(self):
            data[f.name.rstrip("_")] = getattr(self, f.name)
        return data


@dataclass(frozen=True)
class Ready(Event):
    """This node is in the ring and its nick is registered."""
    nick: str
    id: str  # 40 hex digits
    address: str
    fingerprint: str = ""   # the user's key, as people compare it
    name = "ready"


@dataclass(frozen=True)
class PrivateMessage(Event):
    """A private message shown to the user: received, or sent by the user (outgoing).

    ``verified``: it opened under the key pinned for ``from_`` (False: a key that changed
    and is not trusted yet; show it marked so, never as the pinned user's). ``at`` is the
    time the sender sealed into it; ``action``: a ``/me`` (sealed too), shown as
    ``* from text``. ``text`` may hold newlines: one message of several lines."""
    from_: str
    to: str
    text: str
    msg_id: str
    outgoing: bool = False
    verified: bool = True
    action: bool = False
    name = "private"


@dataclass(frozen=True)
class ChannelMessage(Event):
    """A channel message delivered by the maintainer; ``history`` marks replayed ones.

    ``verified``: signed by the key pinned for ``from_`` (False: another key, or one the
    ring does not confirm; show it marked so). ``at`` is the author's signed time;
    ``action``: a ``/me`` (a signed flag), shown as ``* from text``. ``text`` may hold
    newlines: one message of several lines."""
    channel: str
    from_: str
    text: str
    msg_id: str
    seq: int = 0
    history: bool = False
    verified: bool = True
    action: bool = False
    name = "channel"


@dataclass(frozen=True)
class Topic(Event):
    """A channel's topic, as its member ``nick`` set it at ``at`` (signed): on joining
    (``history``) and whenever it changes. An empty ``text`` clears it."""
    channel: str
    nick: str
    text: str
    history: bool = False
    name = "topic"


@dataclass(frozen=True)
class Modes(Event):
    """A channel's operators and modes as its member sees them: on joining (``nick`` and
    ``change`` empty) and after each change ``nick``, an operator, made (``change``, as
    in an IRC MODE line: ``"+o alice"``). ``modes`` are the flags and argument modes set
    (``"+klnt"``) with their ``args``; ``lists`` the ban (b), exception (e) and
    invite-exception (I) masks: (letter, mask, who set it, when); ``created``: when the
    founder's join started this life of the channel."""
    channel: str
    nick: str
    change: str
    ops: tuple[str, ...] = ()
    voiced: tuple[str, ...] = ()
    modes: str = "+"
    args: tuple[str, ...] = ()
    lists: tuple[tuple[str, str, str, float], ...] = ()
    created: float = 0.0
    history: bool = False
    name = "modes"


@dataclass(frozen=True)
class Kicked(Event):
    """An operator (``nick``) removed ``target`` from a channel, saying ``reason``; when
    the target is the user, the user is no longer in it."""
    channel: str
    nick: str
    target: str
    reason: str = ""
    name = "kicked"


@dataclass(frozen=True)
class Invited(Event):
    """``nick`` invited the user to ``channel`` (its maintainer now lets the user in); or,
    with ``invitee``, the user's own invitation of ``invitee`` was taken."""
    channel: str
    nick: str
    invitee: str = ""
    name = "invited"


@dataclass(frozen=True)
class Sent(Event):
    """The maintainer acknowledged a channel message of the user (its receipt: seq assigned)."""
    channel: str
    text: str
    msg_id: str
    seq: int
    members: int = 0
    action: bool = False
    name = "sent"


@dataclass(frozen=True)
class History(Event):
    """Recent messages of one conversation from the user's database, shown at start.

    ``conversation`` is "#channel" or a nick; each message is a dict with from, text,
    msg_id, at (the author's time), outgoing, state ("pending" or "delivered") and action
    (a ``/me``), oldest first.
    """
    conversation: str
    messages: tuple[dict, ...] = ()
    name = "history"


@dataclass(frozen=True)
class Pending(Event):
    """A line the user typed is on disk (the outbox) and on its way: shown as pending.

    ``conversation`` is "#channel" or the nick (or "@id") it goes to.
    """
    conversation: str
    msg_id: str
    text: str
    from_: str
    action: bool = False
    name = "pending"


@dataclass(frozen=True)
class Delivered(Event):
    """An outgoing message arrived: the channel's maintainer or the recipient has it."""
    conversation: str
    msg_id: str
    name = "delivered"


@dataclass(frozen=True)
class Failed(Event):
    """An outgoing message that will not be sent (it is removed); ``reason`` says why."""
    conversation: str
    msg_id: str
    reason: str
    name = "failed"


@dataclass(frozen=True)
class SearchResults(Event):
    """The lines of the local history holding every word of ``text``, newest first; each
    hit is a dict with conversation, msg_id, from, text and at."""
    text: str
    hits: tuple[dict, ...] = ()
    name = "search"


@dataclass(frozen=True)
class Joined(Event):
    """The user joined a channel."""
    channel: str
    members: tuple[str, ...] = ()
    name = "joined"


@dataclass(frozen=True)
class Left(Event):
    """The user left a channel."""
    channel: str
    name = "left"


@dataclass(frozen=True)
class MemberJoined(Event):
    """Someone joined a channel the user is in (a notice)."""
    channel: str
    nick: str
    name = "member_joined"


@dataclass(frozen=True)
class MemberLeft(Event):
    """Someone left a channel the user is in, by leave, exit or being pruned."""
    channel: str
    nick: str
    reason: str = "left"
    name = "member_left"


@dataclass(frozen=True)
class MembersBack(Event):
    """Members that were removed as unreachable ("pruned", "gone": a partition) are in a
    channel again (the partition healed): one notice, "netsplit over: ada, linus back"."""
    channel: str
    nicks: tuple[str, ...] = ()
    name = "members_back"


@dataclass(frozen=True)
class MigrationStep(Event):
    """One step of moving maintained state between nodes, for the migration log.

    ``step`` is "send", "ack", "delete" (the sender's side of a hand-over), "receive"
    (the receiver's), "deferred" or "failed" (the item stays), "drop" (no successor to
    take it), "takeover" (a replica promoted, or a successor's copy merged in), and on
    exit "leave", "unname" and "leave-ring"; ``kind`` is "channel", "name" or "node";
    ``key`` the channel, nick or node address.
    """
    step: str
    kind: str
    key: str
    from_: str
    to: str
    members: int = 0
    detail: str = ""
    name = "migration"


@dataclass(frozen=True)
class RingStatus(Event):
    """This node's place in the ring and what it maintains, for the status bar."""
    id: str
    address: str
    predecessor: str | None
    successor: str
    channels: int = 0
    names: int = 0
    name = "ring"


@dataclass(frozen=True)
class RingChange(Event):
    """A change of this node's place in the ring, as the overlay reported it.

    ``kind`` is "started", "successor", "predecessor", "predecessor_suspected", "fingers",
    "moved" or "left" (front ends show other kinds by name). Nodes are given by address
    ("host:port"): ``old`` and ``new`` are the neighbour before and after a "successor" or
    "predecessor" change (None: none); "predecessor_suspected" names the silent predecessor
    in ``old``; "started" names this node in ``new`` and the node it joined through in
    ``bootstrap`` (None: it started a new ring); "moved" names this node's old and new
    address (a client's new relay, a member started again at a new address); "fingers"
    gives the distinct nodes in ``count``.
    """
    kind: str
    old: str | None = None
    new: str | None = None
    bootstrap: str | None = None
    count: int | None = None
    name = "ring_change"


@dataclass(frozen=True)
class Gap(Event):
    """Entries of a channel its maintainer did not deliver, as a member found out
    (core/chat/users/gaps.py, docs/security.md).

    ``kind``: "withheld" (``count`` entries the maintainer skipped were got from the
    replica ``replica``), "lost" (an author's signed count skips ``count`` messages that
    no replica has either) or "unreplicated" (the maintainer acknowledged the user's own
    message but did not deliver it, and no replica has it). ``maintainer`` by address.
    """
    channel: str
    kind: str
    maintainer: str
    count: int = 1
    replica: str | None = None
    detail: str = ""
    name = "gap"

    def summary(self) -> str:
        """The finding in one line (the log file and headless say it so)."""
        more = f" ({self.detail})" if self.detail else ""
        many = f"{self.count} message{'' if self.count == 1 else 's'}"
        if self.kind == "withheld":
            return (f"maintainer {self.maintainer} withheld {many} of #{self.channel}; "
                    f"got them from replica {self.replica}{more}")
        if self.kind == "lost":
            return (f"{many} of #{self.channel} never arrived: maintainer {self.maintainer} "
                    f"did not deliver them and no replica has them{more}")
        return (f"maintainer {self.maintainer} acknowledged a message to #{self.channel} "
                f"but did not deliver it, and no replica has it{more}")


@dataclass(frozen=True)
class KeyChanged(Event):
    """A nick came back with another key than the one pinned: a warning until ``trust``.

    ``old`` and ``new`` are the fingerprints."""
    nick: str
    old: str
    new: str
    name = "key_changed"


@dataclass(frozen=True)
class Whois(Event):
    """Who holds a nick: its key's fingerprint, its node, and whether we pinned that key
    ("same"), pinned another ("changed") or none yet ("new")."""
    nick: str
    fingerprint: str
    id: str
    address: str
    pin: str = "new"
    reach: str = "direct"   # or "relayed via HOST:PORT" (a client node, core/chord/client.py)
    name = "whois"


@dataclass(frozen=True)
class Log(Event):
    """A line for the debug/ring log pane."""
    text: str
    name = "log"


@dataclass(frozen=True)
class Info(Event):
    """A reply to a user command that is not a message (help text, who is where)."""
    text: str
    name = "info"


@dataclass(frozen=True)
class Error(Event):
    """Something the user asked for went wrong; says what and why."""
    message: str
    name = "error"


@dataclass(frozen=True)
class Bye(Event):
    """The node has left the ring; the front end may end."""
    name = "bye"
