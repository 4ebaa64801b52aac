"""Channels at their maintainer: joins, leaves and sends, served by the owner of the
channel's key; each change is replicated before members see it or a send is acknowledged.

Each request carries the user's signed entry (``entries.SignedEntry``), which the
maintainer checks before it acts: the signature, the channel, the kind, the text (no
control characters: ``model.text``), the clock (a message outside the replay window is
refused, and message ids seen within it are remembered even after the log is trimmed),
and for a leave that it is signed by the key that joined: nobody removes another member
but an operator, by a signed kick.

The channel's modes (``model/modes.py``) are the maintainer's to enforce, by its own copy:
who may join (+b/+e, +i/+I and invitations, +k, +l), send (+n, +m) and set the topic
(+t); mode changes, kicks and invitations by whom (operators; any member invites to a
channel that is not +i).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable

from core.chord import RpcError
from core.chord.relay import reachable
from core.counts import counted
from core.datadir import valid_nick

from ..model.channel import Channel, Member, MemberKey
from ..model.entries import MAX_TOPIC, REPLAY_WINDOW, EntryError, SignedEntry, may_leave
from ..model.holdings import Holdings
from ..model.ids import channel_key, verified
from ..model.limits import DEFAULT, Limits, entry_excess
from ..model.modes import MAX_KEY, MAX_LIST, ModeError, parse_changes
from ..model.text import bad_char, describe
from ..wire import verbs as p
from ..wire.calls import Caller
from ..wire.rate import caller_host, normal_host
from .feeds import Feed, Feeds
from .journal import Journal
from .replication import Replication

LEAVE_REASONS = ("left", "exit")   # optionally followed by ": " and the user's words
MAX_REASON = 300
KICK_WAIT = 3.0    # seconds a kick waits for the kicked member's node to take the kick
ASKS = 3           # times a doubted member's node is asked whether it is in (readmit)
ASK_PAUSE = 1.0    # seconds between two of those asks


def good_reason(text: str) -> bool:
    """A leave's text: 'left' or 'exit', or either with ': ' and up to 300 characters."""
    kind, sep, words = text.partition(": ")
    return kind in LEAVE_REASONS and (not sep or 0 < len(words) <= MAX_REASON)


def entry_of(d: dict, kind: str, limits: Limits = DEFAULT) -> SignedEntry:
    """The signed entry a request carries, checked: shape (ProtocolError), then the size of
    every field, signature, kind and channel (``Refused``)."""
    try:
        entry = SignedEntry.from_wire(d["entry"])
    except EntryError as e:
        raise p.ProtocolError(f"'entry': {e}") from None
    excess = entry_excess(entry, limits)
    if excess is not None:
        raise p.Refused("too_long", excess)
    if (bad := bad_char(entry.text)) is not None:
        raise p.Refused("bad_text", f"text with the control character {describe(bad)}")
    if not verified(entry):
        raise p.Refused("bad_signature", f"a {kind} in the name of {entry.nick} whose "
                                         "signature does not verify")
    if entry.kind != kind:
        raise p.Refused("wrong_kind", f"a {entry.kind} sent as a {kind}")
    if channel_key(entry.channel) != p.key_of(d):
        raise p.Refused("other_key", f"an entry of #{entry.channel} sent for another key")
    if kind == "leave" and not good_reason(entry.text):
        raise p.Refused("bad_reason", "a leave's reason is 'left' or 'exit' (with words)")
    return entry


class RecentIds:
    """The message ids a maintainer accepted within the replay window, per channel (the
    log keeps only the last few hundred entries; a replay older than the window is refused
    by its signed clock)."""

    def __init__(self, window: float = REPLAY_WINDOW) -> None:
        self.window = window
        self._ids: dict[str, collections.OrderedDict[str, float]] = {}

    def known(self, channel: str, msg_id: str) -> bool:
        return msg_id in self._ids.get(channel, {})

    def add(self, channel: str, msg_id: str, at: float) -> None:
        ids = self._ids.setdefault(channel, collections.OrderedDict())
        ids[msg_id] = at
        while ids and next(iter(ids.values())) < at - 2 * self.window:
            ids.popitem(last=False)


