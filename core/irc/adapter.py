"""The chat user behind one IRC connection: a thin layer over ``ChatService.add_user`` and
the ``LocalUser`` it returns, speaking the session's ``Command`` and ``Whois`` data."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from core import events as ev
from core.chat.model.commands import Command
from core.chat.model.errors import ChatError, NickTaken
from core.chat.model.identity import fingerprint
from core.chat.users.keyring import ephemeral
from core.chat.users.memberships import exit_reason
from core.store import FILENAME, AsyncStore, StoreError

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
    pin = record.get("pin")
    return Whois(record.get("nick", nick), record.get("id") or record.get("node_id"),
                 record.get("address"), shown, pin if isinstance(pin, str) else "")


HISTORY_READ = 2000   # lines of a conversation a CHATHISTORY query looks through


class IrcUser:
    """One registered IRC client as a ``LocalUser`` of this node's chat service."""

    def __init__(self, service, user, store: AsyncStore | None = None) -> None:
        self.service = service
        self.user = user
        self.store = store      # the nick's database (a SASL login), else None

    @classmethod
    async def add(cls, service, nick: str, post: Callable[[ev.Event], None],
                  account: str | None = None) -> IrcUser:
        """Claim ``nick`` on the ring for a new user (NickTaken, ChatError).

        Logged in as the nick (``account``, SASL): the nick's persistent key from the data
        directory. Else a fresh key kept nowhere, and a nick that belongs to someone on this
        node (a key or an IRC password in the data directory) is refused as taken."""
        if account is not None and account.lower() == nick.lower():
            store = await open_store(service, nick)
            try:
                return cls(service, await service.add_user(nick, post, store=store), store)
            except BaseException:
                await store.close()
                raise
        if accounts.reserved(service.data_dir, nick):
            raise NickTaken(f"{nick} belongs to someone on this node: log in with SASL")
        return cls(service, await service.add_user(nick, post, keys=ephemeral(nick)))

    async def run(self, command: Command) -> object:
        """Carry out a session's command; ChatError says why it could not be done. Returns
        what the chat returns (a channel send: its ``(msg_id, seq)``)."""
        user = self.user
        method = {"join": user.join, "leave": user.leave, "send": user.send,
                  "msg": user.msg, "topic": user.topic, "mode": user.mode,
                  "kick": user.kick, "invite": user.invite,
                  "me": user.act}.get(command.name)
        if method is None:
            raise ChatError(f"the gateway does not run {command.name!r}")
        if command.name == "leave" and len(command.args) == 2:   # a PART with words
            channel, words = command.args
            await user.leave(channel, reason=exit_reason(words).replace("exit", "left", 1))
            return None
        return await method(*command.args)

    async def whois(self, nick: str) -> Whois | None:
        """Where ``nick`` is registered, or None if nobody holds it (or nobody answers)."""
        try:
            record = await self.user.whois(nick)
        except ChatError:
            return None
        if isinstance(record, ev.Event):      # the chat's Whois event: its fields
            record = record.to_json()
        return whois_of(record, nick)

    async def trust(self, nick: str) -> None:
        """Pin the key ``nick`` holds now (ChatError: why not)."""
        await self.user.trust(nick)

    async def history(self, conversation: str, limit: int = HISTORY_READ) -> list:
        """The last ``limit`` lines of a conversation ("#channel" or a nick) in the user's
        database, oldest first; none without one."""
        if self.store is None:
            return []
        try:
            return list(await self.store.recent(conversation, limit))
        except StoreError:
            return []

    async def conversations(self) -> list:
        if self.store is None:
            return []
        try:
            return list(await self.store.conversations())
        except StoreError:
            return []

    async def quit(self, reason: str) -> None:
        """Leave every channel, give the nick back to the ring and to this node."""
        try:
            await self.service.remove_user(self.user, reason)
        finally:
            if self.store is not None:
                with contextlib.suppress(StoreError):
                    await self.store.close()


async def open_store(service, nick: str) -> AsyncStore:
    """The database of ``nick`` in the node's data directory, as a UI run of the nick has
    it (ChatError if it cannot be opened: in use by that run, say)."""
    try:
        return await AsyncStore.open(service.data_dir.user_dir(nick) / FILENAME)
    except (StoreError, OSError, ValueError) as e:
        raise NickTaken(f"the database of {nick} cannot be opened: {e}") from None
