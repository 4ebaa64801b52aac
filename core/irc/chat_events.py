"""The chat's events for one IRC user, and its node's ring news, as IRC lines.

One table maps each core event a client sees to its handler; the others say nothing. The
chat tells a user about itself too: its own JOIN and PART arrive as ``Joined``/``Left``
once the ring has answered, but IRC does not echo a client's own message back.
"""

from __future__ import annotations

from collections.abc import Callable

from core import events as ev
from core.chat.model.text import visible_fields

from . import text as t
from .channels import RING_CHANNEL, Channels
from .message import Message
from .registration import Registration
from .replies import Replies, remote


class ChatEvents:
    """Shows a registered client what the chat and its node tell it."""

    def __init__(self, replies: Replies, me: Registration, channels: Channels) -> None:
        self.replies = replies
        self.me = me
        self.channels = channels

    def event(self, event: ev.Event) -> None:
        """One of this user's core events, as IRC lines (nothing before registration)."""
        if not self.me.done:
            return
        handler = _EVENTS.get(type(event))
        if handler is not None:
            # text from the network (a reason, an error's words) shows its control
            # characters; a message's text is made visible line by line in ``to_irc``
            handler(self, event if isinstance(event, ev.ChannelMessage | ev.PrivateMessage)
                    else visible_fields(event))

    def node_event(self, event: ev.Event) -> None:
        """A ring change or migration step of this node: in ``&ring`` if the client joined
        it, else as a server NOTICE."""
        if not self.me.done:
            return
        line = t.describe(event)
        if line is None:
            return
        if self.channels.in_ring:
            self.replies.text(self.replies.server.name, "PRIVMSG", RING_CHANNEL, line)
        else:
            self.replies.text(self.replies.server.name, "NOTICE", self.me.nick, line)

    def _on_joined(self, e: ev.Joined) -> None:
        nicks = self.channels.joined(e.channel, e.members, self.me.nick)
        name = f"#{e.channel}"
        self.replies.send(Message("JOIN", (name,), self.me.mask))
        self.replies.names(name, nicks)

    def _on_left(self, e: ev.Left) -> None:
        reason = self.channels.left(e.channel)
        if reason is None:
            return
        name = f"#{e.channel}"
        self.replies.send(Message("PART", (name, reason) if reason else (name,), self.me.mask))

    def _on_member_joined(self, e: ev.MemberJoined) -> None:
        if self.me.is_me(e.nick) or not self.channels.add_member(e.channel, e.nick):
            return
        self.replies.send(Message("JOIN", (f"#{e.channel}",), remote(e.nick)))

    def _on_member_left(self, e: ev.MemberLeft) -> None:
        if self.me.is_me(e.nick) or not self.channels.remove_member(e.channel, e.nick):
            return
        name = f"#{e.channel}"
        if e.reason != "left" and self.channels.member(e.nick) is None:
            # gone from the last channel the client shares with it: it quit, as IRC says
            self.replies.send(Message("QUIT", (e.reason,), remote(e.nick)))
        else:
            self.replies.send(Message("PART", (name, e.reason) if e.reason != "left"
                                      else (name,), remote(e.nick)))

    def _on_channel_message(self, e: ev.ChannelMessage) -> None:
        mine = self.me.is_me(e.from_)
        if mine and not e.history:
            return   # IRC does not echo a client's own message back
        prefix = self.me.mask if mine else remote(e.from_)
        for line in t.to_irc(_text(e), _mark(e.verified)):
            self.replies.text(prefix, "PRIVMSG", f"#{e.channel}", line)

    def _on_private_message(self, e: ev.PrivateMessage) -> None:
        if e.outgoing:
            return
        for line in t.to_irc(_text(e), _mark(e.verified)):
            self.replies.text(remote(e.from_), "PRIVMSG", self.me.nick, line)

    def _on_key_changed(self, e: ev.KeyChanged) -> None:
        self.replies.notice(f"warning: the key of {e.nick} changed from {e.old} to {e.new}; "
                            "its messages are marked [unverified] until you trust it (WHOIS "
                            "shows it)")

    def _on_info(self, e: ev.Info) -> None:
        for line in e.text.splitlines() or [""]:
            self.replies.notice(line)

    def _on_error(self, e: ev.Error) -> None:
        self.replies.notice(f"error: {e.message}")


def _text(e: ev.ChannelMessage | ev.PrivateMessage) -> str:
    """A message's text for ``to_irc``: an action (signed so) as ``/me …``, which it sends
    as a CTCP ACTION."""
    return t.ACTION_PREFIX + e.text if e.action else e.text


_EVENTS: dict[type, Callable[[ChatEvents, ev.Event], None]] = {
    ev.Joined: ChatEvents._on_joined,
    ev.Left: ChatEvents._on_left,
    ev.MemberJoined: ChatEvents._on_member_joined,
    ev.MemberLeft: ChatEvents._on_member_left,
    # members back after a netsplit: each JOINs again, as IRC shows a healed split
    ev.MembersBack: lambda self, e: [ChatEvents._on_member_joined(
        self, ev.MemberJoined(channel=e.channel, nick=nick, at=e.at)) for nick in e.nicks],
    ev.ChannelMessage: ChatEvents._on_channel_message,
    ev.PrivateMessage: ChatEvents._on_private_message,
    ev.Info: ChatEvents._on_info,
    ev.Error: ChatEvents._on_error,
    ev.KeyChanged: ChatEvents._on_key_changed,
}


def _mark(verified: bool) -> str:
    """A message not signed by the key pinned for its sender says so in front (of each
    line)."""
    return "" if verified else "[unverified] "
