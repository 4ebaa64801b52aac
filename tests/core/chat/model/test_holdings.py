"""What a node holds: the replicated mark, members' cursors, promotion of replicas, what
is no longer ours — pure, checked exhaustively (hypothesis), no sockets."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from core.chat.model.channel import Channel, Member
from core.chat.model.holdings import Holdings, Range
from core.chat.model.identity import Identity
from core.chat.model.ids import channel_key, name_key
from core.chat.model.records import NameRecord
from core.chat.testing import member as signed_member
from core.chat.testing import message, record

MEMBERS = [("ann", "h:1"), ("bo", "h:2"), ("cy", "h:1")]
foreign_ids = st.sampled_from([f"f{i:031x}" for i in range(8)])


@st.composite
def foreign_copies(draw):
    """Another node's copy of channel "c": its own numbering, maybe shared ids."""
    ch = Channel("c")
    for msg_id in draw(st.lists(foreign_ids, max_size=5)):
        message(ch, "zoe", "theirs", msg_id)
    return ch


class MaintainerMachine(RuleBasedStateMachine):
    """A maintainer of channel "c": sends, copies to the replicas that complete in any
    order, merges of other copies, deliveries to three members. What a member is sent is
    always on the replicas, and once all is replicated every member gets every entry."""

    @initialize()
    def start(self):
        self.h = Holdings()
        ch = self.h.open_channel("c")
        for nick, address in MEMBERS:
            ch.set_member(Member(nick, address, 1.0))
            self.h.confirm("c", (nick, address), None)
        self.on_replicas: set[str] = set()      # the model: ids the replicas hold
        self.in_flight: list[Channel] = []      # copies sent, not yet acknowledged
        self.shown = {m: set() for m in MEMBERS}
        self.ids = itertools.count()

    @rule()
    def send(self):
        self.h.channel("c").append("msg", "ann", "ours", f"o{next(self.ids):031x}")

    @rule()
    def copy(self):
        self.in_flight.append(self.h.unreplicated("c"))

    @rule(data=st.data())
    def copy_acknowledged(self, data):
        if self.in_flight:
            copy = self.in_flight.pop(data.draw(st.integers(0, len(self.in_flight) - 1)))
            self.on_replicas |= {e.msg_id for e in copy.log}
            self.h.replicated(copy)

    @rule(copy=foreign_copies())
    def merge(self, copy):
        self.h.maintain(copy)

    @rule(member=st.sampled_from(MEMBERS))
    def deliver(self, member):
        entries = self.h.deliverable("c", member)
        assert {e.msg_id for e in entries} <= self.on_replicas, "sent before replicated"
        # as a feed does: the cursor moves over what was sent and acknowledged
        self.shown[member] |= {e.msg_id for e in entries}
        if entries:
            self.h.confirm("c", member, entries[-1].seq)

    @invariant()
    def nothing_unreplicated_is_deliverable(self):
        if hasattr(self, "h"):
            for member in MEMBERS:
                ids = {e.msg_id for e in self.h.deliverable("c", member)}
                assert ids <= self.on_replicas

    @rule()
    def all_replicated_then_every_member_gets_everything(self):
        full = self.h.channel("c")
        self.on_replicas |= {e.msg_id for e in full.log}
        self.h.replicated(full)
        assert not full.log or self.h.mark("c") >= full.log[-1].seq
        for member in MEMBERS:
            for _ in range(3):
                self.deliver(member)
            assert self.shown[member] >= {e.msg_id for e in full.log}, member


TestMaintainer = MaintainerMachine.TestCase
TestMaintainer.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


def test_holdings__a_new_channel_delivers_nothing_until_replicated():
    h = Holdings()
    ch = h.open_channel("c")
    ch.set_member(Member("ann", "h:1", 1.0))
    ch.append("msg", "bo", "hi")
    h.confirm("c", ("ann", "h:1"), None)
    assert h.mark("c") == 0 and h.deliverable("c", ("ann", "h:1")) == []
    assert h.replicated(h.unreplicated("c"))
    assert [e.text for e in h.deliverable("c", ("ann", "h:1"))] == ["hi"]
    assert not h.replicated(h.unreplicated("c"))       # nothing new: the mark stays


