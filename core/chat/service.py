"""The chat service on a ``Local`` node: name maps, channels, private messages, migration,
replication, takeover and the exit sequence. docs/protocol.md describes the wire side.

The user's side is a handful of async methods (``msg``, ``join``, ``leave``, ``send``,
``exit``) that raise ``ChatError`` and post events; ``execute`` runs a parsed command and
turns errors into ``Error`` events. The maintainer's side are the ``_serve_*`` handlers.
A routed request is served only by the node that owns its key *and* holds its state;
every other node answers ``moved`` and the caller looks the owner up again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core import events as ev
from core.chord import Address, Local, Remote, RemoteError, RpcError
from core.chord.ids import hex_id, in_half_open, in_open, short_id

from . import protocol as p
from .commands import Command, check_nick
from .state import (
    Channel,
    Entry,
    Item,
    Member,
    NameMap,
    Store,
    channel_key,
    item_from_wire,
    item_kind,
    item_ref,
    item_to_wire,
    name_key,
    new_id,
)

log = logging.getLogger(__name__)

SEEN_LIMIT = 10_000  # message ids a receiver remembers to drop duplicates


class ChatError(Exception):
    """A user command that could not be carried out; the message says what and why."""


class NickTaken(ChatError):
    """The nick is held by another live node."""


@dataclass
class Settings:
    """Tunables of the chat service (seconds unless said otherwise)."""
    replicas: int = 3               # r: successors that hold a copy of what a node maintains
    retry_for: float = 20.0         # how long a routed request or a send is retried
    maintenance_interval: float = 1.0  # rebalance, re-replicate, restart feeds
    prune_grace: float = 10.0       # a member unreachable this long is removed
    replica_ttl: float = 30.0       # a replica nobody refreshed this long is dropped


@dataclass
class _Membership:
    """A channel the user is in: what it has shown, to drop duplicates and keep the order."""
    channel: str
    joining: bool = True
    last_seq: int = 0
    seen: collections.OrderedDict = field(default_factory=collections.OrderedDict)

    def remember(self, msg_id: str) -> bool:
        """True the first time ``msg_id`` is seen."""
        if msg_id in self.seen:
            return False
        self.seen[msg_id] = None
        if len(self.seen) > SEEN_LIMIT:
            self.seen.popitem(last=False)
        return True


@dataclass
class _Feed:
    """The maintainer's delivery cursor for one member of one channel."""
    channel: str
    address: str
    cursor: int | None = None      # last seq the member confirmed; None: ask it
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    failing_since: float | None = None
    last_contact: float = 0.0


