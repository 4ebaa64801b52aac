"""Copies of a mailbox merge the same in any order (hypothesis): letters by id, and taken
letters stay taken."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.chat.model.mailbox import Letter, Mailbox

IDS = [f"{i:032x}" for i in range(4)]


def letter(msg_id: str, variant: int) -> Letter:
    # variants of one id: a retry taken in at two times, or a different envelope
    return Letter(msg_id, ["bo", "cy"][variant % 2], float(variant // 2),
                  {"box": f"b{variant}", "nonce": "n"})


@st.composite
def mailboxes(draw) -> Mailbox:
    box = Mailbox(draw(st.sampled_from(["ann", "Ann"])))
    for msg_id in draw(st.lists(st.sampled_from(IDS), unique=True)):
        box.letters[msg_id] = letter(msg_id, draw(st.integers(0, 3)))
    for msg_id in draw(st.lists(st.sampled_from(IDS), unique=True)):
        box.letters.pop(msg_id, None)
        box.taken[msg_id] = float(draw(st.integers(0, 3)))
    return box


def same(a: Mailbox, b: Mailbox) -> bool:
    return a.nick == b.nick and a.letters == b.letters and a.taken == b.taken


@given(mailboxes(), mailboxes())
def test_merge__is_commutative(a, b):
    assert same(a.merge(b), b.merge(a))


@given(mailboxes(), mailboxes(), mailboxes())
def test_merge__is_associative(a, b, c):
    assert same(a.merge(b).merge(c), a.merge(b.merge(c)))


@given(mailboxes())
def test_merge__is_idempotent(a):
    assert same(a.merge(a), a)


@given(mailboxes(), mailboxes())
def test_merge__a_taken_letter_stays_taken_and_no_letter_is_lost(a, b):
    merged = a.merge(b)
    assert set(merged.taken) == set(a.taken) | set(b.taken)
    assert set(merged.letters) == (set(a.letters) | set(b.letters)) - set(merged.taken)
