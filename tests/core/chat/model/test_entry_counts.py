"""A message's signed (series, n): the author's count, covered by the signature; entries
without it (older nodes, joins and leaves) parse and verify as before."""

import dataclasses

import pytest

from core.chat.model.entries import EntryError, SignedEntry, sign_entry
from core.chat.model.identity import Identity

ALICE = Identity.generate("alice")
AT = 1_700_000_000.25


def counted(n=3, series="s1") -> SignedEntry:
    return sign_entry(ALICE, "general", "msg", "a" * 32, address="10.0.0.1:4000",
                      text="hi", at=AT, count=(series, n))


def test_count__signed_and_carried_on_the_wire():
    entry = counted()
    assert entry.valid() and entry.counted == (ALICE.key, "s1", 3)
    back = SignedEntry.from_wire({**entry.to_wire(), "seq": 9})
    assert back == entry and back.valid()


@pytest.mark.parametrize("change", [{"n": 4}, {"series": "s2"}])
def test_count__altered_fails(change):
    assert not dataclasses.replace(counted(), **change).valid()


def test_count__stripped_fails():
    """A maintainer cannot hide the count: without it the signature no longer holds."""
    wire = counted().to_wire()
    del wire["n"], wire["series"]
    with pytest.raises(EntryError):   # one without the other is no entry
        SignedEntry.from_wire({**wire, "n": 3})
    assert not SignedEntry.from_wire(wire).valid()


def test_count__an_entry_without_it_verifies_as_before():
    old = sign_entry(ALICE, "general", "msg", "b" * 32, address="10.0.0.1:4000", at=AT)
    wire = old.to_wire()
    assert "n" not in wire and "series" not in wire
    back = SignedEntry.from_wire(wire)
    assert back.valid() and back.counted is None


@pytest.mark.parametrize("bad", [{"n": 0}, {"n": True}, {"n": 1.5}, {"n": 2 ** 60},
                                 {"series": ""}, {"series": 7}, {"series": "x" * 33}])
def test_count__bad_shapes_are_refused(bad):
    wire = {**counted().to_wire(), **bad}
    with pytest.raises(EntryError):
        SignedEntry.from_wire(wire)
