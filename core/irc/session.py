"""One IRC client's session as a pure state machine: lines in, lines and actions out.

``Session.receive`` takes one line from the client, writes the replies it can give at once
through ``send`` and returns the ``Action``s only the chat can carry out (register the
nick on the ring, run a chat ``Command``, look a nick up). The connection that drives it
(``core.irc.gateway``) does them and reports back: ``registered``/``refused`` for the
nick, ``failed`` for a command, ``whois``, ``listing``; the user's core events arrive
through ``event``, the node's ring news through ``node_event``. No I/O here, so every
reply is tested by feeding lines.

The parts, each the one owner of its state: ``Registration`` (the handshake and who the
client is), ``Channels`` (where it is), ``Commands`` (what it may ask once registered),
``ChatEvents`` (what the chat tells it), all speaking through one ``Replies``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from core import events as ev

from . import numerics as n
from .actions import Action, Run, Whois
from .channels import Channels
from .chat_events import ChatEvents
from .commands import Commands, Directory
from .message import InvalidUtf8, Message, ParseError, TooLong, parse
from .registration import Registration
from .replies import Replies, ServerInfo

Handler = Callable[[Message], list[Action] | None]


class Session:
    """The server side of one IRC connection.

    Args:
        server: the gateway's name, version, MOTD and password.
        send: called with every ``Message`` for the client, in order.
        host: the client's host, shown in its own mask.
    """

    def __init__(self, server: ServerInfo, send: Callable[[Message], None],
                 host: str = "localhost", directory: Directory | None = None) -> None:
        self.server = server
        self.replies = Replies(server, send, lambda: self.registration.addressee)
        self.registration = Registration(self.replies, server.password, host)
        self._channels = Channels()
        self.commands = Commands(self.replies, self.registration, self._channels, directory)
        if directory is not None:
            self.registration.in_use = lambda nick: directory.peer(nick) is not None
        self.chat_events = ChatEvents(self.replies, self.registration, self._channels)
        self.replies.mask_of = self._mask_of
        r, c = self.registration, self.commands
        # command -> (handler, parameters it needs, allowed before registration)
        self._handlers: dict[str, tuple[Handler, int, bool]] = {
            "PASS": (r.irc_pass, 1, True),
            "NICK": (r.irc_nick, 0, True),
            "USER": (r.irc_user, 4, True),
            "CAP": (r.irc_cap, 1, True),
            "AUTHENTICATE": (r.irc_authenticate, 1, True),
            "PING": (self._ping, 1, True),
            "PONG": (self._pong, 0, True),
            "QUIT": (r.irc_quit, 0, True),
            "JOIN": (c.irc_join, 1, False),
            "PART": (c.irc_part, 1, False),
            "PRIVMSG": (c.irc_privmsg, 0, False),
            "NOTICE": (c.irc_privmsg, 0, False),
            "NAMES": (c.irc_names, 0, False),
            "WHO": (c.irc_who, 0, False),
            "WHOIS": (c.irc_whois, 1, False),
            "WHOWAS": (c.irc_whowas, 1, False),
            "LUSERS": (c.irc_lusers, 0, False),
            "TIME": (c.irc_time, 0, False),
            "LINKS": (c.irc_links, 0, False),
            "OPER": (c.irc_oper, 2, False),
            "KILL": (c.irc_kill, 1, False),
            "WALLOPS": (c.irc_wallops, 1, False),
            "INFO": (c.irc_info, 0, False),
            "TOPIC": (c.irc_topic, 1, False),
            "LIST": (c.irc_list, 0, False),
            "MODE": (c.irc_mode, 1, False),
            "AWAY": (c.irc_away, 0, False),
            "USERHOST": (c.irc_userhost, 1, False),
            "TRUST": (c.irc_trust, 1, False),
            "CHATHISTORY": (c.irc_chathistory, 1, False),
            "KICK": (c.irc_kick, 1, False),
            "INVITE": (c.irc_invite, 1, False),
        }

    @property
    def nick(self) -> str | None:
        return self.registration.nick

    @property
    def host(self) -> str:
        return self.registration.host

    @property
    def state(self) -> str:
        """'connecting', 'registering' (the ring is asked for the nick), 'registered' or
        'closed'."""
        return self.registration.state

    @property
    def channels(self) -> dict[str, dict[str, str]]:
        """The channels the client is in: channel -> lower-case nick -> nick as shown."""
        return self._channels.members

    # -- lines from the client -----------------------------------------------------------

    def receive(self, raw: bytes | str | TooLong) -> list[Action]:
        """Handle one line from the client; return what the driver must do, in order."""
        if self.state == "closed":
            return []
        if isinstance(raw, TooLong):
            self.replies.reply(n.ERR_INPUTTOOLONG, "Input line was too long")
            return []
        try:
            message = parse(raw)
        except InvalidUtf8 as e:
            self.replies.from_server("FAIL", e.command or "*", "INVALID_UTF8",
                                     "Message rejected: it is not UTF-8")
            return []
        except ParseError:
            return []   # an empty or command-less line: servers ignore it
        spec = self._handlers.get(message.command)
        registered = self.registration.done
        if spec is None:
            if registered:
                self.replies.reply(n.ERR_UNKNOWNCOMMAND, message.command, "Unknown command")
            else:
                self.replies.reply(n.ERR_NOTREGISTERED, "You have not registered")
            return []
        handler, min_params, before_registration = spec
        if not before_registration and not registered:
            self.replies.reply(n.ERR_NOTREGISTERED, "You have not registered")
            return []
        if len(message.params) < min_params or (min_params and not message.params[0]):
            self.replies.reply(n.ERR_NEEDMOREPARAMS, message.command, "Not enough parameters")
            return []
        return handler(message) or []

    def _mask_of(self, nick: str) -> str:
        user, host, _, _ = self.commands.who(nick)
        return f"{nick}!{user}@{host}"

    def _ping(self, m: Message) -> None:
        self.replies.from_server("PONG", self.server.name, m.params[0])

    def _pong(self, m: Message) -> None:
        pass   # any line shows the client is alive; the driver counts them

    # -- the driver's answers --------------------------------------------------------------

    def registered(self, replay: bool = False) -> None:
        """The ring gave this session its nick: welcome the client. ``replay``: the user
        has a database of its own, so what it missed is shown (never the whole log)."""
        self.chat_events.replay = replay
        self.registration.registered()

    def refused(self, nick: str, reason: str, taken: bool) -> list[Action]:
        """The ring refused ``nick``: taken (the client may pick another) or unreachable."""
        return self.registration.refused(nick, reason, taken)

    def logged_in(self, account: str) -> list[Action]:
        """The answer to ``Authenticate``: the login is good."""
        return self.registration.logged_in(account)

    def login_failed(self) -> list[Action]:
        """The answer to ``Authenticate``: wrong password, or no such login here."""
        return self.registration.login_failed()

    def opered(self, name: str) -> None:
        """The answer to ``Oper``: the client is an operator of this gateway as ``name``."""
        self.commands.opered(name)

    def oper_failed(self, why: str) -> None:
        """The answer to ``Oper``: refused (``NO_SUCH_OPER`` or another reason)."""
        self.commands.oper_failed(why)

    def killed(self, by: str, reason: str) -> str:
        """An operator (mask ``by``) killed this client: KILL and ERROR tell it, nothing
        more is read; returns the reason its user quits with."""
        killer = by.split("!")[0]
        why = f"Killed ({killer} ({reason}))"
        self.replies.send(Message("KILL", (self.nick or "*", reason), by))
        self.registration.end(why)
        return why

    def renamed(self, nick: str) -> None:
        """The answer to ``Rename``: the ring gave the client ``nick`` (a new user that
        joined its channels): NICK, and it is known by that nick from now on; the old
        nick's leaving is not shown to it."""
        r = self.registration
        old, mask = r.nick or "", r.mask
        r.nick = nick
        for members in self._channels.members.values():
            if members.pop(old.lower(), None) is not None:
                members[nick.lower()] = nick
        self.chat_events.former.add(old.lower())
        self.chat_events.former.discard(nick.lower())
        self.replies.send(Message("NICK", (nick,), mask))

    def rename_refused(self, nick: str, reason: str, taken: bool) -> None:
        """The answer to ``Rename``: the client keeps its nick; 433 if ``nick`` is taken,
        else 447 with why."""
        if taken:
            self.replies.reply(n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        else:
            self.replies.reply(n.ERR_NONICKCHANGE, nick, f"Cannot change nickname: {reason}")

    def failed(self, run: Run, reason: str, code: str | None = None) -> None:
        """The chat could not carry out ``run``: the numeric that says so, with why
        (``code``: the word of a node's refusal, if one refused it)."""
        self.commands.failed(run, reason, code)

    def secret(self, channel: str) -> bool:
        """Whether ``channel`` is +s as this client knows it."""
        return self._channels.secret(channel)

    def whois(self, nick: str, found: Whois | None) -> None:
        """The answer to a ``Lookup``."""
        self.commands.whois(nick, found)

    def trusted(self, nick: str, why: str | None) -> None:
        """The answer to ``Trust``: None done, else why not."""
        self.commands.trusted(nick, why)

    def history(self, target: str, messages: list) -> None:
        """The answer to ``History``: the messages (events), oldest first."""
        self.chat_events.history(target, messages)

    def targets(self, targets: list[tuple[str, float]]) -> None:
        """The answer to a ``History`` TARGETS query: conversations and their last time."""
        self.chat_events.targets(targets)

    @property
    def away(self) -> str | None:
        return self.commands.away

    def listing(self, channels: list[tuple[str, int]], only: tuple[str, ...] = ()) -> None:
        """The answer to ``ListChannels``: the channels this node's users are in (those
        ``only`` names or matches, if given)."""
        if only:
            channels = [(c, k) for c, k in channels
                        if any(fnmatch.fnmatchcase(f"#{c}", name) for name in only)]
        self.replies.listing(channels)

    # -- what the chat tells this user ---------------------------------------------------

    def event(self, event: ev.Event) -> None:
        """One of this user's core events, as IRC lines (nothing before registration)."""
        self.chat_events.event(event)

    def node_event(self, event: ev.Event) -> None:
        """A ring change or migration step of this node, for the client."""
        self.chat_events.node_event(event)
