"""Channels at their maintainer: joins, leaves and sends, served by the owner of the
channel's key; each change is replicated before members see it or a send is acknowledged.

Each request carries the user's signed entry (``entries.SignedEntry``), which the
maintainer checks before it acts: the signature, the channel, the kind, the text (no
control characters: ``model.text``), the clock (a message outside the replay window is
refused, and message ids seen within it are remembered even after the log is trimmed),
and for a leave that it is signed by the key that joined: nobody removes another member.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from core.chord import RpcError
from core.chord.relay import reachable
from core.counts import counted

from ..model.channel import Channel, Member, MemberKey
from ..model.entries import MAX_TOPIC, REPLAY_WINDOW, EntryError, SignedEntry, may_leave
from ..model.holdings import Holdings
from ..model.ids import channel_key, verified
from ..model.limits import DEFAULT, Limits, entry_excess
from ..model.text import bad_char, describe
from ..wire import verbs as p
from ..wire.calls import Caller
from ..wire.rate import caller_host, normal_host
from .feeds import Feeds
from .journal import Journal
from .replication import Replication

LEAVE_REASONS = ("left", "exit")   # optionally followed by ": " and the user's words
MAX_REASON = 300


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
                p.TOPIC: self.rpc_topic}

    def _fresh(self, entry: SignedEntry) -> None:
        if not entry.fresh(self.stamp()):
            raise p.Refused("stale", f"a {entry.kind} of {entry.nick} signed at {entry.at}, "
                                     "outside the replay window (a replay, or a clock far off)")

    # -- join ------------------------------------------------------------------------------

    async def call_join(self, entry: SignedEntry, resume: bool = False) -> dict:
        """Join; with ``resume``, a member that thinks it is in already says so again, with
        a fresh signed join (the maintainer may be a copy that never knew it, or pruned it):
        no notice if it is present, and its feed resends the log (the member drops what it
        has shown, by id)."""
        payload: dict = {"entry": entry.to_wire()}
        if resume:
            payload["resume"] = True
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
        await self._check_address(entry, old is not None and old.present
                                  and old.public_key == entry.key)
        ch = self.holdings.open_channel(entry.channel)
        resume = d.get("resume") is True
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
        return reply

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
        signed word decides. True if its node said it is in the channel."""
        ch = self.holdings.channel(channel)
        if ch is None or ch.is_member(member) or member not in ch.members:
            return False
        try:
            reply = await self.feeds.ask(channel, member, rejoin=True)
        except (RpcError, ValueError):
            return False
        return reply.get("member") is True

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
        if ch.set_topic(signed):
            ch.append("topic", signed.nick, signed=signed)
            self.journal.log(f"#{ch.name}: {signed.nick} set the topic")
            await self.replication.commit(ch)
        return {"ok": True, "topic": ch.topic.to_wire() if ch.topic else None}