class ChatService:
    """The chat on one node. Build it before ``node.start()`` so its handlers are served.

    Args:
        node: the overlay node (started or not yet).
        nick: this user's nickname.
        post: called with every ``core.events`` event, on the event loop's thread.
        settings: a ``Settings``, or keyword overrides of its fields.
    """

    def __init__(self, node: Local, nick: str, post: Callable[[ev.Event], None],
                 settings: Settings | None = None, **overrides) -> None:
        self.node = node
        self.nick = check_nick(nick)
        self.post = post
        self.settings = settings or Settings()
        for k, v in overrides.items():
            if not hasattr(self.settings, k):
                raise TypeError(f"unknown chat setting {k!r}")
            setattr(self.settings, k, v)
        self.primary = Store()       # what this node maintains
        self.replicas = Store()      # copies of what its predecessors maintain
        self._replica_seen: dict[tuple[str, str], float] = {}
        self.joined: dict[str, _Membership] = {}
        self._seen_private: collections.OrderedDict = collections.OrderedDict()
        self._feeds: dict[tuple[str, str], _Feed] = {}
        self._deferred: set[tuple[str, str]] = set()   # hand-overs the receiver put off
        self._safe: dict[str, int] = {}  # per channel: entries up to here are replicated
        self._lock = asyncio.Lock()
        self._name_locks: dict[str, asyncio.Lock] = {}
        self._pulls = 0   # hand-off requests to the successor still running
        self._leaving = False
        self._exit_task: asyncio.Task | None = None
        self._joined_ring_via_bootstrap = node.bootstrap is not None
        self._had_predecessor = False
        self._maintenance: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self._last_status: tuple | None = None
        self.ready = False
        handlers = {
            p.NAME_SET: self._serve_name_set, p.NAME_GET: self._serve_name_get,
            p.NAME_DEL: self._serve_name_del, p.CHANNEL_JOIN: self._serve_join,
            p.CHANNEL_LEAVE: self._serve_leave, p.CHANNEL_SEND: self._serve_send,
            p.DELIVER: self._serve_deliver, p.PRIVATE: self._serve_private,
            p.MIGRATE: self._serve_migrate, p.REPLICATE: self._serve_replicate,
            p.HANDOFF: self._serve_handoff,
        }
        for type_, handler in handlers.items():
            node.register_command(type_, handler)
        node.set_notify_handler(self._on_predecessor)
        node.add_listener(self._on_ring_event)

    # == the user's side ==================================================================

    @property
    def address(self) -> str:
        return str(self.node.address)

    @property
    def id_hex(self) -> str:
        return hex_id(self.node.id)

    async def start(self) -> ev.Ready:
        """Register the nick (raises NickTaken if a live node holds it) and start maintenance."""
        reply = await self._route(name_key(self.nick), p.NAME_SET,
                                  {"nick": self.nick, "address": self.address, "id": self.id_hex},
                                  f"registering the nick {self.nick!r}")
        if not reply.get("ok"):
            raise NickTaken(f"the nick {self.nick!r} is already taken by the node at "
                            f"{reply.get('holder', '?')}")
        self._maintenance = asyncio.create_task(self._maintain())
        self.ready = True
        ready = ev.Ready(nick=self.nick, id=self.id_hex, address=self.address)
        self.post(ready)
        self._post_status(force=True)
        return ready

    async def execute(self, command: Command) -> object:
        """Run a parsed command; a ChatError becomes an Error event. Returns its result."""
        try:
            if command.name == "msg":
                return await self.msg(*command.args)
            if command.name == "join":
                return await self.join(*command.args)
            if command.name == "leave":
                return await self.leave(*command.args)
            if command.name == "send":
                return await self.send(*command.args)
            if command.name == "status":
                status = self.status()
                self.post(ev.Info(text=self.status_text()))
                return status
            if command.name == "exit":
                return await self.exit()
            raise ChatError(f"the command {command.name!r} is not run by the chat service")
        except ChatError as e:
            self.post(ev.Error(message=str(e)))
            return None

    async def msg(self, target: str, text: str) -> str:
        """Send a private message to a nick, or to a node id given as ``@<hex prefix>``."""
        msg_id = new_id()
        payload = {"msg_id": msg_id, "from": self.nick, "from_id": self.id_hex,
                   "from_address": self.address, "text": text}
        if target.startswith("@"):
            shown = target
            await self._msg_by_id(target[1:].lower(), payload)
        else:
            check_nick(target)
            reply = await self._route(name_key(target), p.NAME_GET, {"nick": target},
                                      f"looking up {target!r}")
            if not reply.get("ok"):
                raise ChatError(f"unknown nick {target!r}: no node has registered it")
            address, shown = Address.from_wire(reply["address"]), reply["nick"]
            reply = await self._call_retrying(address, p.PRIVATE, {**payload, "to_id": reply["id"]},
                                              f"sending to {shown} at {address}",
                                              give_up_after=min(self.settings.retry_for, 8.0))
            if not reply.get("ok"):
                raise ChatError(f"{shown} at {address} refused the message: {reply.get('error')}")
        self.post(ev.PrivateMessage(from_=self.nick, to=shown, text=text, msg_id=msg_id,
                                    outgoing=True))
        return msg_id

    async def _msg_by_id(self, prefix: str, payload: dict) -> None:
        """Deliver to the node whose id starts with ``prefix``: the owner of prefix00…0.

        The receiver checks the id itself; while the ring settles the lookup may name
        another node, so a refusal is retried for a few seconds before it is final.
        """
        key = int(prefix.ljust(40, "0"), 16)
        deadline = time.monotonic() + min(self.settings.retry_for, 3.0)
        while True:
            owner, _ = await self._find(key, f"finding the node @{prefix}")
            reply = await self._call_retrying(owner.address, p.PRIVATE,
                                              {**payload, "to_id": prefix},
                                              f"sending to @{prefix} at {owner.address}",
                                              give_up_after=min(self.settings.retry_for, 8.0))
            if reply.get("ok"):
                return
            if time.monotonic() > deadline:
                raise ChatError(f"no node has an id starting with {prefix}")
            await asyncio.sleep(0.2)

    async def join(self, channel: str) -> list[str]:
        """Join a channel; its members and recent history come back. Returns the members."""
        if channel in self.joined:
            raise ChatError(f"you are already in #{channel}")
        membership = self.joined[channel] = _Membership(channel)
        try:
            reply = await self._route(channel_key(channel), p.CHANNEL_JOIN,
                                      {"channel": channel, "nick": self.nick,
                                       "address": self.address}, f"joining #{channel}")
        except ChatError:
            self.joined.pop(channel, None)
            raise
        membership.joining = False
        history = [Entry.from_wire(e) for e in reply.get("history", [])]
        membership.last_seq = max(membership.last_seq, int(reply.get("last_seq", 0)))
        members = tuple(reply.get("members", []))
        self.post(ev.Joined(channel=channel, members=members))
        for e in history:
            if membership.remember(e.msg_id):
                self.post(ev.ChannelMessage(channel=channel, from_=e.nick, text=e.text,
                                            msg_id=e.msg_id, seq=e.seq, history=True))
        return list(members)

    async def leave(self, channel: str) -> str:
        """Leave a channel the user joined (an Error if it did not); returns its maintainer."""
        if channel not in self.joined:
            raise ChatError(f"you are not in #{channel}")
        del self.joined[channel]
        reply = await self._route(channel_key(channel), p.CHANNEL_LEAVE,
                                  {"channel": channel, "nick": self.nick, "address": self.address},
                                  f"leaving #{channel}")
        self.post(ev.Left(channel=channel))
        return reply["via"]

    async def send(self, channel: str, text: str) -> tuple[str, int]:
        """Send to a channel; returns (msg_id, seq) once the maintainer acknowledged it.

        Retried (same id, so never shown twice) until acknowledged or ``retry_for`` passes.
        """
        msg_id = new_id()
        reply = await self._route(channel_key(channel), p.CHANNEL_SEND,
                                  {"channel": channel, "nick": self.nick, "address": self.address,
                                   "msg_id": msg_id, "text": text}, f"sending to #{channel}")
        seq = int(reply["seq"])
        self.post(ev.Sent(channel=channel, text=text, msg_id=msg_id, seq=seq,
                          members=int(reply.get("members", 0))))
        return msg_id, seq

    async def exit(self) -> None:
        """The exit sequence: leave channels, delete the name map, hand everything over, leave."""
        if self._exit_task is None:
            self._exit_task = asyncio.ensure_future(self._exit())
        await asyncio.shield(self._exit_task)

    async def _exit(self) -> None:
        me = self.address
        for channel in list(self.joined):
            try:
                via = await self.leave(channel)
                self._migration("leave", "channel", channel, me, via, detail="exit")
            except ChatError as e:
                self.post(ev.Error(message=f"could not leave #{channel} on exit: {e}"))
        if self.ready:
            try:
                reply = await self._route(name_key(self.nick), p.NAME_DEL,
                                          {"nick": self.nick, "address": me},
                                          "deleting the name map")
                self._migration("unname", "name", self.nick, me, reply["via"], detail="exit")
            except ChatError as e:
                self.post(ev.Error(message=f"could not delete the name map on exit: {e}"))
        await self.depart()
        self.post(ev.Bye())

    async def depart(self) -> None:
        """Stop serving, hand everything maintained to the successor, leave the ring.

        The tail of the exit sequence; also what a node refused at start-up does, since it
        may already maintain state for others.
        """
        me = self.address
        self._leaving = True
        await self._stop_tasks()
        async with self._lock:
            for item in list(self.primary):
                for successor in self.node.successors():
                    if successor.address == self.node.address:
                        continue
                    if await self._hand_over(item, successor, keep_replica=False,
                                             exiting=True):
                        break
                else:
                    self.primary.pop(*item_ref(item))
                    self._migration("drop", item_kind(item), item.name, me, "-",
                                    detail="no live successor to hand it to")
        await self.node.leave()
        self._migration("leave-ring", "node", self.nick, me, "-", detail="left the ring")

    async def stop(self) -> None:
        """Stop the service's tasks without the exit sequence (for crashes and tests)."""
        self._leaving = True
        await self._stop_tasks()

    async def _stop_tasks(self) -> None:
        tasks = [t for t in (self._maintenance, *self._background,
                             *(f.task for f in self._feeds.values())) if t is not None]
        current = asyncio.current_task()
        tasks = [t for t in tasks if t is not current]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._feeds.clear()

    def status(self) -> ev.RingStatus:
        pred = self.node.predecessor()
        return ev.RingStatus(id=self.id_hex, address=self.address,
                             predecessor=str(pred.address) if pred else None,
                             successor=str(self.node.successor().address),
                             channels=len(self.primary.channels()),
                             names=len([n for n in self.primary.names() if n.present]))

    def status_text(self) -> str:
        s = self.status()
        return (f"{self.nick} id {s.id} at {s.address}; predecessor {s.predecessor or '-'}, "
                f"successor {s.successor}; maintains {s.channels} channel(s) and {s.names} "
                f"name(s); holds {len(self.replicas)} replica(s); in "
                f"{', '.join('#' + c for c in sorted(self.joined)) or 'no channel'}")

    # -- calling others --------------------------------------------------------------------

    async def _find(self, key: int, what: str) -> tuple[Remote, int]:
        try:
            return await self.node.find_successor(key)
        except RpcError as e:
            raise ChatError(f"{what}: {e}") from None

    async def _route(self, key: int, type_: str, payload: dict, what: str) -> dict:
        """Send a request to the owner of ``key``; look up again while answered ``moved``."""
        deadline = time.monotonic() + self.settings.retry_for
        delay, avoid, last = 0.02, set(), "no answer"
        payload = {**payload, "key": f"{key:x}"}
        attempt = 0
        while True:
            attempt += 1
            owner = None
            try:
                owner, _ = await self.node.find_successor(key, avoid=avoid)
                reply = await self.node.user_command(owner, type_, payload)
                if not isinstance(reply, dict):
                    raise ChatError(f"{what}: {owner.address} answered nonsense")
                if not reply.get("moved"):
                    reply = {"via": str(owner.address), **reply}
                    return reply
                last = f"{owner.address} does not keep it (yet)"
            except RemoteError as e:
                raise ChatError(f"{what}: {e}") from None
            except RpcError as e:
                last = str(e)
                if owner is not None and owner.address != self.node.address:
                    avoid.add(owner.address)
            except (ValueError, KeyError, TypeError) as e:  # our own handler, called locally
                log.exception("%s failed", what)
                raise ChatError(f"{what}: {type(e).__name__}: {e}") from None
            if attempt % 8 == 0:
                avoid.clear()  # a suspect may have come back
            if time.monotonic() + delay > deadline:
                raise ChatError(f"{what}: gave up after {self.settings.retry_for:g} s ({last})")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _call_retrying(self, address: Address, type_: str, payload: dict, what: str,
                             give_up_after: float) -> dict:
        deadline = time.monotonic() + give_up_after
        delay = 0.05
        while True:
            try:
                reply = await self.node.user_command(address, type_, payload)
                if not isinstance(reply, dict):
                    raise ChatError(f"{what}: the node answered nonsense")
                return reply
            except RemoteError as e:
                raise ChatError(f"{what}: {e}") from None
            except RpcError as e:
                if time.monotonic() + delay > deadline:
                    raise ChatError(f"{what}: the node is unreachable ({e})") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    # == the maintainer's side ============================================================

    @property
    def _syncing(self) -> bool:
        return self._pulls > 0

    def _serving(self, key: int) -> bool:
        """True when this node owns ``key`` and holds its state (not syncing, not leaving)."""
        return self.node.is_ours(key) and not self._syncing and not self._leaving

    def _stamp(self, *older: float) -> float:
        return max([time.time(), *(o + 1e-6 for o in older)])

    async def _serve_name_set(self, payload: object) -> dict:
        d = p.need(payload, nick=str, address=str, id=str)
        key, nick, address = p.key_of(d), check_nick(d["nick"]), p.need_address(d)
        if not self._serving(key):
            return p.MOVED
        lock = self._name_locks.setdefault(nick.lower(), asyncio.Lock())
        async with lock:  # two claims of one nick are decided one after the other
            current = self.primary.get("name", nick.lower())
            if (isinstance(current, NameMap) and current.present
                    and current.address != str(address)):
                if await self._alive(Address.from_wire(current.address)):
                    self._log(f"refused the nick {nick} to {address}: held by {current.address}")
                    return {"ok": False, "holder": current.address}
                self._log(f"the nick {nick} passes from dead {current.address} to {address}")
            if not self._serving(key):
                return p.MOVED
            entry = NameMap(nick, str(address), d["id"],
                            self._stamp(current.stamp if current else 0.0))
            self.primary.put(entry)
        await self._replicate([entry])
        self._log(f"name map {nick} -> {address}")
        self._post_status()
        return {"ok": True}

    async def _alive(self, address: Address) -> bool:
        """Whether a node answers; asked twice with a generous timeout, because a wrong
        "dead" would hand a live user's nick to someone else (a dead process refuses the
        connection at once, so this is quick when it matters)."""
        holder = Remote(address, self.node.transport)
        for _ in range(2):
            if await holder.ping(timeout=max(3.0, 2 * self.node.timeout)):
                return True
        return False

    async def _serve_name_get(self, payload: object) -> dict:
        d = p.need(payload, nick=str)
        key = p.key_of(d)
        if not self._serving(key):
            return p.MOVED
        entry = self.primary.get("name", d["nick"].lower())
        if not isinstance(entry, NameMap) or not entry.present:
            return {"ok": False}
        return {"ok": True, "nick": entry.nick, "address": entry.address, "id": entry.node_id}

    async def _serve_name_del(self, payload: object) -> dict:
        d = p.need(payload, nick=str, address=str)
        key = p.key_of(d)
        if not self._serving(key):
            return p.MOVED
        current = self.primary.get("name", d["nick"].lower())
        if not isinstance(current, NameMap) or current.address != d["address"]:
            return {"ok": False}
        entry = NameMap(current.nick, current.address, current.node_id,
                        self._stamp(current.stamp), present=False)
        self.primary.put(entry)
        await self._replicate([entry])
        self._log(f"name map {current.nick} deleted")
        self._post_status()
        return {"ok": True}

    def _channel(self, name: str) -> Channel:
        ch = self.primary.get("channel", name)
        if not isinstance(ch, Channel):
            ch = Channel(name)
            self.primary.put(ch)
            self._post_status()
        return ch

    def _member_stamp(self, ch: Channel) -> float:
        return self._stamp(*(m.stamp for m in ch.members.values()))

    async def _serve_join(self, payload: object) -> dict:
        d = p.need(payload, channel=str, nick=str, address=str)
        key, address = p.key_of(d), str(p.need_address(d))
        if not self._serving(key):
            return p.MOVED
        ch = self._channel(d["channel"])
        self._safe.setdefault(ch.name, ch.last_seq)
        if ch.set_member(Member(d["nick"], address, self._member_stamp(ch))):
            ch.append("join", d["nick"], at=time.time())
            self._log(f"#{ch.name}: {d['nick']} joined ({len(ch.present())} members)")
        feed = self._feed(ch.name, address)
        feed.cursor = ch.last_seq
        await self._commit(ch)
        return {"ok": True, "members": [m.nick for m in ch.present()],
                "history": [e.to_wire() for e in ch.history()], "last_seq": ch.last_seq}

    async def _serve_leave(self, payload: object) -> dict:
        d = p.need(payload, channel=str, nick=str, address=str)
        key, address = p.key_of(d), str(p.need_address(d))
        if not self._serving(key):
            return p.MOVED
        ch = self.primary.get("channel", d["channel"])
        if not isinstance(ch, Channel) or not ch.is_member(address):
            return {"ok": True, "member": False}
        self._remove_member(ch, address, d["nick"], "left")
        await self._commit(ch)
        return {"ok": True, "member": True}

    def _remove_member(self, ch: Channel, address: str, nick: str, reason: str) -> None:
        self._safe.setdefault(ch.name, ch.last_seq)
        ch.set_member(Member(nick, address, self._member_stamp(ch), present=False))
        ch.append("leave", nick, text=reason, at=time.time())
        feed = self._feeds.pop((ch.name, address), None)
        if feed is not None and feed.task is not None and feed.task is not asyncio.current_task():
            feed.task.cancel()
        self._log(f"#{ch.name}: {nick} {reason} ({len(ch.present())} members)")

    async def _serve_send(self, payload: object) -> dict:
        d = p.need(payload, channel=str, nick=str, msg_id=str, text=str)
        key = p.key_of(d)
        if not self._serving(key):
            return p.MOVED
        ch = self._channel(d["channel"])
        self._safe.setdefault(ch.name, ch.last_seq)
        entry, _ = ch.append("msg", d["nick"], d["text"], d["msg_id"], at=time.time())
        if entry.seq > self._safe[ch.name]:
            await self._commit(ch)  # acknowledged (and delivered) once the replicas have it
        if entry.seq > self._safe.get(ch.name, entry.seq):
            # our first successor did not take the copy: no ack yet, the sender retries
            # (the id is known, so the retry is not stored twice)
            return {"moved": True, "why": "the replica did not answer"}
        return {"ok": True, "seq": entry.seq, "members": len(ch.present())}

    async def _commit(self, ch: Channel) -> None:
        """Replicate a changed channel, then let the feeds deliver what changed.

        Members see an entry only after the replicas hold it, so a successor that takes
        over never reuses a sequence number a member has already seen.
        """
        # a delta suffices (merging is a union): all members, the entries not yet copied
        base = self._safe.get(ch.name, 0)
        await self._replicate([Channel(ch.name, dict(ch.members), ch.after(base), ch.last_seq)])
        self._wake(ch)

    # -- delivery to members (one feed per member, in order) --------------------------------

    def _feed(self, channel: str, address: str) -> _Feed:
        feed = self._feeds.get((channel, address))
        if feed is None:
            feed = self._feeds[(channel, address)] = _Feed(channel, address)
        if (feed.task is None or feed.task.done()) and not self._leaving:
            feed.task = asyncio.ensure_future(self._run_feed(feed))
        return feed

    def _wake(self, ch: Channel) -> None:
        for m in ch.present():
            self._feed(ch.name, m.address).wake.set()

    def _ensure_feeds(self) -> None:
        for ch in self.primary.channels():
            if self._serving(ch.key):
                for m in ch.present():
                    self._feed(ch.name, m.address)
        for ref, feed in list(self._feeds.items()):
            ch = self.primary.get("channel", ref[0])
            if not isinstance(ch, Channel) or not ch.is_member(ref[1]):
                if feed.task is not None:
                    feed.task.cancel()
                del self._feeds[ref]

    async def _run_feed(self, feed: _Feed) -> None:
        """Deliver a channel's entries to one member in sequence order, until it leaves."""
        interval = max(self.settings.prune_grace / 3, 0.2)
        delay = 0.05
        while True:
            ch = self.primary.get("channel", feed.channel)
            if (not isinstance(ch, Channel) or not self._serving(ch.key)
                    or not ch.is_member(feed.address)
                    or self._feeds.get((feed.channel, feed.address)) is not feed):
                return
            safe = self._safe.get(ch.name, ch.last_seq)
            entries = [e for e in (ch.log if feed.cursor is None else ch.after(feed.cursor))
                       if e.seq <= safe]
            now = time.monotonic()
            if entries or feed.cursor is None or now - feed.last_contact > interval:
                try:
                    reply = await self.node.user_command(
                        Address.from_wire(feed.address), p.DELIVER,
                        {"channel": ch.name, "maintainer": self.address,
                         "entries": [e.to_wire() for e in entries]})
                except RpcError as e:
                    feed.failing_since = feed.failing_since or now
                    if now - feed.failing_since >= self.settings.prune_grace:
                        nick = ch.members[feed.address].nick
                        self._remove_member(ch, feed.address, nick, "pruned")
                        self._log(f"#{ch.name}: pruned {nick} at {feed.address}: {e}")
                        await self._commit(ch)
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                delay = 0.05
                feed.failing_since = None
                feed.last_contact = time.monotonic()
                if isinstance(reply, dict) and reply.get("member") is False:
                    ch = self.primary.get("channel", feed.channel)
                    if isinstance(ch, Channel) and ch.is_member(feed.address):
                        nick = ch.members[feed.address].nick
                        self._remove_member(ch, feed.address, nick, "gone")
                        await self._commit(ch)
                    return
                last = reply.get("last_seq") if isinstance(reply, dict) else None
                if last is None:  # the member is still joining: ask again shortly
                    await asyncio.sleep(0.05)
                    continue
                feed.cursor = int(last)
                continue
            feed.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(feed.wake.wait(), interval)

    async def _serve_deliver(self, payload: object) -> dict:
        d = p.need(payload, channel=str, entries=list)
        membership = self.joined.get(d["channel"])
        if membership is None:
            return {"member": False}
        if membership.joining:
            return {"member": True, "last_seq": None}
        for e in sorted((Entry.from_wire(x) for x in d["entries"]), key=lambda e: e.seq):
            if e.seq <= membership.last_seq or not membership.remember(e.msg_id):
                continue
            membership.last_seq = e.seq
            if e.kind == "msg":
                self.post(ev.ChannelMessage(channel=d["channel"], from_=e.nick, text=e.text,
                                            msg_id=e.msg_id, seq=e.seq))
            elif e.nick != self.nick:
                if e.kind == "join":
                    self.post(ev.MemberJoined(channel=d["channel"], nick=e.nick))
                elif e.kind == "leave":
                    self.post(ev.MemberLeft(channel=d["channel"], nick=e.nick,
                                            reason=e.text or "left"))
        return {"member": True, "last_seq": membership.last_seq}

    async def _serve_private(self, payload: object) -> dict:
        d = p.need(payload, msg_id=str, to_id=str, text=str)
        sender = d.get("from")
        if not isinstance(sender, str):
            raise p.ProtocolError("'from' must be a string")
        to_id = d["to_id"].lower()
        if not self.id_hex.startswith(to_id) or len(to_id) < 8:
            return {"ok": False, "error": f"this node's id is {short_id(self.node.id)}, "
                                          f"not {to_id[:8]}"}
        if d["msg_id"] not in self._seen_private:
            self._seen_private[d["msg_id"]] = None
            if len(self._seen_private) > SEEN_LIMIT:
                self._seen_private.popitem(last=False)
            self.post(ev.PrivateMessage(from_=sender, to=self.nick, text=d["text"],
                                        msg_id=d["msg_id"]))
        return {"ok": True}

    # -- migration, replication, takeover ----------------------------------------------------

    def _migration(self, step: str, kind: str, key: str, from_: str, to: str,
                   members: int = 0, detail: str = "") -> None:
        self.post(ev.Migration(step=step, kind=kind, key=key, from_=from_, to=to,
                               members=members, detail=detail))
        log.info("migration %s %s %s %s -> %s %s", step, kind, key, from_, to, detail)

    @staticmethod
    def _size(item: Item) -> int:
        return len(item.present()) if isinstance(item, Channel) else 0

    async def _hand_over(self, item: Item, to: Remote, keep_replica: bool = True,
                         exiting: bool = False) -> bool:
        """Migrate one item: copy it to ``to``, wait for its ack, then delete it here.

        The receiver accepts only keys it owns (unless we are exiting and it is our
        successor); a node that does not own the key yet answers ``moved`` and the item
        stays here until a later rebalance or the receiver's hand-off request.
        """
        me, there = self.address, str(to.address)
        kind, name = item_ref(item)
        while True:
            wire = item_to_wire(item)
            if (kind, name) not in self._deferred:
                self._migration("send", kind, name, me, there, self._size(item))
            try:
                reply = await self.node.user_command(
                    to, p.MIGRATE, {"from": me, "items": [wire], "exit": exiting},
                    timeout=max(self.node.timeout, 5.0))
            except RpcError as e:
                self._migration("failed", kind, name, me, there, self._size(item), str(e))
                return False
            if isinstance(reply, dict) and reply.get("moved"):
                if (kind, name) not in self._deferred:
                    self._deferred.add((kind, name))
                    self._migration("deferred", kind, name, me, there, self._size(item),
                                    "the receiver does not own it yet; kept here meanwhile")
                return False
            if not (isinstance(reply, dict) and reply.get("ok")):
                self._migration("failed", kind, name, me, there, self._size(item),
                                f"refused: {reply!r}")
                return False
            self._deferred.discard((kind, name))
            self._migration("ack", kind, name, me, there, self._size(item))
            current = self.primary.get(kind, name)
            if current is not None and item_to_wire(current) != wire:
                item = current  # it changed while in flight (a merge): send the union again
                continue
            self.primary.pop(kind, name)
            if keep_replica:
                self.replicas.put(item)
                self._replica_seen[(kind, name)] = time.monotonic()
            for ref in [r for r in self._feeds if kind == "channel" and r[0] == name]:
                feed = self._feeds.pop(ref)
                if feed.task is not None:
                    feed.task.cancel()
            self._migration("delete", kind, name, me, there, self._size(item))
            self._post_status()
            return True

    async def _serve_migrate(self, payload: object) -> dict:
        d = p.need(payload, items=list)
        sender = str(d.get("from", "?"))
        items = [item_from_wire(p.need(wire, kind=str, state=dict)) for wire in d["items"]]
        if not d.get("exit") and (self._leaving or
                                  not all(self.node.is_ours(item.key) for item in items)):
            return p.MOVED  # only the owner takes state over: no copy parked on a bystander
        accepted = []
        for item in items:
            ref = item_ref(item)
            replica = self.replicas.pop(*ref)
            self._replica_seen.pop(ref, None)
            if replica is not None:
                self.primary.put(replica)
            merged = self.primary.put(item)
            if ref[0] == "channel":
                self._safe.pop(ref[1], None)  # the old maintainer replicated it
            accepted.append(merged)
            self._migration("receive", ref[0], ref[1], sender, self.address, self._size(merged))
        self._ensure_feeds()
        self._spawn(self._replicate(accepted))
        self._post_status()
        return {"ok": True, "accepted": len(accepted)}

    async def _serve_replicate(self, payload: object) -> dict:
        d = p.need(payload, items=list)
        now = time.monotonic()
        for wire in d["items"]:
            item = item_from_wire(p.need(wire, kind=str, state=dict))
            ref = item_ref(item)
            if self.primary.get(*ref) is not None:
                continue  # we maintain it ourselves now (a migration raced the replica)
            self.replicas.put(item)
            self._replica_seen[ref] = now
        return {"ok": True}

    async def _serve_handoff(self, payload: object) -> dict:
        d = p.need(payload, to=str, start=str, end=str)
        to = Remote(p.need_address(d, "to"), self.node.transport)
        start, end = int(d["start"], 16), int(d["end"], 16)
        count = 0
        async with self._lock:
            for item in list(self.primary):
                if in_half_open(item.key, start, end) and not self.node.is_ours(item.key):
                    count += await self._hand_over(item, to)
        return {"ok": True, "count": count}

    async def _replicate(self, items: list[Item]) -> bool:
        """Copy ``items`` to the next r successors; True if the first successor has them.

        Only then may the channels' entries up to what was copied be delivered: the first
        successor is the one that takes over if we crash. Other failed copies are
        repaired by the next round.
        """
        copied = {i.name: i.last_seq for i in items if isinstance(i, Channel)}
        ok = await self._copy_to_replicas(items)
        if ok:
            for name, seq in copied.items():
                if name in self._safe and seq > self._safe[name]:
                    self._safe[name] = seq
                    ch = self.primary.get("channel", name)
                    if isinstance(ch, Channel):
                        self._wake(ch)
        return ok

    async def _copy_to_replicas(self, items: list[Item]) -> bool:
        if not items or self.settings.replicas < 1:
            return True
        targets = [s for s in self.node.successors()
                   if s.address != self.node.address][:self.settings.replicas]
        if not targets:
            return True
        batches: list[list[dict]] = [[]]
        size = 0
        for item in items:
            wire = item_to_wire(item)
            weight = 200 + (sum(len(e.text) * 4 for e in item.log)
                            if isinstance(item, Channel) else 0)
            if batches[-1] and size + weight > 600_000:
                batches.append([])
                size = 0
            batches[-1].append(wire)
            size += weight
        calls = [self.node.user_command(t, p.REPLICATE, {"from": self.address, "items": b})
                 for t in targets for b in batches]
        results = await asyncio.gather(*calls, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, RpcError):
                log.warning("replication failed: %r", result)
        return not any(isinstance(r, Exception) for r in results[:len(batches)])

    def _on_predecessor(self, old: Remote | None, new: Remote | None) -> None:
        """Notify handler (assignment item 6): the range we own changed; rebalance.

        If the range grew (we joined, or the predecessor died or left), we promote our
        replicas of it at once, and until the successor has handed over anything of it
        that it holds (a joiner's range; a leaver's state sent to a stale successor) we
        answer "moved" rather than serve from a partial copy.
        """
        self._log(f"predecessor {old.address if old else '-'} -> {new.address if new else '-'}")
        owned_nothing = not self._had_predecessor and self._joined_ring_via_bootstrap
        if new is None:
            grew = True              # alone: everything is ours
        elif old is None:
            grew = owned_nothing     # a joiner's first predecessor (else: we were alone)
        else:
            grew = in_open(old.id, new.id, self.node.id)
        if new is not None:
            self._had_predecessor = True
        if grew and new is not None:
            self._pulls += 1
            self._spawn(self._pull_from_successor(new))
        taken = self._take_over(f"predecessor {old.address if old else '-'} gone")
        if taken:
            self._spawn(self._replicate(taken))
        self._spawn(self._rebalance("new predecessor"))
        self._post_status()

    async def _pull_from_successor(self, predecessor: Remote) -> None:
        try:
            successor = self.node.successor()
            if successor.address != self.node.address:
                with contextlib.suppress(RpcError):
                    await self.node.user_command(
                        successor, p.HANDOFF,
                        {"to": self.address, "start": f"{predecessor.id:x}",
                         "end": f"{self.node.id:x}"}, timeout=max(self.node.timeout, 5.0))
        finally:
            self._pulls -= 1
            self._ensure_feeds()
            self._post_status()

    def _take_over(self, why: str) -> list[Item]:
        """Promote the replicas whose keys are now ours (a predecessor died or left).

        Synchronous, so that it happens in the same step as the change of predecessor:
        no request for the new range is served before its state is here.
        """
        taken = []
        if self._leaving:
            return taken
        for item in self.replicas:
            if self.node.is_ours(item.key):
                ref = item_ref(item)
                self.replicas.pop(*ref)
                self._replica_seen.pop(ref, None)
                merged = self.primary.put(item)
                taken.append(merged)
                if isinstance(merged, Channel):
                    self._safe.pop(merged.name, None)  # all of it is replicated already
                self._migration("takeover", ref[0], ref[1], "replica", self.address,
                                self._size(merged), why)
        if taken:
            self._ensure_feeds()
            self._post_status()
        return taken

    async def _rebalance(self, why: str) -> None:
        """Take over replicas now ours; migrate away what is no longer ours (copy/ack/delete)."""
        if self._leaving:
            return
        async with self._lock:
            taken = self._take_over(why)
            if taken:
                await self._replicate(taken)
            moving: dict[Address, tuple[Remote, list[Item]]] = {}
            for item in list(self.primary):
                if self.node.is_ours(item.key) or self._leaving:
                    continue
                try:
                    owner, _ = await self.node.find_successor(item.key)
                except RpcError:
                    continue
                if owner.address == self.node.address:
                    continue  # the ring has not settled; next round
                moving.setdefault(owner.address, (owner, []))[1].append(item)
            for owner, items in moving.values():
                for item in items:
                    await self._hand_over(item, owner)

    async def _maintain(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self.settings.maintenance_interval)
            rounds += 1
            try:
                await self._rebalance("maintenance")
                self._ensure_feeds()
                if rounds % 2 == 0:
                    await self._replicate(list(self.primary))
                now = time.monotonic()
                for ref, seen in list(self._replica_seen.items()):
                    if now - seen > self.settings.replica_ttl:
                        self.replicas.pop(*ref)
                        del self._replica_seen[ref]
                self._post_status()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("chat maintenance failed")

    # -- ring events for the log pane and the status bar --------------------------------------

    def _on_ring_event(self, kind: str, detail: dict) -> None:
        text = ", ".join(f"{k} {v}" for k, v in detail.items() if k != "id")
        self.post(ev.Log(text=f"ring: {kind}" + (f": {text}" if text else ""),
                         level="warning" if kind == "predecessor_suspected" else "info"))
        if kind == "successor" and self.ready:
            self._spawn(self._replicate(list(self.primary)))
        self._post_status()

    def _post_status(self, force: bool = False) -> None:
        status = self.status()
        key = (status.predecessor, status.successor, status.channels, status.names)
        if force or key != self._last_status:
            self._last_status = key
            self.post(status)

    def _log(self, text: str) -> None:
        log.info("%s: %s", self.nick, text)
        self.post(ev.Log(text=text))

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
