"""A member's watch on its maintainers: entries missing from what they deliver are found,
fetched from the channel's replicas, shown once and in order, and reported.

A maintainer numbers a channel's entries (``seq``, unsigned) and replicates them to its
next r successors before it acknowledges a send or delivers anything
(``Replication.commit``). So a maintainer that drops or withholds entries — a Sybil placed
before a channel's key — leaves evidence a member can check, and copies it can read:

- **a gap in the maintainer's sequence**: a delivery skips seq numbers. Entries after the
  gap are held back; after ``grace`` (a late delivery may still close it) the replicas
  are asked (``ChannelCopies.read``), and what they hold that we had not seen is shown
  with the held entries, in seq order. A hole the replicas share (a log trimmed while a
  member lagged, two copies that numbered one id differently) is no alarm;
- **a gap in an author's count**: every message carries the author's signed
  (series, n) (``entries.py``), so a maintainer that renumbers to hide a dropped message
  still shows a jump in n. The holders' whole logs are read (the maintainer's too: an
  honest one has what a feed skipped after a merge; two copies may have numbered the
  messages below the author's last one); what no holder has either is reported as never
  arrived;
- **the user's own message withheld**: the maintainer acknowledged it (``Sent`` with a
  seq) but it has not come back within ``deadline`` though the maintainer delivered
  since. The holders' whole logs are read then (the copy that acknowledged it may number
  below the member's cursor: one started afresh), and what the member has not seen right
  before it is shown with it, in the log's order. A sender that is not a member asks the
  replicas whether they have it.

Each finding is one ``Gap`` event (the journal's ``gap``: ring log and headless):
"maintainer X withheld N messages of #c; got them from replica Y", or that no replica
has them (the maintainer acknowledged without replicating: docs/security.md says
what a member can and cannot do then).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

from core import events as ev
from core.counts import counted

from ..model.channel import Entry
from ..model.ids import Seen
from ..ring.channelcopies import ChannelCopies, Copy
from ..ring.journal import Journal
from ..wire.calls import now

log = logging.getLogger(__name__)

GRACE = 1.0          # seconds a gap may stay open before the replicas are asked
DEADLINE = 15.0      # seconds for the user's own acknowledged message to come back
MOST_MISSING = 100   # an author's count jumps by at most this much before we stop counting

Author = tuple[str, str]   # (key, series)


@dataclass
class Missing:
    """An author's messages missing from what was shown: their numbers, and the seq of its
    last message before them (a replica whose log reaches back that far can tell)."""
    ns: set[int]
    after_seq: int


@dataclass
class Expected:
    """The user's own message, acknowledged, on its way back."""
    seq: int
    via: str           # the maintainer that acknowledged it
    acked: float       # when (the loop's clock)


@dataclass
class Track:
    """One channel as one member watches it."""
    base: int                                   # every seq up to here is settled
    above: set[int] = field(default_factory=set)    # seqs received above ``base``
    held: list[Entry] = field(default_factory=list)  # waiting behind a gap
    authors: dict[Author, tuple[int, int]] = field(default_factory=dict)  # -> (n, seq)
    missing: dict[Author, Missing] = field(default_factory=dict)
    expected: dict[str, Expected] = field(default_factory=dict)   # msg_id ->
    heard: dict[str, float] = field(default_factory=dict)   # maintainer -> last delivery
    maintainer: str | None = None               # the last that delivered
    joined_at: float = float("-inf")            # when the member's join was signed
    repair: asyncio.Task | None = None
    checker: asyncio.Task | None = None


