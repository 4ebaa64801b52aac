"""What a session asks its driver to do, and the data the driver answers with.

The session cannot reach the ring itself; each ``Action`` names one thing only the chat can
carry out, and the docstring says which of the session's methods takes the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.chat.model.commands import Command


@dataclass(frozen=True)
class Register:
    """Claim ``nick`` on the ring; answer with ``registered()`` or ``refused()``.
    ``account`` is the nick the client logged in as (SASL), which alone earns the nick's
    persistent key; None: a fresh key kept nowhere."""
    nick: str
    account: str | None = None


@dataclass(frozen=True)
class Authenticate:
    """Check a SASL PLAIN login (``core.irc.accounts.login``); answer ``logged_in()`` or
    ``login_failed(reason)``."""
    account: str
    password: str = field(repr=False)


NO_SUCH_OPER = "no such operator"   # why an Oper fails when the name is none here (491)


@dataclass(frozen=True)
class Oper:
    """Check OPER ``name`` ``password`` against the node owner's operators
    (``core.irc.accounts.oper_login``); answer ``opered(name)`` or ``oper_failed(why)``."""
    name: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Rename:
    """Change a registered client's nick: claim ``nick`` on the ring as a new user (a
    fresh key), join its channels, then quit the old one; answer ``renamed(nick)`` or
    ``rename_refused(nick, reason, taken)``."""
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
    """Which channels this node's users are in; answer ``listing([(channel, members)],
    only)``. ``only``: the channels (or ``*`` masks) LIST named, lower case; none: all."""
    only: tuple[str, ...] = ()


@dataclass(frozen=True)
class Quit:
    """The user quits (its channels, its name on the ring); then close the connection."""
    reason: str


@dataclass(frozen=True)
class Close:
    """Close the connection after the lines sent so far; there is no user to quit."""
    reason: str


@dataclass(frozen=True)
class History:
    """A CHATHISTORY query (IRCv3 draft/chathistory) of the user's own history:
    ``target`` a "#channel" or a nick ("*" with TARGETS); ``before``/``after`` bounds as
    (seconds, msgid) pairs, either part may be None. Answer ``history(query, messages)``."""
    subcommand: str
    target: str
    after: tuple[float | None, str | None] | None = None
    before: tuple[float | None, str | None] | None = None
    around: tuple[float | None, str | None] | None = None
    limit: int = 50


@dataclass(frozen=True)
class Trust:
    """Accept the key ``nick`` now holds (the UI's ``trust``); answer ``trusted``."""
    nick: str


Action = (Register | Authenticate | Oper | Rename | Run | Lookup | ListChannels | Quit
          | Close | History | Trust)


@dataclass(frozen=True)
class Peer:
    """Another client of the same gateway, as it registered (WHO, WHOIS, away)."""
    nick: str
    user: str
    host: str
    realname: str
    away: str | None = None
    account: str | None = None    # logged in (SASL) as this nick
    oper: bool = False            # an IRC operator of this gateway (OPER)


@dataclass(frozen=True)
class Whois:
    """What the ring knows about a nick, for WHOIS."""
    nick: str
    node_id: str | None = None
    address: str | None = None
    fingerprint: str | None = None
    pin: str = ""     # the asker's pin of the key: "same", "changed", "new" ("": unknown)


@dataclass(frozen=True)
class Gone:
    """A client of this gateway that had a nick and left (WHOWAS)."""
    nick: str
    user: str
    host: str
    realname: str
    at: float    # when it left (seconds of the wall clock)


@dataclass(frozen=True)
class Counts:
    """What a gateway counts of its own clients (LUSERS)."""
    users: int = 0          # registered
    invisible: int = 0      # of those, +i
    unregistered: int = 0   # connections not registered yet
    channels: int = 0       # channels its users are in
    opers: int = 0          # of the registered, IRC operators (OPER)
