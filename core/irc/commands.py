"""The commands of a registered IRC client: channels and messages become chat commands
(``Run``), queries are answered from what the client knows or asked of the ring
(``Lookup``, ``ListChannels``), and the driver's answers become numerics.

Channels are ``#name`` (the chat's names) and ``&ring`` (this node's news, read-only). A
NOTICE never gets an error back (RFC 1459 §4.4.2). The client's away message and user
modes are kept here, since only these commands set and show them.
"""

from __future__ import annotations

from core.chat.model.commands import Command, CommandError, check_nick, check_text

from . import numerics as n
from . import text as t
from .actions import Action, ListChannels, Lookup, Run, Whois
from .channels import RING_CHANNEL, Channels, chat_channel, is_ring
from .message import Message
from .registration import Registration
from .replies import Replies


class Commands:
    """What a registered client may ask, answered through ``replies``."""

    def __init__(self, replies: Replies, me: Registration, channels: Channels) -> None:
        self.replies = replies
        self.me = me
        self.channels = channels
        self.modes: set[str] = set()
        self.away: str | None = None

    def _channel(self, name: str, quiet: bool = False) -> str | None:
        """The chat's name of IRC channel ``name``, else 403 (unless ``quiet``)."""
        channel = chat_channel(name)
        if channel is None and not quiet:
            self.replies.reply(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        return channel

    def _known(self, nick: str) -> str | None:
        """``nick`` as shown, if it is this client or shares a channel with it."""
        return self.me.nick if self.me.is_me(nick) else self.channels.member(nick)

    # -- channels and messages -------------------------------------------------------------

    def irc_join(self, m: Message) -> list[Action]:
        if m.params[0] == "0":
            return [Run(Command("leave", (c,))) for c in self.channels.members]
        actions: list[Action] = []
        for name in m.params[0].split(","):
            if is_ring(name):
                if self.channels.join_ring():
                    self.replies.send(Message("JOIN", (RING_CHANNEL,), self.me.mask))
                    self.replies.ring_topic(RING_CHANNEL)
                    self.replies.names(RING_CHANNEL, [self.me.nick])
                continue
            channel = self._channel(name)
            if channel is not None and self.channels.join(channel):
                actions.append(Run(Command("join", (channel,))))
        return actions

    def irc_part(self, m: Message) -> list[Action]:
        reason = m.param(1)
        actions: list[Action] = []
        for name in m.params[0].split(","):
            if is_ring(name):
                if self.channels.part_ring():
                    self.replies.send(Message("PART", (RING_CHANNEL, reason) if reason
                                              else (RING_CHANNEL,), self.me.mask))
                else:
                    self.replies.reply(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
                continue
            channel = self._channel(name)
            if channel is None:
                continue
            if not self.channels.part(channel, reason):
                self.replies.reply(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
                continue
            actions.append(Run(Command("leave", (channel,))))
        return actions

    def irc_privmsg(self, m: Message) -> list[Action]:
        """PRIVMSG and NOTICE: to a channel a send, to a nick a msg (at most four)."""
        quiet = m.command == "NOTICE"
        if not m.params or not m.params[0]:
            if not quiet:
                self.replies.reply(n.ERR_NORECIPIENT, f"No recipient given ({m.command})")
            return []
        if len(m.params) < 2 or not m.params[1]:
            if not quiet:
                self.replies.reply(n.ERR_NOTEXTTOSEND, "No text to send")
            return []
        text = t.from_irc(m.params[1])
        if text is None:
            return []   # a CTCP query: nobody on the ring answers those
        try:
            check_text(text)
        except CommandError as e:
            if not quiet:
                self.replies.reply(n.ERR_NOTEXTTOSEND, f"Cannot send that: {e}")
            return []
        # a CTCP ACTION (``from_irc`` made it "/me …"): a signed action on the ring
        action = text.startswith(t.ACTION_PREFIX) and bool(text[len(t.ACTION_PREFIX):].strip())
        body = text[len(t.ACTION_PREFIX):] if action else text
        actions: list[Action] = []
        for target in m.params[0].split(",")[:4]:
            if is_ring(target):
                if not quiet:
                    self.replies.reply(n.ERR_CANNOTSENDTOCHAN, target, "This channel is read-only")
            elif target.startswith(("#", "&")):
                channel = self._channel(target, quiet)
                if channel is not None:
                    actions.append(Run(Command("me", ("#" + channel, body)) if action
                                       else Command("send", (channel, text)), quiet))
            else:
                try:
                    check_nick(target)
                except CommandError:
                    if not quiet:
                        self.replies.no_such_nick(target)
                    continue
                actions.append(Run(Command("me", (target, body)) if action
                                   else Command("msg", (target, text)), quiet))
        return actions

    def failed(self, run: Run, reason: str) -> None:
        """The chat could not carry out ``run``: the numeric that says so, with why."""
        name, args = run.command.name, run.command.args
        if name == "me":   # an action: failed as the send or msg it is
            name = "send" if args[0].startswith("#") else "msg"
            args = (args[0].removeprefix("#"), *args[1:])
        if name == "join":
            self.channels.join_failed(args[0])
            self.replies.reply(n.ERR_NOSUCHCHANNEL, "#" + args[0], f"Cannot join: {reason}")
        elif run.quiet:
            return
        elif name == "send":
            self.replies.reply(n.ERR_CANNOTSENDTOCHAN, "#" + args[0], f"Cannot send: {reason}")
        elif name == "msg":
            self.replies.reply(n.ERR_NOSUCHNICK, args[0], f"No such nick: {reason}")
        else:
            self.channels.part_failed(args[0] if args else "")
            self.replies.notice(f"{name} failed: {reason}")

    def irc_topic(self, m: Message) -> None:
        name = m.params[0]
        if is_ring(name):
            self.replies.ring_topic(RING_CHANNEL)
            return
        if self._channel(name) is None:
            return
        if len(m.params) > 1:
            self.replies.reply(n.ERR_CHANOPRIVSNEEDED, name,
                               "Channels have no topics on this network")
        else:
            self.replies.reply(n.RPL_NOTOPIC, name, "No topic is set")

    # -- who is where ----------------------------------------------------------------------

    def irc_names(self, m: Message) -> None:
        targets = (m.param(0).split(",") if m.param(0)
                   else [f"#{c}" for c in self.channels.members])
        for name in targets:
            channel = self._channel(name, quiet=True)
            if is_ring(name) and self.channels.in_ring:
                self.replies.names(RING_CHANNEL, [self.me.nick])
            elif channel is not None and channel in self.channels:
                self.replies.names(name, self.channels.names(channel))
            else:
                self.replies.end_of_names(name)
        if not targets:
            self.replies.end_of_names("*")

    def irc_who(self, m: Message) -> None:
        mask = m.param(0, "*")
        channel = self._channel(mask, quiet=True) if mask.startswith("#") else None
        if channel is not None and channel in self.channels:
            for nick in self.channels.names(channel):
                self._who_line(mask, nick)
        elif not mask.startswith(("#", "&")):
            known = self._known(mask)
            if known:
                self._who_line("*", known)
        self.replies.reply(n.RPL_ENDOFWHO, mask, "End of WHO list")

    def _who_line(self, channel: str, nick: str) -> None:
        user, host, realname = self.me.who(nick)
        flags = "G" if self.me.is_me(nick) and self.away else "H"
        self.replies.reply(n.RPL_WHOREPLY, channel, user, host, self.replies.server.name,
                           nick, flags, f"0 {realname}")

    def irc_whois(self, m: Message) -> list[Action]:
        nick = m.params[-1].split(",")[0]
        try:
            check_nick(nick)
        except CommandError:
            self.whois(nick, None)
            return []
        return [Lookup(nick)]

    def whois(self, nick: str, found: Whois | None) -> None:
        """The answer to a ``Lookup`` (None: nobody holds the nick)."""
        if found is None:
            self.replies.no_such_nick(nick)
            self.replies.end_of_whois(nick)
            return
        self.replies.whois(found, *self.me.who(found.nick), self.channels.shared(found.nick))

    def irc_userhost(self, m: Message) -> None:
        """302 for the nicks this client knows (itself, members of its channels); irssi
        asks for its own at connect to learn its host."""
        found = []
        for nick in m.params[:5]:
            known = self._known(nick)
            if known is not None:
                user, host, _ = self.me.who(known)
                away = "-" if self.me.is_me(known) and self.away else "+"
                found.append(f"{known}={away}{user}@{host}")
        self.replies.reply(n.RPL_USERHOST, " ".join(found))

    def irc_list(self, m: Message) -> list[Action]:
        return [ListChannels()]

    # -- modes and away ------------------------------------------------------------------

    def irc_mode(self, m: Message) -> None:
        target = m.params[0]
        if target.startswith(("#", "&")):
            if not is_ring(target) and self._channel(target) is None:
                return
            if len(m.params) == 1:
                self.replies.reply(n.RPL_CHANNELMODEIS, target, "+t")
            elif m.params[1].lstrip("+") == "b":
                self.replies.reply(n.RPL_ENDOFBANLIST, target, "End of channel ban list")
            else:
                self.replies.reply(n.ERR_CHANOPRIVSNEEDED, target,
                                   "Channel modes cannot be changed on this network")
            return
        if not self.me.is_me(target):
            self.replies.reply(n.ERR_USERSDONTMATCH, "Can't change mode for other users")
            return
        if len(m.params) == 1:
            self.replies.reply(n.RPL_UMODEIS, "+" + "".join(sorted(self.modes)))
            return
        sign, changed = "+", ""
        for ch in m.params[1]:
            if ch in "+-":
                sign = ch
            elif ch == "i":
                if (ch in self.modes) != (sign == "+"):
                    (self.modes.add if sign == "+" else self.modes.discard)(ch)
                    changed += sign + ch
            else:
                self.replies.reply(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
                return
        if changed:
            self.replies.send(Message("MODE", (self.me.nick, changed), self.me.mask))

    def irc_away(self, m: Message) -> None:
        self.away = m.param(0) or None
        if self.away:
            self.replies.reply(n.RPL_NOWAWAY, "You have been marked as being away")
        else:
            self.replies.reply(n.RPL_UNAWAY, "You are no longer marked as being away")
