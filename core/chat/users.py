"""Local users: the people a node serves (the UI's user, IRC clients), each with its own
nick, key, name record and channels. A user's operations raise ``ChatError`` and post its
events; ``execute`` runs a parsed ``Command`` and turns errors into ``Error`` events.

Everything a user does in its name is signed with its key (name records, joins, leaves,
messages); private messages are sealed to the recipient's key (``sealed.py``). What it
receives is shown as from a nick only when it verifies under the key pinned for that nick
(``pins.py``); on first contact the ring's name record must name the same key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from core import events as ev
from core.chord import Address, Local
from core.chord.ids import hex_id
from core.counts import counted
from core.datadir import valid_nick

from . import protocol as p
from .calls import Backoff, Caller, now
from .channels import Channels
from .commands import Command, check_nick
from .entries import EntryError, sign_entry
from .errors import ChatError, NickTaken
from .identity import fingerprint
from .journal import Journal
from .keys import UserKeys
from .names import Names, looked_up
from .pins import PinsError
from .records import NameRecord, next_seq
from .sealed import claimed_key, open_sealed, seal
from .state import Entry, Seen, new_id

log = logging.getLogger(__name__)

EXIT_RETRY = 5.0     # seconds a quit retries a leave or the name-record delete
LOOKUP_TTL = 30.0    # seconds a name record looked up to vouch for a key is remembered
LOOKUP_AGAIN = 2.0   # a key it does not name is looked up again at most this often
VERIFIED, UNVERIFIED, FORGED = "verified", "unverified", "forged"


@dataclass
class Membership:
    """A channel the user is in: what it has shown, to drop repeats and keep the order."""
    channel: str
    joining: bool = True
    last_seq: int = 0
    seen: Seen = field(default_factory=Seen)


class LocalUser:
    """One user served by this node. Made by ``ChatService.add_user``."""

    def __init__(self, nick: str, post: Callable[[ev.Event], None], node: Local,
                 caller: Caller, names: Names, channels: Channels, journal: Journal,
                 keys: UserKeys, stamp: Callable[[], float]) -> None:
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
        self.registered = False
        self.record: NameRecord | None = None
        self._lookups: dict[str, tuple[float, str | None]] = {}  # nick -> (when, ring's key)
        self._asked: dict[tuple[str, str], float] = {}   # (nick, key) -> last looked up
        self._new_keys: dict[str, str] = {}    # nick -> a key seen that is not the pinned one
        self._warned: set[tuple[str, str]] = set()

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    def _wall_ms(self) -> int:
        return int(self.stamp() * 1000)

    def _sign(self, channel: str, kind: str, text: str = "", msg_id: str | None = None):
        try:
            return sign_entry(self.identity, channel, kind, msg_id or new_id(),
                              address=self.address, text=text, at=self.stamp())
        except EntryError as e:
            raise ChatError(f"cannot sign the {kind}: {e}") from None

    @property
    def address(self) -> str:
        return str(self.node.address)

    @property
    def id_hex(self) -> str:
        return hex_id(self.node.id)

    async def register(self) -> ev.Ready:
        """Claim the nick on the ring with a signed record (NickTaken if another key holds
        it and its node lives); post Ready."""
        seq = next_seq(0, self._wall_ms())
        for _ in range(3):
            record = NameRecord.create(self.identity, self.address, self.id_hex, seq)
            reply = await self.names.call_name_set(record)
            refused = reply.get("refused")
            if reply.get("ok"):
                break
            if refused == "taken":
                raise NickTaken(f"the nick {self.nick!r} is already taken by the node at "
                                f"{reply.get('holder') or '?'}")
            current = reply.get("current_seq")
            if refused != "stale" or type(current) is not int:
                raise ChatError(f"the nick {self.nick!r} was refused: "
                                f"{reply.get('error', reply)}")
            seq = next_seq(current, self._wall_ms())   # our clock is behind the record's
        else:
            raise ChatError(f"the nick {self.nick!r} was refused: {reply.get('error')}")
        self.record = record
        self.registered = True
        ready = ev.Ready(nick=self.nick, id=self.id_hex, address=self.address,
                         fingerprint=self.fingerprint)
        self.post(ready)
        return ready

    async def execute(self, command: Command) -> object:
        """Run a parsed command; a ChatError becomes an Error event. Returns its result."""
        run = {"msg": self.msg, "join": self.join, "leave": self.leave, "send": self.send,
               "status": self.status, "whois": self.whois, "trust": self.trust
               }.get(command.name)
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
            reply = refusal(await self.channels.call_join(self._sign(channel, "join")),
                            f"joining #{channel}")
        except ChatError:
            self.joined.pop(channel, None)
            raise
        membership.joining = False
        last_seq = reply.get("last_seq", 0)
        membership.last_seq = max(membership.last_seq, last_seq if type(last_seq) is int else 0)
        members = tuple(m for m in reply.get("members", []) if valid_nick(m))
        self.post(ev.Joined(channel=channel, members=members))
        history = [e for e in self._entries(channel, reply.get("history", []))
                   if e.kind == "msg" and e.msg_id not in membership.seen]
        for e, status in zip(history, await self._vouch_all(history), strict=True):
            if status != FORGED and membership.seen.first(e.msg_id):
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
        reply = refusal(await self.channels.call_leave(self._sign(channel, "leave", reason),
                                                       retry_for), f"leaving #{channel}")
        self.post(ev.Left(channel=channel))
        return reply["via"]

    async def send(self, channel: str, text: str) -> tuple[str, int]:
        """Send to a channel; returns (msg_id, seq) once the maintainer acknowledged it.

        Asked again (same id, so never shown twice) until acknowledged or ``retry_for``
        passes. The user need not be a member.
        """
        entry = self._sign(channel, "msg", text)
        msg_id = entry.msg_id
        reply = refusal(await self.channels.call_send(entry), f"sending to #{channel}")
        seq = int(reply["seq"])
        self.post(ev.Sent(channel=channel, text=text, msg_id=msg_id, seq=seq,
                          members=int(reply.get("members", 0))))
        return msg_id, seq

    async def receive(self, channel: str, wires: object) -> dict:
        """Entries a maintainer delivers; each verified again, shown once (by id), in
        sequence order, marked unverified unless signed by the key pinned for its author,
        and not shown at all if the ring names another key for that nick."""
        membership = self.joined.get(channel)
        if membership is None:
            return {"member": False}
        if membership.joining:
            return {"member": True, "last_seq": None}
        # By message id, not by seq: after two copies of a channel were merged, an entry
        # may arrive with a seq below one already shown (the maintainer resends it).
        fresh = [e for e in sorted(self._entries(channel, wires), key=lambda e: e.seq)
                 if e.msg_id not in membership.seen]
        statuses = await self._vouch_all(fresh)
        # marked seen only now: a call cancelled while vouching (the maintainer went away)
        # leaves them to be shown when they are delivered again
        for e, status in zip(fresh, statuses, strict=True):
            if not membership.seen.first(e.msg_id):
                continue     # another delivery showed it meanwhile
            membership.last_seq = max(membership.last_seq, e.seq)
            mine = e.nick.lower() == self.nick.lower()
            if status == FORGED:
                log.warning("%s: not shown: a %s in #%s as %s under a key the ring does "
                            "not give that nick", self.nick, e.kind, channel, e.nick)
            elif e.kind == "msg":
                self.post(ev.ChannelMessage(channel=channel, from_=e.nick, text=e.text,
                                            msg_id=e.msg_id, seq=e.seq,
                                            verified=status == VERIFIED))
            elif not mine and e.kind == "join":
                self.post(ev.MemberJoined(channel=channel, nick=e.nick))
            elif not mine and e.kind == "leave":
                self.post(ev.MemberLeft(channel=channel, nick=e.nick, reason=e.text or "left"))
        return {"member": True, "last_seq": membership.last_seq}

    # -- keys: who vouches for a nick ------------------------------------------------------

    async def _vouch_all(self, entries: list[Entry]) -> list[str]:
        """``vouch`` for each entry's author (the maintainer's unsigned notices pass)."""
        authors = {(e.nick, e.signed.key) for e in entries if e.signed is not None}
        results = dict(zip(authors, await asyncio.gather(
            *(self.vouch(nick, key) for nick, key in authors)), strict=True))
        return [VERIFIED if e.signed is None else results[(e.nick, e.signed.key)]
                for e in entries]

    async def vouch(self, nick: str, key: str) -> str:
        """Whether a valid signature by ``key`` may be shown as ``nick``'s: VERIFIED (the
        pinned key; or none pinned and the ring's name record names it: pinned now),
        UNVERIFIED (not the pinned key, or no record to compare: shown marked so; a changed
        key is warned about once) or FORGED (the ring gives the nick another key)."""
        if nick.lower() == self.nick.lower():
            return VERIFIED if key == self.identity.key else FORGED
        status = self.pins.check(nick, key)
        if status == "same":
            return VERIFIED
        ring_key = await self._ring_key(nick, key)
        if ring_key is not None and ring_key != key:
            return FORGED
        if status == "new":
            if ring_key is None:
                return UNVERIFIED
            try:
                self.pins.pin(nick, key)
            except PinsError as e:
                self.post(ev.Error(message=str(e)))
            return VERIFIED
        self._changed(nick, key)
        return UNVERIFIED

    async def _ring_key(self, nick: str, key: str) -> str | None:
        """The key of ``nick``'s name record on the ring (remembered for a while), or None."""
        name = nick.lower()
        cached = self._lookups.get(name)
        if cached is not None:
            age, ring_key = now() - cached[0], cached[1]
            if age < LOOKUP_TTL and ring_key in (None, key):
                return ring_key
            # another key may be a new record: asked again, but for one key not more than
            # every LOOKUP_AGAIN s (a flood of one forgery costs the nick's owner nothing)
            asked = self._asked.get((name, key))
            if asked is not None and now() - asked < LOOKUP_AGAIN:
                return ring_key
        if len(self._asked) > 1000:
            self._asked.clear()
        self._asked[(name, key)] = now()
        try:
            # briefly: a member answers its maintainer's delivery only after this
            record = await self.names.lookup(nick, retry_for=min(1.0, self.caller.retry_for))
        except ChatError:
            return None   # not remembered: asked again next time
        key = None if record is None else record.key
        self._lookups[name] = (now(), key)
        return key

    def _changed(self, nick: str, key: str) -> None:
        """``nick`` came with ``key``, not the pinned one: warn once per key."""
        name = nick.lower()
        self._new_keys[name] = key
        pinned = self.pins.get(nick)
        if pinned is not None and (name, key) not in self._warned:
            self._warned.add((name, key))
            self.post(ev.KeyChanged(nick=nick, old=fingerprint(pinned), new=fingerprint(key)))

    # -- private messages ------------------------------------------------------------------

    async def msg(self, target: str, text: str) -> str:
        """Send a private message, sealed to the recipient's key, to a nick or to a node id
        given as ``@<hex prefix>``."""
        msg_id = new_id()
        if target.startswith("@"):
            address, record = await self._user_by_id(target[1:].lower())
            to_id = target[1:].lower()
        else:
            record = await self.names.lookup(check_nick(target))
            if record is None:
                raise ChatError(f"unknown nick {target!r}: no node has registered it")
            address, to_id = Address.from_wire(record.address), record.node_id
        shown = record.nick
        if record.name != self.nick.lower():
            status = self.pins.check(shown, record.key)
            if status == "changed":
                self._changed(shown, record.key)
                raise ChatError(f"the key of {shown} changed (now {fingerprint(record.key)}); "
                                f"compare it with {shown}, then: trust {shown}")
            if status == "new":
                self.pins.pin(shown, record.key)
        sealed = seal(self.identity, record.key, text, msg_id, to=shown, at=self.stamp())
        payload = {"msg_id": msg_id, "to": shown, "to_id": to_id, "sealed": sealed}
        reply = await self.call_private(address, payload, f"sending to {shown} at {address}")
        if not reply.get("ok"):
            raise ChatError(f"{shown} at {address} refused the message: "
                            f"{reply.get('error')}")
        self.post(ev.PrivateMessage(from_=self.nick, to=shown, text=text, msg_id=msg_id,
                                    outgoing=True))
        return msg_id

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

    async def call_private(self, address: Address, payload: dict, what: str) -> dict:
        return await self.caller.call(address, p.PRIVATE, payload, what,
                                      give_up_after=min(self.caller.retry_for, 8.0))

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
            status = await self.vouch(sender, claimed)
            if status == FORGED:
                return self._refuse_private(f"a message as from {sender} under a key the ring "
                                            "does not give that nick")
        if self.seen_private.first(msg_id):
            self.post(ev.PrivateMessage(from_=sender, to=self.nick, text=text, msg_id=msg_id,
                                        verified=status == VERIFIED))
        return p.OK

    def _refuse_private(self, what: str) -> dict:
        log.warning("%s: refused %s", self.nick, what)
        return {"ok": False, "error": f"refused {what}"}

    # -- the rest --------------------------------------------------------------------------

    async def status(self) -> ev.RingStatus:
        s = self.journal.snapshot()
        self.post(ev.Info(text=(
            f"{self.nick} id {s.id} at {s.address}; predecessor {s.predecessor or '-'}, "
            f"successor {s.successor}; maintains {counted(s.channels, 'channel')} and "
            f"{counted(s.names, 'name')}; in "
            f"{', '.join('#' + c for c in sorted(self.joined)) or 'no channel'}")))
        return s

    async def whois(self, nick: str) -> ev.Whois:
        """Who holds ``nick``: its key's fingerprint and node (a Whois event)."""
        record = await self.names.lookup(check_nick(nick))
        if record is None:
            raise ChatError(f"unknown nick {nick!r}: no node has registered it")
        mine = record.name == self.nick.lower()
        status = "same" if mine else self.pins.check(record.nick, record.key)
        if status == "changed":
            self._changed(record.nick, record.key)
        whois = ev.Whois(nick=record.nick, fingerprint=fingerprint(record.key),
                         id=record.node_id, address=record.address, pin=status)
        self.post(whois)
        return whois

    async def trust(self, nick: str) -> str:
        """Pin the key last seen for ``nick`` (after a key-changed warning), else the key
        its name record names now. Returns the fingerprint trusted."""
        name = check_nick(nick).lower()
        key = self._new_keys.get(name)
        if key is None:
            record = await self.names.lookup(nick)
            if record is None:
                raise ChatError(f"unknown nick {nick!r}: no key to trust")
            key = record.key
        try:
            self.pins.trust(nick, key)
        except PinsError as e:
            raise ChatError(str(e)) from None
        self._new_keys.pop(name, None)
        self._lookups.pop(name, None)
        self.post(ev.Info(text=f"trusted {nick}'s key {fingerprint(key)}"))
        return fingerprint(key)

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
        if self.registered and self.record is not None:
            self.registered = False
            tombstone = NameRecord.tombstone(self.identity,
                                             next_seq(self.record.seq, self._wall_ms()))
            try:
                reply = refusal(await self.names.call_name_set(tombstone, bound),
                                "deleting the name record")
                self.journal.migration("unname", ("name", self.nick), me, reply["via"], reason)
            except ChatError as e:
                self.post(ev.Error(message=f"could not delete the name record on exit: {e}"))


def refusal(reply: dict, what: str) -> dict:
    """``reply``, unless the node refused the request: then a ChatError saying why."""
    if "refused" in reply:
        raise ChatError(f"{what}: refused: {reply.get('error', reply['refused'])}")
    return reply
