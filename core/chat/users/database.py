"""A local user's database as the chat uses it, and the only chat module that does: the
outbox (a typed line is on disk before it shows as pending, and keeps its id through every
retry and restart), what is kept of what arrives (so a repeat is shown once, across
restarts too), the channels to rejoin, the history shown at start, the search.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass

from core import events as ev
from core.store import Message, NoStore, OutboxRow, StoreError

from ..model.channel import Entry
from ..model.commands import Command
from ..model.errors import ChatError
from ..model.ids import new_id
from .signer import Signer

HISTORY_CONVERSATIONS = 50   # conversations whose recent lines are shown at start
HISTORY_LINES = 100          # lines of each


@dataclass
class Outgoing:
    """A line the user typed (``send`` or ``msg``), from the moment it is accepted: it keeps
    its message id through every retry and restart."""
    kind: str            # "channel" or "private"
    target: str          # the channel's name, or a nick or "@<hex id>"
    text: str
    msg_id: str
    at: float            # the wall clock when it was typed
    signed: dict | None = None   # a channel line's signed entry (resent as it was)
    action: bool = False         # a ``/me``
    committed: asyncio.Future | None = None   # its outbox row's commit
    shown: bool = False                       # Pending was posted

    @property
    def conversation(self) -> str:
        return "#" + self.target if self.kind == "channel" else self.target

    @property
    def destination(self) -> str:
        """Its lane (as ``Command.destination``)."""
        return "#" + self.target if self.kind == "channel" else self.target.lower()

    def payload(self) -> dict:
        payload = {"target": self.target, "text": self.text, "signed": self.signed}
        if self.action:
            payload["action"] = True
        return payload

    @classmethod
    def from_row(cls, row: OutboxRow) -> Outgoing:
        return cls(row.kind, str(row.payload["target"]), str(row.payload["text"]),
                   row.msg_id, row.at, row.payload.get("signed"),
                   row.payload.get("action") is True)


class Outbox:
    """The outbox and the history of one user; ``store`` is its ``AsyncStore`` (None:
    nothing is kept). Knows the ids sent in this run, whose echoes are shown."""

    def __init__(self, me: Signer, store, post: Callable[[ev.Event], None]) -> None:
        self.me = me
        self.store = store if store is not None else NoStore()
        self.post = post
        self._mine: set[str] = set()   # ids sent in this run: their echoes are shown
        self._store_failed = False
        self._showing: set[asyncio.Task] = set()   # arrivals being kept, then shown

    # -- a line on its way -----------------------------------------------------------------

    def accept(self, command: Command) -> Outgoing:
        """Take a typed ``send``, ``msg`` or ``me`` line: give it an id and commit it to the
        outbox (submitted now, in order; ``Pending`` is posted once it is on disk)."""
        target, text = command.args
        action = command.name == "me"
        channel = command.name == "send" or (action and target.startswith("#"))
        if action and channel:
            target = target[1:]
        item = Outgoing("channel" if channel else "private", target, text, new_id(),
                        self.me.stamp(), action=action)
        if item.kind == "channel":   # signed once: a resend is then the very same entry
            item.signed = self.me.sign(target, "msg", text, item.msg_id,
                                       self.me.next_count(target), action).to_wire()
        self._mine.add(item.msg_id)
        item.committed = self.store.add_outgoing(
            Message(item.conversation, item.msg_id, self.me.nick, text, item.at, True,
                    "pending", action),
            item.kind, item.target, item.payload())
        item.committed.add_done_callback(lambda f: self._on_committed(item, f))
        return item

    def _on_committed(self, item: Outgoing, future: asyncio.Future) -> None:
        if (not item.shown and not future.cancelled() and future.exception() is None):
            item.shown = True
            self.post(ev.Pending(conversation=item.conversation, msg_id=item.msg_id,
                                 text=item.text, from_=self.me.nick, action=item.action,
                                 at=item.at))

    async def stored(self, item: Outgoing) -> None:
        """Wait until an accepted line is on disk (ChatError if it could not be stored)."""
        if item.committed is not None:
            try:
                await item.committed
            except StoreError as e:
                raise ChatError(f"the message was not sent: it could not be stored ({e})") \
                    from None
            # shown as pending before it goes, even if the commit's callback has not run yet
            self._on_committed(item, item.committed)

    async def delivered(self, item: Outgoing) -> None:
        """The maintainer or the recipient has it: out of the outbox, marked delivered."""
        try:
            await self.store.ack(item.msg_id, delivered=True)
        except StoreError as e:
            self.post(ev.Error(message=f"could not mark a message delivered: {e}"))
        self.post(ev.Delivered(conversation=item.conversation, msg_id=item.msg_id))

    async def mailed(self, item: Outgoing) -> None:
        """Left in a mailbox: out of the outbox, pending until taken."""
        try:
            await self.store.ack(item.msg_id)
        except StoreError as e:
            self.post(ev.Error(message=f"could not update the outbox: {e}"))

    async def failed(self, item: Outgoing, reason: str) -> None:
        """It can never go: out of the outbox and the history, and said so."""
        try:
            await self.store.forget(item.msg_id)
        except StoreError as e:
            self.post(ev.Error(message=f"could not remove a failed message: {e}"))
        self.post(ev.Failed(conversation=item.conversation, msg_id=item.msg_id, reason=reason))

    # -- lines left in mailboxes: their receipts -------------------------------------------

    async def unconfirmed(self) -> dict[str, list[str]]:
        """The ids of the lines left in mailboxes and not known to be taken, by nick (none
        if the database cannot be read)."""
        try:
            waiting = await self.store.unconfirmed()
        except StoreError:
            return {}
        by_nick: dict[str, list[str]] = {}
        for m in waiting:
            by_nick.setdefault(m.conversation, []).append(m.msg_id)
        return by_nick

    async def taken(self, nick: str, msg_id: str) -> None:
        """A line left in ``nick``'s mailbox was taken: marked delivered."""
        with contextlib.suppress(StoreError):
            await self.store.set_state(msg_id, "delivered")
        self.post(ev.Delivered(conversation=nick, msg_id=msg_id))

    # -- what arrives ----------------------------------------------------------------------

    async def keep_channel(self, channel: str, entries: Iterable[Entry]) -> set[str]:
        """Keep the lines (``msg`` entries) a maintainer delivered; the ids to show."""
        return await self._keep([Message("#" + channel, e.msg_id, e.nick, e.text,
                                        e.at or time.time(), self.me.is_me(e.nick),
                                        "delivered", e.action)
                                for e in entries if e.kind == "msg"])

    async def keep_private(self, e: ev.PrivateMessage) -> bool:
        """Keep a private message received; whether to show it."""
        return bool(await self._keep([Message(e.from_, e.msg_id, e.from_, e.text, e.at, False,
                                             "delivered", e.action)]))

    async def showing(self, show: Coroutine) -> None:
        """Run ``show`` (keep what arrived, then post it) to its end even if our caller is
        cancelled (a maintainer's call timed out: the entries are already marked seen),
        and hold it for ``settle``."""
        task = asyncio.ensure_future(show)
        self._showing.add(task)
        task.add_done_callback(self._showing.discard)
        await asyncio.shield(task)

    async def settle(self, timeout: float) -> None:
        """Let what arrived before now be shown first (a quit: before the user is gone, so
        a line's echo is not shown after the front end's "bye")."""
        if self._showing:
            await asyncio.wait(list(self._showing), timeout=timeout)

    async def _keep(self, messages: list[Message]) -> set[str]:
        """Record received messages; the ids to show: those new to the database (so a
        repeat is dropped across restarts too), and the echoes of this run's own lines."""
        if not messages:
            return set()
        try:
            new = await self.store.add_each(messages)
        except StoreError as e:
            if not self._store_failed:
                self._store_failed = True
                self.post(ev.Error(message=f"received messages cannot be stored: {e}"))
            new = [True] * len(messages)
        return {m.msg_id for m, fresh in zip(messages, new, strict=True)
                if fresh or m.msg_id in self._mine}

    # -- the channels joined, the history --------------------------------------------------

    async def restart(self) -> tuple[list[tuple[str, str | None]], list[Outgoing]] | None:
        """What to take up again at start: the channels the user was in, each with the key
        (+k) it joined with (or None), and the lines never acknowledged, less those typed
        in this run (the read came after them: their own commands send them). None if the
        database cannot be read (said so)."""
        try:
            joined, keys = await self.store.joined(), await self.store.channel_keys()
            rows = await self.store.outbox()
        except StoreError as e:
            self.post(ev.Error(message=f"could not read the channels and the outbox: {e}"))
            return None
        items = []
        for row in rows:
            item = Outgoing.from_row(row)
            if item.msg_id not in self._mine:
                self._mine.add(item.msg_id)
                items.append(item)
        keys = {name.lower(): key for name, key in dict(keys).items()}
        return [(channel, keys.get(channel.lower())) for channel in joined], items

    async def remember_joined(self, channel: str, joined: bool, key: str | None = None) -> None:
        """Remember a channel to rejoin at the next start, with the key (+k) it was joined
        with; or forget it."""
        try:
            await self.store.set_joined(channel, joined, key=key)
        except StoreError as e:
            self.post(ev.Error(message=f"could not remember the channels joined: {e}"))

    async def remember_key(self, channel: str, key: str | None) -> None:
        """A channel the user is in has another key now: the next start rejoins with it."""
        try:
            await self.store.set_channel_key(channel, key)
        except StoreError as e:
            self.post(ev.Error(message=f"could not remember the key of #{channel}: {e}"))

    async def show_history(self) -> None:
        """Post the recent lines of each conversation kept in the database (at start)."""
        try:
            conversations = await self.store.conversations()
            for conversation in conversations[:HISTORY_CONVERSATIONS]:
                lines = await self.store.recent(conversation.name, HISTORY_LINES)
                self.post(ev.History(conversation=conversation.name, messages=tuple(
                    {"from": m.sender, "text": m.text, "msg_id": m.msg_id, "at": m.at,
                     "outgoing": m.outgoing, "state": m.state, "action": m.action}
                    for m in lines)))
        except StoreError as e:
            self.post(ev.Error(message=f"could not read the history: {e}"))

    async def search(self, text: str) -> list[dict]:
        """Search the local history: posts (and returns) the hits, newest first."""
        try:
            hits = await self.store.search(text)
        except StoreError as e:
            raise ChatError(f"cannot search the history: {e}") from None
        found = [{"conversation": h.conversation, "msg_id": h.msg_id, "from": h.sender,
                  "text": h.text, "at": h.at} for h in hits]
        self.post(ev.SearchResults(text=text, hits=tuple(found)))
        return found
