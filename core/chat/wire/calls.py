"""Reaching other nodes: one back-off policy, and the two ways of calling — a request
routed to the owner of a key (looked up again on ``not_owner``, asked again on ``retry``)
and a call to one node — both retried until a deadline."""

from __future__ import annotations

import asyncio
import logging

from core.chord import Address, Local, Remote, RemoteError, RpcError
from core.chord.robust import RobustLookup

from ..model.errors import ChatError
from . import verbs as p

log = logging.getLogger(__name__)


def now() -> float:
    """The running loop's clock (the simulator's virtual one on ``VirtualClockLoop``)."""
    return asyncio.get_running_loop().time()


class Backoff:
    """The chat's one retry policy: wait 20 ms, doubling to 0.5 s, until ``give_up_after``
    seconds have passed (None: never give up)."""

    FIRST, CAP = 0.02, 0.5

    def __init__(self, give_up_after: float | None = None) -> None:
        self.deadline = None if give_up_after is None else now() + give_up_after
        self.delay = self.FIRST
        self.attempts = 0

    async def wait(self) -> bool:
        """Sleep before the next attempt; False, at once, if that would pass the deadline."""
        self.attempts += 1
        if self.deadline is not None and now() + self.delay > self.deadline:
            return False
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.CAP)
        return True

    def reset(self) -> None:
        self.delay, self.attempts = self.FIRST, 0


class Caller:
    """How this node calls others. Every failure it cannot retry away is a ``ChatError``."""

    def __init__(self, node: Local, retry_for: float, robust: RobustLookup | None = None) -> None:
        self.node = node
        self.retry_for = retry_for
        self.robust = robust   # None: plain lookups (every hop trusted)

    async def owner(self, key: int, avoid: set[Address] = frozenset()) -> Remote:
        """The owner of ``key``: found by the robust lookup (several paths, every answer
        checked: core/chord/robust.py) when there is one, else by a plain lookup."""
        if self.robust is not None:
            return Remote((await self.robust.find(key, avoid)).owner, self.node.transport)
        owner, _ = await self.node.find_successor(key, avoid=avoid)
        return owner

    async def find(self, key: int, what: str) -> Remote:
        try:
            return await self.owner(key)
        except RpcError as e:
            raise ChatError(f"{what}: {e}") from None

    async def route(self, verb: p.Verb, key: int, payload: dict, what: str,
                    retry_for: float | None = None) -> dict:
        """Send a routed request to the owner of ``key``; its reply, with ``via`` (the owner)."""
        retry_for = self.retry_for if retry_for is None else retry_for
        backoff = Backoff(retry_for)
        payload = {**payload, "key": f"{key:x}"}
        avoid: set[Address] = set()
        last = "no answer"
        while True:
            owner = None
            try:
                owner = await self.owner(key, avoid)
                reply = await self._call(owner.address, verb, payload, what)
                if reply.get("not_owner"):
                    last = f"{owner.address} does not keep it (yet)"
                elif reply.get("retry"):
                    last = f"{owner.address}: {reply.get('why', 'not yet replicated')}"
                else:
                    return {"via": str(owner.address), **reply}
            except RpcError as e:
                last = str(e)
                if owner is not None and owner.address != self.node.address:
                    avoid.add(owner.address)
            if backoff.attempts % 8 == 7:
                avoid.clear()  # a suspect may have come back
            if not await backoff.wait():
                raise ChatError(f"{what}: gave up after {retry_for:g} s ({last})")

    async def call(self, address: Address, verb: p.Verb, payload: dict, what: str,
                   give_up_after: float) -> dict:
        """Call one node, retrying while it is unreachable."""
        backoff = Backoff(give_up_after)
        while True:
            try:
                return await self._call(address, verb, payload, what)
            except RpcError as e:
                if not await backoff.wait():
                    raise ChatError(f"{what}: the node is unreachable ({e})") from None

    async def _call(self, address: Address, verb: p.Verb, payload: dict, what: str) -> dict:
        """One call; a remote error or a nonsense reply is a ChatError, the rest RpcError."""
        try:
            reply = await self.node.user_command(address, verb.type, payload)
        except RemoteError as e:
            raise ChatError(f"{what}: {e}") from None
        except RpcError:
            raise
        except (ValueError, KeyError, TypeError) as e:  # our own handler, called locally
            log.exception("%s failed", what)
            raise ChatError(f"{what}: {type(e).__name__}: {e}") from None
        if not isinstance(reply, dict):
            raise ChatError(f"{what}: {address} answered nonsense")
        return reply
