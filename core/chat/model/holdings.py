"""What one node holds for the ring: the items it maintains and the replicas it keeps for
its predecessors, with the rules that make "replicate before deliver" hold. No I/O here.

For every maintained channel the holdings keep:
- the *replicated mark*: every entry with a sequence number at or below it is on the
  replicas. It starts at 0, rises only when a copy is known to be replicated
  (``replicated``), and falls when a merge brings entries at or below it that the replicas
  have not seen. Feeds deliver nothing above it, so a successor that takes over from a
  replica never hands out a sequence number a member has already seen;
- a *cursor* per member: the last sequence number sent to that member and acknowledged
  (None: unknown, send it the log). A merge that brings
  entries below a cursor moves the cursor back, so those entries still reach the member
  (members drop repeats by id).

When two copies meet (a migration, a takeover, a healed partition) the holdings also note
what the merge cannot decide alone: *doubted members*, present in one copy but not in the
union (the other copy's maintainer pruned them, perhaps only because a partition hid them:
a prune is a guess, the member's own signed word decides, so the maintainer asks it), and
*name conflicts*, one nick held under two keys (the later claim keeps it; both are told).

Time is whatever the caller passes (``now``): the holdings have no clock of their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from core.chord.ids import in_half_open

from .channel import Channel, Entry, MemberKey
from .items import Item, Items, item_ref
from .records import NameRecord

Ref = tuple[str, str]


class Holdings:
    """Maintained items (with replicated marks and member cursors) and replicas."""

    def __init__(self) -> None:
        self.maintained = Items()
        self.replicas = Items()
        self._refreshed: dict[Ref, float] = {}       # replica -> when its owner last sent it
        self._replicated: dict[str, int] = {}        # maintained channel -> replicated mark
        self._sent: dict[str, int] = {}   # ... -> the highest mark it had: sent up to there
        self._cursors: dict[tuple[str, MemberKey], int | None] = {}
        self.doubted: set[tuple[str, MemberKey]] = set()   # to ask: still a member?
        self.conflicts: list[tuple[NameRecord, NameRecord]] = []   # (kept, lost) records
        self._noted: set[tuple[str, str, str, int]] = set()   # conflicts noted already

    # -- reading ---------------------------------------------------------------------------

    def channel(self, name: str) -> Channel | None:
        ch = self.maintained.get("channel", name)
        return ch if isinstance(ch, Channel) else None

    def name(self, nick: str) -> NameRecord | None:
        entry = self.maintained.get("name", nick.lower())
        return entry if isinstance(entry, NameRecord) else None

    def mark(self, name: str) -> int:
        """The replicated mark of a maintained channel (0 if none)."""
        return self._replicated.get(name, 0)

    def cursor(self, name: str, member: MemberKey) -> int | None:
        return self._cursors.get((name, member))

    def deliverable(self, name: str, member: MemberKey) -> list[Entry]:
        """What ``member`` may be sent now: after its cursor, up to the replicated mark."""
        ch = self.channel(name)
        if ch is None:
            return []
        cursor, mark = self.cursor(name, member), self.mark(name)
        return [e for e in ch.log if (cursor is None or e.seq > cursor) and e.seq <= mark]

    def unreplicated(self, name: str) -> Channel | None:
        """A copy of a maintained channel that is enough to replicate it: all members and
        the entries above the mark (merging is a union, so a delta suffices)."""
        ch = self.channel(name)
        if ch is None:
            return None
        return Channel(ch.name, dict(ch.members), ch.after(self.mark(name)), ch.last_seq,
                       ch.topic, ch.modes)

    def not_ours(self, is_ours: Callable[[int], bool]) -> list[Item]:
        """The maintained items whose keys are no longer ours (to migrate)."""
        return [item for item in self.maintained if not is_ours(item.ring_key)]

    def replicas_in(self, start: int, end: int) -> list[Item]:
        """Our replicas of items whose keys lie in (start, end]."""
        return [item for item in self.replicas if in_half_open(item.ring_key, start, end)]

    # -- changing what we maintain ---------------------------------------------------------

    def open_channel(self, name: str) -> Channel:
        """The maintained channel ``name``, created empty if we had none."""
        ch = self.channel(name)
        if ch is None:
            ch = Channel(name)
            self.maintained.put(ch)
        return ch

    def put_name(self, entry: NameRecord) -> NameRecord:
        merged = self.maintained.put(entry)
        assert isinstance(merged, NameRecord)
        return merged

    def maintain(self, item: Item) -> Item:
        """Merge a copy into what we maintain (a migration, a successor's replica).

        Two copies may have numbered the same sequence numbers (each served for a while:
        a partition, a node that served before its copy came, a takeover from a replica
        that lagged): the union keeps our numbers for what we have, and numbers after
        everything what we never sent that the other copy numbered otherwise, and a copy
        started afresh (``merge_numbered``): nothing new sorts below what members have,
        where the log's trim would drop it. Entries the merge brings or
        renumbers at or below the replicated mark lower it (the replicas do not have them
        so yet), and move back the cursors above them.
        """
        ref = item_ref(item)
        before = self.maintained.get(*ref)
        merged = self.maintained.put(item)
        self._note_doubts(before, item, merged)
        if isinstance(merged, Channel) and isinstance(before, Channel):
            assert isinstance(item, Channel)
            merged = merge_numbered(merged, before, item, self._sent.get(merged.name, 0))
            self.maintained.pop(*ref)
            self.maintained.put(merged)
        if isinstance(merged, Channel):
            known = ({(e.msg_id, e.seq) for e in before.log} if isinstance(before, Channel)
                     else set())
            new = [e.seq for e in merged.log if (e.msg_id, e.seq) not in known]
            if new:
                below = min(new) - 1
                if self.mark(merged.name) > below:
                    self._replicated[merged.name] = below
                for ref_, cursor in self._cursors.items():
                    if ref_[0] == merged.name and cursor is not None and cursor > below:
                        self._cursors[ref_] = below
        return merged

    def _note_doubts(self, before: Item | None, item: Item, merged: Item) -> None:
        if before is None:
            return
        if isinstance(merged, Channel):
            for copy in (before, item):
                assert isinstance(copy, Channel)
                for key, m in copy.members.items():
                    if m.present and not merged.is_member(key):
                        self.doubted.add((merged.name, key))
        elif isinstance(merged, NameRecord) and isinstance(before, NameRecord):
            other = before if merged is item else item
            assert isinstance(other, NameRecord)
            noted = (merged.name, merged.key, other.key, other.seq)
            if (merged.present and other.present and other.key != merged.key
                    and noted not in self._noted):
                if len(self._noted) > 10_000:
                    self._noted.clear()
                self._noted.add(noted)   # a stale copy of the loser met again: said once
                self.conflicts.append((merged, other))

    def take_doubts(self) -> list[tuple[str, MemberKey]]:
        """The doubted members to ask (each once), emptying the list."""
        doubted, self.doubted = sorted(self.doubted), set()
        return doubted

    def take_conflicts(self) -> list[tuple[NameRecord, NameRecord]]:
        conflicts, self.conflicts = self.conflicts, []
        return conflicts

    def replicated(self, copy: Channel) -> bool:
        """``copy`` is now on the replicas: raise the mark over the entries, in order, that
        it holds. True if the mark rose."""
        ch = self.channel(copy.name)
        if ch is None:
            return False
        ids = {e.msg_id for e in copy.log}
        mark = old = self.mark(ch.name)
        for e in ch.after(old):
            if e.msg_id not in ids:   # (another entry of its seq may be in the copy)
                mark = min(mark, e.seq - 1)
                break
            mark = e.seq
        if mark == old:
            return False
        self._replicated[ch.name] = mark
        self._sent[ch.name] = max(mark, self._sent.get(ch.name, 0))
        return True

    def promote(self, is_ours: Callable[[int], bool]) -> list[Item]:
        """Take over the replicas whose keys are now ours (a predecessor died or left).

        A replica is replicated by definition: its entries may be delivered at once.
        """
        taken = []
        for replica in self.replicas:
            if is_ours(replica.ring_key):
                ref = item_ref(replica)
                self.replicas.pop(*ref)
                self._refreshed.pop(ref, None)
                merged = self.maintain(replica)
                if isinstance(replica, Channel):
                    self.replicated(replica)
                taken.append(merged)
        return taken

    def release(self, kind: str, name: str, now: float | None = None) -> Item | None:
        """Stop maintaining an item (handed over); keep it as a replica if ``now`` is given."""
        item = self.maintained.pop(kind, name)
        if kind == "channel":
            self._replicated.pop(name, None)
            self._sent.pop(name, None)
            for ref in [r for r in self._cursors if r[0] == name]:
                del self._cursors[ref]
        if item is not None and now is not None:
            self.keep_replica(item, now)
        return item

    # -- members' cursors ------------------------------------------------------------------

    def confirm(self, name: str, member: MemberKey, last_seq: int | None) -> None:
        """The member has everything up to ``last_seq`` (None: unknown, send it the log)."""
        self._cursors[(name, member)] = last_seq

    def forget(self, name: str, member: MemberKey) -> None:
        self._cursors.pop((name, member), None)

    # -- replicas --------------------------------------------------------------------------

    def keep_replica(self, item: Item, now: float) -> bool:
        """Merge a predecessor's copy into our replicas; False if we maintain it ourselves
        (a migration raced the copy)."""
        ref = item_ref(item)
        if self.maintained.get(*ref) is not None:
            return False
        before = self.replicas.get(*ref)
        merged = self.replicas.put(item)
        if isinstance(before, Channel) and isinstance(merged, Channel):
            assert isinstance(item, Channel)
            self.replicas.pop(*ref)
            self.replicas.put(replica_numbered(merged, before, item))
        self._refreshed[ref] = now
        return True

    def drop_stale(self, now: float, ttl: float) -> list[Ref]:
        """Forget the replicas nobody refreshed for ``ttl``."""
        stale = [ref for ref, at in self._refreshed.items() if now - at > ttl]
        for ref in stale:
            self.replicas.pop(*ref)
            del self._refreshed[ref]
        return stale


class Range:
    """Whether this node serves a key: it owns it, is not leaving, and is not waiting for a
    hand-over of its range (a join, a predecessor that died or left)."""

    def __init__(self, is_ours: Callable[[int], bool]) -> None:
        self.is_ours = is_ours
        self.leaving = False
        self.pulls = 0     # hand-off requests to the successors still running

    def serves(self, key: int) -> bool:
        return self.is_ours(key) and not self.pulls and not self.leaving


# -- two numberings of one channel ----------------------------------------------------------

def renumbered(union: Channel, a: Channel, b: Channel, seqs: dict[str, int],
               move: set[str]) -> Channel:
    """``union`` (``a.merge(b)``: its members and topic) with the log of both copies (not
    trimmed yet: nothing new may fall under the trim before it is numbered), the entries
    ``seqs`` names at those numbers (the others at the lower of their two), and the
    entries whose ids are in ``move`` numbered after everything else (in their order)."""
    by_id: dict[str, Entry] = {}
    for e in (*a.log, *b.log):
        known = by_id.get(e.msg_id)
        if known is None or e.seq < known.seq:
            by_id[e.msg_id] = e
    staying, moving = [], []
    for e in by_id.values():
        if e.msg_id in move:
            moving.append(e)
        else:
            seq = seqs.get(e.msg_id, e.seq)
            staying.append(e if seq == e.seq else dataclasses.replace(e, seq=seq))
    top = max([union.last_seq, *(e.seq for e in staying)])
    moved = [dataclasses.replace(e, seq=top + i)
             for i, e in enumerate(sorted(moving, key=lambda e: (e.seq, e.msg_id)), 1)]
    log = sorted(staying + moved, key=lambda e: (e.seq, e.msg_id))
    ch = dataclasses.replace(union, log=log, last_seq=top + len(moved))  # (its modes too)
    ch._trim()
    return ch


def merge_numbered(union: Channel, ours: Channel, theirs: Channel, sent: int) -> Channel:
    """The union of a maintainer's copy (``ours``, whose entries up to ``sent`` may have
    been delivered or acknowledged) and another (``theirs``): each entry ours has keeps
    our number, and the other copy's keep theirs (two at one number are ordered by id:
    they may both have been delivered, and moving one after everything would put an
    author's earlier message after its later one) — but after everything go our entries
    above ``sent`` that the other copy lacks, at a number it gave to another entry or
    within its log below an entry we lack (nobody was sent them, nor was their sender
    answered, so it sent nothing after them: a maintainer that was paused, came back and
    took a message before its successor handed the channel back; the successor's numbers
    may clash with ours or jump past them), and a copy started afresh (``afresh``); and an
    entry of ours above ``sent`` that the other copy has takes the other's number."""
    their_seqs = {e.seq for e in theirs.log}
    their_ids = {e.msg_id: e.seq for e in theirs.log}
    # at a number the other copy gave to another entry, or in its log below an entry we
    # lack (its numbers jumped past ours): at our number it would sort under what the
    # other copy delivered (below its log: history it trimmed; a hole: it missed ours)
    ours_ids = {e.msg_id for e in ours.log}
    their_first = theirs.log[0].seq if theirs.log else 0
    past = max((e.seq for e in theirs.log if e.msg_id not in ours_ids), default=0)
    unsent = {e.msg_id for e in ours.log
              if e.seq > sent and e.msg_id not in their_ids
              and (e.seq in their_seqs or their_first <= e.seq <= past)}
    # an entry we never sent that the other copy has: its number there (it may have been
    # delivered and answered at that number)
    seqs = {e.msg_id: (their_ids[e.msg_id] if e.seq > sent and e.msg_id in their_ids
                       else e.seq) for e in ours.log}
    return renumbered(union, ours, theirs, seqs, unsent | afresh(ours, theirs))


