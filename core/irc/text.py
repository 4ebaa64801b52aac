"""Message text between IRC and the chat: formatting codes, CTCP ACTION, ring notices.

The chat refuses control characters in a message (``core.chat.model.text``); IRC uses
them for bold, colours and CTCP. Formatting is dropped on the way in (as a server with
colours stripped does), and so is anything else the chat's rule forbids; a CTCP ACTION
becomes ``/me …`` here, which the gateway sends on the ring as a signed action (the ``me``
command), and an action from the ring (``action`` on the event) comes back as ``/me …``
and so as a CTCP ACTION at every IRC client.

On the way out, text from the ring is shown through ``visible``: a ``\x01`` in it reaches
the client as ``^A``, so the only CTCP a client gets is the ACTION the gateway makes of a
``/me``; IRC formatting codes (``\x02`` ``\x03`` ``\x0f`` ``\x16`` ``\x1d`` ``\x1f`` …) show
as ``^B``, ``^C``…: chat text never holds them honestly, so a peer that sends them gets no
colours. Each line of a multi-line message goes as a PRIVMSG of its own.
"""

from __future__ import annotations

import re

from core import events as ev
from core.chat.model.text import visible, without_bad
from core.counts import counted

CTCP = "\x01"
ACTION_PREFIX = "/me "
NOTICE_PREFIX = "/notice "   # an IRC NOTICE travels as text starting so, shown as a NOTICE
# bold, colour (with its digits), hex colour, reset, monospace, reverse, italics,
# strike-through, underline (modern.ircdocs.horse, "Formatting")
_FORMATTING = re.compile(
    r"\x02|\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9A-Fa-f]{6}(?:,[0-9A-Fa-f]{6})?)?"
    r"|[\x0f\x11\x16\x1d\x1e\x1f]")


def from_irc(text: str) -> str | None:
    """The chat text for the text of a PRIVMSG or NOTICE, or None for a CTCP query
    (VERSION, PING, …) that has no place on the ring."""
    if text.startswith(CTCP):
        body = text.strip(CTCP)
        verb, _, rest = body.partition(" ")
        if verb.upper() != "ACTION":
            return None
        text = ACTION_PREFIX + rest
    text = _FORMATTING.sub("", text).replace("\t", " ")
    return without_bad(text)


def to_irc(text: str, mark: str = "") -> list[str]:
    """The IRC texts for a chat message, one per line, each after ``mark``: every control
    character visible (``core.chat.model.text.visible``), a first line starting with
    ``/me `` as a CTCP ACTION."""
    lines = [line or " " for line in visible(text).split("\n")]
    first = lines[0]
    if first.startswith(ACTION_PREFIX):
        lines[0] = f"{CTCP}ACTION {mark}{first[len(ACTION_PREFIX):]}{CTCP}"
        return [lines[0], *(mark + line for line in lines[1:])]
    return [mark + line for line in lines]


def describe(event: ev.Event) -> str | None:
    """One line about a ring change or a migration step of this node, or None for events
    that are not news to an IRC user."""
    if isinstance(event, ev.RingChange):
        if event.kind == "started":
            via = f" through {event.bootstrap}" if event.bootstrap else " (a new ring)"
            return f"ring: this node {event.new} joined{via}"
        if event.kind in ("successor", "predecessor"):
            return f"ring: {event.kind} {event.old or 'none'} -> {event.new or 'none'}"
        if event.kind == "predecessor_suspected":
            return f"ring: predecessor {event.old} is not answering"
        if event.kind == "fingers":
            return f"ring: fingers point at {event.count} distinct nodes"
        return f"ring: {event.kind}"
    if isinstance(event, ev.MigrationStep):
        members = f" ({counted(event.members, 'member')})" if event.members else ""
        detail = f": {event.detail}" if event.detail else ""
        return (f"migration: {event.step} {event.kind} {event.key} "
                f"{event.from_} -> {event.to}{members}{detail}")
    if isinstance(event, ev.Bye):
        return "this node has left the ring"
    return None
