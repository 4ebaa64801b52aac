"""What a copy of another node's state must pass before this node keeps it: the same rules
as a direct request, checked cheapest first.

1. shape and count (``MAX_ITEMS``), and the sender (``neighbours.Neighbours``) — by the
   caller, before anything here;
2. per item, whether its key is one the receiver may hold (read from the item's name, no
   signature checked: ``items.wire_ring_key``);
3. only then signatures (``items.item_from_wire``), and the clock rules of a direct
   request: a name record more than ``records.SKEW_MS`` ahead of our clock, or a member
   whose signed join or leave is more than ``entries.REPLAY_WINDOW`` ahead, is left out
   (a direct ``chat.name.set`` or join would be refused as well).

A name record that would become maintained state is decided by ``records.decide``
(``Names.take_copy``), as a ``chat.name.set`` — except that a later claim whose holder is
alive too wins over a live holder (two sides of a healed partition: ``NameRecord.merge``);
a replica is only checked (its owner decided it; a promoted replica is not decided again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..model.channel import Channel, Member
from ..model.entries import REPLAY_WINDOW
from ..model.items import Item, items_from_wire, wire_ring_key
from ..model.records import SKEW_MS, NameRecord

log = logging.getLogger(__name__)

MAX_ITEMS = 1000   # items in one migrate, replicate or hand-off copy (one frame: ≤ 1 MiB)


def keyed(wires: list, may_hold: Callable[[int], bool], source: str) -> tuple[list, int]:
    """The wires whose keys ``may_hold`` (checked before any signature), and how many were
    left out (a bad shape or someone else's key)."""
    kept, out = [], 0
    for wire in wires:
        try:
            key = wire_ring_key(wire)
        except ValueError:
            out += 1
            continue
        if may_hold(key):
            kept.append(wire)
        else:
            out += 1
    if out:
        log.warning("left out %d items from %s: malformed or for keys it may not give us",
                    out, source)
    return kept, out


def checked(wires: list, source: str, stamp: Callable[[], float]) -> list[Item]:
    """The items that verify, less what a direct request would be refused for (the future)."""
    items = []
    wall = stamp()
    for item in items_from_wire(wires, source):
        if isinstance(item, NameRecord) and item.seq > wall * 1000 + SKEW_MS:
            log.warning("dropped the name record of %r from %s: its sequence number is "
                        "too far in the future", item.nick, source)
            continue
        if isinstance(item, Channel):
            item = _present_day(item, wall + REPLAY_WINDOW, source)
        items.append(item)
    return items


def _present_day(ch: Channel, limit: float, source: str) -> Channel:
    def signed_at(m: Member) -> float:
        signed = m.signed if m.signed is not None else m.ended
        return float(signed.at) if signed is not None else m.stamp
    members = {k: m for k, m in ch.members.items() if signed_at(m) <= limit}
    modes = ch.modes.before(limit)   # a mode set "in the future" would outlast every change
    if len(members) == len(ch.members) and modes is ch.modes:
        return ch
    log.warning("dropped %d members and %s of #%s from %s: signed in the future",
                len(ch.members) - len(members),
                "no modes" if modes is ch.modes else "mode entries", ch.name, source)
    return Channel(ch.name, members, ch.log, ch.last_seq, ch.topic, modes)
