"""The chat service on a ``Local`` node: the user's side, and the one object that holds
the state its parts share.

The user's side is a handful of async methods (``msg``, ``join``, ``leave``, ``send``,
``exit``) that raise ``ChatError`` and post events; ``execute`` runs a parsed command and
turns errors into ``Error`` events. A member's receiving side (``chat.deliver``,
``chat.private``) is here too. The rest lives in mixins, one module each: ``calls``
(reaching other nodes with retries), ``maintainer`` (serving names and channels),
``feeds`` (delivery to members), ``handover`` (migration, replication, takeover).
docs/protocol.md describes the wire side.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core import events as ev
from core.chord import Address, Local
from core.chord.ids import hex_id, short_id
from core.counts import counted

from . import protocol as p
from .calls import Calls
from .commands import Command, check_nick
from .errors import ChatError, NickTaken
from .feeds import Feed, Feeds
from .handover import Handover
from .maintainer import Maintainer
from .state import (
    Entry,
    Store,
    channel_key,
    item_kind,
    item_ref,
    name_key,
    new_id,
)

__all__ = ["ChatError", "ChatService", "NickTaken", "Settings"]

log = logging.getLogger(__name__)

SEEN_LIMIT = 10_000  # message ids a receiver remembers to drop duplicates
EXIT_RETRY = 5.0     # seconds the exit sequence retries a leave or the name-map delete


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


class ChatService(Calls, Maintainer, Feeds, Handover):
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
        unknown = set(overrides) - {f.name for f in dataclasses.fields(Settings)}
        if unknown:
            raise TypeError(f"unknown chat setting(s) {', '.join(sorted(unknown))}")
        self.settings = dataclasses.replace(settings or Settings(), **overrides)
        self.primary = Store()       # what this node maintains
        self.replicas = Store()      # copies of what its predecessors maintain
        self._replica_seen: dict[tuple[str, str], float] = {}
        self.joined: dict[str, _Membership] = {}
        self._seen_private: collections.OrderedDict = collections.OrderedDict()
        self._feeds: dict[tuple[str, str], Feed] = {}
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

    async def leave(self, channel: str, retry_for: float | None = None,
                    reason: str = "left") -> str:
        """Leave a channel the user joined (an Error if it did not); returns its maintainer.

        ``reason`` ("left" or "exit") is what the other members are told.
        """
        if channel not in self.joined:
            raise ChatError(f"you are not in #{channel}")
        del self.joined[channel]
        reply = await self._route(channel_key(channel), p.CHANNEL_LEAVE,
                                  {"channel": channel, "nick": self.nick, "address": self.address,
                                   "reason": reason}, f"leaving #{channel}", retry_for)
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
        bound = min(self.settings.retry_for, EXIT_RETRY)

        async def leave(channel: str) -> None:
            try:
                via = await self.leave(channel, bound, reason="exit")
                self._migration("leave", "channel", channel, me, via, detail="exit")
            except ChatError as e:
                self.post(ev.Error(message=f"could not leave #{channel} on exit: {e}"))

        await asyncio.gather(*(leave(c) for c in list(self.joined)))
        if self.ready:
            try:
                reply = await self._route(name_key(self.nick), p.NAME_DEL,
                                          {"nick": self.nick, "address": me},
                                          "deleting the name map", bound)
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
                f"successor {s.successor}; maintains {counted(s.channels, 'channel')} and "
                f"{counted(s.names, 'name')}; holds {counted(len(self.replicas), 'replica')}; in "
                f"{', '.join('#' + c for c in sorted(self.joined)) or 'no channel'}")

    async def _serve_deliver(self, payload: object) -> dict:
        d = p.need(payload, channel=str, entries=list)
        membership = self.joined.get(d["channel"])
        if membership is None:
            return {"member": False}
        if membership.joining:
            return {"member": True, "last_seq": None}
        for e in sorted((Entry.from_wire(x) for x in d["entries"]), key=lambda e: e.seq):
            # By message id, not by seq: after two copies of a channel were merged, an entry
            # may arrive with a seq below one already shown (the maintainer resends it).
            if not membership.remember(e.msg_id):
                continue
            membership.last_seq = max(membership.last_seq, e.seq)
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

    def _on_ring_event(self, kind: str, detail: dict) -> None:
        change = ring_change(kind, detail)
        log.info("%s: ring %s", self.nick, change)
        self.post(change)
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
