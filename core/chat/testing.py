"""Test doubles for the chat, shipped beside it (as ``trio.testing`` is): chat nodes on the
simulated network with the virtual clock (the real chat and ring code, no sockets, no
waiting; a crash is ``network.kill``), and signed test data (one fixed identity per nick,
and the members, entries and name records they sign, remembered, so hypothesis runs sign
each one once). The chat tests build their rings here; the product never imports this
module.

    @virtual_time                                   # core.chord.testing
    async def test_something():
        async with sim_ring(["ann", "bob"]) as ring:
            ann, bob = ring.nodes
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from core import events as ev
from core.chord import Address, Local, in_half_open
from core.chord.client import ClientSettings
from core.chord.relay import RelayLimits
from core.chord.sim import SimNetwork
from core.chord.testing import ring_problems, wait_until
from core.datadir import DataDir
from core.store import FILENAME, InlineStore

from .model.channel import Channel, Entry, Member
from .model.entries import SignedEntry, sign_entry
from .model.identity import Identity
from .model.records import NameRecord
from .service import ChatService
from .users.user import LocalUser

CHORD = dict(stabilize_interval=0.2, fix_fingers_interval=0.5, check_predecessor_interval=0.5,
             timeout=1.0)
CHAT = dict(maintenance_interval=0.5, retry_for=20.0, prune_grace=3.0)


def now() -> float:
    """The running loop's clock (virtual under the simulator)."""
    return asyncio.get_running_loop().time()


# -- chat nodes on the simulator ------------------------------------------------------------

@dataclass(eq=False)
class ChatNode:
    """One simulated chat node: its ring node, its service, its users, and every event."""
    node: Local
    service: ChatService
    users: list[LocalUser] = field(default_factory=list)
    events: list = field(default_factory=list)          # the node's and every user's
    by_user: dict[str, list] = field(default_factory=dict)  # each user's own, by nick

    @property
    def user(self) -> LocalUser:
        return self.users[0]

    @property
    def nick(self) -> str:
        return self.user.nick

    @property
    def holdings(self):
        return self.service.holdings

    def of(self, cls, **fields) -> list:
        return [e for e in self.events if isinstance(e, cls)
                and all(getattr(e, k) == v for k, v in fields.items())]

    def texts(self, channel: str, nick: str | None = None) -> list[str]:
        """The channel's messages shown (to the user ``nick``, if there are several)."""
        events = self.events if nick is None else self.by_user[nick]
        return [e.text for e in events
                if isinstance(e, ev.ChannelMessage) and e.channel == channel]


