"""Hostile nodes for simulations: a test double, never used by the product.

``make_hostile(node, coalition)`` turns a started ``Local`` into one of a coalition of
colluding liars (docs/security.md, "Eclipse and lying routing"; the attack of Halo, NDSS
2008): it runs the real node code, but its served ring calls lie.

- ``next_hop``: drops the query (no answer: the caller times out) with probability
  ``drop``; otherwise answers "done: the owner is X", X the coalition's member closest
  after the key (itself when none is closer), whatever the key.
- ``state``: its true predecessor, but a successor list of the coalition's members after
  it, to hide the honest nodes that hold the replicas.
- ``route`` (a routed user command): dropped.

What it answers to the chat's user commands is the simulation's to decide
(``commands``): e.g. "unknown nick", or an old validly signed record.
"""

from __future__ import annotations

import asyncio
import bisect
import random
from collections.abc import Callable, Iterable

from .address import Address
from .ids import distance
from .node import Local
from .protocol import Verb


class Coalition:
    """The hostile nodes, who know each other."""

    def __init__(self, members: Iterable[Address], drop: float = 0.3,
                 seed: int | None = None) -> None:
        self.members = sorted(set(members), key=lambda a: a.id)
        self._ids = [a.id for a in self.members]
        self.drop = drop
        self.random = random.Random(seed)

    def __contains__(self, address: object) -> bool:
        return address in set(self.members)

    def first_after(self, key: int) -> Address | None:
        """The member closest after ``key`` (the one that can best pass for its owner)."""
        if not self.members:
            return None
        return self.members[bisect.bisect_left(self._ids, key) % len(self.members)]

    def after(self, me: Address, count: int) -> list[Address]:
        """Up to ``count`` members after ``me`` (its fake successor list)."""
        others = sorted((a for a in self.members if a != me), key=lambda a: distance(me.id, a.id))
        return others[:count]


def make_hostile(node: Local, coalition: Coalition,
                 commands: dict[str, Callable] | None = None) -> None:
    """Make the served ring calls of ``node`` (started) lie as the module says; replace
    its user commands with ``commands`` (type -> handler) if given."""
    calls = node.protocol
    me = node.address

    def next_hop_answer(key: str) -> dict:
        owner = coalition.first_after(int(key, 16)) or me
        return {"done": True, "node": str(owner)}

    async def rpc_next_hop(_self, key: str, avoid: list | None = None) -> dict:
        if coalition.random.random() < coalition.drop:
            await asyncio.get_running_loop().create_future()   # never answered
        return next_hop_answer(key)

    async def rpc_state(_self) -> dict:
        routing = calls.routing
        fake = coalition.after(me, routing.r) or [me]
        return {"predecessor": None if routing.predecessor is None else str(routing.predecessor),
                "successors": [str(a) for a in fake], "id": f"{me.id:x}"}

    async def rpc_route(_self, **args: object) -> None:
        return None

    # the served verbs are a class table (``RingProtocol.VERBS``): this node gets its own,
    # with the lying handlers answered in a task (a dropped query is never answered)
    lies = {"next_hop": rpc_next_hop, "state": rpc_state, "route": rpc_route}
    calls.VERBS = {verb: Verb(lies[verb], False) if verb in lies else served
                   for verb, served in type(calls).VERBS.items()}
    if commands is not None:
        for type_, handler in commands.items():
            node.register_command(type_, handler)
