"""Channels, members, logs and name records: the pure structures and their merge (a union)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.chat.model.channel import HISTORY, LOG_CHARS, LOG_LIMIT, Channel, Entry, Member
from core.chat.model.ids import Seen, channel_key, name_key
from core.chat.model.items import Items, item_from_wire, item_to_wire
from core.chat.testing import member, message, record
from core.chord.ids import hash_string

addresses = st.sampled_from([f"127.0.0.1:{p}" for p in range(4000, 4006)])
stamps = st.floats(min_value=0, max_value=100, allow_nan=False)
members = st.builds(member, nick=st.sampled_from(["ann", "bo", "cy"]), address=addresses,
                    stamp=stamps, present=st.booleans(), channel=st.just("general"))
entry_ids = st.sampled_from([f"{i:032x}" for i in range(12)])


@st.composite
def channels(draw):
    ch = Channel("general")
    for m in draw(st.lists(members, max_size=6)):
        ch.set_member(m)
    for msg_id in draw(st.lists(entry_ids, max_size=8)):
        message(ch, "ann", f"text {msg_id[-2:]}", msg_id)
    return ch


def same(a: Channel, b: Channel) -> bool:
    return a.to_wire() == b.to_wire()


def test_keys__channel_and_name_keys_follow_the_design():
    assert channel_key("general") == hash_string("general")
    assert name_key("Alice") == hash_string("alice") == name_key("ALICE")


def test_channel__join_leave_and_rejoin_by_stamp():
    ch = Channel("c")
    assert ch.set_member(Member("ann", "a:1", 1.0))
    assert not ch.set_member(Member("ann", "a:1", 2.0))       # still present: no change
    assert ch.set_member(Member("ann", "a:1", 3.0, present=False))
    assert not ch.is_member(("ann", "a:1"))
    assert not ch.set_member(Member("ann", "a:1", 2.5))       # an older join loses
    assert ch.set_member(Member("ann", "a:1", 4.0))
    assert [m.nick for m in ch.present()] == ["ann"]


def test_channel__leave_wins_a_tie_with_join():
    ch = Channel("c")
    ch.set_member(Member("ann", "a:1", 5.0))
    ch.set_member(Member("ann", "a:1", 5.0, present=False))
    assert not ch.is_member(("ann", "a:1"))


def test_channel__two_users_of_one_node_are_two_members():
    ch = Channel("c")
    assert ch.set_member(Member("ann", "a:1", 1.0))
    assert ch.set_member(Member("cy", "a:1", 1.0))
    assert ch.set_member(Member("Cy", "a:1", 2.0, present=False))   # nicks ignore case
    assert [m.nick for m in ch.present()] == ["ann"]
    assert ch.is_member(("ann", "a:1")) and not ch.is_member(("cy", "a:1"))


def test_channel__append_assigns_sequence_and_drops_known_ids():
    ch = Channel("c")
    e1, new1 = ch.append("msg", "ann", "hi", "id1")
    e2, new2 = ch.append("msg", "ann", "hi", "id2")   # same text, other id: a new message
    e3, new3 = ch.append("msg", "ann", "hi", "id1")   # a retry: the first one back
    assert (e1.seq, e2.seq, new1, new2, new3) == (1, 2, True, True, False)
    assert e3 == e1 and ch.last_seq == 2
    assert [e.seq for e in ch.after(1)] == [2]


def test_channel__history_is_the_last_100_messages_without_notices():
    ch = Channel("c")
    for i in range(150):
        ch.append("msg", "ann", f"m{i}")
        if i % 10 == 0:
            ch.append("join", "bo")
    history = ch.history()
    assert len(history) == HISTORY
    assert [e.text for e in history] == [f"m{i}" for i in range(50, 150)]
    assert len(ch.log) <= LOG_LIMIT


def test_channel__log_is_bounded_in_text_so_it_fits_one_frame():
    ch = Channel("c")
    for _ in range(100):
        ch.append("msg", "ann", "x" * 4000)
    assert sum(len(e.text) for e in ch.log) <= LOG_CHARS
    assert ch.log[-1].seq == 100


def test_channel__merge_is_the_union_of_members_joined_on_either_side():
    old, new = Channel("c"), Channel("c")
    old.set_member(Member("ann", "a:1", 1.0))
    old.set_member(Member("bo", "b:1", 1.0))
    new.set_member(Member("cy", "c:1", 2.0))     # joined at the new maintainer first
    merged = old.merge(new)
    assert [m.nick for m in merged.present()] == ["ann", "bo", "cy"]
    assert same(merged, new.merge(old))


def test_channel__merge_keeps_a_later_leave():
    a, b = Channel("c"), Channel("c")
    a.set_member(Member("ann", "a:1", 1.0))
    b.set_member(Member("ann", "a:1", 2.0, present=False))
    assert a.merge(b).present() == [] == b.merge(a).present()


def test_channel__merge_of_different_channels_is_refused():
    try:
        Channel("a").merge(Channel("b"))
    except ValueError as e:
        assert "cannot merge" in str(e)
    else:
        raise AssertionError("merged two different channels")


@settings(max_examples=200)
@given(channels(), channels())
def test_channel__merge_is_commutative(a, b):
    assert same(a.merge(b), b.merge(a))


@settings(max_examples=200)
@given(channels(), channels(), channels())
def test_channel__merge_is_associative(a, b, c):
    assert same(a.merge(b).merge(c), a.merge(b.merge(c)))


@settings(max_examples=200)
@given(channels(), channels())
def test_channel__merge_is_idempotent_and_keeps_every_message_once(a, b):
    m = a.merge(b)
    assert same(m.merge(a), m) and same(m.merge(m), m)
    ids = [e.msg_id for e in m.log]
    assert len(ids) == len(set(ids)) and set(ids) == {e.msg_id for e in (*a.log, *b.log)}
    assert m.last_seq >= max(a.last_seq, b.last_seq)
    assert [e.seq for e in m.log] == sorted(e.seq for e in m.log)


@given(channels())
def test_channel__wire_round_trip(ch):
    back = item_from_wire(item_to_wire(ch))
    assert isinstance(back, Channel) and same(back, ch)


def test_channel__appending_after_a_merge_continues_the_sequence():
    a, b = Channel("c"), Channel("c")
    for i in range(3):
        a.append("msg", "ann", f"a{i}")
    b.append("msg", "bo", "b0")
    m = a.merge(b)
    entry, _ = m.append("msg", "cy", "next")
    assert entry.seq == 4


def test_channel__a_removal_notice_names_the_join_it_ends_and_standing_follows_rejoins():
    ch = Channel("general")
    first = member("bo", "h:1", 10.0, channel="general")
    ch.set_member(first)
    assert ch.standing("BO") == first.signed.msg_id
    removal = first.removed()
    ch.set_member(removal)
    notice, _ = ch.append("leave", "bo", text="pruned", at=20.0,
                          ended=removal.ended.msg_id)
    assert ch.standing("bo") == first.signed.msg_id     # the join the removal ended
    again = Channel.from_wire(ch.to_wire())
    assert again.log[-1].ended == first.signed.msg_id   # the notice keeps it on the wire
    assert Entry.from_wire(notice.to_wire(), "general") == notice
    back = member("bo", "h:1", 15.0, channel="general")  # a rejoin signed before the prune
    ch.set_member(back)
    assert ch.is_member(("bo", "h:1"))
    assert ch.standing("bo") == back.signed.msg_id != notice.ended
    assert ch.standing("cy") is None


def test_name_record__a_copy_is_checked_again_and_a_forged_one_refused():
    alice = record("Alice", seq=5)
    assert item_from_wire(item_to_wire(alice)) == alice
    wire = item_to_wire(alice)
    wire["state"]["address"] = "evil:1"          # the signature covers the address
    try:
        item_from_wire(wire)
    except ValueError as e:
        assert "does not verify" in str(e)
    else:
        raise AssertionError("a forged name record was taken")


def test_channel__a_copy_keeps_only_what_its_authors_signed():
    ch = Channel("general")
    ch.set_member(member("ann", "a:1", 1.0, channel="general"))
    message(ch, "ann", "signed", "1" * 32)
    ch.append("msg", "ann", "forged", "2" * 32)           # no signature
    ch.append("leave", "bo", "pruned", "3" * 32)          # the maintainer's own notice
    wire = ch.to_wire()
    wire["log"][0]["text"] = "altered"                    # a maintainer that edits a message
    back = Channel.from_wire(wire)
    assert [e.text for e in back.log] == ["pruned"] and back.dropped == 2
    assert [m.nick for m in back.present()] == ["ann"]


def test_store__put_merges_and_indexes_by_kind_and_name():
    store = Items()
    ch = Channel("c")
    ch.set_member(Member("ann", "a:1", 1.0))
    store.put(ch)
    other = Channel("c")
    other.set_member(Member("bo", "b:1", 1.0))
    merged = store.put(other)
    assert [m.nick for m in merged.present()] == ["ann", "bo"]
    store.put(record("c"))                           # a nick named like a channel: no clash
    assert len(store) == 2 and len(store.channels()) == 1 and len(store.names()) == 1
    assert store.pop("channel", "c") is merged and store.get("channel", "c") is None


def test_seen__drops_a_repeat_and_forgets_the_oldest_past_its_limit():
    seen = Seen(limit=3)
    assert [seen.first(i) for i in ("a", "b", "a", "c", "d")] == [True, True, False, True, True]
    assert seen.first("a") and not seen.first("d")     # "a" was forgotten, "d" was not
