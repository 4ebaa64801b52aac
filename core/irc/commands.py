"""The commands of a registered IRC client: channels and messages become chat commands
(``Run``), queries are answered from what the client knows or asked of the ring
(``Lookup``, ``ListChannels``), and the driver's answers become numerics.

Channels are ``#name`` (the chat's names) and ``&ring`` (this node's news, read-only). A
NOTICE never gets an error back (RFC 1459 §4.4.2). The client's away message and user
modes (``+i``, ``+w``, and ``+o`` once OPER made it an operator of this gateway) are kept
here, since only these commands set and show them.
"""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime

from core.chat.model.commands import Command, CommandError, check_nick, check_text
from core.chat.model.modes import changes_text, parse_changes
from core.chat.model.text import visible

from . import chanmodes
from . import numerics as n
from . import text as t
from .actions import (
    NO_SUCH_OPER,
    Action,
    Counts,
    Gone,
    History,
    ListChannels,
    Lookup,
    Oper,
    Peer,
    Run,
    Trust,
    Whois,
)
from .channels import RING_CHANNEL, Channels, chat_channel, is_ring
from .message import MAX_LINE, Message
from .registration import Registration
from .replies import TOPICLEN, Replies, remote

HISTORY_LIMIT = 100      # at most this many lines per CHATHISTORY answer (ISUPPORT)
WHOX_FIELDS = "tcuihsnfdlaor"   # the WHOX fields, in the order a 354 gives them


class Directory:
    """What a session may learn of its gateway's other clients (nothing, by default)."""

    def peer(self, nick: str) -> Peer | None:
        """Another client of this gateway registered as ``nick``."""
        return None

    def has_channel(self, channel: str) -> bool:
        """Whether a client of this gateway is in ``channel`` (the chat's name)."""
        return False

    def was(self, nick: str) -> list[Gone]:
        """The clients of this gateway that were ``nick`` and left, the latest first."""
        return []

    def counts(self) -> Counts:
        """How many clients this gateway serves (LUSERS)."""
        return Counts()

    def kill(self, nick: str, by: str, reason: str) -> bool:
        """Close the connection of the client of this gateway registered as ``nick`` (an
        operator's KILL, ``by`` its mask); False if there is none."""
        return False

    def wallops(self, message: Message) -> None:
        """Send ``message`` (a WALLOPS) to every client of this gateway that is ``+w``."""