def test_holdings__a_merge_below_a_cursor_moves_it_back_and_lowers_the_mark():
    h = Holdings()
    ch = h.open_channel("c")
    for i in range(3):
        ch.append("msg", "ann", f"ours {i}")
    h.replicated(h.channel("c"))
    h.confirm("c", ("bo", "h:2"), 3)
    theirs = Channel("c")
    theirs.append("msg", "zoe", "theirs")              # seq 1 in their numbering: kept
    h.maintain(theirs)
    assert h.cursor("c", ("bo", "h:2")) == 0 and h.mark("c") == 0
    h.replicated(h.unreplicated("c"))
    assert "theirs" in [e.text for e in h.deliverable("c", ("bo", "h:2"))]


def test_holdings__an_entry_we_never_sent_takes_the_number_another_copy_gave_it():
    h = Holdings()
    first, second = Channel("c"), Channel("c")
    first.append("msg", "ann", "a", "a" * 32)
    h.maintain(first)
    h.replicated(h.channel("c"))
    h.confirm("c", ("bo", "h:2"), 1)                   # bo has "a" (seq 1)
    second.append("msg", "ann", "a", "a" * 32)
    second.append("msg", "cy", "b", "b" * 32)          # "b" at seq 2, not yet replicated
    h.maintain(second)
    third = Channel("c")
    third.append("msg", "cy", "b", "b" * 32)           # another copy numbered "b" 1
    h.maintain(third)
    assert h.channel("c").find("b" * 32).seq == 1      # as that copy answered cy
    assert h.channel("c").find("a" * 32).seq == 1      # ours, sent: it stays
    h.replicated(h.unreplicated("c"))
    assert "b" in [e.text for e in h.deliverable("c", ("bo", "h:2"))]


def long_log(n: int = 400) -> Channel:
    """A channel that numbered ``n`` messages (signed at 1 … n s); the log keeps the last
    300."""
    ch = Channel("c")
    for i in range(1, n + 1):
        message(ch, "ann", f"old {i}", f"o{i:031x}", at=float(i))
    return ch


def fresh(texts: list[str], at: float) -> Channel:
    """A copy started afresh (numbered from 1) while the long one went on."""
    ch = Channel("c")
    for i, text in enumerate(texts):
        message(ch, "bo", text, f"n{i:031x}", at=at + i)
    return ch


def test_holdings__a_fresh_copys_messages_go_after_a_full_log_not_under_its_trim():
    h = Holdings()
    h.maintain(long_log())
    h.replicated(h.channel("c"))
    h.confirm("c", ("cy", "h:3"), 400)
    h.maintain(fresh(["new 1", "new 2", "new 3"], at=395.0))
    ch = h.channel("c")
    assert [(e.seq, e.text) for e in ch.log[-3:]] == [(401, "new 1"), (402, "new 2"),
                                                      (403, "new 3")]
    assert len(ch.log) == 300 and ch.last_seq == 403
    h.replicated(h.unreplicated("c"))
    assert [e.text for e in h.deliverable("c", ("cy", "h:3"))] == ["new 1", "new 2", "new 3"]


def test_holdings__a_fresh_maintainer_that_acknowledged_moves_its_own_after_the_full_log():
    h = Holdings()
    h.maintain(fresh(["new 1", "new 2"], at=395.0))
    h.replicated(h.channel("c"))                       # acknowledged as seq 1 and 2
    h.maintain(long_log())
    ch = h.channel("c")
    assert [(e.seq, e.text) for e in ch.log[-2:]] == [(401, "new 1"), (402, "new 2")]
    assert len(ch.log) == 300 and {e.seq for e in ch.log} == set(range(103, 403))


