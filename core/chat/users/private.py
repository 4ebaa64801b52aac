"""A local user's private messages: sealed to the recipient's key (``sealed.py``) and sent
to its node, or left in its mailbox (``mailboxes.py``) while it is offline; the mailbox
taken at start and when its owner says letters wait; receipts asked for until taken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine

from core import events as ev
from core.chord import Address
from core.chord.relay import RelayedAddress, reachable
from core.datadir import valid_nick

from ..model.commands import check_nick
from ..model.errors import ChatError, Told
from ..model.ids import Seen
from ..model.mailbox import LETTER_KIND, Letter, letter_fields
from ..model.records import NameRecord
from ..model.sealed import claimed_key, open_letter, seal
from ..ring.mailboxes import MAX_IDS, Mailboxes
from ..ring.names import Names, looked_up
from ..wire import verbs as p
from ..wire.calls import Backoff, Caller
from .claim import Claim
from .database import Outbox, Outgoing
from .pins import Pins
from .signer import Signer
from .vouching import FORGED, VERIFIED, Voucher

log = logging.getLogger(__name__)


class Private:
    """One user's private messages, both ways, and its mailbox."""

    def __init__(self, me: Signer, *, names: Names, pins: Pins, caller: Caller,
                 mailboxes: Mailboxes, voucher: Voucher, outbox: Outbox, claim: Claim,
                 post: Callable[[ev.Event], None],
                 spawn: Callable[[Coroutine], object], receipt_interval: float) -> None:
        self.me = me
        self.names = names
        self.pins = pins
        self.caller = caller
        self.mailboxes = mailboxes
        self.voucher = voucher
        self.outbox = outbox
        self.claim = claim
        self.post = post
        self.spawn = spawn
        self.receipt_interval = receipt_interval
        self.seen = Seen()
        self._collecting = False   # a mailbox take is under way (``mail_waiting``)
        self._confirming = False   # a task asks whether mailed messages were taken

    # -- sending ---------------------------------------------------------------------------

    async def _moved(self, record: NameRecord) -> bool:
        """Whether ``record``'s holder registered another address since."""
        try:
            again = await self.names.lookup(record.nick, retry_for=min(self.caller.retry_for,
                                                                      5.0))
        except ChatError:
            return False
        return again is not None and again.key == record.key and again.address != record.address

    async def _registered_elsewhere(self, nick: str, key: str, unreachable: str) -> bool:
        """Whether ``nick`` (under ``key``) registered an address other than ``unreachable``
        since: it came back elsewhere while we were leaving it mail."""
        try:
            again = await self.names.lookup(nick, retry_for=min(self.caller.retry_for, 5.0))
        except ChatError:
            return False
        return again is not None and again.key == key and again.address != unreachable

    async def deliver(self, item: Outgoing, moves: int = 0) -> str:
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
                    raise Told(why)
                return await self._mail(item, target, pinned, None)
            address, to_id = reachable(record.address), record.node_id
        self.voucher.addressee(record)
        shown = record.nick
        at = self.me.stamp()
        sealed = seal(self.me.identity, record.key, item.text, item.msg_id, to=shown,
                      at=at, action=item.action)
        payload = {"msg_id": item.msg_id, "to": shown, "to_id": to_id, "sealed": sealed}
        relayed = isinstance(address, RelayedAddress)
        try:
            reply = await self.caller.call(address, p.PRIVATE, payload,
                                           f"sending to {shown} at {address}",
                                           give_up_after=min(self.caller.retry_for,
                                                             3.0 if relayed else 8.0))
        except ChatError:
            if not target.startswith("@") and moves < 3 and await self._moved(record):
                # a client node's relay died or it moved on, or a member restarted at
                # another address (a laptop on another network): its record names the new one
                return await self.deliver(item, moves + 1)
            if target.startswith("@") or self.pins.get(shown) != record.key:
                raise
            # its node is gone (a crash leaves the name record behind): to its mailbox
            return await self._mail(item, shown, record.key, record.address)
        if (reply.get("refused") == "not_served" and not target.startswith("@")
                and self.pins.get(shown) == record.key and moves < 3):
            # its node is up but does not serve it (a restart before its user registered,
            # a user that quit there): it moved, or it is offline and mail waits for it
            if await self._moved(record):
                return await self.deliver(item, moves + 1)
            return await self._mail(item, shown, record.key, record.address, moves + 1)
        if not reply.get("ok"):
            raise ChatError(f"{shown} at {address} refused the message: "
                            f"{reply.get('error')}")
        self.post(ev.PrivateMessage(from_=self.me.nick, to=shown, text=item.text,
                                    msg_id=item.msg_id, outgoing=True, action=item.action,
                                    at=at))
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
                    unreachable: str | None, moves: int = 0) -> str:
        """Leave a private message, sealed to ``key``, in ``nick``'s mailbox: it stays
        pending until ``nick`` has taken it (``confirm_mail``). ``moves``: the direct
        tries made so far (bounds the way back to ``deliver``)."""
        sealed = seal(self.me.identity, key, item.text, item.msg_id, to=nick,
                      at=self.me.stamp(), action=item.action)
        letter = Letter(item.msg_id, self.me.nick, self.me.stamp(), sealed,
                        self.me.identity.sign(LETTER_KIND, letter_fields(nick, sealed)))
        reply = await self.mailboxes.call_mail_put(nick, letter, unreachable)
        if reply.get("online"):   # it registered meanwhile: the direct way again
            if unreachable is not None:
                again = await self._registered_elsewhere(nick, key, unreachable)
                if again:
                    return await self.deliver(item, moves=3)   # one more try, no loop
                raise ChatError(f"{nick} is online again but could not be reached; "
                                "the message stays in the outbox")
            return await self.deliver(item, moves)
        if reply.get("full"):
            await self.outbox.failed(item, reply["full"])
            raise Told(reply["full"])
        if not reply.get("ok"):
            raise ChatError(f"leaving a message for {nick}: {reply.get('error', reply)}")
        await self.outbox.mailed(item)
        self.post(ev.Info(text=f"{nick} is offline: the message waits for it, sealed to its "
                               f"key, and shows as delivered once {nick} has it"))
        self.confirm_mail()
        return item.msg_id

    def confirm_mail(self) -> None:
        """Ask now and then whether the nicks that had mail took it (their receipts)."""
        if not self._confirming:
            self._confirming = True
            self.spawn(self._confirm_loop())

    async def _confirm_loop(self) -> None:
        try:
            while self.claim.registered:
                by_nick = await self.outbox.unconfirmed()
                if not by_nick:
                    return
                for nick, ids in by_nick.items():
                    try:
                        reply = await self.mailboxes.call_mail_status(nick, ids[:MAX_IDS])
                    except ChatError:
                        continue
                    for msg_id in reply.get("taken", []):
                        await self.outbox.taken(nick, msg_id)
                await asyncio.sleep(self.receipt_interval)
        finally:
            self._confirming = False

    # -- receiving -------------------------------------------------------------------------

    async def receive(self, d: dict) -> dict:
        """A sealed message for this user: shown only if it opens, as from its sender only
        under the sender's pinned key (or, on first contact, the key the ring names)."""
        sealed, msg_id = d["sealed"], d["msg_id"]
        sender = sealed.get("from")
        if not valid_nick(sender) or sealed.get("msg_id") != msg_id:
            return self._refuse("a malformed envelope")
        pinned = self.pins.get(sender)
        opened = open_letter(self.me.identity, pinned, sealed) if pinned else None
        status = VERIFIED
        if opened is None:
            claimed = claimed_key(sealed)
            opened = open_letter(self.me.identity, claimed, sealed) if claimed else None
            if opened is None:
                return self._refuse(f"a message as from {sender} that does not open")
            status = await self.voucher.vouch(sender, claimed)
            if status == FORGED:
                return self._refuse(f"a message as from {sender} under a key the ring "
                                    "does not give that nick")
        if self.seen.first(msg_id):
            # at the sender's sealed time (a letter's, from when it was left)
            shown = ev.PrivateMessage(from_=sender, to=self.me.nick, text=opened.text,
                                      msg_id=msg_id, verified=status == VERIFIED,
                                      action=opened.action,
                                      **({} if opened.at is None else {"at": opened.at}))
            # shown even if this call is cancelled, as in ``Memberships.receive``
            await self.outbox.showing(self._show(shown))
        return p.OK

    async def _show(self, e: ev.PrivateMessage) -> None:
        if await self.outbox.keep_private(e):
            self.post(e)

    def _refuse(self, what: str) -> dict:
        log.warning("%s: refused %s", self.me.nick, what)
        return {"ok": False, "error": f"refused {what}"}

    async def collect_mail(self) -> int:
        """Take the messages left for this user while it was offline: each shown once (the
        database drops one already shown), then the mailbox lets them go. Returns how many."""
        friends = self.pins.keys()[:self.mailboxes.limits.friends]
        reply = p.refusal(await self.mailboxes.call_mail_take(self.me.identity, friends),
                          "collecting the messages left for you")
        taken = []
        for wire in reply.get("letters", []) if reply.get("ok") else []:
            try:
                letter = Letter.from_wire(wire, self.me.nick)
            except ValueError:
                continue
            await self.receive({"msg_id": letter.msg_id, "to": self.me.nick,
                                "sealed": letter.sealed})
            taken.append(letter.msg_id)   # one that does not open never will: let it go
        for i in range(0, len(taken), MAX_IDS):
            await self.mailboxes.call_mail_done(self.me.identity, taken[i:i + MAX_IDS])
        return len(taken)

    async def collect_mail_once(self) -> None:
        """``collect_mail``, its failure an Error event."""
        try:
            await self.collect_mail()
        except ChatError as e:
            self.post(ev.Error(message=f"could not collect the messages left for you: {e}"))

    async def mail_waiting(self) -> None:
        """The mailbox's owner says letters wait for us (they reached it after we took):
        take them, if we hold the nick and are not taking already."""
        if not self.claim.registered or self._collecting:
            return
        self._collecting = True
        try:
            await self.collect_mail_once()
        finally:
            self._collecting = False