class Commands:
    """What a registered client may ask, answered through ``replies``."""

    def __init__(self, replies: Replies, me: Registration, channels: Channels,
                 directory: Directory | None = None) -> None:
        self.replies = replies
        self.me = me
        self.channels = channels
        self.directory = directory or Directory()
        self.modes: set[str] = set()     # user modes: "i", "w", "o" (an operator)
        self.away: str | None = None

    def _channel(self, name: str, quiet: bool = False) -> str | None:
        """The chat's name of IRC channel ``name``, else 403 (unless ``quiet``)."""
        channel = chat_channel(name)
        if channel is None and not quiet:
            self.replies.reply(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        return channel

    def _known(self, nick: str) -> str | None:
        """``nick`` as shown, if it is this client, shares a channel with it or is another
        client of this gateway."""
        if self.me.is_me(nick):
            return self.me.nick
        peer = self.directory.peer(nick)
        return self.channels.member(nick) or (peer.nick if peer else None)

    def is_oper(self, nick: str) -> bool:
        """Whether ``nick`` is an IRC operator of this gateway (this client or another)."""
        if self.me.is_me(nick):
            return "o" in self.modes
        peer = self.directory.peer(nick)
        return peer is not None and peer.oper

    def who(self, nick: str) -> tuple[str, str, str, str | None]:
        """User name, host, real name and away message as shown for ``nick``."""
        if self.me.is_me(nick):
            return self.me.user or "", self.me.host, self.me.realname, self.away
        peer = self.directory.peer(nick)
        if peer is not None:
            return peer.user, peer.host, peer.realname, peer.away
        return (*self.me.who(nick), None)

    # -- channels and messages -------------------------------------------------------------

    def irc_join(self, m: Message) -> list[Action]:
        if m.params[0] == "0":
            return [Run(Command("leave", (c,))) for c in self.channels.members]
        actions: list[Action] = []
        keys = m.param(1).split(",") if m.param(1) else []
        for i, name in enumerate(m.params[0].split(",")):
            key = keys[i] if i < len(keys) else ""
            if is_ring(name):
                if self.channels.join_ring():
                    self.replies.send(Message("JOIN", (RING_CHANNEL,), self.me.mask))
                    self.replies.ring_topic(RING_CHANNEL)
                    self.replies.names(RING_CHANNEL, [self.me.nick])
                continue
            channel = self._channel(name)
            if channel is not None and self.channels.join(channel):
                actions.append(Run(Command("join", (channel, key) if key else (channel,))))
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
            actions.append(Run(Command("leave", (channel, reason) if reason else (channel,))))
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
        if not quiet:
            # the others get the line with this client's mask in front: one that would
            # not fit in 512 bytes then is refused whole (417), never cut or split, so
            # that what an IRC client sends arrives as it sent it (RFC 1459 §2.3)
            longest = max(m.params[0].split(",")[:4], key=len)
            relayed = f":{remote(self.me.nick or '')} {m.command} {longest} :{m.params[1]}\r\n"
            if len(relayed.encode()) > MAX_LINE:
                room = MAX_LINE - len(relayed.encode()) + len(m.params[1].encode())
                self.replies.reply(n.ERR_INPUTTOOLONG, f"Input line was too long: with your "
                                   f"mask in front the others would get more than {MAX_LINE} "
                                   f"bytes; at most {room} bytes of text fit")
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
        body = (text[len(t.ACTION_PREFIX):] if action
                else t.NOTICE_PREFIX + text if quiet else text)
        actions: list[Action] = []
        for target in m.params[0].split(",")[:4]:
            if is_ring(target):
                if quiet:
                    continue
                if self.channels.in_ring and text.lower().startswith("trust "):
                    actions.append(Trust(text.split()[1]))
                else:
                    self.replies.reply(n.ERR_CANNOTSENDTOCHAN, target,
                                       "This channel is read-only (but: trust <nick>)")
            elif target.startswith(("#", "&")):
                channel = self._channel(target, quiet)
                if channel is None:
                    continue
                if channel not in self.channels and not self.directory.has_channel(channel):
                    # whether it exists elsewhere on the ring is unknown here: 403 unless a
                    # client of ours is in it (then the maintainer decides: +n refuses)
                    if not quiet:
                        self.replies.reply(n.ERR_NOSUCHCHANNEL, target, "No such channel")
                    continue
                actions.append(Run(Command("me", ("#" + channel, body)) if action
                                   else Command("send", (channel, body)), quiet))
            else:
                try:
                    check_nick(target)
                except CommandError:
                    if not quiet:
                        self.replies.no_such_nick(target)
                    continue
                peer = self.directory.peer(target)
                if not quiet and peer is not None and peer.away:
                    self.replies.reply(n.RPL_AWAY, peer.nick, peer.away)
                actions.append(Run(Command("me", (target, body)) if action
                                   else Command("msg", (target, body)), quiet))
        return actions

    def failed(self, run: Run, reason: str, code: str | None = None) -> None:
        """The chat could not carry out ``run``: the numeric that says so, with why
        (``code``: the word of a node's refusal, if one refused it)."""
        name, args = run.command.name, run.command.args
        if name in ("join", "mode", "kick", "invite") and code in _REFUSALS:
            if name == "join":
                self.channels.join_failed(args[0])
            numeric, text = _REFUSALS[code]
            if code == "already_member":
                self.replies.reply(numeric, args[1], "#" + args[0], text)
            elif code in ("no_such_nick",):
                self.replies.reply(numeric, args[1], text)
            elif code == "no_such_member":
                nick = args[1] if name == "kick" else next(
                    (arg for _, letter, arg in parse_changes(args[1]) if letter in "ov"), "*")
                self.replies.reply(numeric, nick, "#" + args[0], text)
            else:
                self.replies.reply(numeric, "#" + args[0], f"{text}: {reason}")
            return
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
        elif name == "topic":
            self.replies.reply(n.ERR_CHANOPRIVSNEEDED, "#" + args[0],
                               f"Cannot set the topic: {reason}")
        else:
            self.channels.part_failed(args[0] if args else "")
            self.replies.notice(f"{name} failed: {reason}")

    def irc_topic(self, m: Message) -> list[Action]:
        """TOPIC #chan: 332/333 or 331; TOPIC #chan :text sets it (any member may: the
        chat has no operators), echoed as TOPIC once the channel's maintainer has it."""
        name = m.params[0]
        if is_ring(name):
            if len(m.params) > 1:
                self.replies.reply(n.ERR_CHANOPRIVSNEEDED, name, "&ring's topic is fixed")
            else:
                self.replies.ring_topic(RING_CHANNEL)
            return []
        channel = self._channel(name)
        if channel is None:
            return []
        if channel not in self.channels:
            if self.directory.has_channel(channel):
                self.replies.reply(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
            else:
                self.replies.reply(n.ERR_NOSUCHCHANNEL, name, "No such channel")
            return []
        if len(m.params) == 1:
            self.replies.topic(name, self.channels.topics.get(channel))
            return []
        text = t.from_irc(m.params[1]) or ""
        try:
            if text:
                check_text(text)
        except CommandError as e:
            self.replies.reply(n.ERR_CHANOPRIVSNEEDED, name, f"Cannot set that topic: {e}")
            return []
        return [Run(Command("topic", (channel, text[:TOPICLEN])))]

    # -- who is where ----------------------------------------------------------------------

    def irc_names(self, m: Message) -> None:
        targets = (m.param(0).split(",") if m.param(0)
                   else [f"#{c}" for c in self.channels.members])
        for name in targets:
            channel = self._channel(name, quiet=True)
            if is_ring(name) and self.channels.in_ring:
                self.replies.names(RING_CHANNEL, [self.me.nick])
            elif channel is not None and channel in self.channels:
                self.replies.names(name, self.channels.names(channel),
                                   self.channels.prefixes(channel),
                                   self.channels.secret(channel))
            else:
                self.replies.end_of_names(name)
        if not targets:
            self.replies.end_of_names("*")

    def irc_who(self, m: Message) -> None:
        """WHO <mask> [%fields[,token]] (modern.ircdocs.horse "WHO"; IRCv3 WHOX): the
        members of a channel the client is in; a nick it knows of (itself, the members of
        its channels, the other clients of this gateway); or, for a mask with ``*``/``?``
        (``0`` and ``*``: everyone), those among itself and the members of its channels
        whose nick matches. ``*`` after H or G marks an IRC operator of this gateway;
        nobody has a channel prefix. 315 names the mask as sent."""
        mask = m.param(0, "*") or "*"
        fields, token = _whox(m.param(1))
        channel = self._channel(mask, quiet=True) if mask.startswith("#") else None
        if channel is not None and channel in self.channels:
            for nick in self.channels.names(channel):
                self._who_line(f"#{channel}", nick, fields, token)
        elif is_ring(mask) and self.channels.in_ring:
            self._who_line(RING_CHANNEL, self.me.nick, fields, token)
        elif not mask.startswith(("#", "&")):
            if any(c in mask for c in "*?") or mask == "0":
                pattern = "*" if mask == "0" else mask.lower()
                seen = {self.me.nick.lower(): self.me.nick} if self.me.nick else {}
                for members in self.channels.members.values():
                    seen.update(members)
                for low in sorted(seen):
                    if fnmatch.fnmatchcase(low, pattern):
                        self._who_line("*", seen[low], fields, token)
            else:
                known = self._known(mask)
                if known:
                    self._who_line("*", known, fields, token)
        self.replies.reply(n.RPL_ENDOFWHO, mask, "End of WHO list")

    def _who_line(self, channel: str, nick: str, fields: str | None = None,
                  token: str = "") -> None:
        """352, or with WHOX ``fields`` a 354 of those fields in the order the extension
        fixes (t c u i h s n f d l a o r)."""
        user, host, realname, away = self.who(nick)
        flags = (("G" if away else "H") + ("*" if self.is_oper(nick) else "")
                 + self._prefix(channel, nick))
        server = self.replies.server.name
        if fields is None:
            self.replies.reply(n.RPL_WHOREPLY, channel, user, host, server, nick, flags,
                               f"0 {realname}")
            return
        peer = self.directory.peer(nick)
        ip = (self.me.host if self.me.is_me(nick) else peer.host if peer else
              "255.255.255.255")   # where a user of another node connects from is unknown
        account = (self.me.account if self.me.is_me(nick) else peer.account if peer
                   else None) or "0"
        values = {"t": token, "c": channel, "u": user, "i": ip, "h": host, "s": server,
                  "n": nick, "f": flags, "d": "0", "l": "0", "a": account, "o": "n/a",
                  "r": realname}
        shown = [values[f] for f in WHOX_FIELDS if f in fields]
        if shown and "r" in fields and not shown[-1]:
            shown[-1] = "*"   # an empty last parameter would be lost
        self.replies.reply(n.RPL_WHOSPCRPL, *shown)

    def _prefix(self, channel: str, nick: str) -> str:
        """``nick``'s channel prefix in ``channel`` (an IRC name or "*"): "@", "+", or
        with ``multi-prefix`` "@+"."""
        chat = chat_channel(channel) if channel.startswith("#") else None
        mark = self.channels.prefixes(chat).get(nick.lower(), "") if chat else ""
        return mark if "multi-prefix" in self.replies.caps else mark[:1]

    def irc_whois(self, m: Message) -> list[Action]:
        """WHOIS [server] nick: the server, if given, is this one whatever its name (every
        nick is on the ring, which this gateway asks)."""
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
        user, host, realname, away = self.who(found.nick)
        self.replies.whois(found, user, host, realname, self.channels.shared(found.nick),
                           away, self.is_oper(found.nick))

    def irc_userhost(self, m: Message) -> None:
        """302 for the nicks this client knows (itself, members of its channels); irssi
        asks for its own at connect to learn its host."""
        found = []
        for nick in m.params[:5]:
            known = self._known(nick)
            if known is not None:
                user, host, _, away = self.who(known)
                found.append(f"{known}={'-' if away else '+'}{user}@{host}")
        self.replies.reply(n.RPL_USERHOST, " ".join(found))

    def irc_list(self, m: Message) -> list[Action]:
        """LIST [#a,#b]: the channels named (``*`` masks too), or all this node knows."""
        names = tuple(x.lower() for x in m.param(0).split(",") if x)
        return [ListChannels(names)]

    def irc_whowas(self, m: Message) -> None:
        """WHOWAS nick [count] (RFC 2812 §3.6.3): the users of this gateway that had the
        nick and left, the latest first (up to ``count`` if positive): 314 and 312 each,
        else 406; then 369. What the other nodes' users were is not known here."""
        nick = m.params[0].split(",")[0]
        count = m.param(1)
        limit = int(count) if count.lstrip("-").isdigit() else 0
        gone = self.directory.was(nick)
        if limit > 0:
            gone = gone[:limit]
        if not gone:
            self.replies.reply(n.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
        for g in gone:
            self.replies.reply(n.RPL_WHOWASUSER, g.nick, g.user, g.host, "*", g.realname)
            self.replies.reply(n.RPL_WHOISSERVER, g.nick, self.replies.server.name,
                               f"left at {datetime.fromtimestamp(g.at, UTC):%Y-%m-%d %H:%M:%S} UTC")
        self.replies.reply(n.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")

    def irc_lusers(self, m: Message) -> None:
        """LUSERS (RFC 2812 §3.4.2): what this gateway counts of itself: its registered
        clients (and those +i), its operators, its connections still registering, the
        channels its clients are in. The ring's users elsewhere are not counted: no node
        knows them all, so no network-wide numbers (265/266) are given."""
        c = self.directory.counts()
        self.replies.reply(n.RPL_LUSERCLIENT, f"There are {c.users - c.invisible} users and "
                           f"{c.invisible} invisible on 1 servers (this gateway alone)")
        self.replies.reply(n.RPL_LUSEROP, str(c.opers),
                           "operator(s) online (of this gateway)")
        if c.unregistered:
            self.replies.reply(n.RPL_LUSERUNKNOWN, str(c.unregistered),
                               "unknown connection(s)")
        self.replies.reply(n.RPL_LUSERCHANNELS, str(c.channels),
                           "channels formed (that this gateway's users are in)")
        self.replies.reply(n.RPL_LUSERME, f"I have {c.users} clients and 0 servers")

    def irc_time(self, m: Message) -> None:
        """TIME (RFC 2812 §3.4.6): this gateway's clock, in UTC; it answers for itself
        whatever server is named (it links to no other)."""
        now = datetime.now(UTC)
        self.replies.reply(n.RPL_TIME, self.replies.server.name,
                           now.strftime("%A %B %d %Y -- %H:%M:%S UTC"))

    def irc_links(self, m: Message) -> None:
        """LINKS (RFC 2812 §3.4.5): this gateway links to no other IRC server (the nodes
        of the ring are not IRC servers), so the list is empty: 365 alone."""
        self.replies.reply(n.RPL_ENDOFLINKS, m.param(0, "*") or "*",
                           "End of /LINKS list (this gateway links to no IRC server)")

    def irc_oper(self, m: Message) -> list[Action]:
        """OPER name password (RFC 2812 §3.1.4): an operator of this gateway, as the
        node's owner set them (``chordchat --set-irc-oper``); the driver checks."""
        return [Oper(m.params[0], m.params[1])]

    def opered(self, name: str) -> None:
        """The answer to ``Oper``: the client is an operator of this gateway now: 381 and
        its ``+o``."""
        self.replies.reply(n.RPL_YOUREOPER, f"You are now an IRC operator of this gateway "
                           f"(as {name}): KILL and WALLOPS reach its clients, no one else")
        if "o" not in self.modes:
            self.modes.add("o")
            self.replies.send(Message("MODE", (self.me.nick, "+o"), self.me.mask))

    def oper_failed(self, why: str) -> None:
        """The answer to ``Oper``: refused: 491 for a name that is no operator here, else
        464 (a wrong password)."""
        if why == NO_SUCH_OPER:
            self.replies.reply(n.ERR_NOOPERHOST, "No operator of that name on this gateway")
        else:
            self.replies.reply(n.ERR_PASSWDMISMATCH, "Password incorrect")

    def _privileged(self) -> bool:
        if "o" in self.modes:
            return True
        self.replies.reply(n.ERR_NOPRIVILEGES,
                           "Permission Denied- You're not an IRC operator")
        return False

    def irc_kill(self, m: Message) -> None:
        """KILL nick :reason (RFC 2812 §3.7.1), operators only (481): closes the connection
        of a client of this gateway; a user of another node is beyond its reach (401)."""
        if not self._privileged():
            return
        nick = m.params[0]
        reason = visible(m.param(1)) or "no reason given"
        if not self.directory.kill(nick, self.me.mask, reason):
            self.replies.reply(n.ERR_NOSUCHNICK, nick, "No such nick among this gateway's "
                               "clients (KILL reaches no other node's users)")

    def irc_wallops(self, m: Message) -> None:
        """WALLOPS :text (RFC 2812 §3.7.2), operators only (481): to every client of this
        gateway that set ``+w`` (the sender too, if it did); its control characters
        visible (``^A``…), as every text a client gets from another."""
        if not self._privileged():
            return
        self.directory.wallops(Message("WALLOPS", (visible(m.params[0]),), self.me.mask))

    def irc_info(self, m: Message) -> None:
        """INFO (RFC 2812 §3.4.10): 371 lines about this gateway, then 374."""
        s = self.replies.server
        for line in (f"{s.name}: chordchat {s.version}",
                     "An IRC gateway of a node of chordchat, a serverless chat on a Chord "
                     "ring: channels and nicks live on the ring, not on an IRC server.",
                     "Every nick is claimed on the ring; messages are signed by their "
                     "authors' keys, and WHOIS says whether a key is the one pinned.",
                     f"This gateway was started {s.created}."):
            self.replies.reply(n.RPL_INFO, line)
        self.replies.reply(n.RPL_ENDOFINFO, "End of /INFO list")

    def irc_kick(self, m: Message) -> list[Action]:
        """KICK #chan nick[,nick] [:reason] (RFC 2812 §3.2.8): an operator removes members;
        the channel's maintainer checks it again. 442, 441, 482 from what this client
        knows; the KICK line comes with the channel's feed."""
        if len(m.params) < 2:
            self.replies.reply(n.ERR_NEEDMOREPARAMS, "KICK", "Not enough parameters")
            return []
        name, reason = m.params[0], t.from_irc(m.param(2)) or ""
        channel = self._member_of(name)
        if channel is None:
            return []
        # who operates the channel and who is in it, the maintainer knows best (what this
        # client was told may lag a moment): it answers 482 or 441
        return [Run(Command("kick", (channel, nick, reason[:300])))
                for nick in m.params[1].split(",")[:4] if nick]

    def irc_invite(self, m: Message) -> list[Action]:
        """INVITE nick #chan (RFC 2812 §3.2.7): a member invites (an operator, on a +i
        channel); the maintainer keeps the invitation, which lets the nick in past +i and
        +b. 341 once it does, and the invitee, if this node serves it, gets INVITE."""
        if len(m.params) < 2:
            self.replies.reply(n.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
            return []
        nick, name = m.params[0], m.params[1]
        channel = self._member_of(name)
        if channel is None:
            return []
        if nick.lower() in self.channels.members[channel]:
            self.replies.reply(n.ERR_USERONCHANNEL, nick, name, "is already on channel")
            return []
        return [Run(Command("invite", (channel, nick)))]   # the maintainer may say 482

    def _member_of(self, name: str) -> str | None:
        """The chat's channel of ``name`` if this client is in it; else 403 or 442
        (&ring: 442, or 482 in it: nobody operates it)."""
        if is_ring(name):
            if self.channels.in_ring:
                self.replies.reply(n.ERR_CHANOPRIVSNEEDED, name, "&ring has no operators")
            else:
                self.replies.reply(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
            return None
        channel = chat_channel(name)
        if channel is None:
            self.replies.reply(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        elif channel not in self.channels:
            if self.directory.has_channel(channel):
                self.replies.reply(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
            else:
                self.replies.reply(n.ERR_NOSUCHCHANNEL, name, "No such channel")
            return None
        return channel

    # -- modes and away ------------------------------------------------------------------

    def irc_mode(self, m: Message) -> list[Action] | None:
        target = m.params[0]
        if target.startswith(("#", "&")):
            channel = None if is_ring(target) else self._channel(target)
            if not is_ring(target) and channel is None:
                return
            if (channel is not None and channel not in self.channels
                    and channel not in self.channels.joining):
                if not self.directory.has_channel(channel):
                    # nobody here is in it; whether it exists elsewhere is unknown here
                    self.replies.reply(n.ERR_NOSUCHCHANNEL, target, "No such channel")
                    return None
                if len(m.params) > 1 and m.params[1].lstrip("+-") not in ("b", "e", "I"):
                    self.replies.reply(n.ERR_NOTONCHANNEL, target, "You're not on that channel")
                    return None
            if channel is None:   # &ring: no modes
                if len(m.params) == 1:
                    self.replies.reply(n.RPL_CHANNELMODEIS, target, "+")
                else:
                    self.replies.reply(n.ERR_CHANOPRIVSNEEDED, target, "&ring has no modes")
                return []
            return self._channel_mode(target, channel, m)
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
            elif ch in "iwo":
                if ch == "o" and sign == "+":
                    continue   # only OPER makes an operator (RFC 2812 §3.1.5: ignored)
                if (ch in self.modes) != (sign == "+"):
                    (self.modes.add if sign == "+" else self.modes.discard)(ch)
                    changed += sign + ch
            else:
                self.replies.reply(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
                return
        if changed:
            self.replies.send(Message("MODE", (self.me.nick, changed), self.me.mask))

    def _channel_mode(self, name: str, channel: str, m: Message) -> list[Action]:
        """MODE #chan: 324 and 329; with changes, those that are well formed go to the
        ring as one signed entry (the maintainer checks the operator again); list modes
        without an argument are answered with the masks this client knows."""
        modes = self.channels.modes.get(channel)
        if len(m.params) == 1:
            flags, args = (modes.modes, modes.args) if modes is not None else ("+", ())
            if channel not in self.channels and "k" in flags:   # the key is for members
                args = tuple("*" if a == modes.args[0] and "k" in flags else a for a in args)
            self.replies.reply(n.RPL_CHANNELMODEIS, name, flags, *args)
            if modes is not None and modes.created:
                self.replies.reply(n.RPL_CREATIONTIME, name, str(int(modes.created)))
            return []
        parsed = chanmodes.parse(name, m.params[1], list(m.params[2:]))
        for letter in dict.fromkeys(parsed.lists):
            listed, end, text = chanmodes.LISTS[letter]
            for mask, setter, at in chanmodes.listing(modes, letter):
                self.replies.reply(listed, name, mask, setter, at)
            self.replies.reply(end, name, text)
        for error in parsed.errors:
            self.replies.reply(*error)
        if not parsed.changes:
            return []
        if channel in self.channels.joining:   # the JOIN is on its way: the ring decides
            return [Run(Command("mode", (channel, changes_text(parsed.changes))))]
        if channel not in self.channels:
            self.replies.reply(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
            return []
        for nick in parsed.targets:
            if nick.lower() not in self.channels.members[channel] and self._known(nick) is None:
                self.replies.reply(n.ERR_NOSUCHNICK, nick, "No such nick/channel")
                return []
        # whether the client is an operator and a target is in, the maintainer knows best
        # (what this client was told may lag a moment): it answers 482 or 441
        return [Run(Command("mode", (channel, changes_text(parsed.changes))))]

    def irc_trust(self, m: Message) -> list[Action]:
        """TRUST nick: accept the key ``nick`` holds now, as the UI's ``trust`` does."""
        try:
            check_nick(m.params[0])
        except CommandError:
            self.replies.no_such_nick(m.params[0])
            return []
        return [Trust(m.params[0])]

    def trusted(self, nick: str, why: str | None) -> None:
        """The answer to ``Trust``: done, or why not."""
        self.replies.notice(f"trust: {why}" if why else f"trust: the key {nick} holds now "
                            "is pinned; its messages are no longer marked [unverified]")

    def irc_chathistory(self, m: Message) -> list[Action]:
        """CHATHISTORY (IRCv3 draft/chathistory) from the user's own history."""
        sub = m.params[0].upper()
        p = m.params[1:]
        try:
            if sub == "TARGETS":
                return [History(sub, "*", after=_ref(p[0]), before=_ref(p[1]),
                                limit=_limit(p[2]))]
            target = p[0]
            if sub == "LATEST":
                after = None if p[1] == "*" else _ref(p[1])
                return [History(sub, target, after=after, limit=_limit(p[2]))]
            if sub == "BEFORE":
                return [History(sub, target, before=_ref(p[1]), limit=_limit(p[2]))]
            if sub == "AFTER":
                return [History(sub, target, after=_ref(p[1]), limit=_limit(p[2]))]
            if sub == "AROUND":
                return [History(sub, target, around=_ref(p[1]), limit=_limit(p[2]))]
            if sub == "BETWEEN":
                return [History(sub, target, after=_ref(p[1]), before=_ref(p[2]),
                                limit=_limit(p[3]))]
        except IndexError:
            self.replies.from_server("FAIL", "CHATHISTORY", "NEED_MORE_PARAMS", sub,
                                     "Missing parameters")
            return []
        except ValueError as e:
            self.replies.from_server("FAIL", "CHATHISTORY", "INVALID_PARAMS", sub, str(e))
            return []
        self.replies.from_server("FAIL", "CHATHISTORY", "INVALID_PARAMS", sub,
                                 "Unknown subcommand")
        return []

    def irc_away(self, m: Message) -> None:
        self.away = m.param(0) or None
        if self.away:
            self.replies.reply(n.RPL_NOWAWAY, "You have been marked as being away")
        else:
            self.replies.reply(n.RPL_UNAWAY, "You are no longer marked as being away")


# a node's refusal of a join, mode change, kick or invitation: its numeric and words
_REFUSALS = {
    "banned": (n.ERR_BANNEDFROMCHAN, "Cannot join channel (+b)"),
    "invite_only": (n.ERR_INVITEONLYCHAN, "Cannot join channel (+i)"),
    "bad_key": (n.ERR_BADCHANNELKEY, "Cannot join channel (+k)"),
    "channel_full": (n.ERR_CHANNELISFULL, "Cannot join channel (+l)"),
    "not_operator": (n.ERR_CHANOPRIVSNEEDED, "You're not channel operator"),
    "not_member": (n.ERR_NOTONCHANNEL, "You're not on that channel"),
    "no_such_member": (n.ERR_USERNOTINCHANNEL, "They aren't on that channel"),
    "already_member": (n.ERR_USERONCHANNEL, "is already on channel"),
    "no_such_nick": (n.ERR_NOSUCHNICK, "No such nick/channel"),
    "bad_mode": (n.ERR_UNKNOWNMODE, "Cannot change the modes"),
    "list_full": (n.ERR_BANLISTFULL, "Channel list is full"),
}


def _whox(arg: str) -> tuple[str | None, str]:
    """WHO's second parameter: ``%fields[,token]`` gives the WHOX fields asked for (known
    ones only) and the token (1 to 3 digits, else none); anything else: no WHOX."""
    if not arg.startswith("%"):
        return None, ""
    fields, _, token = arg[1:].partition(",")
    fields = "".join(f for f in fields if f in WHOX_FIELDS)
    if not (token.isdigit() and len(token) <= 3):
        token = ""
        fields = fields.replace("t", "")
    return fields, token


def _ref(text: str) -> tuple[float | None, str | None]:
    """A CHATHISTORY reference: ``timestamp=YYYY-MM-DDThh:mm:ss.sssZ`` or ``msgid=ID``."""
    kind, _, value = text.partition("=")
    if kind == "msgid" and value:
        return None, value
    if kind == "timestamp" and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp(), None
        except ValueError:
            pass
    raise ValueError(f"not a timestamp= or msgid= reference: {text}")


def _limit(text: str) -> int:
    if not text.isdigit():
        raise ValueError("the limit must be a number")
    return max(1, min(int(text), HISTORY_LIMIT))
