"""The chat service on a ``Local`` node: a thin facade that builds the parts, serves the
chat's wire, runs maintenance, and serves the local users (``add_user``).

The parts, each the one owner of its data: ``holdings`` (what the node maintains and
replicates; pure), ``names`` and ``channels`` (served for the keys the node owns),
``feeds`` (delivery to members), ``replication``, ``migration`` and ``takeover``
(hand-over), ``users`` (who is served here). docs/protocol.md describes the wire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from core import events as ev
from core.chord import Local, TaskSet, hex_id

from . import protocol as p
from .calls import Caller, now
from .channels import Channels
from .commands import check_nick
from .errors import ChatError, NickTaken
from .feeds import Feeds
from .holdings import Holdings, Range
from .journal import Journal
from .migration import Migration
from .names import Names
from .replication import Replication
from .state import Entry
from .takeover import Takeover
from .users import LocalUser

__all__ = ["ChatError", "ChatService", "LocalUser", "NickTaken", "Settings"]

log = logging.getLogger(__name__)


@dataclass
class Settings:
    """Tunables of the chat service (seconds unless said otherwise)."""
    replicas: int = 3               # r: successors that hold a copy of what a node maintains
    retry_for: float = 20.0         # how long a routed request or a send is retried
    maintenance_interval: float = 1.0  # rebalance, re-replicate, restart feeds
    prune_grace: float = 10.0       # a member unreachable this long is removed
    replica_ttl: float = 30.0       # a replica nobody refreshed this long is dropped


class ChatService:
    """The chat on one node. Build it before ``node.start()`` so its handlers are served.

    Args:
        node: the overlay node (started or not yet).
        post: called with the node-wide events (RingChange, Migration, RingStatus, Log, Bye).
        settings: a ``Settings``, or keyword overrides of its fields.
        stamp: the wall clock for stamps (joins, leaves, name records, log entries).
    """

    def __init__(self, node: Local, post: Callable[[ev.Event], None],
                 settings: Settings | None = None, *, stamp: Callable[[], float] = time.time,
                 **overrides) -> None:
        unknown = set(overrides) - {f.name for f in dataclasses.fields(Settings)}
        if unknown:
            raise TypeError(f"unknown chat setting(s) {', '.join(sorted(unknown))}")
        self.settings = s = dataclasses.replace(settings or Settings(), **overrides)
        self.node = node
        self.post = post
        self.users: dict[str, LocalUser] = {}
        self.holdings = Holdings()
        self.range = Range(node.is_ours)
        self._tasks = TaskSet()
        self.journal = Journal(node, self.holdings, post)
        self.caller = Caller(node, s.retry_for)
        self.feeds = Feeds(node, self.holdings, self.range,
                           lambda *a: self.channels.prune(*a), s.prune_grace)
        self.replication = Replication(node, self.holdings, s.replicas, self.feeds.wake)
        self.names = Names(node, self.holdings, self.range, self.caller, self.replication,
                           self.journal, stamp)
        self.channels = Channels(self.holdings, self.caller, self.replication, self.feeds,
                                 self.journal, stamp)
        self.migration = Migration(node, self.holdings, self.range, self.replication,
                                   self.feeds, self.journal, self._tasks)
        self.takeover = Takeover(node, self.holdings, self.range, self.replication,
                                 self.feeds, self.migration, self.journal, self._tasks)
        self._exit_task: asyncio.Task | None = None
        self.started = False
        p.serve(node, {**self.names.handlers(), **self.channels.handlers(),
                       **self.migration.handlers(), **self.takeover.handlers(),
                       p.REPLICATE: self.replication.rpc_replicate,
                       p.DELIVER: self.rpc_deliver, p.PRIVATE: self.rpc_private,
                       p.NAME_CONFLICT: self.rpc_name_conflict},
                self.range.serves)
        node.set_notify_handler(self.takeover.on_predecessor)
        node.add_listener(self._on_ring_event)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start maintenance; call after ``node.start()``."""
        if not self.started:
            self.started = True
            self._tasks.spawn(self._maintain())
            self.journal.status(force=True)

    @property
    def ready(self) -> bool:
        """Started, with at least one user, and not leaving."""
        return self.started and bool(self.users) and not self.range.leaving

    async def add_user(self, nick: str, post: Callable[[ev.Event], None]) -> LocalUser:
        """Serve a user: register its nick on the ring (NickTaken, ChatError); posts Ready."""
        check_nick(nick)
        if nick.lower() in self.users:
            raise NickTaken(f"the nick {nick!r} is already served by this node")
        if self.range.leaving:
            raise ChatError("this node is leaving the ring")
        user = LocalUser(nick, post, self.node, self.caller, self.names, self.channels,
                         self.journal)
        self.users[nick.lower()] = user
        try:
            await user.register()
        except BaseException:
            del self.users[nick.lower()]
            raise
        return user

    async def remove_user(self, user: LocalUser, reason: str = "exit") -> None:
        """The user quits: leaves its channels, its name record is deleted."""
        await user.quit(reason)
        self.users.pop(user.nick.lower(), None)

    async def exit(self) -> None:
        """Every user quits, then hand everything over and leave the ring; posts Bye."""
        if self._exit_task is None:
            self._exit_task = asyncio.ensure_future(self._exit())
        await asyncio.shield(self._exit_task)

    async def _exit(self) -> None:
        await asyncio.gather(*(self.remove_user(u) for u in list(self.users.values())))
        await self.depart()
        self.post(ev.Bye())

    async def depart(self) -> None:
        """Stop serving, hand everything maintained to the successor, leave the ring.

        The tail of the exit sequence; also what a node refused at start-up does, since it
        may already maintain state for others.
        """
        self.range.leaving = True
        await self._stop_tasks()
        await self.migration.hand_all_over()
        await self.node.leave()
        self.journal.migration("leave-ring", ("node", self.journal.me), self.journal.me, "-",
                               "left the ring")

    async def stop(self) -> None:
        """Stop the service's tasks without the exit sequence (for crashes and tests)."""
        self.range.leaving = True
        await self._stop_tasks()

    async def _stop_tasks(self) -> None:
        await self._tasks.cancel_all()
        await self.feeds.close()

    def status(self) -> ev.RingStatus:
        return self.journal.snapshot()

    # -- maintenance -----------------------------------------------------------------------

    async def _maintain(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self.settings.maintenance_interval)
            rounds += 1
            try:
                self.takeover.promote("maintenance")
                await self.migration.rebalance()
                self.feeds.ensure()
                self._after_merges()
                if rounds % 2 == 0:
                    await self.replication.replicate_all()
                self.holdings.drop_stale(now(), self.settings.replica_ttl)
                self.journal.status()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("chat maintenance failed")

    def _after_merges(self) -> None:
        """What copies that met leave to decide (a healed partition, a takeover): doubted
        members are asked, holders of one nick told; and each user says again that it is in
        the channels whose maintainer has gone quiet."""
        for channel, member in self.holdings.take_doubts():
            self._tasks.spawn(self.channels.readmit(channel, member))
        for kept, lost in self.holdings.take_conflicts():
            self._tasks.spawn(self.names.tell_conflict(kept, lost))
        for user in list(self.users.values()):
            self._tasks.spawn(user.keep_memberships(2 * self.settings.prune_grace))

    def _on_ring_event(self, kind: str, detail: dict) -> None:
        self.journal.ring_event(kind, detail)
        if kind == "successor" and self.started and not self.range.leaving:
            self._tasks.spawn(self.replication.replicate_all())

    # -- what the node serves for its users ------------------------------------------------

    async def rpc_deliver(self, d: dict) -> dict:
        user = self.users.get(d["to"].lower())
        if user is None:
            return {"member": False}
        return user.receive(d["channel"], [Entry.from_wire(x) for x in d["entries"]])

    async def rpc_name_conflict(self, d: dict) -> dict:
        user = self.users.get(d["nick"].lower())
        return user.name_conflict(d["kept"], d["lost"]) if user is not None else p.OK

    async def rpc_private(self, d: dict) -> dict:
        me, to_id = hex_id(self.node.id), d["to_id"].lower()
        if not me.startswith(to_id) or len(to_id) < 8:
            return {"ok": False, "error": f"this node's id is {me[:8]}, not {to_id[:8]}"}
        to = d.get("to")
        user = (self.users.get(to.lower()) if isinstance(to, str)
                else next(iter(self.users.values()), None))
        if user is None:
            return {"ok": False, "error": f"{to or 'nobody'} is not served by this node"}
        return user.receive_private(d)
