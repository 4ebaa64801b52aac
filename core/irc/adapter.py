"""The chat user behind one IRC connection: a thin layer over ``ChatService.add_user`` and
the ``LocalUser`` it returns, speaking the session's ``Command`` and ``Whois`` data."""

from __future__ import annotations

from collections.abc import Callable

from core import events as ev
from core.chat.model.commands import Command
from core.chat.model.errors import ChatError, NickTaken
from core.chat.model.identity import fingerprint
from core.chat.users.keyring import ephemeral

from . import accounts
from .actions import Whois


def whois_of(record: dict | ev.Whois, nick: str) -> Whois:
    """A name record as the chat returns it, as WHOIS shows it: the key's fingerprint when
    the record carries a key (signed records do), the node id under either of its names."""
    if isinstance(record, ev.Whois):   # what LocalUser.whois returns since signed records
        record = record.to_json()
    shown = record.get("fingerprint")
    if shown is None and record.get("key"):
        try:
            shown = fingerprint(record["key"])
        except ValueError:
            shown = None
    return Whois(record.get("nick", nick), record.get("id") or record.get("node_id"),
                 record.get("address"), shown)


class IrcUser:
    """One registered IRC client as a ``LocalUser`` of this node's chat service."""

    def __init__(self, service, user) -> None:
        self.service = service
        self.user = user

    @classmethod
    async def add(cls, service, nick: str, post: Callable[[ev.Event], None],
                  account: str | None = None) -> IrcUser:
        """Claim ``nick`` on the ring for a new user (NickTaken, ChatError).

        Logged in as the nick (``account``, SASL): the nick's persistent key from the data
        directory. Else a fresh key kept nowhere, and a nick that belongs to someone on this
        node (a key or an IRC password in the data directory) is refused as taken."""
        if account is not None and account.lower() == nick.lower():
            return cls(service, await service.add_user(nick, post))
        if accounts.reserved(service.data_dir, nick):
            raise NickTaken(f"{nick} belongs to someone on this node: log in with SASL")
        return cls(service, await service.add_user(nick, post, keys=ephemeral(nick)))

    async def run(self, command: Command) -> None:
        """Carry out a session's command; ChatError says why it could not be done."""
        user = self.user
        method = {"join": user.join, "leave": user.leave, "send": user.send,
                  "msg": user.msg, "me": user.act}.get(command.name)
        if method is None:
            raise ChatError(f"the gateway does not run {command.name!r}")
        await method(*command.args)

    async def whois(self, nick: str) -> Whois | None:
        """Where ``nick`` is registered, or None if nobody holds it (or nobody answers)."""
        try:
            record = await self.user.whois(nick)
        except ChatError:
            return None
        if isinstance(record, ev.Event):      # the chat's Whois event: its fields
            record = record.to_json()
        return whois_of(record, nick)

    async def quit(self, reason: str) -> None:
        """Leave every channel, give the nick back to the ring and to this node."""
        await self.service.remove_user(self.user, reason)
