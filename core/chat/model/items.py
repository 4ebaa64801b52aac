"""The items a node keeps for the ring — channels, name records, mailboxes — as one kind:
their wire form, their merge, and the ``Items`` that holds them by (kind, name). No I/O here.

Each kind brings its own merge: a channel (core.chat.model.channel) is a union of members
and log, a name is a signed ``NameRecord`` (core.chat.model.records) of which the greater copy
wins, a mailbox (core.chat.model.mailbox) is a union of letters minus the taken ones. Every copy
is checked again where it arrives (``item_from_wire``): a name record that does not verify
is refused, a channel keeps only the members and entries that verify.
"""

from __future__ import annotations

import logging

from .channel import Channel
from .ids import channel_key, name_key, verified
from .mailbox import Mailbox
from .records import NameRecord, RecordError

log = logging.getLogger(__name__)

Item = Channel | NameRecord | Mailbox


def item_kind(item: Item) -> str:
    if isinstance(item, Mailbox):
        return "mailbox"
    return "channel" if isinstance(item, Channel) else "name"


def item_ref(item: Item) -> tuple[str, str]:
    """(kind, name): how a store indexes an item."""
    return item_kind(item), item.name


def item_to_wire(item: Item) -> dict:
    return {"kind": item_kind(item), "state": item.to_wire()}


def item_from_wire(d: object) -> Item:
    """An item from a copy, checked again: a name record must verify (ValueError if not);
    a channel keeps only the members and entries that verify."""
    if not isinstance(d, dict):
        raise ValueError("an item must be an object")
    kind = d.get("kind")
    if kind == "channel":
        return Channel.from_wire(d.get("state"))
    if kind == "mailbox":
        return Mailbox.from_wire(d.get("state"))
    if kind == "name":
        try:
            record = NameRecord.from_wire(d.get("state"))
        except RecordError as e:
            raise ValueError(str(e)) from None
        if not verified(record):
            raise ValueError(f"the name record of {record.nick!r} does not verify")
        return record
    raise ValueError(f"unknown item kind {kind!r}")


def wire_ring_key(d: object) -> int:
    """The ring key a copy of an item is for, read from its name alone: nothing verified
    (cheap, so a receiver can ask whether the key is its own before any signature).
    ValueError for a shape without a name."""
    if not isinstance(d, dict) or not isinstance(d.get("state"), dict):
        raise ValueError("an item is an object with a state")
    kind, state = d.get("kind"), d["state"]
    field_ = {"channel": "name", "name": "nick", "mailbox": "nick"}.get(kind)  # type: ignore[arg-type]
    name = state.get(field_) if field_ else None
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        raise ValueError(f"an item of kind {kind!r} without a name")
    return channel_key(name) if kind == "channel" else name_key(name)


def items_from_wire(wires: object, source: str) -> list[Item]:
    """The items of a copy that verify; each one left out is one log line."""
    items = []
    for wire in wires if isinstance(wires, list) else []:
        try:
            item = item_from_wire(wire)
        except (ValueError, TypeError) as e:
            log.warning("dropped an item from %s: %s", source, e)
            continue
        if isinstance(item, Channel) and item.dropped:
            log.warning("dropped %d members or entries of #%s from %s: not signed by their "
                        "authors", item.dropped, item.name, source)
        items.append(item)
    return items


def merge_items(a: Item | None, b: Item) -> Item:
    """Merge ``b`` into ``a`` (a may be missing)."""
    if a is None:
        return b
    return a.merge(b)  # type: ignore[arg-type]


class Items:
    """Items by (kind, name): what a node maintains, or the replicas it holds for others."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Item] = {}

    def get(self, kind: str, name: str) -> Item | None:
        return self.items.get((kind, name))

    def put(self, item: Item) -> Item:
        """Merge ``item`` in; return what is now stored."""
        ref = item_ref(item)
        merged = merge_items(self.items.get(ref), item)
        self.items[ref] = merged
        return merged

    def pop(self, kind: str, name: str) -> Item | None:
        return self.items.pop((kind, name), None)

    def channels(self) -> list[Channel]:
        return [i for i in self.items.values() if isinstance(i, Channel)]

    def mailboxes(self) -> list[Mailbox]:
        return [i for i in self.items.values() if isinstance(i, Mailbox)]

    def names(self) -> list[NameRecord]:
        return [i for i in self.items.values() if isinstance(i, NameRecord)]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(list(self.items.values()))
