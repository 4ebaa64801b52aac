"""CHATHISTORY (IRCv3 ``draft/chathistory``) over a user's own database: which of the
lines kept for a conversation a query asks for, and each as the event the session shows.

The lines are ``core.store.Message`` rows, oldest first, each at its author's signed time;
a reference is a (timestamp, msgid) pair of which one part is given. Bounds exclude the
line they name, as the spec says. Times are compared in the milliseconds ``server-time``
shows, so a timestamp a client copied from a line excludes that line.
"""

from __future__ import annotations

from core import events as ev

from .actions import History

Ref = tuple[float | None, str | None]


def _position(lines: list, ref: Ref | None, after: bool) -> int | None:
    """The index bound ``ref`` gives: lines from it on are after (``after``) or before it.
    None: a msgid that is not kept."""
    if ref is None:
        return None
    at, msgid = ref
    if msgid is not None:
        for i, m in enumerate(lines):
            if m.msg_id == msgid:
                return i + 1 if after else i
        return None
    assert at is not None
    bound = round(at * 1000)
    if after:
        return next((i for i, m in enumerate(lines) if shown_ms(m.at) > bound), len(lines))
    return next((i for i, m in enumerate(lines) if shown_ms(m.at) >= bound), len(lines))


def shown_ms(at: float) -> int:
    """``at`` in whole milliseconds, as ``server-time`` writes it (cut, not rounded)."""
    return round(at * 1_000_000) // 1000


def within(at: float, after: Ref | None, before: Ref | None) -> bool:
    """Whether a time lies between two timestamp bounds (TARGETS)."""
    low = after[0] if after and after[0] is not None else float("-inf")
    high = before[0] if before and before[0] is not None else float("inf")
    return min(low, high) < at < max(low, high)


def pick(lines: list, q: History) -> list:
    """The lines ``q`` asks for, oldest first, at most ``q.limit``."""
    n = q.limit
    if q.subcommand == "LATEST":
        start = _position(lines, q.after, True) if q.after else 0
        return lines[start or 0:][-n:] if start is not None else lines[-n:]
    if q.subcommand == "BEFORE":
        end = _position(lines, q.before, False)
        return [] if end is None else lines[:end][-n:]
    if q.subcommand == "AFTER":
        start = _position(lines, q.after, True)
        return [] if start is None else lines[start:start + n]
    if q.subcommand == "AROUND":
        middle = _position(lines, q.around, False)
        if middle is None:
            return []
        first = max(0, middle - n // 2)
        return lines[first:first + n]
    if q.subcommand == "BETWEEN":
        a, b = _position(lines, q.after, True), _position(lines, q.before, False)
        if a is None or b is None:
            return []
        if a <= b:
            return lines[a:b][:n]
        # bounds given newest first: the lines between, the newest ones
        a, b = _position(lines, q.before, True), _position(lines, q.after, False)
        return lines[a:b][-n:] if a is not None and b is not None else []
    return []


def event(m, me: str, target: str) -> ev.ChannelMessage | ev.PrivateMessage:
    """A kept line as the event the session shows, at its author's time."""
    if target.startswith("#"):
        return ev.ChannelMessage(channel=target[1:].lower(), from_=m.sender, text=m.text,
                                 msg_id=m.msg_id, history=True, at=m.at)
    if m.outgoing:
        return ev.PrivateMessage(from_=me, to=target, text=m.text, msg_id=m.msg_id,
                                 outgoing=True, at=m.at)
    return ev.PrivateMessage(from_=m.sender, to=me, text=m.text, msg_id=m.msg_id, at=m.at)