class Gaps:
    """The channels one user is in, watched for missing entries.

    Args:
        seen: the ``Seen`` of a channel the user is in (None: not in it).
        show: schedules entries to be shown (in the channel's turn, after what was
            scheduled before).
        spawn: runs a background task (the service's ``TaskSet.spawn``).
    """

    def __init__(self, nick: str, copies: ChannelCopies, journal: Journal,
                 post: Callable[[ev.Event], None], seen: Callable[[str], Seen | None],
                 show: Callable[[str, list[Entry]], None],
                 spawn: Callable[[Coroutine], asyncio.Task],
                 grace: float = GRACE, deadline: float = DEADLINE) -> None:
        self.nick = nick
        self.copies = copies
        self.journal = journal
        self.post = post
        self.seen = seen
        self.show = show
        self.spawn = spawn
        self.grace = grace
        self.deadline = deadline
        self.tracks: dict[str, Track] = {}

    # -- a channel joined, left ------------------------------------------------------------

    def start(self, channel: str, last_seq: int, history: list[Entry],
              joined_at: float = float("-inf")) -> None:
        """Joined (the join signed at ``joined_at``): the join's reply holds everything up
        to ``last_seq``."""
        self.stop(channel)
        track = self.tracks[channel] = Track(last_seq, joined_at=joined_at)
        for e in history:
            if e.signed is not None and e.signed.counted is not None:
                key, series, n = e.signed.counted
                if n > track.authors.get((key, series), (0, 0))[0]:
                    track.authors[(key, series)] = (n, e.seq)

    def stop(self, channel: str) -> None:
        track = self.tracks.pop(channel, None)
        if track is not None:
            for task in (track.repair, track.checker):
                if task is not None and task is not asyncio.current_task():
                    task.cancel()

    # -- what maintainers deliver ----------------------------------------------------------

    def arrived(self, channel: str, fresh: list[Entry], maintainer: str | None) -> list[Entry]:
        """Entries delivered for the first time (by id), in seq order: those to show now;
        the rest wait behind a gap until it closes or the replicas were asked."""
        track = self.tracks.get(channel)
        if track is None:
            return fresh
        if maintainer is not None:
            track.heard[maintainer] = now()
            track.maintainer = maintainer
        ready = []
        for e in fresh:
            track.expected.pop(e.msg_id, None)
            if e.seq <= track.base:
                ready.append(e)        # a log sent again (a takeover): shown as it comes
            else:
                track.above.add(e.seq)
                track.held.append(e)
        ready += self._advance(track)
        self._counted(channel, track, ready)
        if track.held:
            self._repair(channel, track)
        return ready

    def _advance(self, track: Track) -> list[Entry]:
        """Move ``base`` over the seqs received without a gap; the held entries it passed."""
        while track.base + 1 in track.above:
            track.base += 1
            track.above.discard(track.base)
        return self._release(track, track.base)

    def _release(self, track: Track, upto: int) -> list[Entry]:
        out = sorted((e for e in track.held if e.seq <= upto), key=lambda e: (e.seq, e.msg_id))
        track.held = [e for e in track.held if e.seq > upto]
        return out

    def _counted(self, channel: str, track: Track, shown: list[Entry]) -> None:
        """Each author's count over the entries about to be shown: a jump is a gap."""
        for e in shown:
            if e.kind != "msg" or e.signed is None or e.signed.counted is None:
                continue
            key, series, n = e.signed.counted
            author = (key, series)
            missing = track.missing.get(author)
            if missing is not None:
                missing.ns.discard(n)
                if not missing.ns:
                    del track.missing[author]
            last = track.authors.get(author)
            if last is not None and n > last[0] + 1:
                gap = set(range(last[0] + 1, min(n, last[0] + 1 + MOST_MISSING)))
                track.missing.setdefault(author, Missing(set(), last[1])).ns.update(gap)
                self._repair(channel, track)
            if last is None or n > last[0]:
                track.authors[author] = (n, e.seq)

    # -- the user's own messages -----------------------------------------------------------

    def sent(self, channel: str, msg_id: str, seq: int, via: str) -> None:
        """The maintainer ``via`` acknowledged the user's message with ``seq``: a member
        expects it back; a sender that is not one asks the replicas whether they have it."""
        track = self.tracks.get(channel)
        if track is None:
            self.spawn(self._check_replicated(channel, msg_id, seq, via))
            return
        seen = self.seen(channel)
        if seen is not None and msg_id in seen:
            return
        track.expected[msg_id] = Expected(seq, via, now())
        if track.checker is None or track.checker.done():
            track.checker = self.spawn(self._check(channel, track))

    async def _check(self, channel: str, track: Track) -> None:
        """Wake at each expected message's deadline; one not back by then is looked for."""
        while track.expected and self.tracks.get(channel) is track:
            first = min(x.acked for x in track.expected.values())
            await asyncio.sleep(max(0.05, first + self.deadline - now()))
            overdue = [i for i, x in track.expected.items()
                       if now() - x.acked >= self.deadline]
            if overdue:
                self._repair(channel, track, wait=False)
                if track.repair is not None:
                    await asyncio.shield(track.repair)
                for msg_id in overdue:   # looked for once
                    track.expected.pop(msg_id, None)

    async def _check_replicated(self, channel: str, msg_id: str, seq: int, via: str) -> None:
        await asyncio.sleep(self.deadline)
        copies = await self.copies.read(channel, seq - 1, skip=via)
        if any(msg_id in {e.msg_id for e in c.entries} for c in copies):
            return
        if _lacking(copies, seq):
            self._unreplicated(channel, via, seq)

    # -- asking the replicas ---------------------------------------------------------------

    def _repair(self, channel: str, track: Track, wait: bool = True) -> None:
        if track.repair is None or track.repair.done():
            track.repair = self.spawn(self._run_repair(channel, track, wait))

    async def _run_repair(self, channel: str, track: Track, wait: bool) -> None:
        if wait:
            await asyncio.sleep(self.grace)
        while self.tracks.get(channel) is track:
            overdue = {i: x for i, x in track.expected.items()
                       if now() - x.acked >= self.deadline}
            # an author's missing messages may sit anywhere in a holder's log (two copies
            # numbered them differently): the whole log is read then, and they are taken
            # from it wherever they sit
            asks = ([track.base] if track.held else []) + (
                [min(m.after_seq for m in track.missing.values()) - 1] if track.missing
                else []) + [x.seq - 1 for x in overdue.values()]
            if not asks:
                return
            after = max(0, min(asks))     # what follows is taken, whoever wrote it
            holes = ({s for s in range(track.base + 1, max(e.seq for e in track.held))
                      if s not in track.above} if track.held else set())
            missing = {a: Missing(set(m.ns), m.after_seq) for a, m in track.missing.items()}
            blamed = track.maintainer
            # the maintainer is asked too: an honest one has what its feed skipped (a
            # merge moved the member's cursor); a hostile one can only give signed entries.
            # An overdue message of ours may sit in a copy numbered below our cursor (a
            # copy started afresh): the whole log is read then too
            copies = await self.copies.read(channel, 0 if missing or overdue else after)
            if self.tracks.get(channel) is not track:
                return
            recovered: list[tuple[Entry, str]] = []
            seen = self.seen(channel)
            before = (_unseen_before(copies, set(overdue), seen, track.joined_at)
                      if seen is not None else set())
            for copy in sorted(copies, key=lambda c: c.holder == blamed):   # it last
                for e in copy.entries:
                    if ((e.seq > after or _one_of(e, missing) or e.msg_id in before)
                            and seen is not None and seen.first(e.msg_id)):
                        recovered.append((e, copy.holder))
            for e, _ in recovered:
                track.expected.pop(e.msg_id, None)
            track.held += [e for e, _ in recovered]
            upto = max([track.base, *(e.seq for e in track.held)])
            track.base = upto
            track.above = {s for s in track.above if s > upto}
            out = self._release(track, upto)
            self._counted(channel, track, out)
            if out:
                self.show(channel, out)
            self._report(channel, track, blamed, recovered, after, holes, missing, overdue,
                         copies)

    def _report(self, channel: str, track: Track, blamed: str | None,
                recovered: list[tuple[Entry, str]], after: int, holes: set[int],
                missing: dict[Author, Missing], overdue: dict[str, Expected],
                copies: list[Copy]) -> None:
        """One ``Gap`` per finding of this round."""
        got = {e.msg_id for e, _ in recovered}
        # own messages whose maintainer never delivered since the ack: it may be slow or
        # gone (a crash, a move) rather than hostile; recovered quietly then
        quiet = {i for i, x in overdue.items()
                 if track.heard.get(x.via, float("-inf")) <= x.acked}
        # not withheld: what only the maintainer had (its feed skipped it after a merge),
        # and what sat below what we asked for (two copies numbered it differently)
        accused = [(e, h) for e, h in recovered if h != blamed and e.seq > after
                   and not (e.msg_id in quiet and e.seq not in holes)]
        if accused:
            holders = sorted({h for _, h in accused})
            messages = sum(e.kind == "msg" for e, _ in accused)
            unfilled = len(holes - {e.seq for e, _ in recovered})
            notes = [f"and {counted(len(accused) - messages, 'join/leave notice')}"
                     if len(accused) > messages else "",
                     f"{unfilled} more not on any replica" if unfilled else ""]
            self.journal.gap(channel, "withheld", blamed or overdue_via(overdue) or "?",
                             messages, holders[0], "; ".join(n for n in notes if n))
        elif holes:
            log.info("%s: #%s seq %s missing; the replicas have none of them either",
                     self.nick, channel, sorted(holes)[:10])
        lost = 0
        for author, m in missing.items():
            still = track.missing.get(author)
            left = m.ns & still.ns if still is not None else set()
            if left and _lacking(copies, m.after_seq + 1):
                lost += len(left)
            if still is not None:
                still.ns -= left
                if not still.ns:
                    del track.missing[author]
        if lost:
            self.journal.gap(channel, "lost", blamed or "?", lost, None,
                             "an author's count skips them")
        for msg_id, x in overdue.items():
            if msg_id not in got:
                track.expected.pop(msg_id, None)
                if _lacking(copies, x.seq):
                    self._unreplicated(channel, x.via, x.seq)

    def _unreplicated(self, channel: str, via: str, seq: int) -> None:
        self.journal.gap(channel, "unreplicated", via, 1, None, f"seq {seq}")
        self.post(ev.Error(message=(
            f"#{channel}: {via} acknowledged your message (seq {seq}) but did not deliver "
            "it, and no replica has it: it may be lost")))


