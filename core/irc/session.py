"""One IRC client's session as a pure state machine: lines in, lines and actions out.

``Session.receive`` takes one line from the client, writes the replies it can give at once
through ``send`` and returns the ``Action``s only the chat can carry out (register the
nick on the ring, run a chat ``Command``, look a nick up). The connection that drives it
(``core.irc.gateway``) does them and reports back: ``registered``/``refused`` for the
nick, ``failed`` for a command, ``whois``, ``listing``; the user's core events arrive
through ``event``, the node's ring news through ``node_event``. No I/O here, so every
reply is tested by feeding lines. Registration follows modern.ircdocs.horse
("Connection Registration"); numerics are in ``numerics``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from core import events as ev
from core.chat.commands import Command, CommandError, channel_name, check_nick, check_text

from . import numerics as n
from . import text as t
from .message import MAX_LINE, InvalidUtf8, Message, ParseError, TooLong, parse, split_text

RING_CHANNEL = "&ring"   # this node's ring changes and migration steps, as channel messages
NICKLEN = 32
CHANNELLEN = 51          # '#' and the chat's 50 characters
ISUPPORT = (
    "CASEMAPPING=ascii", f"CHANNELLEN={CHANNELLEN}", "CHANTYPES=#&", "CHANMODES=,,,t",
    f"LINELEN={MAX_LINE}", "NETWORK=chordchat", f"NICKLEN={NICKLEN}",
    "TARGMAX=JOIN:,PART:,PRIVMSG:4,NOTICE:4,NAMES:1,WHOIS:1", "TOPICLEN=0", "UTF8ONLY",
)
REMOTE_HOST = "ring"   # the host part of other users' masks: they are somewhere on the ring


@dataclass(frozen=True)
class ServerInfo:
    """What the gateway says about itself; ``password`` set means PASS is required."""
    name: str
    version: str = "chordchat-0.1"
    created: str = "when this node started"
    motd: tuple[str, ...] = ()
    password: str | None = None


# -- what the session asks its driver to do ------------------------------------------------

@dataclass(frozen=True)
class Register:
    """Claim ``nick`` on the ring; answer with ``registered()`` or ``refused()``."""
    nick: str


@dataclass(frozen=True)
class Run:
    """Run a chat command as this user; on ChatError answer ``failed(run, reason)``.
    ``quiet`` (a NOTICE) means no error goes back to the client, as RFC 1459 asks."""
    command: Command
    quiet: bool = False


@dataclass(frozen=True)
class Lookup:
    """Find where ``nick`` is; answer ``whois(nick, Whois | None)``."""
    nick: str


@dataclass(frozen=True)
class ListChannels:
    """Which channels this node's users are in; answer ``listing([(channel, members)])``."""


@dataclass(frozen=True)
class Quit:
    """The user quits (its channels, its name on the ring); then close the connection."""
    reason: str


@dataclass(frozen=True)
class Close:
    """Close the connection after the lines sent so far; there is no user to quit."""
    reason: str


Action = Register | Run | Lookup | ListChannels | Quit | Close


@dataclass(frozen=True)
class Whois:
    """What the ring knows about a nick, for WHOIS."""
    nick: str
    node_id: str | None = None
    address: str | None = None
    fingerprint: str | None = None