def test_holdings__a_stale_copy_of_older_history_keeps_its_numbers():
    h = Holdings()
    h.maintain(long_log())
    stale = Channel("c")
    message(stale, "ann", "older", "s" * 32, at=50.0)   # before our log begins
    h.maintain(stale)
    assert h.channel("c").find("s" * 32) is None       # history, trimmed as it was
    assert h.channel("c").last_seq == 400


def test_replica__a_maintainers_copy_numbers_win():
    """The dead maintainer's replica numbered zoe's unacknowledged message 11; the new
    maintainer stored her retry at 12: the replica takes 12, not the lower number."""
    h = Holdings()
    old = Channel("c")
    for i in range(10):
        message(old, "ann", f"m{i}", f"m{i:031x}")
    message(old, "zoe", "never acknowledged", "y" * 32)   # the dead maintainer's seq 11
    h.keep_replica(old, now=0.0)
    copy = Channel("c", last_seq=10)
    message(copy, "cy", "x", "x" * 32)                 # the new maintainer's seq 11
    message(copy, "zoe", "never acknowledged", "y" * 32)   # her retry, stored at 12
    h.keep_replica(copy, now=1.0)
    replica = h.replicas.get("channel", "c")
    assert [(e.seq, e.text) for e in replica.log[-2:]] == [(11, "x"),
                                                           (12, "never acknowledged")]


def test_replica__a_fresh_copy_goes_after_the_full_log_it_meets():
    h = Holdings()
    h.keep_replica(long_log(), now=0.0)
    h.keep_replica(fresh(["new 1"], at=395.0), now=1.0)
    replica = h.replicas.get("channel", "c")
    assert [(e.seq, e.text) for e in replica.log[-1:]] == [(401, "new 1")]


def ahead_in_the_middle() -> Channel:
    """15 messages signed at 1 … 15 s, but the 11th signed at 200 s (its sender's clock
    had jumped ahead)."""
    ch = Channel("c")
    for i in range(1, 16):
        message(ch, "bo" if i == 11 else "ann", f"m{i}", f"m{i:031x}",
                at=200.0 if i == 11 else float(i))
    return ch


def delta(first: int, last: int) -> Channel:
    """The maintainer's copy for its replicas: the entries above its replicated mark."""
    ch = Channel("c", last_seq=first - 1)
    for i in range(first, last + 1):
        message(ch, "ann", f"m{i}", f"m{i:031x}", at=float(i))
    return ch


def test_replica__a_delta_right_after_its_log_renumbers_nothing_signed_ahead():
    h = Holdings()
    h.keep_replica(ahead_in_the_middle(), now=0.0)
    h.keep_replica(delta(16, 18), now=1.0)
    replica = h.replicas.get("channel", "c")
    assert [(e.seq, e.text) for e in replica.log] == [(i, f"m{i}") for i in range(1, 19)]


def test_replica__a_delta_past_a_hole_renumbers_nothing_older_than_its_first():
    # a replica that missed one delta (the mark rose on the first replica's answer)
    h = Holdings()
    h.keep_replica(ahead_in_the_middle(), now=0.0)
    h.keep_replica(delta(17, 18), now=1.0)
    replica = h.replicas.get("channel", "c")
    assert [(e.seq, e.text) for e in replica.log] == [
        (i, f"m{i}") for i in range(1, 19) if i != 16]


def test_holdings__a_fresh_copy_ahead_of_a_full_log_still_goes_after_it():
    # a copy started afresh whose newest entry is signed ahead: all of it is new
    h = Holdings()
    h.maintain(long_log())
    h.replicated(h.channel("c"))
    copy = fresh(["new 1", "new 2"], at=395.0)
    message(copy, "cy", "ahead", "a" * 32, at=900.0)
    h.maintain(copy)
    assert [(e.seq, e.text) for e in h.channel("c").log[-3:]] == [
        (401, "new 1"), (402, "new 2"), (403, "ahead")]


