"""Signed name records: the acceptance rule (BEP 44 / OpenDHT style) and the merge laws."""

import dataclasses
from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.chat.model.identity import Identity
from core.chat.model.records import (
    SKEW_MS,
    Accept,
    NameRecord,
    RecordError,
    Refuse,
    decide,
    needs_liveness,
    next_seq,
)
from core.chord.ids import hash_string

ALICE = Identity.generate("alice")
ALICE2 = Identity(ALICE.seed(), "Alice")   # same key, nick typed otherwise
MALLORY = Identity.generate("alice")                  # another key claiming the same nick
EVE = Identity.generate("ALICE")
BOB = Identity.generate("bob")
KEYS = [ALICE, ALICE2, MALLORY, EVE]
ADDRESSES = ["10.0.0.1:4000", "10.0.0.2:4000", "[::1]:5000"]


def node_id(address: str) -> str:
    return f"{hash_string(address):040x}"


def claim(identity=ALICE, seq=1, address=ADDRESSES[0]) -> NameRecord:
    return NameRecord.create(identity, address, node_id(address), seq)


def tomb(identity=ALICE, seq=2) -> NameRecord:
    return NameRecord.tombstone(identity, seq)


@st.composite
def records(draw):
    identity = draw(st.sampled_from(KEYS))
    seq = draw(st.integers(1, 6))
    if draw(st.booleans()):
        return tomb(identity, seq)
    return claim(identity, seq, draw(st.sampled_from(ADDRESSES)))


class TestRecord:
    def test_create__signed_and_valid(self):
        record = claim()
        assert record.valid() and record.present and record.kind == "name"
        assert record.name == "alice" and record.ring_key == hash_string("alice")

    def test_tombstone__signed_release(self):
        record = tomb()
        assert record.valid() and record.deleted and record.kind == "name.del"
        assert record.address == "" and record.node_id == ""

    def test_wire__round_trip(self):
        for record in (claim(), tomb(), claim(ALICE2, 7, ADDRESSES[2])):
            assert NameRecord.from_wire(record.to_wire()) == record

    @pytest.mark.parametrize("field, value", [
        ("nick", "Alice"), ("nick", "mallory"), ("key", MALLORY.key),
        ("address", "10.6.6.6:1"), ("node_id", "f" * 40), ("seq", 2), ("deleted", True)])
    def test_valid__signature_covers_every_field(self, field, value):
        record = claim()
        forged = dataclasses.replace(record, **{field: value})
        if field == "deleted":
            forged = dataclasses.replace(forged, address="", node_id="")
        assert not forged.valid()
        assert decide(None, forged, holder_alive=False) == Refuse("bad_signature")

    def test_valid__a_claim_signature_is_no_tombstone(self):
        # same fields, other kind: the domain separation in the signed bytes
        record = tomb()
        as_claim = dataclasses.replace(record, deleted=False, address=ADDRESSES[0],
                                       node_id=node_id(ADDRESSES[0]))
        assert not as_claim.valid()

    @given(st.dictionaries(st.sampled_from(["nick", "key", "address", "node_id", "seq",
                                            "signature", "deleted", "x"]),
                           st.one_of(st.none(), st.booleans(), st.integers(), st.text(),
                                     st.lists(st.integers()), st.floats())))
    def test_from_wire__garbage_raises_record_error_only(self, d):
        try:
            record = NameRecord.from_wire(d)
        except RecordError:
            return
        assert not record.valid()

    @pytest.mark.parametrize("change", [
        {"nick": "1bad"}, {"nick": 5}, {"key": "AB" * 32}, {"key": None}, {"address": ""},
        {"address": "x" * 301}, {"node_id": "0" * 39}, {"node_id": 7}, {"seq": 0},
        {"seq": -1}, {"seq": True}, {"seq": 1.0}, {"seq": 2**63}, {"signature": None},
        {"deleted": 1}, {"deleted": "no"}])
    def test_from_wire__wrong_shapes(self, change):
        with pytest.raises(RecordError):
            NameRecord.from_wire({**claim().to_wire(), **change})

    @pytest.mark.parametrize("missing", ["nick", "key", "address", "node_id", "seq",
                                         "signature", "deleted"])
    def test_from_wire__missing_field(self, missing):
        d = claim().to_wire()
        del d[missing]
        with pytest.raises(RecordError, match=missing):
            NameRecord.from_wire(d)

    def test_from_wire__not_an_object(self):
        with pytest.raises(RecordError):
            NameRecord.from_wire(["nick"])

    def test_from_wire__tombstone_with_an_address_is_malformed(self):
        with pytest.raises(RecordError):
            NameRecord.from_wire({**tomb().to_wire(), "address": "10.0.0.1:1"})

    def test_next_seq__clock_or_one_more(self):
        assert next_seq(0, now_ms=1000) == 1000
        assert next_seq(5000, now_ms=1000) == 5001
        assert next_seq() > 1_600_000_000_000


