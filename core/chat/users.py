"""Local users: the people a node serves (the UI's user, IRC clients), each with its own
nick, key, name record and channels. A user's operations raise ``ChatError`` and post its
events; ``execute`` runs a parsed ``Command`` and turns errors into ``Error`` events.

Everything a user does in its name is signed with its key (``signer.py``); private
messages are sealed to the recipient's key (``sealed.py``). What it receives is shown as
from a nick only when it verifies under the key pinned for that nick (``vouching.py``).
``LocalUser`` ties its parts together: its claim on the nick (``claim.py``), its outbox and
history (``outbox.py``), its channels (``memberships.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine

from core import events as ev
from core.chord import Address, Local
from core.counts import counted
from core.datadir import valid_nick
from core.store import Message, NoStore, StoreError

from . import protocol as p
from .calls import Backoff, Caller
from .channels import Channels
from .claim import Claim
from .commands import Command, check_nick
from .errors import ChatError
from .journal import Journal
from .keys import UserKeys
from .lanes import Lanes, Turn
from .mailboxes import MAX_IDS, Mailboxes
from .memberships import Membership, Memberships
from .names import Names, looked_up
from .outbox import Outbox, Outgoing
from .records import NameRecord
from .replies import refusal
from .sealed import claimed_key, open_sealed, seal
from .signer import Signer
from .state import Letter, Seen
from .vouching import FORGED, VERIFIED, Voucher

log = logging.getLogger(__name__)

EXIT_RETRY = 5.0     # seconds a quit retries a leave or the name-record delete


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
        self.caller = caller
        self.journal = journal
        self.keys = keys
        self.identity = keys.identity
        self.identity.nick = self.nick
        self.store = store if store is not None else NoStore()
        self.lanes = Lanes()
        self.me = me = Signer(self.nick, self.identity, node, stamp)
        # the parts post through the user: a ``post`` replaced later (a test's) hears them
        tell = self._post
        self.claim = Claim(me, names, caller, journal, tell)
        self.voucher = Voucher(me, keys.pins, names, caller, tell)
        self.outbox = Outbox(me, self.store, tell)
        self.memberships = Memberships(me, channels, self.voucher, self.outbox, self.store,
                                       journal, tell)
        self.names = names
        self.pins = keys.pins
        self.mailboxes = mailboxes
        self.spawn = spawn
        self.receipt_interval = receipt_interval
        self.seen_private = Seen()
        self._collecting = False   # a mailbox take is under way (``mail_waiting``)
        self._confirming = False   # a task asks whether mailed messages were taken

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

    @property
    def joined(self) -> dict[str, Membership]:
        return self.memberships.joined

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

    # -- lines typed -----------------------------------------------------------------------

    def accept(self, command: Command) -> Outgoing:
        """Take a typed ``send`` or ``msg`` line into the outbox (``Outbox.accept``)."""
        return self.outbox.accept(command)

    async def deliver(self, item: Outgoing) -> object:
        """Send an accepted line (call it in its turn); ChatError if it cannot go."""
        await self.outbox.stored(item)
        if item.kind == "channel":
            return await self.memberships.deliver(item)
        return await self._msg(item)

    async def send(self, channel: str, text: str) -> tuple[str, int]:
        """Send to a channel; returns (msg_id, seq) once the maintainer acknowledged it.

        Asked again (same id, so never shown twice) until acknowledged or ``retry_for``
        passes. The user need not be a member.
        """
        item = self.accept(Command("send", (channel, text)))
        async with self.lanes.turn(item.destination):
            return await self.deliver(item)

    async def msg(self, target: str, text: str) -> str:
        """Send a private message, sealed to the recipient's key, to a nick or to a node id
        given as ``@<hex prefix>``."""
        item = self.accept(Command("msg", (target, text)))
        async with self.lanes.turn(item.destination):
            return await self.deliver(item)

    # -- after a restart -------------------------------------------------------------------

    async def show_history(self) -> None:
        await self.outbox.show_history()

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
        for item in self.outbox.resumed(rows):
            runs.append(self._resend(item, self.lanes.turn(item.destination)))
        await asyncio.gather(*runs)
        self._confirm_mail()

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

    async def search(self, text: str) -> list[dict]:
        return await self.outbox.search(text)

    # -- channels and keys: their parts' ---------------------------------------------------

    async def join(self, channel: str) -> list[str]:
        return await self.memberships.join(channel)

    async def leave(self, channel: str, retry_for: float | None = None,
                    reason: str = "left") -> str:
        return await self.memberships.leave(channel, retry_for, reason)

    async def receive(self, channel: str, wires: object) -> dict:
        return await self.memberships.receive(channel, wires)

    async def keep_memberships(self, silence: float) -> None:
        await self.memberships.keep_memberships(silence)

    async def rejoin(self, channel: str) -> None:
        await self.memberships.rejoin(channel)

    async def vouch(self, nick: str, key: str) -> str:
        return await self.voucher.vouch(nick, key)

    async def whois(self, nick: str) -> ev.Whois:
        return await self.voucher.whois(nick)

    async def trust(self, nick: str) -> str:
        return await self.voucher.trust(nick)

    async def name_conflict(self, kept: object, lost: object) -> dict:
        return await self.claim.conflict(kept, lost)

    # -- private messages ------------------------------------------------------------------

    async def _msg(self, item: Outgoing) -> str:
        """Send an accepted line to a nick, or to the node whose id starts with the hex of
        an ``@`` target; to the nick's mailbox if it is offline. Returns the message id."""
        target = item.target
        if target.startswith("@"):
            address, record = await self._user_by_id(target[1:].lower())
            to_id = target[1:].lower()
        else:
            record = await self.names.lookup(check_nick(target))
            if record is None:
                pinned = self.pins.get(target)
                if pinned is None:
                    why = f"unknown nick {target!r}: no node has registered it"
                    await self.outbox.failed(item, why)
                    raise ChatError(why)
                return await self._mail(item, target, pinned, None)
            address, to_id = Address.from_wire(record.address), record.node_id
        self.voucher.addressee(record)
        shown = record.nick
        sealed = seal(self.me.identity, record.key, item.text, item.msg_id, to=shown,
                      at=self.me.stamp())
        payload = {"msg_id": item.msg_id, "to": shown, "to_id": to_id, "sealed": sealed}
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
        self.post(ev.PrivateMessage(from_=self.me.nick, to=shown, text=item.text,
                                    msg_id=item.msg_id, outgoing=True))
        await self.outbox.delivered(item)
        return item.msg_id

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

    async def _mail(self, item: Outgoing, nick: str, key: str,
                    unreachable: str | None) -> str:
        """Leave a private message, sealed to ``key``, in ``nick``'s mailbox: it stays
        pending until ``nick`` has taken it (``_confirm_mail``)."""
        sealed = seal(self.me.identity, key, item.text, item.msg_id, to=nick,
                      at=self.me.stamp())
        letter = Letter(item.msg_id, self.me.nick, self.me.stamp(), sealed)
        reply = await self.mailboxes.call_mail_put(nick, letter, unreachable)
        if reply.get("online"):   # it registered meanwhile: the direct way again
            if unreachable is not None:
                raise ChatError(f"{nick} is online again but could not be reached; "
                                "the message stays in the outbox")
            return await self._msg(item)
        if reply.get("full"):
            await self.outbox.failed(item, reply["full"])
            raise ChatError(reply["full"])
        if not reply.get("ok"):
            raise ChatError(f"leaving a message for {nick}: {reply.get('error', reply)}")
        await self.outbox.mailed(item)
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

    async def receive_private(self, d: dict) -> dict:
        """A sealed message for this user: shown only if it opens, as from its sender only
        under the sender's pinned key (or, on first contact, the key the ring names)."""
        sealed, msg_id = d["sealed"], d["msg_id"]
        sender = sealed.get("from")
        if not valid_nick(sender) or sealed.get("msg_id") != msg_id:
            return self._refuse_private("a malformed envelope")
        pinned = self.pins.get(sender)
        text = open_sealed(self.me.identity, pinned, sealed) if pinned else None
        status = VERIFIED
        if text is None:
            claimed = claimed_key(sealed)
            text = open_sealed(self.me.identity, claimed, sealed) if claimed else None
            if text is None:
                return self._refuse_private(f"a message as from {sender} that does not open")
            status = await self.voucher.vouch(sender, claimed)
            if status == FORGED:
                return self._refuse_private(f"a message as from {sender} under a key the ring "
                                    "does not give that nick")
        if self.seen_private.first(msg_id):
            shown = ev.PrivateMessage(from_=sender, to=self.me.nick, text=text, msg_id=msg_id,
                                      verified=status == VERIFIED)
            # shown even if this call is cancelled, as in ``Memberships.receive``
            await asyncio.shield(self._show_private(shown))
        return p.OK

    async def _show_private(self, e: ev.PrivateMessage) -> None:
        if await self.outbox.keep([Message(e.from_, e.msg_id, e.from_, e.text, e.at, False,
                                           "delivered")]):
            self.post(e)

    def _refuse_private(self, what: str) -> dict:
        log.warning("%s: refused %s", self.me.nick, what)
        return {"ok": False, "error": f"refused {what}"}

    async def collect_mail(self) -> int:
        """Take the messages left for this user while it was offline: each shown once (the
        database drops one already shown), then the mailbox lets them go. Returns how many."""
        reply = refusal(await self.mailboxes.call_mail_take(self.me.identity),
                        "collecting the messages left for you")
        taken = []
        for wire in reply.get("letters", []) if reply.get("ok") else []:
            try:
                letter = Letter.from_wire(wire, self.me.nick)
            except ValueError:
                continue
            await self.receive_private({"msg_id": letter.msg_id, "to": self.me.nick,
                                "sealed": letter.sealed})
            taken.append(letter.msg_id)   # one that does not open never will: let it go
        for i in range(0, len(taken), MAX_IDS):
            await self.mailboxes.call_mail_done(self.me.identity, taken[i:i + MAX_IDS])
        return len(taken)

    async def _collect_mail_once(self) -> None:
        """``collect_mail``, its failure an Error event."""
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
        bound = min(self.caller.retry_for, EXIT_RETRY)
        await self.memberships.leave_all(bound, reason)
        await self.claim.withdraw(bound, reason)