def test_holdings__promotion_takes_only_replicas_now_ours_and_they_are_replicated():
    h = Holdings()
    ours, theirs = Channel("mine"), Channel("yours")
    for ch in (ours, theirs):
        ch.set_member(Member("ann", "h:1", 1.0))
        ch.append("msg", "ann", "hello")
    h.keep_replica(ours, now=0.0)
    h.keep_replica(theirs, now=0.0)
    h.keep_replica(record("zed", "h:3"), now=0.0)
    taken = h.promote(lambda key: key in (channel_key("mine"), name_key("zed")))
    assert sorted(i.name for i in taken) == ["mine", "zed"]
    assert h.mark("mine") == 1 and h.channel("yours") is None
    assert [i.name for i in h.replicas] == ["yours"]
    h.confirm("mine", ("ann", "h:1"), None)
    assert [e.text for e in h.deliverable("mine", ("ann", "h:1"))] == ["hello"]


def test_holdings__what_is_no_longer_ours_and_its_release_as_a_replica():
    h = Holdings()
    for name in ("a", "b", "c"):
        h.open_channel(name)
    h.confirm("b", ("ann", "h:1"), 0)
    gone = h.not_ours(lambda key: key != channel_key("b"))
    assert [i.name for i in gone] == ["b"]
    h.release("channel", "b", now=5.0)
    assert h.channel("b") is None and h.cursor("b", ("ann", "h:1")) is None
    assert h.replicas.get("channel", "b") is not None
    assert not h.keep_replica(Channel("a"), now=6.0)   # we maintain it: no replica
    assert h.drop_stale(now=20.0, ttl=30.0) == []
    assert h.drop_stale(now=40.0, ttl=30.0) == [("channel", "b")]
    h.release("channel", "a")                          # without a time: not kept
    assert h.replicas.get("channel", "a") is None


def test_holdings__replicas_in_a_range():
    h = Holdings()
    for name in ("a", "b", "c"):
        h.keep_replica(Channel(name), now=0.0)
    key = channel_key("b")
    assert [i.name for i in h.replicas_in(key - 1, key)] == ["b"]


@settings(max_examples=100)
@given(st.lists(foreign_copies(), min_size=1, max_size=4), st.randoms())
def test_holdings__copies_merged_in_any_order_keep_every_message_and_our_numbers(copies, rnd):
    """The maintainer's own numbers stay, so the order of merges decides the numbers; in
    any order every message is kept, what the maintainer held first keeps its numbers,
    and a copy merged again changes nothing."""
    ids = {e.msg_id for ch in copies for e in ch.log}
    for order in (copies, rnd.sample(copies, len(copies))):
        h = Holdings()
        h.maintain(Channel.from_wire(order[0].to_wire()))
        h.replicated(h.channel("c"))
        first = {(e.msg_id, e.seq) for e in h.channel("c").log}
        for ch in order[1:]:
            h.maintain(Channel.from_wire(ch.to_wire()))
        merged = h.channel("c")
        assert {e.msg_id for e in merged.log} == ids
        assert first <= {(e.msg_id, e.seq) for e in merged.log}
        again = merged.to_wire()
        h.maintain(Channel.from_wire(order[-1].to_wire()))
        assert h.channel("c").to_wire() == again


def test_range__serves_only_its_own_keys_and_not_while_pulling_or_leaving():
    r = Range(lambda key: key < 10)
    assert r.serves(5) and not r.serves(15)
    r.pulls += 1
    assert not r.serves(5)
    r.pulls -= 1
    r.leaving = True
    assert not r.serves(5)