class TestDecide:
    def test_decide__first_claim_of_a_free_nick_wins(self):
        assert decide(None, claim(), holder_alive=False) == Accept()
        assert decide(tomb(EVE, 1), claim(ALICE, 2), holder_alive=True) == Accept()

    def test_decide__holder_updates_with_a_higher_seq(self):
        assert decide(claim(seq=1), claim(seq=2, address=ADDRESSES[1]), True) == Accept()
        assert decide(claim(seq=1), claim(ALICE2, seq=2), True) == Accept()  # nick as typed

    def test_decide__holder_deletes_with_a_higher_seq(self):
        assert decide(claim(seq=1), tomb(seq=2), True) == Accept()

    def test_decide__equal_or_lower_seq_is_stale(self):
        current = claim(seq=5)
        for seq in (1, 4, 5):
            assert decide(current, claim(seq=seq, address=ADDRESSES[1]), True) == \
                Refuse("stale", 5)
            assert decide(current, tomb(seq=seq), True) == Refuse("stale", 5)

    def test_decide__the_stored_record_again_is_a_harmless_retry(self):
        current = claim(seq=5)
        assert decide(current, current, True) == Accept(changed=False)

    def test_decide__replay_after_delete_is_refused(self):
        old = claim(seq=1)
        assert decide(tomb(seq=2), old, holder_alive=False) == Refuse("stale", 2)

    def test_decide__other_key_cannot_take_a_live_holders_nick(self):
        assert decide(claim(), claim(MALLORY, seq=99), holder_alive=True) == Refuse("taken")

    def test_decide__other_key_cannot_delete(self):
        assert decide(claim(), tomb(MALLORY, 99), holder_alive=True) == Refuse("not_holder")
        assert decide(claim(), tomb(MALLORY, 99), holder_alive=False) == Refuse("not_holder")
        assert decide(tomb(), tomb(MALLORY, 99), holder_alive=False) == Refuse("not_holder")

    def test_decide__dead_holders_nick_is_free(self):
        assert decide(claim(seq=3), claim(MALLORY, seq=4), holder_alive=False) == Accept()

    def test_decide__claim_over_another_key_needs_a_higher_seq(self):
        assert decide(claim(seq=3), claim(MALLORY, seq=3), False) == Refuse("stale", 3)
        assert decide(tomb(seq=3), claim(MALLORY, seq=2), False) == Refuse("stale", 3)

    def test_decide__bad_signature_always_refused(self):
        forged = dataclasses.replace(claim(MALLORY, 9), signature="00" * 64)
        for current in (None, claim(), tomb()):
            for alive in (True, False):
                assert decide(current, forged, alive) == Refuse("bad_signature")

    def test_decide__record_for_another_nick(self):
        assert decide(claim(), claim(BOB, 2), False) == Refuse("other_name")

    def test_decide__far_future_seq_is_refused_when_the_clock_is_given(self):
        now = 1_700_000_000_000
        assert decide(None, claim(seq=now + SKEW_MS + 1), False, now_ms=now) == \
            Refuse("future")
        assert decide(None, claim(seq=now + SKEW_MS), False, now_ms=now) == Accept()

    def test_needs_liveness__only_another_key_over_a_live_record(self):
        assert needs_liveness(claim(), claim(MALLORY, 2))
        assert not needs_liveness(None, claim())
        assert not needs_liveness(claim(), claim(seq=2))
        assert not needs_liveness(tomb(), claim(MALLORY, 3))

    def test_refuse__has_a_message(self):
        assert "alive" in Refuse("taken").message

    def test_decide__issue_10_scenario(self):
        """Mallory deletes alice's record and claims her nick while she is online: both fail."""
        stored = claim(seq=10)
        assert decide(stored, tomb(MALLORY, 11), holder_alive=True) == Refuse("not_holder")
        assert decide(stored, claim(MALLORY, 12), holder_alive=True) == Refuse("taken")
        # an unsigned-looking delete that copies alice's key but not her signature
        fake = dataclasses.replace(tomb(MALLORY, 11), key=ALICE.key)
        assert decide(stored, fake, holder_alive=True) == Refuse("bad_signature")


