"""Delivery from a channel's maintainer to its members: one feed per member sends, in
sequence order, what the holdings say it may have (after its cursor, up to the replicated
mark); a member unreachable for the grace period is pruned."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.chord import Local, RpcError, TaskSet
from core.chord.relay import reachable

from ..model.channel import MemberKey
from ..model.holdings import Holdings, Range
from ..wire import verbs as p
from ..wire.calls import Backoff, now

log = logging.getLogger(__name__)

Prune = Callable[[str, MemberKey, str], Awaitable[None]]


@dataclass
class Feed:
    """The delivery loop of one member of one channel (its cursor is in the holdings)."""
    channel: str
    member: MemberKey
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    failing_since: float | None = None
    last_contact: float = float("-inf")
    refused: object = None      # why the member's node refused the last delivery (logged once)


class Feeds:
    """The maintainer's per-member delivery loops.

    Args:
        prune: ``prune(channel, member, reason)`` removes a member that is gone
            ("gone": its node says it is not in the channel) or unreachable ("pruned").
        prune_grace: seconds a member may stay unreachable.
    """

    def __init__(self, node: Local, holdings: Holdings, range_: Range, prune: Prune,
                 prune_grace: float) -> None:
        self.node = node
        self.holdings = holdings
        self.range = range_
        self.prune = prune
        self.prune_grace = prune_grace
        self._feeds: dict[tuple[str, MemberKey], Feed] = {}
        self._tasks = TaskSet()

    @property
    def count(self) -> int:
        """How many member feeds (delivery loops) this maintainer keeps now."""
        return len(self._feeds)

    def fed(self) -> list[tuple[str, MemberKey]]:
        """(channel, member) of every member feed this maintainer keeps now."""
        return list(self._feeds)

    def wake(self, channel: str) -> None:
        """Something new may be deliverable in ``channel``: wake its members' feeds."""
        ch = self.holdings.channel(channel)
        for m in ch.present() if ch is not None else []:
            self._feed(channel, m.key).wake.set()

    def ensure(self) -> None:
        """A feed for every member of every channel we serve; none for anyone else."""
        for ch in self.holdings.maintained.channels():
            if self.range.serves(ch.key):
                for m in ch.present():
                    self._feed(ch.name, m.key)
        for (channel, member) in list(self._feeds):
            ch = self.holdings.channel(channel)
            if ch is None or not ch.is_member(member):
                self.stop(channel, member)

    def stop(self, channel: str, member: MemberKey | None = None) -> None:
        """Stop the feed of one member, or of every member of ``channel``."""
        for ref in [r for r in self._feeds if r[0] == channel and member in (None, r[1])]:
            feed = self._feeds.pop(ref)
            if feed.task is not None and feed.task is not asyncio.current_task():
                feed.task.cancel()

    async def close(self) -> None:
        self._feeds.clear()
        await self._tasks.cancel_all()

    def _feed(self, channel: str, member: MemberKey) -> Feed:
        feed = self._feeds.get((channel, member))
        if feed is None:
            feed = self._feeds[(channel, member)] = Feed(channel, member)
        if (feed.task is None or feed.task.done()) and not self.range.leaving:
            feed.task = self._tasks.spawn(self._run(feed))
        return feed

    def _current(self, feed: Feed) -> bool:
        ch = self.holdings.channel(feed.channel)
        return (ch is not None and self.range.serves(ch.key) and ch.is_member(feed.member)
                and self._feeds.get((feed.channel, feed.member)) is feed)

    async def _run(self, feed: Feed) -> None:
        """Deliver a channel's entries to one member in sequence order, until it leaves."""
        interval = max(self.prune_grace / 3, 0.2)   # ask a quiet member now and then
        backoff = Backoff()
        while self._current(feed):
            entries = self.holdings.deliverable(feed.channel, feed.member)
            cursor = self.holdings.cursor(feed.channel, feed.member)
            if not (entries or now() - feed.last_contact > interval):
                feed.wake.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for wraps the wait in a
                # Task of its own, one more per member at rest (10,000 at 1,000 channels)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await feed.wake.wait()
                continue
            try:
                reply = await self.call_deliver(feed, [e.to_wire() for e in entries])
            except ValueError:
                # an address that does not parse (a copy from before joins were checked)
                # never will: the member goes now, not a feed that crashes and respawns
                await self.prune(feed.channel, feed.member, "pruned")
                return
            except RpcError:
                feed.failing_since = feed.failing_since or now()
                if now() - feed.failing_since >= self.prune_grace:
                    await self.prune(feed.channel, feed.member, "pruned")
                    return
                await backoff.wait()
                continue
            backoff.reset()
            feed.failing_since, feed.last_contact = None, now()
            if reply.get("refused") != feed.refused and reply.get("refused") is not None:
                log.warning("%s at %s refused our delivery of #%s (%s): %s", *feed.member,
                            feed.channel, reply.get("refused"), str(reply.get("error"))[:200])
            feed.refused = reply.get("refused")
            if reply.get("member") is False:
                await self.prune(feed.channel, feed.member, "gone")
                return
            if reply.get("last_seq") is None:   # the member's join is still on its way
                await backoff.wait()
                continue
            # the cursor moves over what was sent and acknowledged, never further (entries
            # a merge put below it must still be sent), and not if a merge moved it meanwhile
            if (entries and self._current(feed)
                    and self.holdings.cursor(feed.channel, feed.member) == cursor):
                self.holdings.confirm(feed.channel, feed.member, entries[-1].seq)

    async def ask(self, channel: str, member: MemberKey, rejoin: bool = False) -> dict:
        """Ask a member's node whether the member is in ``channel`` (a delivery of nothing);
        with ``rejoin``, a member that is says so again with a fresh signed join."""
        return await self.call_deliver(Feed(channel, member), [], rejoin)

    def _standing(self, channel: str, entries: list) -> dict[str, str]:
        """For each member a removal notice among ``entries`` names, the signed entry its
        membership rests on here now (``Channel.standing``): a member shown a removal of
        a join that no longer stands (a merge brought an old one) leaves it out."""
        ch = self.holdings.channel(channel)
        named = {e["nick"].lower() for e in entries
                 if e.get("kind") == "leave" and "signature" not in e}
        standing = {nick: ch.standing(nick) for nick in named} if ch is not None else {}
        return {nick: msg_id for nick, msg_id in standing.items() if msg_id is not None}

    async def call_deliver(self, feed: Feed, entries: list[dict], rejoin: bool = False) -> dict:
        nick, address = feed.member
        payload = {"channel": feed.channel, "to": nick, "maintainer": str(self.node.address),
                   "entries": entries}
        joins = self._standing(feed.channel, entries)
        if joins:
            payload["joins"] = joins
        if rejoin:
            payload["rejoin"] = True
        reply = await self.node.user_command(reachable(address), p.DELIVER.type, payload)
        return reply if isinstance(reply, dict) else {}
