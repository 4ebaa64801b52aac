"""How an IRC connection begins and ends, and who the client said it is.

Registration follows modern.ircdocs.horse ("Connection Registration"): PASS, NICK and USER
in any order, held while CAP negotiation is open (CAP LS … CAP END; the one capability
offered is ``sasl``, when the node has a data directory). Once the client has a nick and
a user, and the password if one is required, the session asks the ring for the nick
(``Register``) and waits for ``registered`` or ``refused``. QUIT, a wrong password or a
ring that cannot be reached end the connection.

SASL PLAIN (ircv3.net/specs/extensions/sasl-3.1): ``AUTHENTICATE PLAIN``, ``+``, the
base64 of ``authzid NUL authcid NUL password`` in chunks of 400 bytes; the driver checks
the login (``Authenticate``) and answers ``logged_in`` (900, 903) or ``login_failed``
(904). Only a client logged in as its nick gets the nick's persistent key (``Register``'s
``account``); a client whose NICK differs from its account is told 902 and must send
NICK again. See ``core.irc.accounts``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable

from core.chat.model.commands import CommandError, check_nick

from . import numerics as n
from .actions import Action, Authenticate, Close, Quit, Register, Rename
from .message import Message
from .replies import REMOTE_HOST, Replies

# IRCv3 capabilities every client may enable (sasl and chathistory need a data directory);
# multi-prefix: NAMES shows an operator with voice as @+nick;
# userhost-in-names shows in NAMES the masks the client is shown everywhere else
CAPS = ("server-time", "message-tags", "echo-message", "batch", "multi-prefix",
        "userhost-in-names")


class Registration:
    """The client's registration state and identity.

    Args:
        replies: where its answers go.
        password: what PASS must say, or None.
        host: the client's host, shown in its own mask.
    """

    def __init__(self, replies: Replies, password: str | None, host: str) -> None:
        self.replies = replies
        self.expected = password
        self.host = host
        self.state = "connecting"   # -> "registering" -> "registered" -> "closed"
        self.nick: str | None = None
        self.user: str | None = None
        self.realname = ""
        self.password: str | None = None
        self.negotiating = False    # CAP LS came: registration waits for CAP END
        self.caps: set[str] = replies.caps   # enabled: the replies tag lines for them
        self.account: str | None = None     # logged in (SASL) as this nick
        self._sasl: str | None = None       # the base64 received so far of a PLAIN login
        self._checking = False              # the driver checks a login: registration waits
        self.in_use: Callable[[str], bool] = lambda nick: False

    @property
    def done(self) -> bool:
        return self.state == "registered"

    @property
    def addressee(self) -> str:
        """Whom numerics name: the nick once registered, '*' before (and after QUIT)."""
        return self.nick if self.done and self.nick else "*"

    @property
    def mask(self) -> str:
        return f"{self.nick}!{self.user}@{self.host}"

    def is_me(self, nick: str) -> bool:
        return self.nick is not None and nick.lower() == self.nick.lower()

    def who(self, nick: str) -> tuple[str, str, str]:
        """User name, host and real name as shown for ``nick``: the client's own for
        itself, else the nick somewhere on the ring."""
        if self.is_me(nick):
            return self.user or "", self.host, self.realname
        return nick, REMOTE_HOST, nick

    # -- the client's commands -----------------------------------------------------------

    def irc_pass(self, m: Message) -> list[Action]:
        if self.state != "connecting":
            self.replies.reply(n.ERR_ALREADYREGISTERED, "You may not reregister")
            return []
        self.password = m.params[0]
        return []

    def irc_nick(self, m: Message) -> list[Action]:
        if not m.params or not m.params[0]:
            self.replies.reply(n.ERR_NONICKNAMEGIVEN, "No nickname given")
            return []
        nick = m.params[0]
        try:
            check_nick(nick)
        except CommandError:
            self.replies.reply(n.ERR_ERRONEUSNICKNAME, nick, "Erroneous nickname")
            return []
        if self.done:
            return self._change(nick)
        if self.state == "registering":
            return []   # the ring is being asked for the first one: wait for its answer
        if self.in_use(nick):   # another client of this gateway: no need to ask the ring
            self.replies.reply(n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            return []
        self.nick = nick
        return self._try()

    def _change(self, nick: str) -> list[Action]:
        """NICK once registered: the new nick is claimed on the ring as a new user with a
        fresh key (``Rename``): the others see the old nick quit and the new one join, as
        they would a reconnect; the client sees its NICK. Not for a SASL login (the
        account is the nick, and its key is the nick's), nor a change of case only (the
        ring's name is the same)."""
        if nick == self.nick:
            return []
        if self.account is not None:
            self.replies.reply(n.ERR_NONICKCHANGE, nick, f"Cannot change nickname: you are "
                               f"logged in as {self.account}, and the account is the nick; "
                               "reconnect with the new one")
            return []
        if self.nick is not None and nick.lower() == self.nick.lower():
            self.replies.reply(n.ERR_NONICKCHANGE, nick, "Cannot change nickname: only the "
                               "case differs, and the ring's name is the same in any case")
            return []
        if self.in_use(nick):
            self.replies.reply(n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            return []
        return [Rename(nick)]

    def irc_user(self, m: Message) -> list[Action]:
        if self.state != "connecting" or self.user is not None:
            self.replies.reply(n.ERR_ALREADYREGISTERED, "You may not reregister")
            return []
        if not m.params[3]:
            self.replies.reply(n.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
            return []
        self.user = m.params[0][:16]
        self.realname = m.params[3]
        return self._try()

    def irc_cap(self, m: Message) -> list[Action]:
        sub = m.params[0].upper()
        me = self.nick if self.nick else "*"
        offered = set(CAPS)
        if self.replies.server.sasl:   # a data directory: logins, and a history per login
            offered |= {"sasl", "draft/chathistory"}
        if sub == "LS":
            if not self.done:
                self.negotiating = True
            version = m.param(1)
            v302 = version.isdigit() and int(version) >= 302
            shown = sorted("sasl=PLAIN" if cap == "sasl" and v302 else cap for cap in offered)
            self.replies.from_server("CAP", me, "LS", " ".join(shown))
        elif sub == "LIST":
            self.replies.from_server("CAP", me, "LIST", " ".join(sorted(self.caps)))
        elif sub == "REQ":
            asked = m.param(1).split()
            if asked and all(cap.removeprefix("-") in offered for cap in asked):
                for cap in asked:
                    if cap.startswith("-"):
                        self.caps.discard(cap[1:])
                    else:
                        self.caps.add(cap)
                self.replies.from_server("CAP", me, "ACK", m.param(1))
            else:
                self.replies.from_server("CAP", me, "NAK", m.param(1))
        elif sub == "END":
            if self.negotiating:
                self.negotiating = False
                if self._sasl is not None:      # a login left half way ends here
                    self._sasl = None
                    self.replies.reply(n.ERR_SASLABORTED, "SASL authentication aborted")
                return self._try()
        else:
            self.replies.reply("410", sub, "Invalid CAP command")
        return []

    def irc_authenticate(self, m: Message) -> list[Action]:
        arg = m.params[0]
        if self.done or self.account is not None:
            self.replies.reply(n.ERR_SASLALREADY, "You have already authenticated using SASL")
            return []
        if "sasl" not in self.caps or self._checking:
            self.replies.reply(n.ERR_SASLFAIL, "SASL authentication failed")
            return []
        if self._sasl is None:
            if arg.upper() != "PLAIN":
                self.replies.reply(n.RPL_SASLMECHS, "PLAIN", "are available SASL mechanisms")
                self.replies.reply(n.ERR_SASLFAIL, "SASL authentication failed")
                return []
            self._sasl = ""
            self.replies.from_server("AUTHENTICATE", "+")
            return []
        if arg == "*":
            self._sasl = None
            self.replies.reply(n.ERR_SASLABORTED, "SASL authentication aborted")
            return []
        if len(arg) > 400 or len(self._sasl) + len(arg) > 1200:
            self._sasl = None
            self.replies.reply(n.ERR_SASLTOOLONG, "SASL message too long")
            return []
        if arg != "+":
            self._sasl += arg
        if len(arg) == 400:
            return []                           # more follows
        data, self._sasl = self._sasl, None
        try:
            authzid, authcid, password = (
                base64.b64decode(data, validate=True).decode("utf-8").split("\0"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            self.replies.reply(n.ERR_SASLFAIL, "SASL authentication failed")
            return []
        if authzid and authzid != authcid:
            self.replies.reply(n.ERR_SASLFAIL, "SASL authentication failed")
            return []
        self._checking = True
        return [Authenticate(authcid, password)]

    def logged_in(self, account: str) -> list[Action]:
        """The driver accepted the login: 900 and 903; registration may go on."""
        self._checking = False
        self.account = account
        me = self.nick or "*"
        self.replies.reply(n.RPL_LOGGEDIN, f"{me}!{self.user or '*'}@{self.host}", account,
                           f"You are now logged in as {account}")
        self.replies.reply(n.RPL_SASLSUCCESS, "SASL authentication successful")
        return self._try()

    def login_failed(self) -> list[Action]:
        """The driver refused the login (why is logged, never told: 904)."""
        self._checking = False
        self.replies.reply(n.ERR_SASLFAIL, "SASL authentication failed")
        return self._try()

    def irc_quit(self, m: Message) -> list[Action]:
        reason = m.param(0, "Client quit") or "Client quit"
        was_registered = self.done
        self.end(f"Quit: {reason}")
        return [Quit(reason)] if was_registered else [Close(reason)]

    def _try(self) -> list[Action]:
        if (self.state != "connecting" or not self.nick or not self.user or self.negotiating
                or self._checking):
            return []
        if self.expected is not None and not hmac.compare_digest(
                (self.password or "").encode(), self.expected.encode()):
            self.replies.reply(n.ERR_PASSWDMISMATCH, "Password incorrect")
            self.end("Bad password")
            return [Close("Bad password")]
        if self.account is not None and self.account.lower() != self.nick.lower():
            self.replies.reply(n.ERR_NICKLOCKED, "You must use a nick assigned to you "
                               f"(you are logged in as {self.account})")
            self.nick = None
            return []
        self.state = "registering"
        return [Register(self.nick, self.account)]

    def end(self, why: str) -> None:
        self.replies.send(Message("ERROR", (f"Closing link: {self.host} ({why})",)))
        self.state = "closed"

    # -- the ring's answer ---------------------------------------------------------------

    def registered(self) -> None:
        """The ring gave this client its nick: welcome it."""
        self.state = "registered"
        self.replies.welcome(self.mask)

    def refused(self, nick: str, reason: str, taken: bool) -> list[Action]:
        """The ring refused ``nick``: taken (the client may pick another) or unreachable."""
        if taken:
            self.state = "connecting"
            self.nick = None
            self.replies.reply(n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            return []
        why = f"cannot register {nick}: {reason}"
        self.end(why)
        return [Close(why)]