def _one_of(e: Entry, missing: dict[Author, Missing]) -> bool:
    """Whether ``e`` is one of the messages an author's count says we miss."""
    if e.signed is None or e.signed.counted is None:
        return False
    key, series, n = e.signed.counted
    m = missing.get((key, series))
    return m is not None and n in m.ns


def _unseen_before(copies: list[Copy], ours: set[str], seen: Seen,
                   joined_at: float) -> set[str]:
    """The messages right before an overdue message of ours in a holder's log that we
    have not seen (back to the first one seen, or a message written before our join): they
    are shown with it, in the log's order. Each member's own message sits at another seq;
    taking only what follows it, each would show them in another order (the author counts
    bring them later), nemesis seed 4242. Joins and removals there are not taken: one
    copy's removal of a member the merged log keeps would be shown as a quit that never
    was (tests/net/test_partition.py's three and three)."""
    out: set[str] = set()
    for copy in copies:
        for i, e in enumerate(copy.entries):
            if e.msg_id not in ours:
                continue
            for b in reversed(copy.entries[:i]):
                if b.msg_id in seen or (b.kind == "msg" and b.at < joined_at):
                    break
                if b.kind == "msg":   # a join or removal there is one copy's: not news
                    out.add(b.msg_id)
    return out


def overdue_via(overdue: dict[str, Expected]) -> str | None:
    return next((x.via for x in overdue.values()), None)


def _lacking(copies: list[Copy], seq: int) -> bool:
    """Some holder answered with a log that reaches back to ``seq`` (or has nothing after
    it): what it lacks there, it never had — not trimmed away meanwhile."""
    return any(not c.entries or c.entries[0].seq <= seq for c in copies)
