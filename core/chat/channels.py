"""Channels at their maintainer: joins, leaves and sends, served by the owner of the
channel's key; each change is replicated before members see it or a send is acknowledged."""

from __future__ import annotations

from collections.abc import Callable

from core.chord import RpcError
from core.counts import counted

from . import protocol as p
from .calls import Caller
from .feeds import Feeds
from .holdings import Holdings
from .journal import Journal
from .replication import Replication
from .state import Channel, Member, MemberKey, channel_key


class Channels:
    """The channels this node maintains, and the calls that reach other maintainers.

    Args:
        stamp: the wall clock that stamps joins, leaves and log entries.
    """

    def __init__(self, holdings: Holdings, caller: Caller, replication: Replication,
                 feeds: Feeds, journal: Journal, stamp: Callable[[], float]) -> None:
        self.holdings = holdings
        self.caller = caller
        self.replication = replication
        self.feeds = feeds
        self.journal = journal
        self.stamp = stamp

    def handlers(self) -> dict[p.Verb, p.Handler]:
        return {p.JOIN: self.rpc_join, p.LEAVE: self.rpc_leave, p.SEND: self.rpc_send}

    def _member_stamp(self, ch: Channel) -> float:
        """Later than every stamp the channel has seen: a per-channel clock that only
        moves forward."""
        return max([self.stamp(), *(m.stamp + 1e-6 for m in ch.members.values())])

    # -- join ------------------------------------------------------------------------------

    async def call_join(self, channel: str, nick: str, address: str,
                        resume: bool = False) -> dict:
        """Join; with ``resume``, a member that thinks it is in already says so again (the
        maintainer may be a copy that does not know it, or pruned it): no notice if present,
        and its feed resends the log (the member drops what it has shown, by id)."""
        payload = {"channel": channel, "nick": nick, "address": address}
        if resume:
            payload["resume"] = True
        return await self.caller.route(p.JOIN, channel_key(channel), payload,
                                       f"joining #{channel}")

    async def rpc_join(self, d: dict) -> dict:
        ch = self.holdings.open_channel(d["channel"])
        member = Member(d["nick"], str(p.need_address(d)), self._member_stamp(ch))
        if ch.set_member(member):
            ch.append("join", member.nick, at=self.stamp())
            self.journal.log(f"#{ch.name}: {member.nick} joined "
                             f"({counted(len(ch.present()), 'member')})")
            self.journal.status()
        # the history comes in this reply: the feed starts after it (a resume: from the start)
        seq = ch.last_seq
        self.holdings.confirm(ch.name, member.key, None if d.get("resume") else seq)
        await self.replication.commit(ch)
        if self.holdings.mark(ch.name) < seq:
            return p.retry("the replica did not answer")   # asked again: joins only once
        ch = self.holdings.channel(ch.name) or ch          # a merge may have replaced it
        return {"ok": True, "members": [m.nick for m in ch.present()],
                "history": [e.to_wire() for e in ch.history()], "last_seq": ch.last_seq}

    # -- leave -----------------------------------------------------------------------------

    async def call_leave(self, channel: str, nick: str, address: str, reason: str,
                         retry_for: float | None = None) -> dict:
        return await self.caller.route(p.LEAVE, channel_key(channel),
                                       {"channel": channel, "nick": nick, "address": address,
                                        "reason": reason}, f"leaving #{channel}", retry_for)

    async def rpc_leave(self, d: dict) -> dict:
        ch = self.holdings.channel(d["channel"])
        member = (d["nick"].lower(), str(p.need_address(d)))
        if ch is None or not ch.is_member(member):
            return {"ok": True, "member": False}
        self._remove(ch, member, "exit" if d.get("reason") == "exit" else "left")
        await self.replication.commit(ch)
        return {"ok": True, "member": True}

    async def prune(self, channel: str, member: MemberKey, reason: str) -> None:
        """Remove a member its feed cannot reach ("pruned") or whose node denies it ("gone")."""
        ch = self.holdings.channel(channel)   # looked up again: a merge may have replaced it
        if ch is not None and ch.is_member(member):
            self._remove(ch, member, reason)
            await self.replication.commit(ch)

    async def readmit(self, channel: str, member: MemberKey) -> bool:
        """A doubted member (a merge of two copies left it out: the other copy pruned it)
        is asked; if its node says it is in the channel, it is a member again. A prune is
        the maintainer's guess, the member's own word decides."""
        ch = self.holdings.channel(channel)
        if ch is None or ch.is_member(member) or member not in ch.members:
            return False
        try:
            reply = await self.feeds.ask(channel, member)
        except RpcError:
            return False
        ch = self.holdings.channel(channel)   # looked up again: a merge may have replaced it
        if reply.get("member") is not True or ch is None or ch.is_member(member):
            return False
        nick = ch.members[member].nick
        ch.set_member(Member(nick, member[1], self._member_stamp(ch)))
        ch.append("join", nick, text="back", at=self.stamp())
        self.holdings.confirm(ch.name, member, None)   # its feed resends; it drops by id
        self.journal.log(f"#{ch.name}: {nick} is back after a merge "
                         f"({counted(len(ch.present()), 'member')})")
        await self.replication.commit(ch)
        self.feeds.ensure()
        return True

    def _remove(self, ch: Channel, member: MemberKey, reason: str) -> None:
        nick = ch.members[member].nick
        ch.set_member(Member(nick, member[1], self._member_stamp(ch), present=False))
        ch.append("leave", nick, text=reason, at=self.stamp())
        self.holdings.forget(ch.name, member)
        self.feeds.stop(ch.name, member)
        self.journal.log(f"#{ch.name}: {nick} {reason} ({counted(len(ch.present()), 'member')})")

    # -- send ------------------------------------------------------------------------------

    async def call_send(self, channel: str, nick: str, address: str, msg_id: str,
                        text: str) -> dict:
        return await self.caller.route(p.SEND, channel_key(channel),
                                       {"channel": channel, "nick": nick, "address": address,
                                        "msg_id": msg_id, "text": text}, f"sending to #{channel}")

    async def rpc_send(self, d: dict) -> dict:
        ch = self.holdings.open_channel(d["channel"])
        entry, _ = ch.append("msg", d["nick"], d["text"], d["msg_id"], at=self.stamp())
        if entry.seq > self.holdings.mark(ch.name):
            await self.replication.commit(ch)
        if entry.seq > self.holdings.mark(ch.name):
            # our first successor did not take the copy: no ack yet, the sender asks again
            # (the id is known, so it is not stored twice)
            return p.retry("the replica did not answer")
        return {"ok": True, "seq": entry.seq, "members": len(ch.present())}
