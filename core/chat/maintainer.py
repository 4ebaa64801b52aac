"""The maintainer's side of the chat: name maps and channels served for the keys a node owns.

A routed request is served only by the node that owns its key *and* holds its state;
any other node answers ``moved``. A channel change is replicated before members see it
and before a send is acknowledged.
"""

from __future__ import annotations

import asyncio
import time

from core.chord import Address, Remote
from core.counts import counted

from . import protocol as p
from .commands import check_nick
from .state import Channel, Member, NameMap


class Maintainer:
    """Mixin of ChatService: the handlers of routed requests (names, channels)."""

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
        self._log(f"name map {nick} set to {address}")
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
            self._log(f"#{ch.name}: {d['nick']} joined ({counted(len(ch.present()), 'member')})")
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
        reason = "exit" if d.get("reason") == "exit" else "left"
        self._remove_member(ch, address, d["nick"], reason)
        await self._commit(ch)
        return {"ok": True, "member": True}

    def _remove_member(self, ch: Channel, address: str, nick: str, reason: str) -> None:
        self._safe.setdefault(ch.name, ch.last_seq)
        ch.set_member(Member(nick, address, self._member_stamp(ch), present=False))
        ch.append("leave", nick, text=reason, at=time.time())
        feed = self._feeds.pop((ch.name, address), None)
        if feed is not None and feed.task is not None and feed.task is not asyncio.current_task():
            feed.task.cancel()
        self._log(f"#{ch.name}: {nick} {reason} ({counted(len(ch.present()), 'member')})")

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
