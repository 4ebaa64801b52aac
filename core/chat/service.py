"""The chat service on a ``Local`` node: a thin facade that builds the parts, serves the
chat's wire, runs maintenance, and serves the local users (``add_user``).

The parts, each the one owner of its data: ``holdings`` (what the node maintains and
replicates; pure), ``names`` and ``channels`` (served for the keys the node owns),
``feeds`` (delivery to members), ``replication``, ``migration`` and ``takeover``
(hand-over), ``users`` (who is served here). docs/protocol.md describes the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from core import events as ev
from core.chord import Local, RpcError, TaskSet, hex_id
from core.chord.detour import detour_origin, ring_hosts
from core.chord.relay import caller_origin
from core.chord.robust import RobustLookup
from core.datadir import DataDir

from .model.commands import check_nick
from .model.errors import ChatError, NickTaken
from .model.holdings import Holdings, Range
from .model.limits import Limits
from .ring.channelcopies import ChannelCopies
from .ring.channels import Channels
from .ring.clock import PeerClock, describe
from .ring.feeds import Feeds
from .ring.journal import Journal
from .ring.mailboxes import Mailboxes
from .ring.migration import Migration
from .ring.namecopies import NameCopies
from .ring.names import ALIVE_KIND, Names, alive_fields
from .ring.neighbours import Neighbours
from .ring.relaying import configure as configure_relay
from .ring.replication import Replication
from .ring.takeover import Takeover
from .users.keyring import UserKeys, ephemeral, open_user
from .users.user import LocalUser
from .wire import verbs as p
from .wire.calls import Caller, now
from .wire.rate import RateLimiter

__all__ = ["ChatError", "ChatService", "LocalUser", "NickTaken", "Settings"]

log = logging.getLogger(__name__)

MAX_JOINS = Limits().members   # a delivery's 'joins' name at most a channel's members

CLOCK_EVERY = 30   # maintenance rounds between two measurements of the clock offset


@dataclass
class Settings:
    """Tunables of the chat service (seconds unless said otherwise)."""
    replicas: int = 3               # r: successors that hold a copy of what a node maintains
    replicas_per_prefix: int | None = None  # holders of a key in one IPv4 /24 or IPv6 /48
    #                                 at most (global addresses only; docs/security.md)
    robust_paths: int = 3           # name lookups: paths of the robust lookup, record read
    #                                 from owner and replicas (0: a plain routed get)
    robust_routes: bool = False     # every routed request (sends, joins, mail) finds its
    #                                 owner by the robust lookup too (about 4x the messages)
    retry_for: float = 20.0         # how long a routed request or a send is retried
    maintenance_interval: float = 1.0  # rebalance, re-replicate, restart feeds
    prune_grace: float = 10.0       # a member unreachable this long is removed
    replica_ttl: float = 30.0       # a replica nobody refreshed this long is dropped
    # what others may make this node keep or send (model/limits.py, docs/security.md)
    limits: Limits = dataclasses.field(default_factory=Limits)
    receipt_interval: float = 5.0   # how often a sender asks whether its mail was taken
    gap_grace: float = 1.0          # a gap in a delivery may stay open this long, then the
    #                                 member asks the replicas (users/gaps.py)
    echo_deadline: float = 15.0     # the user's own acknowledged message comes back within


class ChatService:
    """The chat on one node. Build it before ``node.start()`` so its handlers are served.

    Args:
        node: the overlay node (started or not yet).
        post: called with the node-wide events (RingChange, Migration, RingStatus, Log, Bye).
        settings: a ``Settings``, or keyword overrides of its fields.
        stamp: the wall clock, seconds: what users sign (joins, leaves, messages, name
            records) and what a maintainer checks their freshness against.
        data_dir: where each local user's key and pins are (None: ephemeral keys).
    """

    def __init__(self, node: Local, post: Callable[[ev.Event], None],
                 settings: Settings | None = None, *, stamp: Callable[[], float] = time.time,
                 data_dir: DataDir | None = None, **overrides) -> None:
        unknown = set(overrides) - {f.name for f in dataclasses.fields(Settings)}
        if unknown:
            raise TypeError(f"unknown chat setting(s) {', '.join(sorted(unknown))}")
        self.settings = s = dataclasses.replace(settings or Settings(), **overrides)
        self.node = node
        self.post = post
        self.clock = PeerClock(stamp)
        self.stamp = stamp = self.clock.now   # the ring's time (ring/clock.py)
        self.data_dir = data_dir
        self.users: dict[str, LocalUser] = {}
        self.holdings = Holdings()
        self.range = Range(node.is_ours)
        self._tasks = TaskSet()
        self.journal = Journal(node, self.holdings, post)
        robust = (RobustLookup(node, s.robust_paths, per_prefix=s.replicas_per_prefix)
                  if s.robust_paths > 0 else None)
        self.caller = Caller(node, s.retry_for, robust if s.robust_routes else None)
        self.feeds = Feeds(node, self.holdings, self.range,
                           lambda *a: self.channels.prune(*a), s.prune_grace)
        self.neighbours = Neighbours(node, s.replicas)
        self.replication = Replication(node, self.holdings, s.replicas, self.feeds.wake,
                                       self.neighbours, stamp,
                                       s.replicas_per_prefix)
        self.names = Names(node, self.holdings, self.range, self.caller, self.replication,
                           self.journal, lambda: int(stamp() * 1000), s.limits)
        self.name_copies = NameCopies(node, self.holdings, robust or RobustLookup(node),
                                      s.replicas, s.retry_for)
        if robust is not None:
            self.names.copies = self.name_copies   # lookups read owner and replicas
        self.channel_copies = ChannelCopies(node, self.holdings, self.name_copies.robust,
                                            s.replicas)
        self.channels = Channels(self.holdings, self.caller, self.replication, self.feeds,
                                 self.journal, stamp, s.limits)
        self.mailboxes = Mailboxes(self.holdings, self.caller, self.replication, self.journal,
                                   stamp, s.limits)
        self.rate = RateLimiter(s.limits)
        self.migration = Migration(node, self.holdings, self.range, self.replication,
                                   self.feeds, self.journal, self._tasks, self.neighbours,
                                   self.names.take_copy, stamp)
        self.takeover = Takeover(node, self.holdings, self.range, self.replication,
                                 self.feeds, self.migration, self.journal, self._tasks,
                                 self.neighbours, self.names.take_copy, stamp)
        self._exit_task: asyncio.Task | None = None
        self.started = False
        p.serve(node, {**self.names.handlers(), **self.name_copies.handlers(),
                       **self.channels.handlers(), **self.channel_copies.handlers(),
                       **self.mailboxes.handlers(),
                       **self.migration.handlers(), **self.takeover.handlers(),
                       p.REPLICATE: self.replication.rpc_replicate,
                       p.DELIVER: self.rpc_deliver, p.PRIVATE: self.rpc_private,
                       p.INVITED: self.rpc_invited,
                       p.USERS: self.rpc_users, p.NAME_CONFLICT: self.rpc_name_conflict,
                       p.NAME_ALIVE: self.rpc_name_alive,
                       p.MAIL_WAITING: self.rpc_mail_waiting, **self.clock.handlers()},
                self.range.serves, self.rate.admit)
        node.set_notify_handler(self.takeover.on_predecessor)
        node.add_listener(self._on_ring_event)
        configure_relay(node)

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

    async def add_user(self, nick: str, post: Callable[[ev.Event], None],
                       keys: UserKeys | None = None, store=None) -> LocalUser:
        """Serve a user: take its keys from the data directory (``keys.KeysError``: locked
        by another process, a bad key file), register its nick on the ring (NickTaken,
        ChatError); posts Ready. Keys passed in are released if the user is refused.

        Args:
            keys: the user's keys, already opened (the runtime opens them before the node
                starts, to fail early); else opened here from ``data_dir``.
            store: the user's database (``core.store.AsyncStore``; None: nothing is kept).
                Its recent history is posted first (``History``); once registered the
                user rejoins its channels and resends what was never acknowledged, in the
                background.
        """
        try:   # the keys are ours from here: released on every way out but success
            check_nick(nick)
            if nick.lower() in self.users:
                raise NickTaken(f"the nick {nick!r} is already served by this node")
            if self.range.leaving:
                raise ChatError("this node is leaving the ring")
            if keys is None:
                keys = open_user(self.data_dir, nick) if self.data_dir else ephemeral(nick)
            user = LocalUser(nick, post, self.node, self.caller, self.names, self.channels,
                             self.journal, keys, self.stamp, store, mailboxes=self.mailboxes,
                             spawn=self._tasks.spawn, copies=self.channel_copies,
                             limits=self.settings.limits,
                             receipt_interval=self.settings.receipt_interval,
                             grace=self.settings.gap_grace,
                             deadline=self.settings.echo_deadline)
        except BaseException:
            if keys is not None:
                keys.release()
            raise
        self.users[nick.lower()] = user
        user.local = lambda other: self.users.get(other.lower())
        try:
            await user.show_history()
            await self.check_clock(joining=len(self.users) == 1)
            await user.register()
        except BaseException:
            del self.users[nick.lower()]
            keys.release()
            raise
        self._tasks.spawn(user.resume())
        return user

    async def remove_user(self, user: LocalUser, reason: str = "exit") -> None:
        """The user quits: leaves its channels, its name record is deleted."""
        try:
            await user.quit(reason)
        finally:
            self.users.pop(user.nick.lower(), None)
            user.keys.release()

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
        # our successor list may lag the ring (a node that joined a moment ago, or one
        # that has not stabilized since others joined: alone by its list, with a
        # predecessor): one stabilize round first, so that what we maintain goes to a live
        # successor instead of being dropped as "no live successor", and the leave
        # splices our neighbours together instead of leaving each alone in a ring of its own
        with contextlib.suppress(RpcError, OSError):
            await self.node.stabilize()
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

    async def check_clock(self, joining: bool = False) -> None:
        """Measure our clock against the neighbours' (``PeerClock``); if the correction
        changed, tell every user by how much their clock is off."""
        changed = await self.clock.measure(self.node, joining)
        if changed is None:
            return
        if changed:
            text = (f"your clock is {describe(-changed)} the ring's (the median of "
                    f"its neighbours' clocks): this node signs and checks times with the "
                    f"ring's time; set your clock right to be rid of this note")
        else:
            text = "your clock agrees with the ring's again: no correction"
        for user in list(self.users.values()):
            user.post(ev.Info(text=text))
        self.journal.log(text)

    # -- maintenance -----------------------------------------------------------------------

    async def _maintain(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self.settings.maintenance_interval)
            if self.node.moving:
                continue   # between two addresses (Local.relocate): nothing is settled
            rounds += 1
            try:
                self.takeover.promote("maintenance")
                await self.migration.rebalance()
                self.feeds.ensure()
                self._after_merges()
                if rounds % 2 == 0:
                    await self.replication.replicate_all()
                if rounds % CLOCK_EVERY == 1:
                    self._tasks.spawn(self.check_clock())
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
        self._tasks.spawn(self.mailboxes.nudge_waiting(self.range.serves))
        for user in list(self.users.values()):
            self._tasks.spawn(user.keep_memberships(2 * self.settings.prune_grace))

    def _on_ring_event(self, kind: str, detail: dict) -> None:
        self.journal.ring_event(kind, detail)
        if kind == "moved" and self.started:
            # a client's new relay, or a new network (a client's, or a full member's that
            # started again at its new address: Local.relocate): its users say so again
            # from there; what the node kept at its old position is handed on to the
            # owners by the next rebalance
            for user in list(self.users.values()):
                self._tasks.spawn(user.moved())
            return
        if kind == "successor" and self.started and not self.range.leaving \
                and not self.node.moving:
            if self.node.successor().address == self.node.address:
                # alone now: every replica is ours. Promote at once, not at the next
                # maintenance round: a node joining meanwhile would find the range held
                # only as replicas, which its hand-off does not ask for
                self.takeover.promote("alone in the ring")
            self._tasks.spawn(self.replication.replicate_all())

    # -- what the node serves for its users ------------------------------------------------

    async def rpc_deliver(self, d: dict) -> dict:
        user = self.users.get(d["to"].lower())
        if user is None:
            return {"member": False}
        try:   # who says it delivers: only named in the ring log, never trusted
            maintainer = str(p.need_address(d, "maintainer"))
        except p.ProtocolError:
            maintainer = None
        origin = self._origin(d)   # who does deliver
        joins = d.get("joins")   # the maintainer's word on which joins stand (feeds.py)
        joins = ({k: v for k, v in list(joins.items())[:MAX_JOINS]
                  if isinstance(k, str) and isinstance(v, str)}
                 if isinstance(joins, dict) else {})
        reply = await user.receive(d["channel"], d["entries"], maintainer, origin, joins)
        if d.get("rejoin") is True and reply.get("last_seq") is not None:
            # its maintainer doubts it (a merge): say again, signed, that it is in
            self._tasks.spawn(user.rejoin(d["channel"]))
        return reply

    def _origin(self, d: dict) -> str | None:
        """The host a call being served came from: the connection's (a client's: the one
        its relay saw), or for a call that came round a cut through a ring node the host
        that node stamped (detour.py); None: this node's own call."""
        client = self.node.client
        origin = caller_origin(d, client.relay if client is not None else None)
        if client is None:
            origin = detour_origin(d, origin, ring_hosts(self.node))
        return origin

    def _ours(self, to_id: str) -> str | None:
        """Why ``to_id`` (an id, or a prefix of 8+ hex digits) is not this node's; None if it is."""
        me, to_id = hex_id(self.node.id), to_id.lower()
        if not me.startswith(to_id) or len(to_id) < 8:
            return f"this node's id is {me[:8]}, not {to_id[:8]}"
        return None

    async def rpc_mail_waiting(self, d: dict) -> dict:
        user = self.users.get(d["to"].lower())
        if user is not None:
            self._tasks.spawn(user.mail_waiting())
        return p.OK

    async def rpc_name_conflict(self, d: dict) -> dict:
        user = self.users.get(d["nick"].lower())
        return await user.name_conflict(d["kept"], d["lost"]) if user is not None else p.OK

    async def rpc_name_alive(self, d: dict) -> dict:
        """A name record's maintainer asks whether this node serves the holder of ``key``
        as ``nick``: the user signs the maintainer's nonce (``names.alive_fields``)."""
        user = self.users.get(d["nick"].lower())
        if user is None or user.identity.key != d["key"] or len(d["nonce"]) > 64:
            return {"ok": False}
        return {"ok": True, "sig": user.identity.sign(
            ALIVE_KIND, alive_fields(d["nick"], d["key"], d["nonce"]))}

    def _addressee(self, d: dict) -> tuple[LocalUser | None, dict | None]:
        """The user served here that a frame for ``d["to"]`` at ``d["to_id"]`` is for, or
        the answer that refuses it (another node's id, or no such user here)."""
        wrong = self._ours(d["to_id"])
        if wrong:
            return None, {"ok": False, "error": wrong}
        user = self.users.get(d["to"].lower())
        if user is None:
            return None, {"ok": False, "refused": "not_served",
                          "error": f"{d['to']} is not served by this node"}
        return user, None

    async def rpc_private(self, d: dict) -> dict:
        user, refused = self._addressee(d)
        return refused or await user.receive_private(d)

    async def rpc_invited(self, d: dict) -> dict:
        """An invitation for a user served here (``users/invitations.py`` checks it)."""
        user, refused = self._addressee(d)
        return refused or await user.receive_invitation(d, self._origin(d))

    async def rpc_users(self, d: dict) -> dict:
        """The signed name records of the users served here (for ``msg @id``)."""
        wrong = self._ours(d["to_id"])
        if wrong:
            return {"ok": False, "error": wrong}
        return {"ok": True, "records": [u.record.to_wire() for u in self.users.values()
                                        if u.record is not None and u.registered]}
