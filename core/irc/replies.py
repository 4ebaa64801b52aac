"""What the server says to one client, formatted: numerics addressed to it, notices, text
cut to fit a line, and the multi-line replies (the welcome, NAMES, WHOIS, LIST).

Numerics are named in ``numerics``; ``ISUPPORT`` (005) tells clients the limits the chat
sets (modern.ircdocs.horse, "RPL_ISUPPORT Tokens").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from . import numerics as n
from .actions import Whois
from .message import MAX_LINE, Message, split_text

NICKLEN = 32
TOPICLEN = 300           # the chat's limit on a channel topic (core.chat.model.entries)
CHANNELLEN = 51          # '#' and the chat's 50 characters
ISUPPORT = (
    "CASEMAPPING=ascii", f"CHANNELLEN={CHANNELLEN}", "CHANTYPES=#&", "CHANMODES=beI,k,l,imnst",
    f"LINELEN={MAX_LINE}", "NETWORK=chordchat", f"NICKLEN={NICKLEN}", "PREFIX=(ov)@+",
    "TARGMAX=JOIN:,PART:,PRIVMSG:4,NOTICE:4,NAMES:1,WHOIS:1", f"TOPICLEN={TOPICLEN}",
    "UTF8ONLY", "WHOX", "AWAYLEN=300", "CHATHISTORY=100", "MSGREFTYPES=msgid,timestamp",
    "EXCEPTS=e", "INVEX=I", "MAXLIST=beI:100", "MODES=12", "KICKLEN=300",
)
ISUPPORT_PER_LINE = 12   # with the nick and the trailing text: within RFC 1459's 15
REMOTE_HOST = "ring"   # the host part of other users' masks: they are somewhere on the ring


@dataclass(frozen=True)
class ServerInfo:
    """What the gateway says about itself; ``password`` set means PASS is required."""
    name: str
    version: str = "chordchat-0.1"
    created: str = "when this node started"
    motd: tuple[str, ...] = ()
    password: str | None = None
    sasl: bool = False      # SASL PLAIN offered (the node has a data directory)


def server_time(at: float) -> str:
    """``at`` (seconds of the wall clock) as IRCv3 ``server-time`` writes it, in UTC."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# which capability a tag needs before a client is sent it (IRCv3 message-tags, server-time,
# batch); a tag of none of these is a message tag
_TAG_CAPS = {"time": "server-time", "batch": "batch", "msgid": "message-tags"}


PIN_WORDS = {
    "same": "key is the one pinned for {nick}",
    "changed": "key is NOT the one pinned for {nick}: TRUST {nick} to accept it",
    "new": "key is not pinned yet: it is pinned at the first message from {nick}",
}


def remote(nick: str) -> str:
    """The mask of another user: the nick as user name, somewhere on the ring."""
    return f"{nick}!{nick}@{REMOTE_HOST}"


