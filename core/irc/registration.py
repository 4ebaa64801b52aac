"""How an IRC connection begins and ends, and who the client said it is.

Registration follows modern.ircdocs.horse ("Connection Registration"): PASS, NICK and USER
in any order, held while CAP negotiation is open (CAP LS … CAP END; no capability is
offered). Once the client has a nick and a user, and the password if one is required, the
session asks the ring for the nick (``Register``) and waits for ``registered`` or
``refused``. QUIT, a wrong password or a ring that cannot be reached end the connection.
"""

from __future__ import annotations

import hmac

from core.chat.model.commands import CommandError, check_nick

from . import numerics as n
from .actions import Action, Close, Quit, Register
from .message import Message
from .replies import REMOTE_HOST, Replies


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
            if nick != self.nick:
                self.replies.reply(n.ERR_NONICKCHANGE, nick, "Nicks cannot change on this "
                                   "network; reconnect with the new one")
            return []
        if self.state == "registering":
            return []   # the ring is being asked for the first one: wait for its answer
        self.nick = nick
        return self._try()

    def irc_user(self, m: Message) -> list[Action]:
        if self.state != "connecting" or self.user is not None:
            self.replies.reply(n.ERR_ALREADYREGISTERED, "You may not reregister")
            return []
        self.user = m.params[0][:16]
        self.realname = m.params[3]
        return self._try()

    def irc_cap(self, m: Message) -> list[Action]:
        sub = m.params[0].upper()
        me = self.nick if self.nick else "*"
        if sub == "LS":
            if not self.done:
                self.negotiating = True
            self.replies.from_server("CAP", me, "LS", "")
        elif sub == "LIST":
            self.replies.from_server("CAP", me, "LIST", "")
        elif sub == "REQ":
            self.replies.from_server("CAP", me, "NAK", m.param(1))
        elif sub == "END":
            if self.negotiating:
                self.negotiating = False
                return self._try()
        else:
            self.replies.reply("410", sub, "Invalid CAP command")
        return []

    def irc_quit(self, m: Message) -> list[Action]:
        reason = m.param(0, "Client quit") or "Client quit"
        was_registered = self.done
        self._end(f"Quit: {reason}")
        return [Quit(reason)] if was_registered else [Close(reason)]

    def _try(self) -> list[Action]:
        if self.state != "connecting" or not self.nick or not self.user or self.negotiating:
            return []
        if self.expected is not None and not hmac.compare_digest(
                (self.password or "").encode(), self.expected.encode()):
            self.replies.reply(n.ERR_PASSWDMISMATCH, "Password incorrect")
            self._end("Bad password")
            return [Close("Bad password")]
        self.state = "registering"
        return [Register(self.nick)]

    def _end(self, why: str) -> None:
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
        self._end(why)
        return [Close(why)]