class SimRing:
    """A ring of chat nodes on one ``SimNetwork``."""

    def __init__(self, latency: float = 0.001, relay: RelayLimits | None = None,
                 **chat) -> None:
        self.network = SimNetwork(latency=latency, seed=1)
        self.relay = relay   # full members relay for client nodes with these limits
        self.chat = {**CHAT, **chat}
        self.nodes: list[ChatNode] = []
        self._hosts = itertools.count(1)
        self._data = tempfile.TemporaryDirectory(prefix="simring-")

    def data_dir(self) -> DataDir:
        """A fresh data directory: every node has its own (its users' keys and pins)."""
        return DataDir(Path(self._data.name) / f"node-{len(self.nodes)}")

    @property
    def live(self) -> list[ChatNode]:
        return [n for n in self.nodes if n.node.running]

    def next_address(self, within: tuple[int, int] | None = None) -> Address:
        """A fresh address; with ``within=(lo, hi)``, one whose id lies in (lo, hi]."""
        while True:
            i = next(self._hosts)
            address = Address(f"10.0.{i // 250}.{i % 250 + 1}", 4000)
            if within is None or in_half_open(address.id, *within):
                return address

    async def add(self, nick: str | None, via: ChatNode | None = None,
                  address: Address | None = None, keep: bool = False,
                  data_dir: DataDir | None = None, skew: float = 0.0,
                  client: ClientSettings | None = None, **chat) -> ChatNode:
        """Start a node (through ``via``, else the first live node) serving ``nick``;
        ``keep``: with a database (an ``InlineStore``) in its data directory; ``skew``:
        its wall clock runs that many seconds ahead (behind, if negative); ``client``: a
        client node of the ring (core/chord/client.py) instead of a full member."""
        if via is None and self.live:
            via = self.live[len(self.live) // 2]
        node = Local(address or self.next_address(), via.node.address if via else None,
                     transport=self.network.transport(), client=client,
                     relay=None if client else self.relay, **CHORD)
        events: list = []
        data_dir = data_dir or self.data_dir()
        stamp = now if not skew else (lambda: now() + skew)
        service = ChatService(node, events.append, stamp=stamp, data_dir=data_dir,
                              **{**self.chat, **chat})
        chat_node = ChatNode(node, service, events=events)
        store = (await InlineStore.open(data_dir.user_dir(nick) / FILENAME)
                 if keep and nick is not None else None)
        self.nodes.append(chat_node)
        await node.start()
        await service.start()
        if nick is not None:
            try:
                await self.add_user(chat_node, nick, store)
            except Exception:
                await service.depart()   # as the runtime does: a refused node hands on, leaves
                raise
        return chat_node

    async def add_user(self, n: ChatNode, nick: str, store=None) -> LocalUser:
        own = n.by_user.setdefault(nick, [])

        def post(event: ev.Event) -> None:
            own.append(event)
            n.events.append(event)

        user = await n.service.add_user(nick, post, store=store)
        n.users.append(user)
        return user

    async def start(self, nicks: list[str], **chat) -> list[ChatNode]:
        return [await self.add(nick, **chat) for nick in nicks]

    async def settle(self, timeout: float = 60.0) -> None:
        await wait_until(lambda: not ring_problems([n.node for n in self.live]), timeout,
                         what="ring convergence")

    async def crash(self, n: ChatNode) -> None:
        """Vanish at once, as a killed process: no exit sequence, no goodbyes."""
        self.network.kill(n.node.address)
        await n.service.stop()
        await n.node.stop()

    async def down(self, n: ChatNode) -> None:
        """Crash ``n`` (a killed process): its users' locks and databases are let go."""
        await self.crash(n)
        for user in n.users:
            user.keys.release()
            await user.store.close()

    async def exit(self, n: ChatNode) -> None:
        """The graceful exit a user's ``exit`` (or end of input) runs: every user quits,
        the node hands what it maintains to its successor and leaves the ring."""
        await n.service.exit()
        await n.node.stop()
        for user in n.users:
            user.keys.release()
            if user.store is not None:
                await user.store.close()

    async def up(self, n: ChatNode, **chat) -> ChatNode:
        """Start ``n``'s user again at a new address with the same data directory."""
        return await self.add(n.nick, keep=True, data_dir=n.service.data_dir, **chat)

    async def restart(self, n: ChatNode, **chat) -> ChatNode:
        """Kill ``n`` and start it again with the same data directory."""
        await self.down(n)
        await self.settle()
        return await self.up(n, **chat)

    async def stop(self) -> None:
        for n in self.nodes:
            with contextlib.suppress(Exception):
                await n.service.stop()
            with contextlib.suppress(Exception):
                await n.node.stop()
            for user in n.users:
                user.keys.release()
                with contextlib.suppress(Exception):
                    await user.store.close()
        self._data.cleanup()

    def owner(self, key: int) -> ChatNode:
        live = sorted(self.live, key=lambda n: n.node.id)
        return next((n for n in live if n.node.id >= key), live[0])

    def successors_of(self, n: ChatNode, k: int) -> list[ChatNode]:
        ordered = sorted(self.live, key=lambda x: x.node.id)
        i = ordered.index(n)
        return [ordered[(i + j) % len(ordered)] for j in range(1, k + 1)]

    def where(self, kind: str, name: str) -> str:
        """Who holds ``kind``/``name`` (maintained or as a replica), for failure messages."""
        return "\n".join(
            f"{n.node.address} {n.node.id:040x}"[:30]
            + f" maintains {n.holdings.maintained.get(kind, name)}"
            f" replica {n.holdings.replicas.get(kind, name)}" for n in self.live)


@contextlib.asynccontextmanager
async def sim_ring(nicks: list[str] = (), settle: bool = True, **chat):
    """A started ``SimRing`` with one node per nick, stopped at the end."""
    ring = SimRing(**chat)
    try:
        await ring.start(list(nicks))
        if settle and nicks:
            await ring.settle()
        yield ring
    finally:
        await ring.stop()


# -- signed test data -----------------------------------------------------------------------

@functools.cache
def identity(nick: str) -> Identity:
    """The test identity of ``nick`` (the same object for the whole run)."""
    return Identity.generate(nick)


@functools.lru_cache(maxsize=20_000)
def signed(channel: str, kind: str, nick: str, msg_id: str, text: str = "", at: float = 0.0,
           address: str = "h:1") -> SignedEntry:
    return sign_entry(identity(nick), channel, kind, msg_id, address=address, text=text, at=at)


def member(nick: str, address: str, stamp: float, present: bool = True,
           channel: str = "c") -> Member:
    """``nick``'s signed join (or leave) of ``channel`` from ``address`` at ``stamp``."""
    kind = "join" if present else "leave"
    return Member.of(signed(channel, kind, nick, f"{kind}-{nick}-{address}-{stamp!r}",
                            "" if present else "left", stamp, address))


def message(ch: Channel, nick: str, text: str, msg_id: str, at: float = 0.0) -> Entry:
    """Append ``nick``'s signed message to ``ch`` (as its maintainer would)."""
    entry, _ = ch.append("msg", nick, signed=signed(ch.name, "msg", nick, msg_id, text, at))
    return entry


def record(nick: str, address: str = "h:1", seq: int = 1, deleted: bool = False,
           node_id: str = "ab" * 20) -> NameRecord:
    me = identity(nick.lower())
    me.nick = nick
    if deleted:
        return NameRecord.tombstone(me, seq)
    return NameRecord.create(me, address, node_id, seq)