class Replies:
    """The lines from the server to one client.

    Args:
        server: the gateway's name, version and MOTD.
        send: called with every ``Message`` for the client, in order.
        to: the name numerics address: the client's nick once registered, else '*'.
    """

    def __init__(self, server: ServerInfo, send: Callable[[Message], None],
                 to: Callable[[], str], caps: set[str] | None = None) -> None:
        self.server = server
        self._send = send
        self._to = to
        self.caps = caps if caps is not None else set()   # those the client enabled
        # nick -> nick!user@host as this client is shown it (userhost-in-names)
        self.mask_of: Callable[[str], str] = remote

    def send(self, message: Message) -> None:
        """Send ``message`` with the tags the client asked for (CAP REQ), no others."""
        if message.tags:
            kept = {k: v for k, v in message.tags.items()
                    if _TAG_CAPS.get(k, "message-tags") in self.caps}
            if kept != message.tags:
                message = Message(message.command, message.params, message.prefix, kept)
        self._send(message)

    def reply(self, numeric: str, *params: str) -> None:
        """A numeric from the server to this client."""
        self.send(Message(numeric, (self._to(), *params), self.server.name))

    def notice(self, text: str) -> None:
        self.send(Message("NOTICE", (self._to(), text), self.server.name))

    def from_server(self, command: str, *params: str) -> None:
        """A command (PONG, CAP, FAIL) with the server as its source."""
        self.send(Message(command, params, self.server.name))

    def text(self, prefix: str, command: str, target: str, text: str,
             tags: dict[str, str] | None = None) -> None:
        """PRIVMSG/NOTICE lines, the text cut so that each line fits in 512 bytes (tags
        aside); a message cut in pieces gives its ``msgid`` to the first only."""
        room = MAX_LINE - 2 - len(f":{prefix} {command} {target} :".encode())
        for i, piece in enumerate(split_text(text, room)):
            shown = dict(tags or {})
            if i and "msgid" in shown:
                shown["msgid"] = f"{shown['msgid']}-{i}"
            self.send(Message(command, (target, piece), prefix, shown))

    def welcome(self, mask: str) -> None:
        """001 to 005 and the MOTD: what a client waits for after NICK and USER."""
        s = self.server
        self.reply(n.RPL_WELCOME, f"Welcome to the chordchat network, {mask}")
        self.reply(n.RPL_YOURHOST, f"Your host is {s.name}, running version {s.version}")
        self.reply(n.RPL_CREATED, f"This server was created {s.created}")
        self.reply(n.RPL_MYINFO, s.name, s.version, "iow", "beIiklmnostv", "beIklov")
        for i in range(0, len(ISUPPORT), ISUPPORT_PER_LINE):   # 15 parameters at most
            self.reply(n.RPL_ISUPPORT, *ISUPPORT[i:i + ISUPPORT_PER_LINE],
                       "are supported by this server")
        if s.motd:
            self.reply(n.RPL_MOTDSTART, f"- {s.name} Message of the day -")
            for line in s.motd:
                self.reply(n.RPL_MOTD, f"- {line}")
            self.reply(n.RPL_ENDOFMOTD, "End of /MOTD command.")
        else:
            self.reply(n.ERR_NOMOTD, "MOTD File is missing")

    def names(self, channel: str, nicks: Iterable[str],
              prefixes: dict[str, str] | None = None, secret: bool = False) -> None:
        """353 lines of at most 512 bytes, then 366; with ``userhost-in-names`` (IRCv3)
        each member as nick!user@host. ``prefixes``: lower nick -> "@+" (operator, voice):
        all of them with ``multi-prefix``, else the highest. ``secret``: a +s channel
        ("@")."""
        prefixes = prefixes or {}

        def shown(nick: str) -> str:
            mark = prefixes.get(nick.lower(), "")
            mark = mark if "multi-prefix" in self.caps else mark[:1]
            return mark + (self.mask_of(nick) if "userhost-in-names" in self.caps else nick)
        nicks = [shown(nick) for nick in nicks]
        kind = "@" if secret else "="
        prefix = f":{self.server.name} {n.RPL_NAMREPLY} {self._to()} {kind} {channel} :"
        line: list[str] = []
        for nick in nicks:
            if len(prefix) + len(" ".join([*line, nick])) > MAX_LINE - 2:
                self.reply(n.RPL_NAMREPLY, kind, channel, " ".join(line))
                line = []
            line.append(nick)
        if line:
            self.reply(n.RPL_NAMREPLY, kind, channel, " ".join(line))
        self.end_of_names(channel)

    def end_of_names(self, channel: str) -> None:
        self.reply(n.RPL_ENDOFNAMES, channel, "End of /NAMES list")

    def ring_topic(self, channel: str) -> None:
        self.reply(n.RPL_TOPIC, channel, "This node's ring changes and migration steps")

    def topic(self, channel: str, topic: tuple[str, str, float] | None) -> None:
        """332 and 333 (text, who set it, when), or 331 when the channel has none."""
        if topic is None or not topic[0]:
            self.reply(n.RPL_NOTOPIC, channel, "No topic is set")
            return
        text, setter, at = topic
        self.reply(n.RPL_TOPIC, channel, text)
        self.reply(n.RPL_TOPICWHOTIME, channel, setter, str(int(at)))

    def whois(self, found: Whois, user: str, host: str, realname: str,
              channels: list[str], away: str | None = None, oper: bool = False) -> None:
        """311, 319, 312, 313 if an operator of this gateway, 301 if away, then 318;
        ``channels`` are those the asker shares with the nick. 312's text is the chat's
        identity of the nick: node id, address, key fingerprint and whether it is the key
        pinned for the nick (in 312, not in 320s: irctest and clients take 320 for lines
        an operator configured)."""
        nick = found.nick
        self.reply(n.RPL_WHOISUSER, nick, user, host, "*", realname)
        if channels:
            self.reply(n.RPL_WHOISCHANNELS, nick, " ".join(channels))
        where = f"on node {found.node_id}" if found.node_id else "on the ring"
        where += f" at {found.address or 'an unknown address'}"
        if found.fingerprint:
            where += f"; key fingerprint {found.fingerprint}"
            if found.pin in PIN_WORDS:
                where += ": " + PIN_WORDS[found.pin].format(nick=nick)
        self.reply(n.RPL_WHOISSERVER, nick, self.server.name, where)
        if oper:
            self.reply(n.RPL_WHOISOPERATOR, nick, "is an IRC operator of this gateway")
        if away:
            self.reply(n.RPL_AWAY, nick, away)
        self.end_of_whois(nick)

    def no_such_nick(self, nick: str) -> None:
        self.reply(n.ERR_NOSUCHNICK, nick, "No such nick/channel")

    def end_of_whois(self, nick: str) -> None:
        self.reply(n.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")

    def listing(self, channels: Iterable[tuple[str, int]]) -> None:
        """321, a 322 for each channel (the chat's name) with its member count, 323."""
        self.reply(n.RPL_LISTSTART, "Channel", "Users  Name")
        for channel, members in sorted(channels):
            self.reply(n.RPL_LIST, f"#{channel}", str(members), "")
        self.reply(n.RPL_LISTEND, "End of /LIST (channels of this node's users only)")