class TestMergeDoubts:
    def test_maintain__a_member_pruned_by_the_other_copy_is_doubted_once(self):
        h = Holdings()
        ours = Channel("c")
        ours.set_member(signed_member("ann", "h:1", 1.0))
        ours.set_member(signed_member("bo", "h:2", 1.0))
        h.maintain(ours)
        theirs = Channel("c")   # the other side of a partition pruned bo
        theirs.set_member(signed_member("ann", "h:1", 1.0))
        theirs.set_member(signed_member("bo", "h:2", 1.0).removed())
        merged = h.maintain(theirs)
        assert not merged.is_member(("bo", "h:2"))     # the removal wins, as ever…
        assert h.take_doubts() == [("c", ("bo", "h:2"))]   # …but bo is asked
        assert h.take_doubts() == []
        h.maintain(theirs)   # the same copy again: nothing new to doubt
        assert h.take_doubts() == []

    def test_maintain__a_member_that_left_on_the_other_side_is_doubted_too(self):
        # the member's node answers for it: one that really left says so and stays out
        h = Holdings()
        ours = Channel("c")
        ours.set_member(signed_member("bo", "h:2", 1.0))
        h.maintain(ours)
        theirs = Channel("c")
        theirs.set_member(signed_member("bo", "h:2", 2.0, present=False))
        h.maintain(theirs)
        assert h.take_doubts() == [("c", ("bo", "h:2"))]

    def test_maintain__one_nick_under_two_keys_is_a_conflict_the_later_claim_keeps(self):
        h = Holdings()
        first = record("ann", "h:1", seq=1)
        h.maintain(first)
        rival = Identity.generate("ann")
        later = NameRecord.create(rival, "h:2", "cd" * 20, 2)
        assert h.maintain(later) is later
        assert h.take_conflicts() == [(later, first)]
        assert h.take_conflicts() == []
        h.maintain(NameRecord.create(rival, "h:2", "cd" * 20, 3))   # the same key again
        h.maintain(record("ann", "h:1", seq=1))   # a stale copy of the loser: loses again,
        assert h.take_conflicts() == []           # and both were told once already

    def test_maintain__one_key_on_both_sides_is_no_conflict(self):
        h = Holdings()
        h.maintain(record("ann", "h:1", seq=1))
        h.maintain(record("ann", "h:3", seq=5))   # same key, moved: the higher seq stays
        h.maintain(record("ann", "h:1", seq=1))
        assert h.take_conflicts() == []
        assert h.name("ann").address == "h:3"


def test_holdings__a_copy_filling_a_hole_in_our_numbers_keeps_its_own():
    h = Holdings()
    ours = Channel("c")
    for i in (1, 2, 4):
        ours.log.append(message(Channel("c", last_seq=i - 1), "ann", f"m{i}", f"m{i:031x}"))
    ours.last_seq = 4
    h.maintain(ours)
    h.replicated(h.channel("c"))
    theirs = Channel("c", last_seq=2)
    message(theirs, "ann", "m3", f"m{3:031x}")         # the one our copy missed, seq 3
    h.maintain(theirs)
    assert [(e.seq, e.text) for e in h.channel("c").log] == [
        (1, "m1"), (2, "m2"), (3, "m3"), (4, "m4")]


def _back_from_a_pause() -> tuple[Holdings, Channel]:
    """A maintainer back from a pause (cy's 46 replicated, so maybe delivered; bo's later
    message taken as 47 and never replicated), and its successor's copy, at 46 too."""
    h = Holdings()
    ours = Channel("c", last_seq=45)
    message(ours, "cy", "46", "c" * 32)
    h.maintain(ours)
    h.replicated(h.channel("c"))
    message(h.channel("c"), "bo", "bo later", "l" * 32)
    theirs = Channel("c", last_seq=45)
    message(theirs, "cy", "46", "c" * 32)
    return h, theirs


def test_holdings__our_unsent_entry_gives_its_number_to_the_other_copys():
    """Paused, the maintainer came back and took bo's message as 47 before its successor,
    which had numbered 47 to 50 meanwhile (bo's earlier one among them), handed the
    channel back: bo's message goes after 50, after his earlier one."""
    h, theirs = _back_from_a_pause()
    for i in range(47, 50):
        message(theirs, "di", f"{i}", f"d{i:031x}")
    message(theirs, "bo", "bo earlier", "e" * 32)      # their 50, delivered there
    h.maintain(theirs)
    assert [(e.seq, e.text) for e in h.channel("c").log[-2:]] == [(50, "bo earlier"),
                                                                  (51, "bo later")]


