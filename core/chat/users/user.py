"""Local users: the people a node serves (the UI's user, IRC clients), each with its own
nick, key, name record and channels. A user's operations raise ``ChatError`` and post its
events; ``execute`` runs a parsed ``Command`` and turns errors into ``Error`` events.

Everything a user does in its name is signed with its key (``signer.py``); private
messages are sealed to the recipient's key (``private.py``). What it receives is shown as
from a nick only when it verifies under the key pinned for that nick (``vouching.py``).
``LocalUser`` ties its parts together: its claim on the nick (``claim.py``), its outbox and
history (``outbox.py``), its channels (``memberships.py``) and its private messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine

from core import events as ev
from core.chord import Local
from core.counts import counted

from ..model.commands import Command, check_nick
from ..model.errors import ChatError, Told
from ..model.limits import DEFAULT, Limits
from ..model.records import NameRecord
from ..ring.channelcopies import ChannelCopies
from ..ring.channels import Channels
from ..ring.journal import Journal
from ..ring.mailboxes import Mailboxes
from ..ring.names import Names
from ..wire.calls import Caller
from .claim import Claim
from .database import Outbox, Outgoing
from .invitations import Invitations
from .keyring import UserKeys
from .lanes import Lanes, Turn
from .memberships import Membership, Memberships
from .private import Private
from .signer import Signer
from .vouching import Voucher

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
                 copies: ChannelCopies, receipt_interval: float = 5.0,
                 limits: Limits = DEFAULT, **gaps) -> None:
        self.nick = check_nick(nick)
        self.post = post
        self.caller = caller
        self.journal = journal
        self.keys = keys
        self.identity = keys.identity
        self.identity.nick = self.nick
        self.lanes = Lanes()
        self.spawn = spawn
        self.resumed = asyncio.Event()   # set once ``resume`` has done all it does
        self.moved_count = 0             # address changes taken up (``moved``)
        # the other users this node serves, by nick (the service sets it): told of an
        # invitation here
        self.local: Callable[[str], LocalUser | None] = lambda nick: None
        self.names = names
        self.me = me = Signer(self.nick, self.identity, node, stamp)
        # the parts post through the user: a ``post`` replaced later (a test's) hears them
        tell = self._post
        self.claim = Claim(me, names, caller, journal, tell)
        self.voucher = Voucher(me, keys.pins, names, caller, tell)
        self.outbox = Outbox(me, store, tell)
        self.memberships = Memberships(me, channels, self.voucher, self.outbox, journal, tell,
                                       copies, spawn, **gaps)
        self.private = Private(me, names=names, pins=keys.pins, caller=caller,
                               mailboxes=mailboxes, voucher=self.voucher, outbox=self.outbox,
                               claim=self.claim, post=tell, spawn=spawn,
                               receipt_interval=receipt_interval)
        self.invitations = Invitations(me, self.voucher, caller, limits, tell)

    def _post(self, event: ev.Event) -> None:
        self.post(event)

    @property
    def store(self):
        """The user's database (``AsyncStore``, or ``NoStore``)."""
        return self.outbox.store

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
        item = self.accept(command) if command.name in ("send", "msg", "me") else None
        try:
            async with self.lanes.turn(command.destination):
                if item is not None:
                    return await self.deliver(item)
                run = {"join": self.join, "leave": self.leave, "status": self.status,
                       "whois": self.whois, "trust": self.trust,
                       "topic": self.topic, "mode": self.mode, "kick": self.kick,
                       "invite": self.invite}.get(command.name)
                if run is None:
                    raise ChatError(f"the command {command.name!r} is not run by the chat "
                                    "service")
                return await run(*command.args)
        except Told:
            return None   # its event (Failed) said why
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
        return await self.private.deliver(item)

    async def send(self, channel: str, text: str) -> tuple[str, int]:
        """Send to a channel; returns (msg_id, seq) once the maintainer acknowledged it.

        Asked again (same id, so never shown twice) until acknowledged or ``retry_for``
        passes. The user need not be a member.
        """
        item = self.accept(Command("send", (channel, text)))
        async with self.lanes.turn(item.destination):
            return await self.deliver(item)

    async def act(self, target: str, text: str) -> object:
        """Send an action (``/me``) to ``#channel`` or to a nick or ``@id``, as ``send`` or
        ``msg`` send a line."""
        item = self.accept(Command("me", (target, text)))
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
        with the original ids, each in its turn before anything typed since; then take the
        mail left meanwhile. ``resumed`` is set at the end, whatever happened."""
        try:
            again = await self.outbox.restart()
            if again is None:
                return
            channels, items = again
            runs = [self._rejoin(c, key, self.lanes.turn("#" + c)) for c, key in channels]
            runs.append(self.private.collect_mail_once())
            for item in items:
                runs.append(self._resend(item, self.lanes.turn(item.destination)))
            await asyncio.gather(*runs)
            self.private.confirm_mail()
        finally:
            self.resumed.set()

    async def moved(self) -> None:
        """This node's address changed (a client's new relay, a new network): the name
        record names the new address (a higher sequence number), every channel is
        resumed from it (a fresh signed join: the maintainer's feed follows, from the
        start of its log; what was shown is dropped by id), and the mail left meanwhile
        is taken. Lines typed go on as they were: they are sent by this node's own calls,
        which never went through the old address. ``moved_count`` counts the moves done."""
        try:
            await self.claim.register(announce=False)
        except ChatError as e:
            self.post(ev.Error(message=f"could not register the new address: {e}"))
        await asyncio.gather(*(self._resume_channel(c) for c in list(self.joined)))
        await self.private.collect_mail_once()
        self.moved_count += 1
        self.post(ev.Info(text=f"reachable at {self.address} now "
                               f"({self.me.node.reach})"))

    async def _resume_channel(self, channel: str) -> None:
        try:
            membership = self.joined.get(channel)
            reply = await self.memberships.channels.call_join(
                self.me.sign(channel, "join"), resume=True,
                key=membership.key if membership is not None else None)
            if "refused" in reply:
                raise ChatError(reply.get("error", reply["refused"]))
        except ChatError as e:
            self.post(ev.Error(message=f"could not resume #{channel} from the new "
                                       f"address: {e}"))

    async def _rejoin(self, channel: str, key: str | None, turn: Turn) -> None:
        async with turn:
            if channel in self.joined:
                return
            try:
                await self.join(channel, key)   # with the key it joined with (+k)
            except ChatError as e:
                self.post(ev.Error(message=f"could not rejoin #{channel}: {e}"))

    async def _resend(self, item: Outgoing, turn: Turn) -> None:
        async with turn:
            try:
                await self.deliver(item)
            except Told:
                pass
            except ChatError as e:
                self.post(ev.Error(message=str(e)))

    async def search(self, text: str) -> list[dict]:
        return await self.outbox.search(text)

    # -- what its parts do: channels, keys, private messages -------------------------------

    async def join(self, channel: str, key: str | None = None) -> list[str]:
        return await self.memberships.join(channel, key)

    async def leave(self, channel: str, retry_for: float | None = None,
                    reason: str = "left") -> str:
        return await self.memberships.leave(channel, retry_for, reason)

    async def topic(self, channel: str, text: str) -> None:
        await self.memberships.topic(channel, text)

    async def mode(self, channel: str, changes: str) -> None:
        await self.memberships.mode(channel, changes)

    async def kick(self, channel: str, nick: str, reason: str = "") -> None:
        await self.memberships.kick(channel, nick, reason)

    async def invite(self, channel: str, nick: str) -> None:
        """Invite ``nick`` to a channel the user is in; once the maintainer took it, the
        invitee is told: here, or at the node its name record names (in the background:
        if that fails, the invitee is let in all the same, but not told)."""
        invitee = self.local(nick)
        record = None if invitee is not None else await self.names.lookup(check_nick(nick))
        if invitee is None and record is None:
            raise ChatError(f"unknown nick {nick!r}: no node has registered it",
                            "no_such_nick")
        signed = await self.memberships.invite(channel, nick)
        self.post(ev.Invited(channel=channel, nick=self.nick, invitee=nick))
        if invitee is not None:
            invitee.post(ev.Invited(channel=channel, nick=self.nick))
        elif record is not None:
            self.spawn(self.invitations.tell(signed, record))

    async def receive_invitation(self, d: dict, host: str | None) -> dict:
        return await self.invitations.receive(d, host)

    async def receive(self, channel: str, wires: object, maintainer: str | None = None,
                      origin: str | None = None,
                      joins: dict[str, str] | None = None) -> dict:
        return await self.memberships.receive(channel, wires, maintainer, origin, joins)

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

    async def receive_private(self, d: dict) -> dict:
        return await self.private.receive(d)

    async def collect_mail(self) -> int:
        return await self.private.collect_mail()

    async def mail_waiting(self) -> None:
        await self.private.mail_waiting()

    # -- the rest --------------------------------------------------------------------------

    async def status(self) -> ev.RingStatus:
        s = self.journal.snapshot()
        copies = self.journal.replica_counts()
        self.post(ev.Info(text=(
            f"{self.nick} id {s.id} at {s.address}; predecessor {s.predecessor or '-'}, "
            f"successor {s.successor}; maintains {counted(s.channels, 'channel')} and "
            f"{counted(s.names, 'name')}, keeps replicas of {counted(copies[0], 'channel')} "
            f"and {counted(copies[1], 'name')}; in "
            f"{', '.join('#' + c for c in sorted(self.joined)) or 'no channel'}")))
        return s

    async def quit(self, reason: str = "exit") -> None:
        """Leave every channel and delete the name record; the node stays in the ring."""
        bound = min(self.caller.retry_for, EXIT_RETRY)
        await self.memberships.leave_all(bound, reason)
        await self.claim.withdraw(bound, reason)
        await self.outbox.settle(bound)