class Channels:
    """The channels this node maintains, and the calls that reach other maintainers.

    Args:
        stamp: the wall clock that stamps joins, leaves and log entries.
    """

    def __init__(self, holdings: Holdings, caller: Caller, replication: Replication,
                 feeds: Feeds, journal: Journal, stamp: Callable[[], float],
                 limits: Limits = DEFAULT) -> None:
        self.limits = limits
        self.holdings = holdings
        self.caller = caller
        self.replication = replication
        self.feeds = feeds
        self.journal = journal
        self.stamp = stamp
        self.recent = RecentIds()

    def handlers(self) -> dict[p.Verb, p.Handler]:
        return {p.JOIN: self.rpc_join, p.LEAVE: self.rpc_leave, p.SEND: self.rpc_send,
                p.TOPIC: self.rpc_topic, p.MODE: self.rpc_mode, p.KICK: self.rpc_kick,
                p.INVITE: self.rpc_invite}

    def _fresh(self, entry: SignedEntry) -> None:
        if not entry.fresh(self.stamp()):
            raise p.Refused("stale", f"a {entry.kind} of {entry.nick} signed at {entry.at}, "
                                     "outside the replay window (a replay, or a clock far off)")

    # -- join ------------------------------------------------------------------------------

    async def call_join(self, entry: SignedEntry, resume: bool = False,
                        key: str | None = None) -> dict:
        """Join; with ``resume``, a member that thinks it is in already says so again, with
        a fresh signed join (the maintainer may be a copy that never knew it, or pruned it):
        no notice if it is present, and its feed resends the log (the member drops what it
        has shown, by id)."""
        payload: dict = {"entry": entry.to_wire()}
        if resume:
            payload["resume"] = True
        if key:
            payload["password"] = key   # ("key" is the ring key a routed request is for)
        return await self.caller.route(p.JOIN, channel_key(entry.channel), payload,
                                       f"joining #{entry.channel}")

    async def rpc_join(self, d: dict) -> dict:
        entry = entry_of(d, "join", self.limits)
        self._fresh(entry)
        member = Member.of(entry)
        ch = self.holdings.channel(entry.channel)
        old = ch.members.get(member.key) if ch is not None else None
        if old is not None and old.present and old.public_key not in (None, entry.key):
            raise p.Refused("taken", f"{entry.nick} at {entry.address} is a member under "
                                     "another key")
        if old is None or not old.present:
            self._room_for(entry, ch)
            if ch is not None and ch.present():
                # a member the maintainer removed as unreachable saying it is in again
                # (a resume) is not asked for the key or an invitation again; a ban holds
                back = (d.get("resume") is True and old is not None and old.signed is None
                        and old.ended is not None and old.ended.key == entry.key
                        and not any(e.kind == "kick" and e.at >= old.ended.at
                                    and e.text.partition(" ")[0].lower() == old.key[0]
                                    for e in ch.log))
                self._admit(entry, ch, d.get("password"), back)
        await self._check_address(entry, old is not None and old.present
                                  and old.public_key == entry.key)
        ch = self.holdings.open_channel(entry.channel)
        resume = d.get("resume") is True
        if ch.modes.founder is None or (not ch.present() and not resume):
            ch.modes.found(entry)   # a new life of the channel: its founder is its operator
        if ch.set_member(member):
            ch.append("join", member.nick, signed=entry)
            self.journal.log(f"#{ch.name}: {member.nick} "
                             f"{'is back' if resume else 'joined'} "
                             f"({counted(len(ch.present()), 'member')})")
            self.journal.status()
        # the history comes in this reply: the feed starts after it (a resume: from the start)
        seq = ch.last_seq
        self.holdings.confirm(ch.name, member.key, None if resume else seq)
        await self.replication.commit(ch)
        if self.holdings.mark(ch.name) < seq:
            return p.retry("the replica did not answer")   # asked again: joins only once
        ch = self.holdings.channel(ch.name) or ch          # a merge may have replaced it
        reply = {"ok": True, "members": [m.nick for m in ch.present()],
                 "history": [e.to_wire() for e in ch.history()], "last_seq": ch.last_seq}
        if ch.topic is not None:
            reply["topic"] = ch.topic.to_wire()
        if ch.modes.founder is not None:
            reply["modes"] = ch.modes.to_wire()
        return reply

    def _admit(self, entry: SignedEntry, ch: Channel, key: object, back: bool = False) -> None:
        """The channel's modes on a new member (RFC 2812 §4.2.3): a ban (+b, unless an
        exception +e or an invitation), invite-only (+i, unless invited or +I), a key
        (+k) and a limit (+l). Refused ``banned``, ``invite_only``, ``bad_key``,
        ``channel_full``."""
        modes, nick = ch.modes, entry.nick
        invited = modes.invited(nick, self.stamp())
        if modes.matches("b", nick) and not modes.matches("e", nick) and not invited:
            raise p.Refused("banned", f"{nick} is banned from #{ch.name} (+b)")
        if back:
            return
        if modes.flag("i") and not invited and not modes.matches("I", nick):
            raise p.Refused("invite_only", f"#{ch.name} is invite only (+i)")
        want = modes.value("k")
        if want is not None and (not isinstance(key, str) or len(key) > MAX_KEY
                                 or key != want):
            raise p.Refused("bad_key", f"#{ch.name} needs the right key (+k)")
        limit = modes.value("l")
        if limit is not None and len(ch.present()) >= int(limit):
            raise p.Refused("channel_full", f"#{ch.name} is full (+l {limit})")

    def _room_for(self, entry: SignedEntry, ch: Channel | None) -> None:
        """A new member: refused ``full`` over the members of the channel, or over the
        channels of this maintainer its key or its node address is in already."""
        lim = self.limits
        if ch is not None and len(ch.present()) >= lim.members:
            raise p.Refused("full", f"#{ch.name} has {lim.members} members (at most)")
        by_key = by_address = 0
        for other in self.holdings.maintained.channels():
            if other.name == entry.channel:
                continue
            present = other.present()
            by_key += any(m.public_key == entry.key for m in present)
            by_address += any(m.address == entry.address for m in present)
        if by_key >= lim.channels_per_key:
            raise p.Refused("full", f"{entry.nick}'s key is in {by_key} channels here "
                                    f"(at most {lim.channels_per_key})")
        if by_address >= lim.channels_per_address:
            raise p.Refused("full", f"{entry.address} is in {by_address} channels here "
                                    f"(at most {lim.channels_per_address})")

    async def _check_address(self, entry: SignedEntry, known: bool) -> None:
        """Deliveries go to the member's address, so it must be the node that sent the
        join (the connection's host), or one that answers as that member (a delivery of
        nothing: smaller than the join that caused it); else ``bad_address``. A member
        already present under this key was checked when it joined."""
        try:
            address = reachable(entry.address)
        except ValueError as e:
            raise p.Refused("bad_address", f"{entry.address!r} is not an address: {e}") from None
        host = caller_host()
        if known or host is None or normal_host(address.host) == host:
            return
        try:
            reply = await self.feeds.ask(entry.channel, Member.of(entry).key)
        except RpcError:
            reply = {}
        if reply.get("member") is not True:
            raise p.Refused("bad_address", f"a join from {host} names {entry.address}, "
                                           "which does not answer as that member")

    # -- leave -----------------------------------------------------------------------------

    async def call_leave(self, entry: SignedEntry, retry_for: float | None = None) -> dict:
        return await self.caller.route(p.LEAVE, channel_key(entry.channel),
                                       {"entry": entry.to_wire()}, f"leaving #{entry.channel}",
                                       retry_for)

    async def rpc_leave(self, d: dict) -> dict:
        entry = entry_of(d, "leave", self.limits)
        self._fresh(entry)
        ch = self.holdings.channel(entry.channel)
        member = Member.of(entry)
        if ch is None or not ch.is_member(member.key):
            return {"ok": True, "member": False}
        current = ch.members[member.key]
        if current.public_key is not None and not may_leave(current.public_key, entry):
            raise p.Refused("not_member", f"a leave of {entry.nick} at {entry.address} signed "
                                          "by another key than the one that joined")
        if not member.wins_over(current):
            return {"ok": True, "member": True}   # an older leave: the later join stands
        self._remove(ch, member, entry.text)
        await self.replication.commit(ch)
        return {"ok": True, "member": True}

    async def prune(self, channel: str, member: MemberKey, reason: str) -> None:
        """Remove a member its feed cannot reach ("pruned") or whose node denies it ("gone")."""
        ch = self.holdings.channel(channel)   # looked up again: a merge may have replaced it
        if ch is not None and ch.is_member(member):
            self._remove(ch, ch.members[member].removed(), reason)
            await self.replication.commit(ch)

    async def readmit(self, channel: str, member: MemberKey) -> bool:
        """A doubted member (a merge of two copies left it out: the other copy pruned it)
        is asked to say again that it is in; its node answers with a fresh signed join (a
        resume), which readmits it. A prune is the maintainer's guess; the member's own
        signed word decides. True if its node said it is in the channel.

        Asked up to ``ASKS`` times, ``ASK_PAUSE`` s apart, until its node answers either
        way: one ask lost or refused (its node out of reach a moment, or not yet knowing
        this node maintains the channel) would leave the member out until its own resume
        after 2 × ``prune_grace`` of silence, and the other members would be shown it quit
        (tests/net/test_partition.py's three and three)."""
        for ask in range(ASKS):
            if ask:
                await asyncio.sleep(ASK_PAUSE)
            ch = self.holdings.channel(channel)   # a merge or a resume may have come
            if ch is None or ch.is_member(member) or member not in ch.members:
                return False
            try:
                reply = await self.feeds.ask(channel, member, rejoin=True)
            except (RpcError, ValueError):
                continue
            if isinstance(reply.get("member"), bool):
                return reply["member"]
        return False

    def _remove(self, ch: Channel, member: Member, reason: str) -> None:
        """Apply a signed leave, or the maintainer's unsigned removal (pruned, gone)."""
        ch.set_member(member)
        if member.signed is not None:
            ch.append("leave", member.nick, signed=member.signed)
        else:
            # the notice names the join it ends: a member shown it after that member
            # joined again (a merge of copies brings old removals) knows it is an old one
            ch.append("leave", member.nick, text=reason, at=self.stamp(),
                      ended=None if member.ended is None else member.ended.msg_id)
        self.holdings.forget(ch.name, member.key)
        self.feeds.stop(ch.name, member.key)
        self.journal.log(f"#{ch.name}: {member.nick} {reason} "
                         f"({counted(len(ch.present()), 'member')})")

    # -- send ------------------------------------------------------------------------------

    async def call_send(self, entry: SignedEntry) -> dict:
        return await self.caller.route(p.SEND, channel_key(entry.channel),
                                       {"entry": entry.to_wire()},
                                       f"sending to #{entry.channel}")

    async def rpc_send(self, d: dict) -> dict:
        signed = entry_of(d, "msg", self.limits)
        ch = self.holdings.channel(signed.channel)
        known = ch.find(signed.msg_id) if ch is not None else None
        if known is None:
            self._fresh(signed)
            if self.recent.known(signed.channel, signed.msg_id):
                raise p.Refused("replay", f"message {signed.msg_id} was sent before")
            if ch is not None:
                self._may_speak(ch, signed)
        elif known.signed != signed:
            raise p.Refused("replay", f"message id {signed.msg_id} is taken")
        ch = self.holdings.open_channel(signed.channel)
        entry, new = ch.append("msg", signed.nick, signed=signed)
        if new:
            self.recent.add(ch.name, signed.msg_id, float(signed.at))
        if entry.seq > self.holdings.mark(ch.name):
            await self.replication.commit(ch)
            # a merge meanwhile may have numbered it again (``Holdings.maintain``)
            now_ch = self.holdings.channel(ch.name)
            entry = (now_ch.find(signed.msg_id) if now_ch is not None else None) or entry
        if entry.seq > self.holdings.mark(ch.name):
            # our first successor did not take the copy: no ack yet, the sender asks again
            # (the id is known, so it is not stored twice)
            return p.retry("the replica did not answer")
        return {"ok": True, "seq": entry.seq, "members": len(ch.present())}

    def _may_speak(self, ch: Channel, signed: SignedEntry) -> None:
        """+n: members only; +m: operators and voiced members only (``cannot_send``)."""
        modes = ch.modes
        member = ch.is_member(Member.of(signed).key)
        if modes.flag("n") and not member:
            raise p.Refused("cannot_send", f"#{ch.name} takes no messages from outside (+n)")
        if modes.flag("m") and not (member and (modes.is_op(signed.nick)
                                                or modes.is_voiced(signed.nick))):
            raise p.Refused("cannot_send", f"#{ch.name} is moderated (+m): operators and "
                                           "voiced members speak")

    # -- topic -----------------------------------------------------------------------------

    async def call_topic(self, entry: SignedEntry) -> dict:
        return await self.caller.route(p.TOPIC, channel_key(entry.channel),
                                       {"entry": entry.to_wire()},
                                       f"setting the topic of #{entry.channel}")

    async def rpc_topic(self, d: dict) -> dict:
        """A member sets the topic: kept if it is the latest signed, logged (members see it
        by their feeds), replicated and migrated with the channel."""
        signed = entry_of(d, "topic", self.limits)
        self._fresh(signed)
        if len(signed.text) > MAX_TOPIC:
            raise p.Refused("too_long", f"a topic of more than {MAX_TOPIC} characters")
        ch = self.holdings.channel(signed.channel)
        if ch is None or not ch.is_member(Member.of(signed).key):
            raise p.Refused("not_member", f"{signed.nick} is not in #{signed.channel}")
        if ch.modes.flag("t") and not ch.modes.is_op(signed.nick):
            raise p.Refused("not_operator", f"only operators set the topic of #{ch.name} (+t)")
        if ch.set_topic(signed):
            ch.append("topic", signed.nick, signed=signed)
            self.journal.log(f"#{ch.name}: {signed.nick} set the topic")
            await self.replication.commit(ch)
        return {"ok": True, "topic": ch.topic.to_wire() if ch.topic else None}

    # -- operators: modes, kicks, invitations ------------------------------------------------

    async def call_mode(self, entry: SignedEntry) -> dict:
        return await self.caller.route(p.MODE, channel_key(entry.channel),
                                       {"entry": entry.to_wire()},
                                       f"changing the modes of #{entry.channel}")

    def _operator(self, signed: SignedEntry, what: str) -> Channel:
        """The channel, if the author is a member and one of its operators: else
        ``not_member`` or ``not_operator``."""
        ch = self.holdings.channel(signed.channel)
        if ch is None or not ch.is_member(Member.of(signed).key):
            raise p.Refused("not_member", f"{signed.nick} is not in #{signed.channel}")
        if not ch.modes.is_op(signed.nick):
            raise p.Refused("not_operator", f"only operators {what} in #{ch.name}")
        return ch

    def _present(self, ch: Channel, nick: str) -> list[Member]:
        return [m for m in ch.present() if m.nick.lower() == nick.lower()]

    async def rpc_mode(self, d: dict) -> dict:
        """An operator changes modes (one signed entry: ``modes.parse_changes``): kept if
        the author is an operator here, logged (members see it by their feeds),
        replicated and migrated with the channel."""
        signed = entry_of(d, "mode", self.limits)
        self._fresh(signed)
        try:
            changes = parse_changes(signed.text)
        except ModeError as e:
            raise p.Refused("bad_mode", str(e), letter=e.letter) from None
        ch = self._operator(signed, "change modes")
        if ch.modes.founder is not None and signed.at < ch.modes.founder.at:
            raise p.Refused("stale", "a mode change signed before the channel was founded")
        for sign, letter, arg in changes:
            if letter in "ov" and not self._present(ch, arg):
                raise p.Refused("no_such_member", f"{arg} is not in #{ch.name}", nick=arg)
            if (sign == "+" and letter in "beI"
                    and len(ch.modes.listed(letter)) >= MAX_LIST
                    and arg.lower() not in {m.lower() for m, _, _ in ch.modes.listed(letter)}):
                raise p.Refused("list_full", f"#{ch.name} has {MAX_LIST} +{letter} masks")
        ch.modes.add(signed)
        ch.append("mode", signed.nick, signed=signed)
        self.journal.log(f"#{ch.name}: {signed.nick} set {signed.text}")
        await self.replication.commit(ch)
        return {"ok": True}

    async def call_kick(self, entry: SignedEntry) -> dict:
        return await self.caller.route(p.KICK, channel_key(entry.channel),
                                       {"entry": entry.to_wire()},
                                       f"kicking from #{entry.channel}")

    async def rpc_kick(self, d: dict) -> dict:
        """An operator removes a member (``text``: its nick, a space, the reason): the
        signed kick is logged, the membership ends as a maintainer's removal does, and the
        kicked member's node is sent what it had still to get, the kick last
        (``KICK_WAIT`` at most), before the operator is answered."""
        signed = entry_of(d, "kick", self.limits)
        self._fresh(signed)
        target = signed.text.partition(" ")[0]
        if not valid_nick(target):
            raise p.Refused("bad_kick", "a kick names a nick first")
        ch = self._operator(signed, "kick")
        if not self._present(ch, target):
            raise p.Refused("no_such_member", f"{target} is not in #{ch.name}", nick=target)
        entry, _ = ch.append("kick", signed.nick, signed=signed)
        self.journal.log(f"#{ch.name}: {signed.nick} kicked {target}")
        kicked = self._present(ch, target)
        for m in kicked:
            ch.set_member(m.removed())
        await self.replication.commit(ch)
        # the kicked member's last delivery: what its feed had still to bring, up to the
        # kick (a removal stops its feed, and the others no longer count it meanwhile)
        ch = self.holdings.channel(ch.name) or ch   # a merge may have replaced it
        last = []
        for m in kicked:
            cursor = self.holdings.cursor(ch.name, m.key)
            self.feeds.stop(ch.name, m.key)
            self.holdings.forget(ch.name, m.key)
            wires = [e.to_wire() for e in ch.log
                     if (cursor is None or e.seq > cursor) and e.seq <= entry.seq]
            last.append(self._last_delivery(ch.name, m.key, wires))
        self.feeds.wake(ch.name)
        await asyncio.gather(*last)
        return {"ok": True}

    async def _last_delivery(self, channel: str, member: MemberKey, wires: list) -> None:
        with contextlib.suppress(RpcError, ValueError, TimeoutError):
            async with asyncio.timeout(KICK_WAIT):
                await self.feeds.call_deliver(Feed(channel, member), wires)

    async def call_invite(self, entry: SignedEntry) -> dict:
        return await self.caller.route(p.INVITE, channel_key(entry.channel),
                                       {"entry": entry.to_wire()},
                                       f"inviting to #{entry.channel}")

    async def rpc_invite(self, d: dict) -> dict:
        """A member invites a nick (``text``); on a +i channel only an operator may. The
        invitation lets the nick in past +i and +b for ``modes.INVITE_FOR`` seconds."""
        signed = entry_of(d, "invite", self.limits)
        self._fresh(signed)
        if not valid_nick(signed.text):
            raise p.Refused("bad_invite", "an invitation names a nick")
        ch = self.holdings.channel(signed.channel)
        if ch is None or not ch.is_member(Member.of(signed).key):
            raise p.Refused("not_member", f"{signed.nick} is not in #{signed.channel}")
        if ch.modes.flag("i") and not ch.modes.is_op(signed.nick):
            raise p.Refused("not_operator", f"only operators invite to #{ch.name} (+i)")
        if self._present(ch, signed.text):
            raise p.Refused("already_member", f"{signed.text} is in #{ch.name} already",
                            nick=signed.text)
        ch.modes.invite(signed)
        await self.replication.commit(ch)
        return {"ok": True}