class TestDecideProperties:
    @settings(max_examples=300)
    @given(current=st.none() | records(), incoming=records(), alive=st.booleans())
    def test_decide__accepted_change_wins_the_merge(self, current, incoming, alive):
        decision = decide(current, incoming, alive)
        if isinstance(decision, Accept) and current is not None:
            assert current.merge(incoming) == incoming

    @settings(max_examples=300)
    @given(current=records(), incoming=records())
    def test_decide__while_the_holder_lives_only_its_key_with_a_higher_seq(self, current,
                                                                          incoming):
        decision = decide(current, incoming, holder_alive=True)
        if current.present and incoming != current:
            assert (decision == Accept()) == (incoming.key == current.key
                                              and incoming.seq > current.seq)

    @settings(max_examples=300)
    @given(current=st.none() | records(), incoming=records(), alive=st.booleans())
    def test_decide__never_accepts_a_lower_or_equal_seq_change(self, current, incoming, alive):
        if current is not None and incoming != current and incoming.seq <= current.seq:
            assert isinstance(decide(current, incoming, alive), Refuse)

    @settings(max_examples=200)
    @given(ops=st.lists(st.tuples(records(), st.booleans()), min_size=1, max_size=8))
    def test_decide__replaying_a_superseded_record_is_refused(self, ops):
        stored = None
        accepted = []
        for record, alive in ops:
            decision = decide(stored, record, alive)
            if decision == Accept():
                stored = record
                accepted.append(record)
        for record in accepted:
            for alive in (True, False):
                decision = decide(stored, record, alive)
                if record == stored:
                    assert decision == Accept(changed=False)
                else:
                    assert isinstance(decision, Refuse)


class TestMerge:
    @given(a=records(), b=records())
    def test_merge__commutative(self, a, b):
        assert a.merge(b) == b.merge(a)

    @given(a=records(), b=records(), c=records())
    def test_merge__associative(self, a, b, c):
        assert a.merge(b).merge(c) == a.merge(b.merge(c))

    @given(a=records())
    def test_merge__idempotent(self, a):
        assert a.merge(a) == a

    @given(rs=st.lists(records(), min_size=1, max_size=6), data=st.data())
    def test_merge__any_order_gives_the_same_winner(self, rs, data):
        shuffled = data.draw(st.permutations(rs))
        assert reduce(NameRecord.merge, rs) == reduce(NameRecord.merge, shuffled)

    def test_merge__same_key_higher_seq_wins(self):
        assert claim(seq=1).merge(claim(seq=2, address=ADDRESSES[1])).seq == 2
        assert claim(seq=3).merge(tomb(seq=2)).present

    def test_merge__tombstone_wins_a_tie_of_one_key(self):
        assert claim(seq=2).merge(tomb(seq=2)).deleted

    def test_merge__between_keys_the_later_claim_wins(self):
        assert claim(ALICE, 5).merge(claim(MALLORY, 6)).key == MALLORY.key
        assert claim(ALICE, 7).merge(claim(MALLORY, 6)).key == ALICE.key

    def test_merge__other_names_refused(self):
        with pytest.raises(ValueError):
            claim().merge(claim(BOB))
