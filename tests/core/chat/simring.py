"""Chat nodes on the simulated network with the virtual clock: the real chat and ring code,
no sockets, no waiting (a crash is ``network.kill``). The chat tests build their rings here."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from core import events as ev
from core.chat import ChatService, LocalUser
from core.chord import Address, Local, in_half_open
from core.chord.sim import SimNetwork, run
from tests.ring import ring_problems

CHORD = dict(stabilize_interval=0.2, fix_fingers_interval=0.5, check_predecessor_interval=0.5,
             timeout=1.0)
CHAT = dict(maintenance_interval=0.5, retry_for=20.0, prune_grace=3.0)


def sim_test(timeout: float = 600.0):
    """Run an ``async def`` test on a fresh virtual-clock loop, with a (virtual) deadline."""
    def wrap(fn):
        @functools.wraps(fn)
        def runner(*args, **kwargs):
            return run(asyncio.wait_for(fn(*args, **kwargs), timeout))
        return runner
    return wrap


def now() -> float:
    return asyncio.get_running_loop().time()


async def wait_until(condition: Callable[[], object], timeout: float = 30.0,
                     what: str = "condition") -> None:
    """Poll ``condition`` every 10 ms of virtual time; fail after ``timeout`` virtual s."""
    deadline = now() + timeout
    while not condition():
        if now() > deadline:
            raise AssertionError(f"timed out after {timeout} s (virtual) waiting for {what}")
        await asyncio.sleep(0.01)


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

    def __init__(self, latency: float = 0.001, **chat) -> None:
        self.network = SimNetwork(latency=latency, seed=1)
        self.chat = {**CHAT, **chat}
        self.nodes: list[ChatNode] = []
        self._hosts = itertools.count(1)

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
                  address: Address | None = None, **chat) -> ChatNode:
        """Start a node (through ``via``, else the first live node) serving ``nick``."""
        if via is None and self.live:
            via = self.live[len(self.live) // 2]
        node = Local(address or self.next_address(), via.node.address if via else None,
                     transport=self.network.transport(), **CHORD)
        events: list = []
        service = ChatService(node, events.append, stamp=now, **{**self.chat, **chat})
        chat_node = ChatNode(node, service, events=events)
        self.nodes.append(chat_node)
        await node.start()
        await service.start()
        if nick is not None:
            try:
                await self.add_user(chat_node, nick)
            except Exception:
                await service.depart()   # as the runtime does: a refused node hands on, leaves
                raise
        return chat_node

    async def add_user(self, n: ChatNode, nick: str) -> LocalUser:
        own = n.by_user.setdefault(nick, [])

        def post(event: ev.Event) -> None:
            own.append(event)
            n.events.append(event)

        user = await n.service.add_user(nick, post)
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

    async def stop(self) -> None:
        for n in self.nodes:
            with contextlib.suppress(Exception):
                await n.service.stop()
            with contextlib.suppress(Exception):
                await n.node.stop()

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
