"""Delivery from a channel's maintainer to its members: one feed per member, in sequence
order, only what is replicated; a member unreachable for the grace period is pruned."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from core.chord import Address, RpcError

from . import protocol as p
from .state import Channel


@dataclass
class Feed:
    """The maintainer's delivery cursor for one member of one channel."""
    channel: str
    address: str
    cursor: int | None = None      # last seq the member confirmed; None: ask it
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    failing_since: float | None = None
    last_contact: float = 0.0


class Feeds:
    """Mixin of ChatService: the maintainer's per-member delivery loops."""

    def _feed(self, channel: str, address: str) -> Feed:
        feed = self._feeds.get((channel, address))
        if feed is None:
            feed = self._feeds[(channel, address)] = Feed(channel, address)
        if (feed.task is None or feed.task.done()) and not self._leaving:
            feed.task = asyncio.ensure_future(self._run_feed(feed))
        return feed

    def _merged(self, before: object, merged: object) -> None:
        """After merging another copy of a channel in: entries it brought that sort below
        what some member has confirmed (two copies numbered the same seqs while the ring
        settled) would never reach that member, so those feeds go back to resend from
        there; members drop what they have by message id."""
        if not isinstance(before, Channel) or not isinstance(merged, Channel):
            return
        known = {e.msg_id for e in before.log}
        late = [e.seq for e in merged.log if e.msg_id not in known and e.seq <= before.last_seq]
        if not late:
            return
        back_to = min(late) - 1
        for (channel, _), feed in self._feeds.items():
            if channel == merged.name and feed.cursor is not None and feed.cursor > back_to:
                feed.cursor = back_to
                feed.wake.set()

    def _wake(self, ch: Channel) -> None:
        for m in ch.present():
            self._feed(ch.name, m.address).wake.set()

    def _ensure_feeds(self) -> None:
        for ch in self.primary.channels():
            if self._serving(ch.key):
                for m in ch.present():
                    self._feed(ch.name, m.address)
        for ref, feed in list(self._feeds.items()):
            ch = self.primary.get("channel", ref[0])
            if not isinstance(ch, Channel) or not ch.is_member(ref[1]):
                if feed.task is not None:
                    feed.task.cancel()
                del self._feeds[ref]

    async def _run_feed(self, feed: Feed) -> None:
        """Deliver a channel's entries to one member in sequence order, until it leaves."""
        interval = max(self.settings.prune_grace / 3, 0.2)
        delay = 0.05
        while True:
            ch = self.primary.get("channel", feed.channel)
            if (not isinstance(ch, Channel) or not self._serving(ch.key)
                    or not ch.is_member(feed.address)
                    or self._feeds.get((feed.channel, feed.address)) is not feed):
                return
            safe = self._safe.get(ch.name, ch.last_seq)
            entries = [e for e in (ch.log if feed.cursor is None else ch.after(feed.cursor))
                       if e.seq <= safe]
            now = time.monotonic()
            if entries or feed.cursor is None or now - feed.last_contact > interval:
                try:
                    reply = await self.node.user_command(
                        Address.from_wire(feed.address), p.DELIVER,
                        {"channel": ch.name, "maintainer": self.address,
                         "entries": [e.to_wire() for e in entries]})
                except RpcError as e:
                    feed.failing_since = feed.failing_since or now
                    if now - feed.failing_since >= self.settings.prune_grace:
                        # look again: a merge during the call may have replaced the object
                        ch = self.primary.get("channel", feed.channel)
                        if isinstance(ch, Channel) and ch.is_member(feed.address):
                            nick = ch.members[feed.address].nick
                            self._remove_member(ch, feed.address, nick, "pruned")
                            self._log(f"#{ch.name}: pruned {nick} at {feed.address}: {e}")
                            await self._commit(ch)
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                delay = 0.05
                feed.failing_since = None
                feed.last_contact = time.monotonic()
                if isinstance(reply, dict) and reply.get("member") is False:
                    ch = self.primary.get("channel", feed.channel)
                    if isinstance(ch, Channel) and ch.is_member(feed.address):
                        nick = ch.members[feed.address].nick
                        self._remove_member(ch, feed.address, nick, "gone")
                        await self._commit(ch)
                    return
                last = reply.get("last_seq") if isinstance(reply, dict) else None
                if last is None:  # the member is still joining: ask again shortly
                    await asyncio.sleep(0.05)
                    continue
                feed.cursor = int(last)
                continue
            feed.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(feed.wake.wait(), interval)
