"""What the node reports about itself to its front ends: log lines, migration steps and its
place in the ring (a ``RingStatus`` whenever it changes)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from core import events as ev
from core.chord import Local
from core.chord.ids import hex_id

from ..model.channel import Channel
from ..model.holdings import Holdings
from ..model.items import Item, item_ref

log = logging.getLogger(__name__)


def ring_change(kind: str, detail: dict) -> ev.RingChange:
    """The overlay's ring event (a listener's ``kind, detail``) as an event of plain data."""
    def address(value: object) -> str | None:
        return None if value is None else str(value)

    if kind == "predecessor_suspected":
        return ev.RingChange(kind, old=address(detail.get("predecessor")))
    if kind == "started":
        return ev.RingChange(kind, new=address(detail.get("address")),
                             bootstrap=address(detail.get("bootstrap")))
    if kind == "fingers":
        return ev.RingChange(kind, count=int(detail.get("count", 0)))
    return ev.RingChange(kind, old=address(detail.get("old")), new=address(detail.get("new")))


class Journal:
    """The node-wide events: ``post`` gets Log, Migration, RingChange and RingStatus."""

    def __init__(self, node: Local, holdings: Holdings, post: Callable[[ev.Event], None]) -> None:
        self.node = node
        self.holdings = holdings
        self.post = post
        self._last_status: tuple | None = None

    @property
    def me(self) -> str:
        return str(self.node.address)

    def log(self, text: str) -> None:
        log.info("%s: %s", self.me, text)
        self.post(ev.Log(text=text))

    def migration(self, step: str, item: Item | tuple[str, str], from_: str, to: str,
                  detail: str = "") -> None:
        """One step of moving ``item`` (or a (kind, name) with no members) between nodes."""
        kind, key = item if isinstance(item, tuple) else item_ref(item)
        members = len(item.present()) if isinstance(item, Channel) else 0
        self.post(ev.MigrationStep(step=step, kind=kind, key=key, from_=from_, to=to,
                               members=members, detail=detail))
        log.info("migration %s %s %s %s -> %s %s", step, kind, key, from_, to, detail)

    def gap(self, channel: str, kind: str, maintainer: str, count: int,
            replica: str | None = None, detail: str = "") -> None:
        """A member found entries of ``channel`` missing (``users/gaps.py``)."""
        gap = ev.Gap(channel=channel, kind=kind, maintainer=maintainer, count=count,
                     replica=replica, detail=detail)
        self.post(gap)
        log.warning("%s: %s", self.me, gap.summary())

    def ring_event(self, kind: str, detail: dict) -> None:
        change = ring_change(kind, detail)
        log.info("%s: ring %s", self.me, change)
        self.post(change)
        self.status()

    def snapshot(self) -> ev.RingStatus:
        pred = self.node.predecessor()
        held = self.holdings.maintained
        return ev.RingStatus(id=hex_id(self.node.id), address=self.me,
                             predecessor=str(pred.address) if pred else None,
                             successor=str(self.node.successor().address),
                             channels=len(held.channels()),
                             names=len([n for n in held.names() if n.present]))

    def replica_counts(self) -> tuple[int, int]:
        """(channels, names) this node keeps as replicas for the nodes before it."""
        held = self.holdings.replicas
        return len(held.channels()), len([n for n in held.names() if n.present])

    def status(self, force: bool = False) -> None:
        """Post the node's RingStatus if it changed (or ``force``)."""
        status = self.snapshot()
        key = (status.predecessor, status.successor, status.channels, status.names)
        if force or key != self._last_status:
            self._last_status = key
            self.post(status)