class Session:
    """The server side of one IRC connection.

    Args:
        server: the gateway's name, version, MOTD and password.
        send: called with every ``Message`` for the client, in order.
        host: the client's host, shown in its own mask.
    """

    def __init__(self, server: ServerInfo, send: Callable[[Message], None],
                 host: str = "localhost") -> None:
        self.server = server
        self._send = send
        self.host = host
        self.state = "connecting"   # -> "registering" -> "registered" -> "closed"
        self.nick: str | None = None
        self.user: str | None = None
        self.realname = ""
        self.password: str | None = None
        self.negotiating = False    # CAP LS came: registration waits for CAP END
        self.modes: set[str] = set()
        self.away: str | None = None
        self.channels: dict[str, dict[str, str]] = {}   # channel -> lower nick -> nick
        self.joining: set[str] = set()
        self.parting: dict[str, str] = {}                 # channel -> the PART's reason
        self.in_ring_channel = False

    # -- small helpers -------------------------------------------------------------------

    @property
    def registered_(self) -> bool:
        return self.state == "registered"

    @property
    def mask(self) -> str:
        return f"{self.nick}!{self.user}@{self.host}"

    def _me(self) -> str:
        return self.nick if self.registered_ and self.nick else "*"

    def reply(self, numeric: str, *params: str) -> None:
        """A numeric from the server to this client (its nick, or '*' before 001)."""
        self._send(Message(numeric, (self._me(), *params), self.server.name))

    def notice(self, text: str) -> None:
        self._send(Message("NOTICE", (self._me(), text), self.server.name))

    def _from(self, prefix: str, command: str, target: str, text: str) -> None:
        """PRIVMSG/NOTICE lines, the text cut so that each line fits in 512 bytes."""
        room = MAX_LINE - 2 - len(f":{prefix} {command} {target} :".encode())
        for piece in split_text(text, room):
            self._send(Message(command, (target, piece), prefix))

    @staticmethod
    def _remote(nick: str) -> str:
        return f"{nick}!{nick}@{REMOTE_HOST}"

    def _is_me(self, nick: str) -> bool:
        return self.nick is not None and nick.lower() == self.nick.lower()

    # -- lines from the client -----------------------------------------------------------

    def receive(self, raw: bytes | str | TooLong) -> list[Action]:
        """Handle one line from the client; return what the driver must do, in order."""
        if self.state == "closed":
            return []
        if isinstance(raw, TooLong):
            self.reply(n.ERR_INPUTTOOLONG, "Input line was too long")
            return []
        try:
            message = parse(raw)
        except InvalidUtf8 as e:
            self._send(Message("FAIL", (e.command or "*", "INVALID_UTF8",
                                        "Message rejected: it is not UTF-8"), self.server.name))
            return []
        except ParseError:
            return []   # an empty or command-less line: servers ignore it
        spec = _HANDLERS.get(message.command)
        if spec is None:
            if self.registered_:
                self.reply(n.ERR_UNKNOWNCOMMAND, message.command, "Unknown command")
            else:
                self.reply(n.ERR_NOTREGISTERED, "You have not registered")
            return []
        handler, min_params, before_registration = spec
        if not before_registration and not self.registered_:
            self.reply(n.ERR_NOTREGISTERED, "You have not registered")
            return []
        if len(message.params) < min_params or (min_params and not message.params[0]):
            self.reply(n.ERR_NEEDMOREPARAMS, message.command, "Not enough parameters")
            return []
        return handler(self, message) or []

    # registration ------------------------------------------------------------------------

    def _pass(self, m: Message) -> list[Action]:
        if self.state != "connecting":
            self.reply(n.ERR_ALREADYREGISTERED, "You may not reregister")
            return []
        self.password = m.params[0]
        return []

    def _nick(self, m: Message) -> list[Action]:
        if not m.params or not m.params[0]:
            self.reply(n.ERR_NONICKNAMEGIVEN, "No nickname given")
            return []
        nick = m.params[0]
        try:
            check_nick(nick)
        except CommandError:
            self.reply(n.ERR_ERRONEUSNICKNAME, nick, "Erroneous nickname")
            return []
        if self.registered_:
            if nick != self.nick:
                self.reply(n.ERR_NONICKCHANGE, nick,
                           "Nicks cannot change on this network; reconnect with the new one")
            return []
        if self.state == "registering":
            return []   # the ring is being asked for the first one: wait for its answer
        self.nick = nick
        return self._try_register()

    def _user(self, m: Message) -> list[Action]:
        if self.state != "connecting" or self.user is not None:
            self.reply(n.ERR_ALREADYREGISTERED, "You may not reregister")
            return []
        self.user = m.params[0][:16]
        self.realname = m.params[3]
        return self._try_register()

    def _cap(self, m: Message) -> list[Action]:
        sub = m.params[0].upper()
        me = self.nick if self.nick else "*"
        if sub == "LS":
            if not self.registered_:
                self.negotiating = True
            self._send(Message("CAP", (me, "LS", ""), self.server.name))
        elif sub == "LIST":
            self._send(Message("CAP", (me, "LIST", ""), self.server.name))
        elif sub == "REQ":
            self._send(Message("CAP", (me, "NAK", m.param(1)), self.server.name))
        elif sub == "END":
            if self.negotiating:
                self.negotiating = False
                return self._try_register()
        else:
            self.reply("410", sub, "Invalid CAP command")
        return []

    def _try_register(self) -> list[Action]:
        if self.state != "connecting" or not self.nick or not self.user or self.negotiating:
            return []
        expected = self.server.password
        if expected is not None and not hmac.compare_digest(
                (self.password or "").encode(), expected.encode()):
            self.reply(n.ERR_PASSWDMISMATCH, "Password incorrect")
            return self._close("Bad password")
        self.state = "registering"
        return [Register(self.nick)]

    def _close(self, reason: str) -> list[Action]:
        self._send(Message("ERROR", (f"Closing link: {self.host} ({reason})",)))
        self.state = "closed"
        return [Close(reason)]

    def registered(self) -> None:
        """The ring gave this session its nick: welcome the client."""
        self.state = "registered"
        s = self.server
        self.reply(n.RPL_WELCOME, f"Welcome to the chordchat network, {self.mask}")
        self.reply(n.RPL_YOURHOST, f"Your host is {s.name}, running version {s.version}")
        self.reply(n.RPL_CREATED, f"This server was created {s.created}")
        self.reply(n.RPL_MYINFO, s.name, s.version, "i", "t")
        self.reply(n.RPL_ISUPPORT, *ISUPPORT, "are supported by this server")
        if s.motd:
            self.reply(n.RPL_MOTDSTART, f"- {s.name} Message of the day -")
            for line in s.motd:
                self.reply(n.RPL_MOTD, f"- {line}")
            self.reply(n.RPL_ENDOFMOTD, "End of /MOTD command.")
        else:
            self.reply(n.ERR_NOMOTD, "MOTD File is missing")

    def refused(self, nick: str, reason: str, taken: bool) -> list[Action]:
        """The ring refused ``nick``: taken (the client may pick another) or unreachable."""
        if taken:
            self.state = "connecting"
            self.nick = None
            self.reply(n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            return []
        return self._close(f"cannot register {nick}: {reason}")

    # the rest of the commands --------------------------------------------------------------

    def _ping(self, m: Message) -> None:
        self._send(Message("PONG", (self.server.name, m.params[0]), self.server.name))

    def _pong(self, m: Message) -> None:
        pass   # any line shows the client is alive; the driver counts them

    def _quit(self, m: Message) -> list[Action]:
        reason = m.param(0, "Client quit") or "Client quit"
        was_registered = self.registered_
        self._send(Message("ERROR", (f"Closing link: {self.host} (Quit: {reason})",)))
        self.state = "closed"
        return [Quit(reason)] if was_registered else [Close(reason)]

    def _channel(self, name: str, quiet: bool = False) -> str | None:
        """The chat's name of IRC channel ``name`` (which starts with '#'), else 403."""
        try:
            if not name.startswith("#"):
                raise CommandError(name)
            return channel_name(name)
        except CommandError:
            if not quiet:
                self.reply(n.ERR_NOSUCHCHANNEL, name, "No such channel")
            return None

    def _join(self, m: Message) -> list[Action]:
        if m.params[0] == "0":
            return [Run(Command("leave", (c,))) for c in self.channels]
        actions: list[Action] = []
        for name in m.params[0].split(","):
            if name.lower() == RING_CHANNEL:
                if not self.in_ring_channel:
                    self.in_ring_channel = True
                    self._send(Message("JOIN", (RING_CHANNEL,), self.mask))
                    self._topic_of_ring(n.RPL_TOPIC)
                    self._names(RING_CHANNEL, [self.nick])
                continue
            channel = self._channel(name)
            if channel is None or channel in self.channels or channel in self.joining:
                continue
            self.joining.add(channel)
            actions.append(Run(Command("join", (channel,))))
        return actions

    def _part(self, m: Message) -> list[Action]:
        reason = m.param(1)
        actions: list[Action] = []
        for name in m.params[0].split(","):
            if name.lower() == RING_CHANNEL:
                if self.in_ring_channel:
                    self.in_ring_channel = False
                    self._send(Message("PART", (RING_CHANNEL, reason) if reason
                                       else (RING_CHANNEL,), self.mask))
                else:
                    self.reply(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
                continue
            channel = self._channel(name)
            if channel is None:
                continue
            if channel not in self.channels:
                self.reply(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
                continue
            self.parting[channel] = reason
            actions.append(Run(Command("leave", (channel,))))
        return actions

    def _privmsg(self, m: Message) -> list[Action]:
        quiet = m.command == "NOTICE"
        if not m.params or not m.params[0]:
            if not quiet:
                self.reply(n.ERR_NORECIPIENT, f"No recipient given ({m.command})")
            return []
        if len(m.params) < 2 or not m.params[1]:
            if not quiet:
                self.reply(n.ERR_NOTEXTTOSEND, "No text to send")
            return []
        text = t.from_irc(m.params[1])
        if text is None:
            return []   # a CTCP query: nobody on the ring answers those
        try:
            check_text(text)
        except CommandError as e:
            if not quiet:
                self.reply(n.ERR_NOTEXTTOSEND, f"Cannot send that: {e}")
            return []
        actions: list[Action] = []
        for target in m.params[0].split(",")[:4]:
            if target.lower() == RING_CHANNEL:
                if not quiet:
                    self.reply(n.ERR_CANNOTSENDTOCHAN, target, "This channel is read-only")
            elif target.startswith(("#", "&")):
                channel = self._channel(target, quiet)
                if channel is not None:
                    actions.append(Run(Command("send", (channel, text)), quiet))
            else:
                try:
                    check_nick(target)
                except CommandError:
                    if not quiet:
                        self.reply(n.ERR_NOSUCHNICK, target, "No such nick/channel")
                    continue
                actions.append(Run(Command("msg", (target, text)), quiet))
        return actions

    def failed(self, run: Run, reason: str) -> None:
        """The chat could not carry out ``run``: the numeric that says so, with why."""
        name, args = run.command.name, run.command.args
        if name == "join":
            self.joining.discard(args[0])
            self.reply(n.ERR_NOSUCHCHANNEL, "#" + args[0], f"Cannot join: {reason}")
        elif run.quiet:
            return
        elif name == "send":
            self.reply(n.ERR_CANNOTSENDTOCHAN, "#" + args[0], f"Cannot send: {reason}")
        elif name == "msg":
            self.reply(n.ERR_NOSUCHNICK, args[0], f"No such nick: {reason}")
        else:
            self.parting.pop(args[0] if args else "", None)
            self.notice(f"{name} failed: {reason}")

    def _names(self, channel: str, nicks: list[str]) -> None:
        prefix = f":{self.server.name} {n.RPL_NAMREPLY} {self.nick} = {channel} :"
        line: list[str] = []
        for nick in nicks:
            if len(prefix) + len(" ".join([*line, nick])) > MAX_LINE - 2:
                self.reply(n.RPL_NAMREPLY, "=", channel, " ".join(line))
                line = []
            line.append(nick)
        if line:
            self.reply(n.RPL_NAMREPLY, "=", channel, " ".join(line))
        self.reply(n.RPL_ENDOFNAMES, channel, "End of /NAMES list")

    def _names_cmd(self, m: Message) -> None:
        targets = m.param(0).split(",") if m.param(0) else [f"#{c}" for c in self.channels]
        for name in targets:
            channel = self._channel(name, quiet=True)
            if name.lower() == RING_CHANNEL and self.in_ring_channel:
                self._names(RING_CHANNEL, [self.nick])
            elif channel is not None and channel in self.channels:
                self._names(name, list(self.channels[channel].values()))
            else:
                self.reply(n.RPL_ENDOFNAMES, name, "End of /NAMES list")
        if not targets:
            self.reply(n.RPL_ENDOFNAMES, "*", "End of /NAMES list")

    def _who_line(self, channel: str, nick: str) -> None:
        user, host = (self.user, self.host) if self._is_me(nick) else (nick, REMOTE_HOST)
        realname = self.realname if self._is_me(nick) else nick
        flags = "G" if self._is_me(nick) and self.away else "H"
        self.reply(n.RPL_WHOREPLY, channel, user, host, self.server.name, nick, flags,
                   f"0 {realname}")

    def _who(self, m: Message) -> None:
        mask = m.param(0, "*")
        channel = self._channel(mask, quiet=True) if mask.startswith("#") else None
        if channel is not None and channel in self.channels:
            for nick in self.channels[channel].values():
                self._who_line(mask, nick)
        elif not mask.startswith(("#", "&")):
            known = self._known(mask)
            if known:
                self._who_line("*", known)
        self.reply(n.RPL_ENDOFWHO, mask, "End of WHO list")

    def _known(self, nick: str) -> str | None:
        """``nick`` as shown, if it is this user or shares a channel with it."""
        if self._is_me(nick):
            return self.nick
        for members in self.channels.values():
            if nick.lower() in members:
                return members[nick.lower()]
        return None

    def _whois(self, m: Message) -> list[Action]:
        nick = m.params[-1].split(",")[0]
        try:
            check_nick(nick)
        except CommandError:
            self.reply(n.ERR_NOSUCHNICK, nick, "No such nick/channel")
            self.reply(n.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")
            return []
        return [Lookup(nick)]

    def whois(self, nick: str, found: Whois | None) -> None:
        """The answer to a ``Lookup``."""
        if found is None:
            self.reply(n.ERR_NOSUCHNICK, nick, "No such nick/channel")
        else:
            nick = found.nick
            user = self.user if self._is_me(nick) else nick
            host = self.host if self._is_me(nick) else REMOTE_HOST
            self.reply(n.RPL_WHOISUSER, nick, user, host, "*",
                       self.realname if self._is_me(nick) else nick)
            shared = [f"#{c}" for c, members in self.channels.items() if nick.lower() in members]
            if shared:
                self.reply(n.RPL_WHOISCHANNELS, nick, " ".join(shared))
            where = f"node {found.node_id[:8]}" if found.node_id else "the ring"
            self.reply(n.RPL_WHOISSERVER, nick, self.server.name,
                       f"on {where} at {found.address or 'an unknown address'}")
            for label, value in (("node id", found.node_id), ("address", found.address),
                                 ("key fingerprint", found.fingerprint)):
                if value:
                    self.reply(n.RPL_WHOISSPECIAL, nick, f"{label} {value}")
        self.reply(n.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")

    def _topic_of_ring(self, numeric: str) -> None:
        self.reply(numeric, RING_CHANNEL, "This node's ring changes and migration steps")

    def _topic(self, m: Message) -> None:
        name = m.params[0]
        if name.lower() == RING_CHANNEL:
            self._topic_of_ring(n.RPL_TOPIC)
            return
        if self._channel(name) is None:
            return
        if len(m.params) > 1:
            self.reply(n.ERR_CHANOPRIVSNEEDED, name, "Channels have no topics on this network")
        else:
            self.reply(n.RPL_NOTOPIC, name, "No topic is set")

    def _list(self, m: Message) -> list[Action]:
        return [ListChannels()]

    def listing(self, channels: list[tuple[str, int]]) -> None:
        """The answer to ``ListChannels``: the channels this node's users are in."""
        self.reply(n.RPL_LISTSTART, "Channel", "Users  Name")
        for channel, members in sorted(channels):
            self.reply(n.RPL_LIST, f"#{channel}", str(members), "")
        self.reply(n.RPL_LISTEND, "End of /LIST (channels of this node's users only)")

    def _mode(self, m: Message) -> None:
        target = m.params[0]
        if target.startswith(("#", "&")):
            if target.lower() != RING_CHANNEL and self._channel(target) is None:
                return
            if len(m.params) == 1:
                self.reply(n.RPL_CHANNELMODEIS, target, "+t")
            elif m.params[1].lstrip("+") == "b":
                self.reply(n.RPL_ENDOFBANLIST, target, "End of channel ban list")
            else:
                self.reply(n.ERR_CHANOPRIVSNEEDED, target,
                           "Channel modes cannot be changed on this network")
            return
        if not self._is_me(target):
            self.reply(n.ERR_USERSDONTMATCH, "Can't change mode for other users")
            return
        if len(m.params) == 1:
            self.reply(n.RPL_UMODEIS, "+" + "".join(sorted(self.modes)))
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
                self.reply(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
                return
        if changed:
            self._send(Message("MODE", (self.nick, changed), self.mask))

    def _userhost(self, m: Message) -> None:
        """302 for the nicks this session knows (itself, members of its channels); irssi
        asks for its own at connect to learn its host."""
        found = []
        for nick in m.params[:5]:
            known = self._known(nick)
            if known is not None:
                user, host = (self.user, self.host) if self._is_me(known) else (known, REMOTE_HOST)
                away = "-" if self._is_me(known) and self.away else "+"
                found.append(f"{known}={away}{user}@{host}")
        self.reply(n.RPL_USERHOST, " ".join(found))

    def _away(self, m: Message) -> None:
        self.away = m.param(0) or None
        if self.away:
            self.reply(n.RPL_NOWAWAY, "You have been marked as being away")
        else:
            self.reply(n.RPL_UNAWAY, "You are no longer marked as being away")

    # -- what the chat tells this user -------------------------------------------------------

    def event(self, event: ev.Event) -> None:
        """One of this user's core events, as IRC lines (nothing before registration)."""
        if not self.registered_:
            return
        handler = _EVENTS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _on_joined(self, e: ev.Joined) -> None:
        self.joining.discard(e.channel)
        members = {m.lower(): m for m in e.members}
        members[self.nick.lower()] = self.nick
        self.channels[e.channel] = members
        name = f"#{e.channel}"
        self._send(Message("JOIN", (name,), self.mask))
        self._names(name, list(members.values()))

    def _on_left(self, e: ev.Left) -> None:
        if self.channels.pop(e.channel, None) is None:
            return
        reason = self.parting.pop(e.channel, "")
        name = f"#{e.channel}"
        self._send(Message("PART", (name, reason) if reason else (name,), self.mask))

    def _on_member_joined(self, e: ev.MemberJoined) -> None:
        members = self.channels.get(e.channel)
        if members is None or self._is_me(e.nick) or e.nick.lower() in members:
            return
        members[e.nick.lower()] = e.nick
        self._send(Message("JOIN", (f"#{e.channel}",), self._remote(e.nick)))

    def _on_member_left(self, e: ev.MemberLeft) -> None:
        members = self.channels.get(e.channel)
        if members is None or self._is_me(e.nick) or e.nick.lower() not in members:
            return
        del members[e.nick.lower()]
        name = f"#{e.channel}"
        if e.reason != "left" and self._known(e.nick) is None:
            self._send(Message("QUIT", (e.reason,), self._remote(e.nick)))
        else:
            self._send(Message("PART", (name, e.reason) if e.reason != "left" else (name,),
                               self._remote(e.nick)))

    def _on_channel_message(self, e: ev.ChannelMessage) -> None:
        if self._is_me(e.from_) and not e.history:
            return   # IRC does not echo a client's own message back
        prefix = self.mask if self._is_me(e.from_) else self._remote(e.from_)
        self._from(prefix, "PRIVMSG", f"#{e.channel}", t.to_irc(e.text))

    def _on_private_message(self, e: ev.PrivateMessage) -> None:
        if e.outgoing:
            return
        self._from(self._remote(e.from_), "PRIVMSG", self.nick, t.to_irc(e.text))

    def _on_info(self, e: ev.Info) -> None:
        for line in e.text.splitlines() or [""]:
            self.notice(line)

    def _on_error(self, e: ev.Error) -> None:
        self.notice(f"error: {e.message}")

    def node_event(self, event: ev.Event) -> None:
        """A ring change or migration step of this node: in ``&ring`` if the client joined
        it, else as a server NOTICE."""
        if not self.registered_:
            return
        line = t.describe(event)
        if line is None:
            return
        if self.in_ring_channel:
            self._from(self.server.name, "PRIVMSG", RING_CHANNEL, line)
        else:
            self._from(self.server.name, "NOTICE", self.nick, line)


# command -> (handler, parameters it needs, allowed before registration)
_HANDLERS: dict[str, tuple[Callable, int, bool]] = {
    "PASS": (Session._pass, 1, True),
    "NICK": (Session._nick, 0, True),
    "USER": (Session._user, 4, True),
    "CAP": (Session._cap, 1, True),
    "PING": (Session._ping, 1, True),
    "PONG": (Session._pong, 0, True),
    "QUIT": (Session._quit, 0, True),
    "JOIN": (Session._join, 1, False),
    "PART": (Session._part, 1, False),
    "PRIVMSG": (Session._privmsg, 0, False),
    "NOTICE": (Session._privmsg, 0, False),
    "NAMES": (Session._names_cmd, 0, False),
    "WHO": (Session._who, 0, False),
    "WHOIS": (Session._whois, 1, False),
    "TOPIC": (Session._topic, 1, False),
    "LIST": (Session._list, 0, False),
    "MODE": (Session._mode, 1, False),
    "AWAY": (Session._away, 0, False),
    "USERHOST": (Session._userhost, 1, False),
}

_EVENTS: dict[type, Callable] = {
    ev.Joined: Session._on_joined,
    ev.Left: Session._on_left,
    ev.MemberJoined: Session._on_member_joined,
    ev.MemberLeft: Session._on_member_left,
    ev.ChannelMessage: Session._on_channel_message,
    ev.PrivateMessage: Session._on_private_message,
    ev.Info: Session._on_info,
    ev.Error: Session._on_error,
}
