"""Local users: the people a node serves (the UI's user, IRC clients), each with its own
nick, name record and channels. A user's operations raise ``ChatError`` and post its
events; ``execute`` runs a parsed ``Command`` and turns errors into ``Error`` events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from core import events as ev
from core.chord import Address, Local
from core.chord.ids import hex_id
from core.counts import counted
from core.store import Message, NoStore, StoreError
from core.store import Outgoing as OutboxRow

from . import protocol as p
from .calls import Backoff, Caller
from .channels import Channels
from .commands import Command, check_nick
from .errors import ChatError
from .journal import Journal
from .lanes import Lanes, Turn
from .names import Names
from .state import Entry, Seen, new_id

EXIT_RETRY = 5.0     # seconds a quit retries a leave or the name-record delete
HISTORY_CONVERSATIONS = 50   # conversations whose recent lines are shown at start
HISTORY_LINES = 100          # lines of each


@dataclass
class Membership:
    """A channel the user is in: what it has shown, to drop repeats and keep the order."""
    channel: str
    joining: bool = True
    last_seq: int = 0
    seen: Seen = field(default_factory=Seen)


@dataclass
class Outgoing:
    """A line the user typed (``send`` or ``msg``), from the moment it is accepted: it keeps
    its message id through every retry and restart."""
    kind: str            # "channel" or "private"
    target: str          # the channel's name, or a nick or "@<hex id>"
    text: str
    msg_id: str
    at: float            # the wall clock when it was typed
    committed: asyncio.Future | None = None   # its outbox row's commit

    @property
    def conversation(self) -> str:
        return "#" + self.target if self.kind == "channel" else self.target

    @property
    def destination(self) -> str:
        """Its lane (as ``Command.destination``)."""
        return "#" + self.target if self.kind == "channel" else self.target.lower()

    def payload(self) -> dict:
        return {"target": self.target, "text": self.text}

    @classmethod
    def from_row(cls, row: OutboxRow) -> Outgoing:
        return cls(row.kind, str(row.payload["target"]), str(row.payload["text"]),
                   row.msg_id, row.at)


class LocalUser:
    """One user served by this node. Made by ``ChatService.add_user``.

    ``store`` is the user's database (an ``AsyncStore``; None: nothing is kept): history,
    the outbox, the channels joined.
    """

    def __init__(self, nick: str, post: Callable[[ev.Event], None], node: Local,
                 caller: Caller, names: Names, channels: Channels, journal: Journal,
                 store=None) -> None:
        self.nick = check_nick(nick)
        self.post = post
        self.node = node
        self.caller = caller
        self.names = names
        self.channels = channels
        self.journal = journal
        self.store = store if store is not None else NoStore()
        self.lanes = Lanes()
        self.joined: dict[str, Membership] = {}
        self.seen_private = Seen()
        self.registered = False
        self._mine: set[str] = set()   # ids sent in this run: their echoes are shown
        self._store_failed = False

    @property
    def address(self) -> str:
        return str(self.node.address)

    @property
    def id_hex(self) -> str:
        return hex_id(self.node.id)

    async def register(self) -> ev.Ready:
        """Claim the nick on the ring (NickTaken if a live node holds it); post Ready."""
        from .errors import NickTaken
        reply = await self.names.call_name_set(self.nick, self.address, self.id_hex)
        if not reply.get("ok"):
            raise NickTaken(f"the nick {self.nick!r} is already taken by the node at "
                            f"{reply.get('holder', '?')}")
        self.registered = True
        ready = ev.Ready(nick=self.nick, id=self.id_hex, address=self.address)
        self.post(ready)
        return ready

    async def execute(self, command: Command) -> object:
        """Run a parsed command; a ChatError becomes an Error event. Returns its result.

        Commands to one destination run in the order given (``lanes``); a line to send is
        committed to the outbox before it waits for its turn, and shown as pending then.
        """
        item = self.accept(command) if command.name in ("send", "msg") else None
        try:
            async with self.lanes.turn(command.destination):
                if item is not None:
                    return await self.deliver(item)
                run = {"join": self.join, "leave": self.leave, "status": self.status,
                       "whois": self.whois}.get(command.name)
                if run is None:
                    raise ChatError(f"the command {command.name!r} is not run by the chat "
                                    "service")
                return await run(*command.args)
        except ChatError as e:
            self.post(ev.Error(message=str(e)))
            return None

    # -- the outbox ------------------------------------------------------------------------

    def accept(self, command: Command) -> Outgoing:
        """Take a typed ``send`` or ``msg`` line: give it an id and commit it to the outbox
        (submitted now, in order; ``Pending`` is posted once it is on disk)."""
        target, text = command.args
        item = Outgoing("channel" if command.name == "send" else "private", target, text,
                        new_id(), time.time())
        self._mine.add(item.msg_id)
        item.committed = self.store.add_outgoing(
            Message(item.conversation, item.msg_id, self.nick, text, item.at, True, "pending"),
            item.kind, item.target, item.payload())
        item.committed.add_done_callback(lambda f: self._on_committed(item, f))
        return item

    def _on_committed(self, item: Outgoing, future: asyncio.Future) -> None:
        if not future.cancelled() and future.exception() is None:
            self.post(ev.Pending(conversation=item.conversation, msg_id=item.msg_id,
                                 text=item.text, from_=self.nick))

    async def deliver(self, item: Outgoing) -> object:
        """Send an accepted line (call it in its turn); ChatError if it cannot go."""
        if item.committed is not None:
            try:
                await item.committed
            except StoreError as e:
                raise ChatError(f"the message was not sent: it could not be stored ({e})") \
                    from None
        if item.kind == "channel":
            return await self._send(item)
        return await self._msg(item)

    async def _delivered(self, item: Outgoing) -> None:
        """The maintainer or the recipient has it: out of the outbox, marked delivered."""
        try:
            await self.store.ack(item.msg_id, delivered=True)
        except StoreError as e:
            self.post(ev.Error(message=f"could not mark a message delivered: {e}"))
        self.post(ev.Delivered(conversation=item.conversation, msg_id=item.msg_id))

    async def _failed(self, item: Outgoing, reason: str) -> None:
        """It can never go: out of the outbox and the history, and said so."""
        try:
            await self.store.forget(item.msg_id)
        except StoreError as e:
            self.post(ev.Error(message=f"could not remove a failed message: {e}"))
        self.post(ev.Failed(conversation=item.conversation, msg_id=item.msg_id, reason=reason))

    # -- after a restart -------------------------------------------------------------------

    async def show_history(self) -> None:
        """Post the recent lines of each conversation kept in the database (at start)."""
        try:
            conversations = await self.store.conversations()
            for conversation in conversations[:HISTORY_CONVERSATIONS]:
                lines = await self.store.recent(conversation.name, HISTORY_LINES)
                self.post(ev.History(conversation=conversation.name, messages=tuple(
                    {"from": m.sender, "text": m.text, "msg_id": m.msg_id, "at": m.at,
                     "outgoing": m.outgoing, "state": m.state} for m in lines)))
        except StoreError as e:
            self.post(ev.Error(message=f"could not read the history: {e}"))

    async def resume(self) -> None:
        """Rejoin the channels the user was in and resend what was never acknowledged,
        with the original ids, each in its turn before anything typed since."""
        try:
            channels, rows = await self.store.joined(), await self.store.outbox()
        except StoreError as e:
            self.post(ev.Error(message=f"could not read the channels and the outbox: {e}"))
            return
        runs = [self._rejoin(c, self.lanes.turn("#" + c)) for c in channels]
        for row in rows:
            item = Outgoing.from_row(row)
            self._mine.add(item.msg_id)
            runs.append(self._resend(item, self.lanes.turn(item.destination)))
        await asyncio.gather(*runs)

    async def _rejoin(self, channel: str, turn: Turn) -> None:
        async with turn:
            if channel in self.joined:
                return
            try:
                await self.join(channel)
            except ChatError as e:
                self.post(ev.Error(message=f"could not rejoin #{channel}: {e}"))

    async def _resend(self, item: Outgoing, turn: Turn) -> None:
        async with turn:
            try:
                await self.deliver(item)
            except ChatError as e:
                self.post(ev.Error(message=str(e)))

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

    def _received(self, conversation: str, entries: Iterable[Entry]) -> list[Message]:
        return [Message(conversation, e.msg_id, e.nick, e.text, e.at or time.time(),
                        e.nick.lower() == self.nick.lower(), "delivered")
                for e in entries if e.kind == "msg"]

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

    async def _remember_joined(self, channel: str, joined: bool) -> None:
        try:
            await self.store.set_joined(channel, joined)
        except StoreError as e:
            self.post(ev.Error(message=f"could not remember the channels joined: {e}"))

    # -- channels --------------------------------------------------------------------------

    async def join(self, channel: str) -> list[str]:
        """Join a channel; its members and recent history come back. Returns the members."""
        if channel in self.joined:
            raise ChatError(f"you are already in #{channel}")
        membership = self.joined[channel] = Membership(channel)
        try:
            reply = await self.channels.call_join(channel, self.nick, self.address)
        except ChatError:
            self.joined.pop(channel, None)
            raise
        membership.joining = False
        membership.last_seq = max(membership.last_seq, int(reply.get("last_seq", 0)))
        members = tuple(reply.get("members", []))
        await self._remember_joined(channel, True)
        self.post(ev.Joined(channel=channel, members=members))
        history = [e for e in (Entry.from_wire(x) for x in reply.get("history", []))
                   if membership.seen.first(e.msg_id)]
        shown = await self._keep(self._received("#" + channel, history))
        for e in history:
            if e.msg_id in shown:
                self.post(ev.ChannelMessage(channel=channel, from_=e.nick, text=e.text,
                                            msg_id=e.msg_id, seq=e.seq, history=True))
        return list(members)

    async def leave(self, channel: str, retry_for: float | None = None,
                    reason: str = "left") -> str:
        """Leave a channel the user joined; returns its maintainer's address.

        ``reason`` ("left" or "exit") is what the other members are told.
        """
        if channel not in self.joined:
            raise ChatError(f"you are not in #{channel}")
        del self.joined[channel]
        if reason == "left":   # not on exit: the next start rejoins
            await self._remember_joined(channel, False)
        reply = await self.channels.call_leave(channel, self.nick, self.address, reason,
                                               retry_for)
        self.post(ev.Left(channel=channel))
        return reply["via"]

    async def send(self, channel: str, text: str) -> tuple[str, int]:
        """Send to a channel; returns (msg_id, seq) once the maintainer acknowledged it.

        Asked again (same id, so never shown twice) until acknowledged or ``retry_for``
        passes. The user need not be a member.
        """
        item = self.accept(Command("send", (channel, text)))
        async with self.lanes.turn(item.destination):
            return await self.deliver(item)

    async def _send(self, item: Outgoing) -> tuple[str, int]:
        channel = item.target
        try:
            reply = await self.channels.call_send(channel, self.nick, self.address,
                                                  item.msg_id, item.text)
        except ChatError as e:
            raise ChatError(f"{e}; the message stays in the outbox and is sent again at "
                            "the next start") from None
        seq = int(reply["seq"])
        self.post(ev.Sent(channel=channel, text=item.text, msg_id=item.msg_id, seq=seq,
                          members=int(reply.get("members", 0))))
        await self._delivered(item)
        return item.msg_id, seq

    async def receive(self, channel: str, entries: list[Entry]) -> dict:
        """Entries a maintainer delivers; shown once each (by id), in sequence order."""
        membership = self.joined.get(channel)
        if membership is None:
            return {"member": False}
        if membership.joining:
            return {"member": True, "last_seq": None}
        # By message id, not by seq: after two copies of a channel were merged, an entry
        # may arrive with a seq below one already shown (the maintainer resends it).
        fresh = [e for e in sorted(entries, key=lambda e: e.seq)
                 if membership.seen.first(e.msg_id)]
        shown = await self._keep(self._received("#" + channel, fresh))
        for e in fresh:
            membership.last_seq = max(membership.last_seq, e.seq)
            if e.kind == "msg":
                if e.msg_id not in shown:
                    continue
                self.post(ev.ChannelMessage(channel=channel, from_=e.nick, text=e.text,
                                            msg_id=e.msg_id, seq=e.seq))
            elif e.nick.lower() != self.nick.lower() and e.kind == "join":
                self.post(ev.MemberJoined(channel=channel, nick=e.nick))
            elif e.nick.lower() != self.nick.lower() and e.kind == "leave":
                self.post(ev.MemberLeft(channel=channel, nick=e.nick, reason=e.text or "left"))
        return {"member": True, "last_seq": membership.last_seq}

    # -- private messages ------------------------------------------------------------------

    async def msg(self, target: str, text: str) -> str:
        """Send a private message to a nick, or to a node id given as ``@<hex prefix>``."""
        item = self.accept(Command("msg", (target, text)))
        async with self.lanes.turn(item.destination):
            return await self.deliver(item)

    async def _msg(self, item: Outgoing) -> str:
        target, text, msg_id = item.target, item.text, item.msg_id
        payload = {"msg_id": msg_id, "from": self.nick, "from_id": self.id_hex,
                   "from_address": self.address, "text": text}
        if target.startswith("@"):
            shown = target
            await self._msg_by_id(target[1:].lower(), payload)
        else:
            record = await self.names.call_name_get(check_nick(target))
            if not record.get("ok"):
                why = f"unknown nick {target!r}: no node has registered it"
                await self._failed(item, why)
                raise ChatError(why)
            address, shown = Address.from_wire(record["address"]), record["nick"]
            reply = await self.call_private(address, {**payload, "to": shown,
                                                      "to_id": record["id"]},
                                            f"sending to {shown} at {address}")
            if not reply.get("ok"):
                raise ChatError(f"{shown} at {address} refused the message: "
                                f"{reply.get('error')}")
        self.post(ev.PrivateMessage(from_=self.nick, to=shown, text=text, msg_id=msg_id,
                                    outgoing=True))
        await self._delivered(item)
        return msg_id

    async def _msg_by_id(self, prefix: str, payload: dict) -> None:
        """Deliver to the node whose id starts with ``prefix``: the owner of prefix00…0.

        The receiver checks the id itself; while the ring settles the lookup may name
        another node, so a refusal is retried for a few seconds before it is final.
        """
        key = int(prefix.ljust(40, "0"), 16)
        backoff = Backoff(min(self.caller.retry_for, 3.0))
        while True:
            owner = await self.caller.find(key, f"finding the node @{prefix}")
            reply = await self.call_private(owner.address, {**payload, "to_id": prefix},
                                            f"sending to @{prefix} at {owner.address}")
            if reply.get("ok"):
                return
            if not await backoff.wait():
                raise ChatError(f"no node has an id starting with {prefix}")

    async def call_private(self, address: Address, payload: dict, what: str) -> dict:
        return await self.caller.call(address, p.PRIVATE, payload, what,
                                      give_up_after=min(self.caller.retry_for, 8.0))

    async def receive_private(self, d: dict) -> dict:
        if self.seen_private.first(d["msg_id"]):
            message = Message(d["from"], d["msg_id"], d["from"], d["text"], time.time(),
                              False, "delivered")
            if await self._keep([message]):
                self.post(ev.PrivateMessage(from_=d["from"], to=self.nick, text=d["text"],
                                            msg_id=d["msg_id"]))
        return p.OK

    # -- the rest --------------------------------------------------------------------------

    async def status(self) -> ev.RingStatus:
        s = self.journal.snapshot()
        self.post(ev.Info(text=(
            f"{self.nick} id {s.id} at {s.address}; predecessor {s.predecessor or '-'}, "
            f"successor {s.successor}; maintains {counted(s.channels, 'channel')} and "
            f"{counted(s.names, 'name')}; in "
            f"{', '.join('#' + c for c in sorted(self.joined)) or 'no channel'}")))
        return s

    async def whois(self, nick: str) -> dict:
        record = await self.names.call_name_get(check_nick(nick))
        if not record.get("ok"):
            raise ChatError(f"unknown nick {nick!r}: no node has registered it")
        self.post(ev.Info(text=f"{record['nick']} is served by the node "
                               f"{record['id'][:8]} at {record['address']}"))
        return record

    async def quit(self, reason: str = "exit") -> None:
        """Leave every channel and delete the name record; the node stays in the ring."""
        me = self.address
        bound = min(self.caller.retry_for, EXIT_RETRY)

        async def leave(channel: str) -> None:
            try:
                via = await self.leave(channel, bound, reason="exit")
                self.journal.migration("leave", ("channel", channel), me, via, reason)
            except ChatError as e:
                self.post(ev.Error(message=f"could not leave #{channel} on exit: {e}"))

        await asyncio.gather(*(leave(c) for c in list(self.joined)))
        if self.registered:
            self.registered = False
            try:
                reply = await self.names.call_name_del(self.nick, me, bound)
                self.journal.migration("unname", ("name", self.nick), me, reply["via"], reason)
            except ChatError as e:
                self.post(ev.Error(message=f"could not delete the name map on exit: {e}"))