def test_holdings__our_unsent_entry_goes_after_the_other_copys_numbers_past_it():
    """Paused, the maintainer came back and took bo's message as 47; its successor had
    taken over from a replica whose numbers jumped (its next was 200) and delivered bo's
    earlier message as 200. No number clashes, yet 47 would sort under what members were
    sent: bo's later message goes after 200 (nemesis seed 4242, 10 minutes, #green)."""
    h, theirs = _back_from_a_pause()
    theirs.last_seq = 199
    message(theirs, "bo", "bo earlier", "e" * 32)      # their 200, delivered there
    h.maintain(theirs)
    assert [(e.seq, e.text) for e in h.channel("c").log[-2:]] == [(200, "bo earlier"),
                                                                  (201, "bo later")]


def test_holdings__our_entries_the_other_copy_missed_or_trimmed_keep_their_numbers():
    """Not yet replicated here (just migrated: nothing counts as sent), our entries that a
    copy missed (a hole in it) or trimmed (below its log) are history, not numbered past."""
    h = Holdings()
    ours = Channel("c")
    for i in range(1, 7):
        message(ours, "ann", f"m{i}", f"m{i:031x}")
    h.maintain(ours)
    theirs = Channel("c", last_seq=2)
    for i in (3, 5, 6):                                # trimmed 1-2, missed 4
        theirs.log.append(message(Channel("c", last_seq=i - 1), "ann", f"m{i}",
                                  f"m{i:031x}"))
    theirs.last_seq = 6
    h.maintain(theirs)
    assert [(e.seq, e.text) for e in h.channel("c").log] == [
        (i, f"m{i}") for i in range(1, 7)]


def test_holdings__our_unsent_number_of_an_entry_gives_way_to_the_one_it_was_acked_with():
    """Paused, the maintainer had taken bo's message as 42 but not answered; bo sent it
    again to the successor, which answered 41 and numbered his next 42: the merge gives
    the first 41 (as he and the members were told) and the next after it."""
    h = Holdings()
    ours = Channel("c", last_seq=40)
    message(ours, "cy", "41 here", "c" * 32)
    h.maintain(ours)
    h.replicated(h.channel("c"))
    message(h.channel("c"), "bo", "first", "f" * 32)   # our 42, never replicated
    theirs = Channel("c", last_seq=40)
    message(theirs, "bo", "first", "f" * 32)           # their 41, acknowledged
    message(theirs, "bo", "next", "n" * 32)            # their 42
    h.maintain(theirs)
    texts = [e.text for e in h.channel("c").log]
    assert texts.index("first") < texts.index("next")
    assert h.channel("c").find("f" * 32).seq == 41


def test_holdings__the_other_copys_delivered_numbers_stay_so_an_author_keeps_its_order():
    """Both copies delivered (a paused maintainer came back beside its successor): the
    other copy's message at a number we gave to another keeps it, so it still comes
    before the same author's later message in our copy."""
    h = Holdings()
    ours = Channel("c", last_seq=45)
    message(ours, "cy", "ours 46", "o" * 32)
    for i in range(47, 52):
        message(ours, "di", f"ours {i}", f"p{i:031x}")
    message(ours, "bo", "bo later", "l" * 32)          # seq 52
    h.maintain(ours)
    h.replicated(h.channel("c"))
    theirs = Channel("c", last_seq=45)
    message(theirs, "bo", "bo earlier", "e" * 32)      # their 46, delivered there
    h.maintain(theirs)
    texts = [e.text for e in h.channel("c").log]
    assert texts.index("bo earlier") < texts.index("bo later")


def test_holdings__a_renumbering_merge_keeps_the_channels_modes():
    h = Holdings()
    full = long_log()
    founder = signed_member("ann", "h:1", 1.0, channel="c").signed
    full.modes.found(founder)
    h.maintain(full)
    h.maintain(fresh(["new 1"], at=395.0))           # renumbers: a new Channel is built
    assert h.channel("c").find(f"n{0:031x}").seq == 401
    assert h.channel("c").modes.founder == founder