def replica_numbered(union: Channel, held: Channel, copy: Channel) -> Channel:
    """A replica (``held``) merged with its maintainer's new copy: the maintainer's
    numbers win for every entry the copy has (a replica that kept the lowest number it
    ever saw of an entry brought an older copy's numbering back at the next takeover),
    and a copy started afresh goes after everything (``afresh``)."""
    return renumbered(union, held, copy, {e.msg_id: e.seq for e in copy.log},
                      afresh(held, copy))


def afresh(a: Channel, b: Channel) -> set[str]:
    """Of two copies whose numbers do not meet (one's last below the other's first, with a
    gap between: one started afresh — a side of a partition that had no copy, a node alone
    for a moment, a node that served before its copy came), the newest entries of the
    lower one that were signed since the other's log begins: new, not history the other
    copy trimmed; sorted under the other's log, its trim would drop them.

    Not a copy whose numbers run on right into the other's, and only the lower copy's
    newest entries back to the first signed before that (its suffix): a replica gets its
    maintainer's copy as a delta (the entries above the replicated mark), numbered right
    after what the replica holds or a little further, and the replica's own log is that
    log's history. One message in it signed minutes ahead (its sender's clock had jumped)
    looked "signed since", went after everything, and the next takeover delivered it
    again there: a member that joined in between was shown it among later messages
    (nemesis seed 1989, 2 minutes on 8 hosts)."""
    move: set[str] = set()
    if a.log and b.log:
        for low, high in ((a, b), (b, a)):
            if low.last_seq + 1 < high.log[0].seq:
                ids = {e.msg_id for e in high.log}
                since = high.log[0].at
                for e in reversed(low.log):   # newest first
                    if e.msg_id in ids:
                        continue
                    if e.at < since:
                        break
                    move.add(e.msg_id)
    return move
