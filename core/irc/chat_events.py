"""The chat's events for one IRC user, and its node's ring news, as IRC lines.

One table maps each core event a client sees to its handler; the others say nothing. The
chat tells a user about itself too: its own JOIN and PART arrive as ``Joined``/``Left``
once the ring has answered; its own messages come back from the maintainer and are shown
only to a client that asked for ``echo-message``.

Every message carries its author's signed time (``server-time``) and the ring's message id
(``msgid``), for the clients that enabled those capabilities. The backlog the chat replays
at a join (what this nick missed, kept in its own database) follows the JOIN and NAMES, in
a ``chathistory`` batch for clients with ``batch``; a client without a database of its
own (no SASL login) gets no backlog: IRC shows a channel from the moment of joining.
Ring news goes to ``&ring`` only, for the clients that joined it; never as NOTICEs.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable

from core import events as ev
from core.chat.model.text import visible_fields

from . import numerics as n
from . import text as t
from .channels import RING_CHANNEL, Channels
from .message import Message
from .registration import Registration
from .replies import Replies, remote, server_time

# the chat's word that a private message waits in the recipient's mailbox
_OFFLINE = re.compile(r"(\S+) is offline: the message waits for it")
_batches = itertools.count(1)


def split_reason(reason: str) -> tuple[str, str]:
    """A member's leave reason as the chat carries it ("left", "exit", "pruned", or
    "left: words" / "exit: words"): how it left, and the words its client gave."""
    kind, _, words = reason.partition(": ")
    return kind, words


class ChatEvents:
    """Shows a registered client what the chat and its node tell it."""

    def __init__(self, replies: Replies, me: Registration, channels: Channels) -> None:
        self.replies = replies
        self.me = me
        self.channels = channels
        self.replay = False     # the user has a database: show the backlog it missed
        # its nicks before a NICK (lower case): their leaving is not shown to it
        self.former: set[str] = set()

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
        it; nothing otherwise."""
        if not self.me.done or not self.channels.in_ring:
            return
        line = t.describe(event)
        if line is not None:
            self.ring_line(line)

    def ring_line(self, line: str) -> None:
        self.replies.text(self.replies.server.name, "PRIVMSG", RING_CHANNEL, line,
                          {"time": server_time(time.time())})

    # -- channels --------------------------------------------------------------------------

    def _on_joined(self, e: ev.Joined) -> None:
        nicks = self.channels.joined(e.channel, e.members, self.me.nick)
        name = f"#{e.channel}"
        self.replies.send(Message("JOIN", (name,), self.me.mask))
        topic = self.channels.topics.get(e.channel)
        if topic is not None and topic[0]:   # no 331 at a JOIN (modern.ircdocs.horse JOIN)
            self.replies.topic(name, topic)
        self.replies.names(name, nicks, self.channels.prefixes(e.channel),
                           self.channels.secret(e.channel))
        backlog = self.channels.take_backlog(e.channel)
        if backlog:
            self._batch(name, backlog)

    def _on_left(self, e: ev.Left) -> None:
        reason = self.channels.left(e.channel)
        if reason is None:
            return
        name = f"#{e.channel}"
        self.replies.send(Message("PART", (name, reason) if reason else (name,), self.me.mask))

    def _on_member_joined(self, e: ev.MemberJoined) -> None:
        self.former.discard(e.nick.lower())   # someone has that nick now: shown again
        if self.me.is_me(e.nick) or not self.channels.add_member(e.channel, e.nick):
            return
        self.replies.send(Message("JOIN", (f"#{e.channel}",), remote(e.nick)))

    def _on_member_left(self, e: ev.MemberLeft) -> None:
        if (self.me.is_me(e.nick) or e.nick.lower() in self.former
                or not self.channels.remove_member(e.channel, e.nick)):
            return
        kind, words = split_reason(e.reason)
        name = f"#{e.channel}"
        if kind == "left":
            self.replies.send(Message("PART", (name, words) if words else (name,),
                                      remote(e.nick)))
            return
        # it quit (or was pruned as dead): one QUIT, gone from every channel shared with it
        self.channels.forget_member(e.nick)
        self.replies.send(Message("QUIT", (words or _QUIT_WORDS.get(kind, kind),),
                                  remote(e.nick)))

    def _on_topic(self, e: ev.Topic) -> None:
        name = f"#{e.channel}"
        known = e.channel in self.channels.topics
        self.channels.topics[e.channel] = (e.text, e.nick, e.at)
        if e.channel not in self.channels:
            return   # joining: the topic is shown with the JOIN
        if known or not e.history:
            prefix = self.me.mask if self.me.is_me(e.nick) else remote(e.nick)
            self.replies.send(Message("TOPIC", (name, e.text), prefix,
                                      {"time": server_time(e.at)}))
        elif e.text:   # the topic the channel has, learnt after the JOIN: 332, 333
            self.replies.topic(name, (e.text, e.nick, e.at))

    def _on_modes(self, e: ev.Modes) -> None:
        """A channel's operators and modes: kept; a change is shown as MODE by its setter."""
        self.channels.modes[e.channel] = e
        if e.history or not e.change or e.channel not in self.channels:
            return
        prefix = self.me.mask if self.me.is_me(e.nick) else remote(e.nick)
        self.replies.send(Message("MODE", (f"#{e.channel}", *e.change.split(" ")), prefix,
                                  {"time": server_time(e.at)}))

    def _on_kicked(self, e: ev.Kicked) -> None:
        """KICK #chan target :reason (the kicker's nick if none, RFC 2812 §3.2.8)."""
        if e.channel not in self.channels:
            return
        name = f"#{e.channel}"
        prefix = self.me.mask if self.me.is_me(e.nick) else remote(e.nick)
        self.replies.send(Message("KICK", (name, e.target, e.reason or e.nick), prefix,
                                  {"time": server_time(e.at)}))
        if self.me.is_me(e.target):
            self.channels.parting.pop(e.channel, None)
            self.channels.left(e.channel)
        else:
            self.channels.remove_member(e.channel, e.target)

    def _on_invited(self, e: ev.Invited) -> None:
        if e.invitee:   # the client's own invitation, taken: 341
            self.replies.reply(n.RPL_INVITING, e.invitee, f"#{e.channel}")
        else:
            self.replies.send(Message("INVITE", (self.me.nick, f"#{e.channel}"),
                                      remote(e.nick)))

    # -- messages --------------------------------------------------------------------------

    def _on_channel_message(self, e: ev.ChannelMessage) -> None:
        mine = self.me.is_me(e.from_)
        if e.history:
            if not self.replay:
                return   # no database of its own: every join would replay the whole log
            if e.channel not in self.channels:
                self.channels.keep_backlog(e.channel, e)   # shown after the JOIN
                return
            self._batch(f"#{e.channel}", [e])
            return
        if mine and "echo-message" not in self.replies.caps:
            return   # IRC echoes a client's own message only if it asked (echo-message)
        self._show(e)

    def _show(self, e: ev.ChannelMessage | ev.PrivateMessage, batch: str | None = None) -> None:
        tags = {"time": server_time(e.at), "msgid": e.msg_id}
        if batch:
            tags["batch"] = batch
        mark = _mark(e.verified)
        if isinstance(e, ev.ChannelMessage):
            prefix = self.me.mask if self.me.is_me(e.from_) else remote(e.from_)
            target = f"#{e.channel}"
        elif e.outgoing:
            prefix, target = self.me.mask, e.to
        else:
            prefix, target = remote(e.from_), self.me.nick
        command = "NOTICE" if e.text.startswith(t.NOTICE_PREFIX) else "PRIVMSG"
        text = e.text[len(t.NOTICE_PREFIX):] if command == "NOTICE" else e.text
        for line in t.to_irc(_text(e, text), mark):
            self.replies.text(prefix, command, target, line, tags)

    def _batch(self, target: str, messages: list) -> None:
        """Replayed messages, in a ``chathistory`` batch when the client has ``batch``."""
        if "batch" not in self.replies.caps:
            for m in messages:
                self._show(m)
            return
        ref = f"h{next(_batches)}"
        self.replies.from_server("BATCH", f"+{ref}", "chathistory", target)
        for m in messages:
            self._show(m, ref)
        self.replies.from_server("BATCH", f"-{ref}")

    def history(self, target: str, messages: list) -> None:
        """The answer to a CHATHISTORY query: always a batch (the spec asks for one)."""
        ref = f"h{next(_batches)}"
        self.replies.from_server("BATCH", f"+{ref}", "chathistory", target)
        for m in messages:
            self._show(m, ref)
        self.replies.from_server("BATCH", f"-{ref}")

    def targets(self, targets: list[tuple[str, float]]) -> None:
        """CHATHISTORY TARGETS: a ``draft/chathistory-targets`` batch."""
        ref = f"h{next(_batches)}"
        self.replies.from_server("BATCH", f"+{ref}", "draft/chathistory-targets")
        for target, at in targets:
            self.replies.send(Message("CHATHISTORY", ("TARGETS", target, server_time(at)),
                                      self.replies.server.name, {"batch": ref}))
        self.replies.from_server("BATCH", f"-{ref}")

    def _on_private_message(self, e: ev.PrivateMessage) -> None:
        if e.outgoing and "echo-message" not in self.replies.caps:
            return
        self._show(e)

    # -- the chat's words ------------------------------------------------------------------

    def _on_key_changed(self, e: ev.KeyChanged) -> None:
        """A warning in the conversations it concerns: the channels shared with the nick
        (or, with none, from the nick itself), and ``&ring``."""
        line = (f"warning: the key of {e.nick} changed from {e.old} to {e.new}; its messages "
                f"are marked [unverified] until you accept it: TRUST {e.nick}")
        shared = self.channels.shared(e.nick)
        for channel in shared:
            self.replies.text(self.replies.server.name, "NOTICE", channel, line)
        if not shared:
            self.replies.text(remote(e.nick), "NOTICE", self.me.nick, f"[chordchat] {line}")
        if self.channels.in_ring:
            self.ring_line(line)

    def _on_info(self, e: ev.Info) -> None:
        offline = _OFFLINE.match(e.text)
        if offline:   # as IRC says it of an away user: 301
            self.replies.reply(n.RPL_AWAY, offline.group(1),
                               "is offline; the message is kept for them")
            return
        for line in e.text.splitlines() or [""]:
            self.replies.notice(line)

    def _on_error(self, e: ev.Error) -> None:
        self.replies.notice(f"error: {e.message}")


_QUIT_WORDS = {"exit": "Quit", "pruned": "Ping timeout", "gone": "Ping timeout"}


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
    ev.Topic: ChatEvents._on_topic,
    ev.Modes: ChatEvents._on_modes,
    ev.Kicked: ChatEvents._on_kicked,
    ev.Invited: ChatEvents._on_invited,
}


def _text(e: ev.ChannelMessage | ev.PrivateMessage, text: str) -> str:
    """A message's text for ``to_irc``: an action (signed so) as ``/me …``, which it sends
    as a CTCP ACTION."""
    return t.ACTION_PREFIX + text if e.action else text


def _mark(verified: bool) -> str:
    """A message not signed by the key pinned for its sender says so in front (of each
    line)."""
    return "" if verified else "[unverified] "
