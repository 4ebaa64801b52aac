"""Local users: the people a node serves (the UI's user, IRC clients), each with its own
nick, key, name record and channels. A user's operations raise ``ChatError`` and post its
events; ``execute`` runs a parsed ``Command`` and turns errors into ``Error`` events.

Everything a user does in its name is signed with its key (``signer.py``); private
messages are sealed to the recipient's key (``sealed.py``). What it receives is shown as
from a nick only when it verifies under the key pinned for that nick (``vouching.py``).
Its claim on the nick is ``claim.py``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field

from core import events as ev
from core.chord import Address, Local
from core.counts import counted
from core.datadir import valid_nick
from core.store import Message, NoStore, StoreError
from core.store import Outgoing as OutboxRow

from . import protocol as p
from .calls import Backoff, Caller, now
from .channels import Channels
from .claim import Claim
from .commands import Command, check_nick
from .entries import EntryError, SignedEntry
from .errors import ChatError
from .journal import Journal
from .keys import UserKeys
from .lanes import Lanes, Turn
from .mailboxes import MAX_IDS, Mailboxes
from .names import Names, looked_up
from .records import NameRecord
from .replies import refusal
from .sealed import claimed_key, open_sealed, seal
from .signer import Signer
from .state import Entry, Letter, Seen, new_id
from .vouching import FORGED, VERIFIED, Voucher

log = logging.getLogger(__name__)

EXIT_RETRY = 5.0     # seconds a quit retries a leave or the name-record delete
REJOIN_GAP = 1.0     # seconds between two resumes of one channel at least
HISTORY_CONVERSATIONS = 50   # conversations whose recent lines are shown at start
HISTORY_LINES = 100          # lines of each


@dataclass
class Membership:
    """A channel the user is in: what it has shown, to drop repeats and keep the order."""
    channel: str
    joining: bool = True
    last_seq: int = 0
    seen: Seen = field(default_factory=Seen)
    heard: float = 0.0          # when its maintainer last reached us (the loop's clock)
    resuming: bool = False      # a resume (``rejoin``) is under way
    resumed: float = float("-inf")


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
        return {"target": self.target, "text": self.text, "signed": self.signed}

    @classmethod
    def from_row(cls, row: OutboxRow) -> Outgoing:
        return cls(row.kind, str(row.payload["target"]), str(row.payload["text"]),
                   row.msg_id, row.at, row.payload.get("signed"))


class LocalUser:
    """One user served by this node. Made by ``ChatService.add_user``.

    ``store`` is the user's database (an ``AsyncStore``; None: nothing is kept): history,
    the outbox, the channels joined.
    """

    def __init__(self, nick: str, post: Callable[[ev.Event], None], node: Local,
                 caller: Caller, names: Names, channels: Channels, journal: Journal,
                 keys: UserKeys, stamp: Callable[[], float], store=None, *,
                 mailboxes: Mailboxes, spawn: Callable[[Coroutine], object],
                 receipt_interval: float = 5.0) -> None:
        self.nick = check_nick(nick)
        self.post = post
        self.node = node
        self.caller = caller
        self.names = names
        self.channels = channels
        self.journal = journal
        self.keys = keys
        self.identity = keys.identity
        self.identity.nick = self.nick
        self.pins = keys.pins
        self.stamp = stamp
        self.joined: dict[str, Membership] = {}
        self.seen_private = Seen()
        self._collecting = False   # a mailbox take is under way (``mail_waiting``)
        self.store = store if store is not None else NoStore()
        self.mailboxes = mailboxes
        self.spawn = spawn
        self.receipt_interval = receipt_interval
        self._confirming = False     # a task asks whether mailed messages were taken
        self.lanes = Lanes()
        self._mine: set[str] = set()   # ids sent in this run: their echoes are shown
        self._store_failed = False
        self.me = me = Signer(self.nick, self.identity, node, stamp)
        # the parts post through the user: a ``post`` replaced later (a test's) hears them
        tell = self._post
        self.claim = Claim(me, names, caller, journal, tell)
        self.voucher = Voucher(me, self.pins, names, caller, tell)

    def _post(self, event: ev.Event) -> None:
        self.post(event)

    @property
    def fingerprint(self) -> str:
        return self.me.fingerprint

    @property
    def address(self) -> str:
        return self.me.address

    @property
    def id_hex(self) -> str:
        return self.me.id_hex

    @property
    def record(self) -> NameRecord | None:
        return self.claim.record

    @property
    def registered(self) -> bool:
        return self.claim.registered

    async def register(self) -> ev.Ready:
        """Claim the nick on the ring (``Claim.register``); posts Ready."""
        return await self.claim.register()

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
                       "whois": self.whois, "trust": self.trust}.get(command.name)
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
        if item.kind == "channel":   # signed once: a resend is then the very same entry
            item.signed = self.me.sign(target, "msg", text, item.msg_id).to_wire()
        self._mine.add(item.msg_id)
        item.committed = self.store.add_outgoing(
            Message(item.conversation, item.msg_id, self.nick, text, item.at, True, "pending"),
            item.kind, item.target, item.payload())
        item.committed.add_done_callback(lambda f: self._on_committed(item, f))
        return item

    def _on_committed(self, item: Outgoing, future: asyncio.Future) -> None:
        if (not item.shown and not future.cancelled() and future.exception() is None):
            item.shown = True
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
            # shown as pending before it goes, even if the commit's callback has not run yet
            self._on_committed(item, item.committed)
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
        runs.append(self._collect_mail_once())
        for row in rows:
            item = Outgoing.from_row(row)
            if item.msg_id in self._mine:
                continue   # typed in this run (the read came after it): its command sends it
            self._mine.add(item.msg_id)
            runs.append(self._resend(item, self.lanes.turn(item.destination)))
        await asyncio.gather(*runs)
        self._confirm_mail()

    async def _collect_mail_once(self) -> None:
        try:
            await self.collect_mail()
        except ChatError as e:
            self.post(ev.Error(message=f"could not collect the messages left for you: {e}"))

    async def mail_waiting(self) -> None:
        """The mailbox's owner says letters wait for us (they reached it after we took):
        take them, if we hold the nick and are not taking already."""
        if not self.registered or self._collecting:
            return
        self._collecting = True
        try:
            await self._collect_mail_once()
        finally:
            self._collecting = False

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
            reply = refusal(await self.channels.call_join(self.me.sign(channel, "join")),
                            f"joining #{channel}")
        except ChatError:
            self.joined.pop(channel, None)
            raise
        membership.joining = False
        membership.heard = now()
        last_seq = reply.get("last_seq", 0)
        membership.last_seq = max(membership.last_seq, last_seq if type(last_seq) is int else 0)
        members = tuple(m for m in reply.get("members", []) if valid_nick(m))
        await self._remember_joined(channel, True)
        self.post(ev.Joined(channel=channel, members=members))
        history = [e for e in self._entries(channel, reply.get("history", []))
                   if e.kind == "msg" and membership.seen.first(e.msg_id)]
        statuses = await self.voucher.vouch_all(history)
        shown = await self._keep(self._received(
            "#" + channel, [e for e, s in zip(history, statuses, strict=True) if s != FORGED]))
        for e, status in zip(history, statuses, strict=True):
            if e.msg_id in shown:
                self.post(ev.ChannelMessage(channel=channel, from_=e.nick, text=e.text,
                                            msg_id=e.msg_id, seq=e.seq, history=True,
                                            verified=status == VERIFIED))
        return list(members)

    def _entries(self, channel: str, wires: object) -> list[Entry]:
        """The entries of a delivery that verify (each one left out is one log line)."""
        entries = []
        for wire in wires if isinstance(wires, list) else []:
            try:
                entries.append(Entry.from_wire(wire, channel))
            except (ValueError, EntryError) as e:
                log.warning("%s: dropped an entry of #%s: %s", self.nick, channel, e)
        return entries

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
        reply = refusal(await self.channels.call_leave(self.me.sign(channel, "leave", reason),
                                                       retry_for), f"leaving #{channel}")
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

    async def _send(self, item: Outgoing) -> tuple[str, int | None]:
        channel = item.target
        signed = None
        if isinstance(item.signed, dict):   # the original, as first signed (a resend)
            with contextlib.suppress(EntryError, ValueError):
                signed = SignedEntry.from_wire(item.signed)
        if signed is None or signed.msg_id != item.msg_id:
            signed = self.me.sign(channel, "msg", item.text, item.msg_id)
        try:
            reply = await self.channels.call_send(signed)
            if reply.get("refused") == "stale":   # resent long after: signed again, same id
                reply = await self.channels.call_send(
                    self.me.sign(channel, "msg", item.text, item.msg_id))
            if reply.get("refused") == "replay":
                # the maintainer took this id before: a resend of a line that got there
                await self._delivered(item)
                return item.msg_id, None
            reply = refusal(reply, f"sending to #{channel}")
        except ChatError as e:
            raise ChatError(f"{e}; the message stays in the outbox and is sent again at "
                            "the next start") from None
        seq = int(reply["seq"])
        self.post(ev.Sent(channel=channel, text=item.text, msg_id=item.msg_id, seq=seq,
                          members=int(reply.get("members", 0))))
        await self._delivered(item)
        return item.msg_id, seq

    async def receive(self, channel: str, wires: object) -> dict:
        """Entries a maintainer delivers; each verified again, shown once (by id), in
        sequence order, marked unverified unless signed by the key pinned for its author,
        and not shown at all if the ring names another key for that nick."""
        membership = self.joined.get(channel)
        if membership is None:
            return {"member": False}
        if membership.joining:
            return {"member": True, "last_seq": None}
        membership.heard = now()
        fresh = []
        for e in sorted(self._entries(channel, wires), key=lambda e: e.seq):
            # By message id, not by seq: after two copies of a channel were merged, an entry
            # may arrive with a seq below one already shown (the maintainer resends it).
            if membership.seen.first(e.msg_id):
                membership.last_seq = max(membership.last_seq, e.seq)
                fresh.append(e)
        # marked seen: shown even if this call is cancelled (its caller timed out)
        await asyncio.shield(self._show(channel, fresh))
        return {"member": True, "last_seq": membership.last_seq}

    async def _show(self, channel: str, fresh: list[Entry]) -> None:
        """Verify, record and show entries seen for the first time (in this run)."""
        statuses = await self.voucher.vouch_all(fresh)
        shown = await self._keep(self._received(
            "#" + channel, [e for e, s in zip(fresh, statuses, strict=True) if s != FORGED]))
        for e, status in zip(fresh, statuses, strict=True):
            mine = e.nick.lower() == self.nick.lower()
            if status == FORGED:
                log.warning("%s: not shown: a %s in #%s as %s under a key the ring does "
                            "not give that nick", self.nick, e.kind, channel, e.nick)
            elif e.kind == "msg" and e.msg_id not in shown:
                continue   # shown before (a repeat, maybe from before a restart)
            elif e.kind == "msg":
                self.post(ev.ChannelMessage(channel=channel, from_=e.nick, text=e.text,
                                            msg_id=e.msg_id, seq=e.seq,
                                            verified=status == VERIFIED))
            elif not mine and e.kind == "join":
                self.post(ev.MemberJoined(channel=channel, nick=e.nick))
            elif not mine and e.kind == "leave":
                self.post(ev.MemberLeft(channel=channel, nick=e.nick, reason=e.text or "left"))

    # -- after a partition ------------------------------------------------------------------

    async def keep_memberships(self, silence: float) -> None:
        """Say again that we are in each channel whose maintainer has not reached us for
        ``silence`` seconds (its feed asks a quiet member every few seconds): after a
        partition or a takeover the maintainer may be a copy that never knew us, or that
        pruned us. Silent when we are still a member; missed entries follow by the feed."""
        quiet = [m.channel for m in self.joined.values() if not (m.joining or m.resuming)
                 and now() - m.heard > silence]
        await asyncio.gather(*(self.rejoin(channel) for channel in quiet))

    async def rejoin(self, channel: str) -> None:
        """A resume: a fresh signed join of a channel we are in (a maintainer that doubts us
        asked, or ours went quiet); the maintainer readmits us and resends its log."""
        membership = self.joined.get(channel)
        if (membership is None or membership.joining or membership.resuming
                or now() - membership.resumed < REJOIN_GAP):
            return
        membership.resuming, membership.resumed = True, now()
        try:
            reply = await self.channels.call_join(self.me.sign(channel, "join"), resume=True)
            if reply.get("ok"):
                membership.heard = now()
        except ChatError:
            pass   # unreachable meanwhile: asked again after the next silence
        finally:
            membership.resuming = False

    # -- private messages ------------------------------------------------------------------

    async def msg(self, target: str, text: str) -> str:
        """Send a private message, sealed to the recipient's key, to a nick or to a node id
        given as ``@<hex prefix>``."""
        item = self.accept(Command("msg", (target, text)))
        async with self.lanes.turn(item.destination):
            return await self.deliver(item)

    async def _msg(self, item: Outgoing) -> str:
        target, text, msg_id = item.target, item.text, item.msg_id
        if target.startswith("@"):
            address, record = await self._user_by_id(target[1:].lower())
            to_id = target[1:].lower()
        else:
            record = await self.names.lookup(check_nick(target))
            if record is None:
                pinned = self.pins.get(target)
                if pinned is None:
                    why = f"unknown nick {target!r}: no node has registered it"
                    await self._failed(item, why)
                    raise ChatError(why)
                return await self._mail(item, target, pinned, None)
            address, to_id = Address.from_wire(record.address), record.node_id
        self.voucher.addressee(record)
        shown = record.nick
        sealed = seal(self.identity, record.key, text, msg_id, to=shown, at=self.stamp())
        payload = {"msg_id": msg_id, "to": shown, "to_id": to_id, "sealed": sealed}
        try:
            reply = await self.caller.call(address, p.PRIVATE, payload,
                                           f"sending to {shown} at {address}",
                                           give_up_after=min(self.caller.retry_for, 8.0))
        except ChatError:
            if target.startswith("@") or self.pins.get(shown) != record.key:
                raise
            # its node is gone (a crash leaves the name record behind): to its mailbox
            return await self._mail(item, shown, record.key, record.address)
        if not reply.get("ok"):
            raise ChatError(f"{shown} at {address} refused the message: "
                            f"{reply.get('error')}")
        self.post(ev.PrivateMessage(from_=self.nick, to=shown, text=text, msg_id=msg_id,
                                    outgoing=True))
        await self._delivered(item)
        return msg_id

    async def _mail(self, item: Outgoing, nick: str, key: str,
                    unreachable: str | None) -> str:
        """Leave a private message, sealed to ``key``, in ``nick``'s mailbox: it stays
        pending until ``nick`` has taken it (``_confirm_mail``)."""
        sealed = seal(self.identity, key, item.text, item.msg_id, to=nick, at=self.stamp())
        letter = Letter(item.msg_id, self.nick, self.stamp(), sealed)
        reply = await self.mailboxes.call_mail_put(nick, letter, unreachable)
        if reply.get("online"):   # it registered meanwhile: the direct way again
            if unreachable is not None:
                raise ChatError(f"{nick} is online again but could not be reached; "
                                "the message stays in the outbox")
            return await self._msg(item)
        if reply.get("full"):
            await self._failed(item, reply["full"])
            raise ChatError(reply["full"])
        if not reply.get("ok"):
            raise ChatError(f"leaving a message for {nick}: {reply.get('error', reply)}")
        try:
            await self.store.ack(item.msg_id)   # out of the outbox; pending until taken
        except StoreError as e:
            self.post(ev.Error(message=f"could not update the outbox: {e}"))
        self.post(ev.Info(text=f"{nick} is offline: the message waits for it, sealed to its "
                               f"key, and shows as delivered once {nick} has it"))
        self._confirm_mail()
        return item.msg_id

    def _confirm_mail(self) -> None:
        """Ask now and then whether the nicks that had mail took it (their receipts)."""
        if not self._confirming:
            self._confirming = True
            self.spawn(self._confirm_loop())

    async def _confirm_loop(self) -> None:
        try:
            while self.registered:
                try:
                    waiting = await self.store.unconfirmed()
                except StoreError:
                    return
                if not waiting:
                    return
                by_nick: dict[str, list[str]] = {}
                for m in waiting:
                    by_nick.setdefault(m.conversation, []).append(m.msg_id)
                for nick, ids in by_nick.items():
                    try:
                        reply = await self.mailboxes.call_mail_status(nick, ids[:MAX_IDS])
                    except ChatError:
                        continue
                    for msg_id in reply.get("taken", []):
                        with contextlib.suppress(StoreError):
                            await self.store.set_state(msg_id, "delivered")
                        self.post(ev.Delivered(conversation=nick, msg_id=msg_id))
                await asyncio.sleep(self.receipt_interval)
        finally:
            self._confirming = False

    async def collect_mail(self) -> int:
        """Take the messages left for this user while it was offline: each shown once (the
        database drops one already shown), then the mailbox lets them go. Returns how many."""
        reply = refusal(await self.mailboxes.call_mail_take(self.identity),
                        "collecting the messages left for you")
        taken = []
        for wire in reply.get("letters", []) if reply.get("ok") else []:
            try:
                letter = Letter.from_wire(wire, self.nick)
            except ValueError:
                continue
            await self.receive_private({"msg_id": letter.msg_id, "to": self.nick,
                                        "sealed": letter.sealed})
            taken.append(letter.msg_id)   # one that does not open never will: let it go
        for i in range(0, len(taken), MAX_IDS):
            await self.mailboxes.call_mail_done(self.identity, taken[i:i + MAX_IDS])
        return len(taken)

    async def _user_by_id(self, prefix: str) -> tuple[Address, NameRecord]:
        """The node whose id starts with ``prefix`` (the owner of prefix00…0) and the signed
        record of the first user it serves.

        While the ring settles the lookup may name another node, so a miss is retried for a
        few seconds before it is final.
        """
        key = int(prefix.ljust(40, "0"), 16)
        backoff = Backoff(min(self.caller.retry_for, 3.0))
        while True:
            owner = await self.caller.find(key, f"finding the node @{prefix}")
            reply = await self.caller.call(owner.address, p.USERS, {"to_id": prefix},
                                           f"asking @{prefix} at {owner.address} who it serves",
                                           give_up_after=min(self.caller.retry_for, 8.0))
            for wire in reply.get("records", []) if reply.get("ok") else []:
                record = looked_up({"ok": True, "record": wire},
                                   wire.get("nick", "") if isinstance(wire, dict) else "")
                if record is not None and record.node_id.startswith(prefix):
                    return owner.address, record
            if not await backoff.wait():
                raise ChatError(f"no node has an id starting with {prefix}")

    async def receive_private(self, d: dict) -> dict:
        """A sealed message for this user: shown only if it opens, as from its sender only
        under the sender's pinned key (or, on first contact, the key the ring names)."""
        sealed, msg_id = d["sealed"], d["msg_id"]
        sender = sealed.get("from")
        if not valid_nick(sender) or sealed.get("msg_id") != msg_id:
            return self._refuse_private("a malformed envelope")
        pinned = self.pins.get(sender)
        text = open_sealed(self.identity, pinned, sealed) if pinned else None
        status = VERIFIED
        if text is None:
            claimed = claimed_key(sealed)
            text = open_sealed(self.identity, claimed, sealed) if claimed else None
            if text is None:
                return self._refuse_private(f"a message as from {sender} that does not open")
            status = await self.voucher.vouch(sender, claimed)
            if status == FORGED:
                return self._refuse_private(f"a message as from {sender} under a key the ring "
                                            "does not give that nick")
        if self.seen_private.first(msg_id):
            shown = ev.PrivateMessage(from_=sender, to=self.nick, text=text, msg_id=msg_id,
                                      verified=status == VERIFIED)
            await asyncio.shield(self._show_private(shown))   # as in ``receive``
        return p.OK

    async def _show_private(self, e: ev.PrivateMessage) -> None:
        if await self._keep([Message(e.from_, e.msg_id, e.from_, e.text, e.at, False,
                                     "delivered")]):
            self.post(e)

    def _refuse_private(self, what: str) -> dict:
        log.warning("%s: refused %s", self.nick, what)
        return {"ok": False, "error": f"refused {what}"}

    # -- keys: who vouches for a nick ------------------------------------------------------

    async def vouch(self, nick: str, key: str) -> str:
        return await self.voucher.vouch(nick, key)

    async def whois(self, nick: str) -> ev.Whois:
        return await self.voucher.whois(nick)

    async def trust(self, nick: str) -> str:
        return await self.voucher.trust(nick)

    async def name_conflict(self, kept: object, lost: object) -> dict:
        return await self.claim.conflict(kept, lost)

    # -- the rest --------------------------------------------------------------------------

    async def status(self) -> ev.RingStatus:
        s = self.journal.snapshot()
        self.post(ev.Info(text=(
            f"{self.nick} id {s.id} at {s.address}; predecessor {s.predecessor or '-'}, "
            f"successor {s.successor}; maintains {counted(s.channels, 'channel')} and "
            f"{counted(s.names, 'name')}; in "
            f"{', '.join('#' + c for c in sorted(self.joined)) or 'no channel'}")))
        return s

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
        await self.claim.withdraw(bound, reason)
