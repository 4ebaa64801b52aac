"""Local users: the people a node serves (the UI's user, IRC clients), each with its own
nick, name record and channels. A user's operations raise ``ChatError`` and post its
events; ``execute`` runs a parsed ``Command`` and turns errors into ``Error`` events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from core import events as ev
from core.chord import Address, Local
from core.chord.ids import hex_id
from core.counts import counted

from . import protocol as p
from .calls import Backoff, Caller, now
from .channels import Channels
from .commands import Command, check_nick
from .errors import ChatError
from .journal import Journal
from .names import Names
from .state import Entry, Seen, new_id

EXIT_RETRY = 5.0     # seconds a quit retries a leave or the name-record delete


@dataclass
class Membership:
    """A channel the user is in: what it has shown, to drop repeats and keep the order."""
    channel: str
    joining: bool = True
    last_seq: int = 0
    seen: Seen = field(default_factory=Seen)
    heard: float = 0.0          # when its maintainer last reached us (the loop's clock)
    resuming: bool = False


class LocalUser:
    """One user served by this node. Made by ``ChatService.add_user``."""

    def __init__(self, nick: str, post: Callable[[ev.Event], None], node: Local,
                 caller: Caller, names: Names, channels: Channels, journal: Journal) -> None:
        self.nick = check_nick(nick)
        self.post = post
        self.node = node
        self.caller = caller
        self.names = names
        self.channels = channels
        self.journal = journal
        self.joined: dict[str, Membership] = {}
        self.seen_private = Seen()
        self.registered = False

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
        """Run a parsed command; a ChatError becomes an Error event. Returns its result."""
        run = {"msg": self.msg, "join": self.join, "leave": self.leave, "send": self.send,
               "status": self.status, "whois": self.whois}.get(command.name)
        try:
            if run is None:
                raise ChatError(f"the command {command.name!r} is not run by the chat service")
            return await run(*command.args)
        except ChatError as e:
            self.post(ev.Error(message=str(e)))
            return None

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
        membership.heard = now()
        membership.last_seq = max(membership.last_seq, int(reply.get("last_seq", 0)))
        members = tuple(reply.get("members", []))
        self.post(ev.Joined(channel=channel, members=members))
        for e in (Entry.from_wire(x) for x in reply.get("history", [])):
            if membership.seen.first(e.msg_id):
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
        reply = await self.channels.call_leave(channel, self.nick, self.address, reason,
                                               retry_for)
        self.post(ev.Left(channel=channel))
        return reply["via"]

    async def send(self, channel: str, text: str) -> tuple[str, int]:
        """Send to a channel; returns (msg_id, seq) once the maintainer acknowledged it.

        Asked again (same id, so never shown twice) until acknowledged or ``retry_for``
        passes. The user need not be a member.
        """
        msg_id = new_id()
        reply = await self.channels.call_send(channel, self.nick, self.address, msg_id, text)
        seq = int(reply["seq"])
        self.post(ev.Sent(channel=channel, text=text, msg_id=msg_id, seq=seq,
                          members=int(reply.get("members", 0))))
        return msg_id, seq

    def receive(self, channel: str, entries: list[Entry]) -> dict:
        """Entries a maintainer delivers; shown once each (by id), in sequence order."""
        membership = self.joined.get(channel)
        if membership is None:
            return {"member": False}
        if membership.joining:
            return {"member": True, "last_seq": None}
        membership.heard = now()
        for e in sorted(entries, key=lambda e: e.seq):
            # By message id, not by seq: after two copies of a channel were merged, an entry
            # may arrive with a seq below one already shown (the maintainer resends it).
            if not membership.seen.first(e.msg_id):
                continue
            membership.last_seq = max(membership.last_seq, e.seq)
            if e.kind == "msg":
                self.post(ev.ChannelMessage(channel=channel, from_=e.nick, text=e.text,
                                            msg_id=e.msg_id, seq=e.seq))
            elif e.nick.lower() != self.nick.lower() and e.kind == "join":
                self.post(ev.MemberJoined(channel=channel, nick=e.nick))
            elif e.nick.lower() != self.nick.lower() and e.kind == "leave":
                self.post(ev.MemberLeft(channel=channel, nick=e.nick, reason=e.text or "left"))
        return {"member": True, "last_seq": membership.last_seq}

    async def keep_memberships(self, silence: float) -> None:
        """Say again that we are in each channel whose maintainer has not reached us for
        ``silence`` seconds (its feed asks a quiet member every few seconds): after a
        partition or a takeover the maintainer may be a copy that never knew us, or that
        pruned us. Silent when we are still a member; missed entries follow by the feed."""
        async def resume(membership: Membership) -> None:
            membership.resuming = True
            try:
                await self.channels.call_join(membership.channel, self.nick, self.address,
                                              resume=True)
                membership.heard = now()
            except ChatError:
                pass   # unreachable meanwhile: asked again after the next silence
            finally:
                membership.resuming = False

        quiet = [m for m in self.joined.values() if not (m.joining or m.resuming)
                 and now() - m.heard > silence]
        await asyncio.gather(*(resume(m) for m in quiet))

    def name_conflict(self, kept: dict, lost: dict) -> dict:
        """The nick was held on both sides of a partition; the later claim kept it."""
        if kept.get("address") == self.address:
            self.post(ev.Info(text=f"your nick {self.nick} was also claimed, by the node "
                                   f"{str(lost.get('id'))[:8]} at {lost.get('address')}, while "
                                   "the network was split; you keep it (the later claim wins)"))
        elif lost.get("address") == self.address:
            self.registered = False
            self.post(ev.Error(message=(
                f"you lost the nick {self.nick} to the node {str(kept.get('id'))[:8]} at "
                f"{kept.get('address')}: both claimed it while the network was split, and "
                "the later claim wins; restart under another nick to be reachable by name")))
        return p.OK

    # -- private messages ------------------------------------------------------------------

    async def msg(self, target: str, text: str) -> str:
        """Send a private message to a nick, or to a node id given as ``@<hex prefix>``."""
        msg_id = new_id()
        payload = {"msg_id": msg_id, "from": self.nick, "from_id": self.id_hex,
                   "from_address": self.address, "text": text}
        if target.startswith("@"):
            shown = target
            await self._msg_by_id(target[1:].lower(), payload)
        else:
            record = await self.names.call_name_get(check_nick(target))
            if not record.get("ok"):
                raise ChatError(f"unknown nick {target!r}: no node has registered it")
            address, shown = Address.from_wire(record["address"]), record["nick"]
            reply = await self.call_private(address, {**payload, "to": shown,
                                                      "to_id": record["id"]},
                                            f"sending to {shown} at {address}")
            if not reply.get("ok"):
                raise ChatError(f"{shown} at {address} refused the message: "
                                f"{reply.get('error')}")
        self.post(ev.PrivateMessage(from_=self.nick, to=shown, text=text, msg_id=msg_id,
                                    outgoing=True))
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

    def receive_private(self, d: dict) -> dict:
        if self.seen_private.first(d["msg_id"]):
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
