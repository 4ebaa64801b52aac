"""Calls to other nodes, retried: routed requests (a ``moved`` answer means: look the owner
up again) and calls to one node; both with back-off, bounded by a deadline."""

from __future__ import annotations

import asyncio
import logging
import time

from core.chord import Address, Remote, RemoteError, RpcError

from .errors import ChatError

log = logging.getLogger(__name__)


class Calls:
    """Mixin of ChatService: how it reaches other nodes (uses ``node`` and ``settings``)."""

    async def _find(self, key: int, what: str) -> tuple[Remote, int]:
        try:
            return await self.node.find_successor(key)
        except RpcError as e:
            raise ChatError(f"{what}: {e}") from None

    async def _route(self, key: int, type_: str, payload: dict, what: str,
                     retry_for: float | None = None) -> dict:
        """Send a request to the owner of ``key``; look up again while answered ``moved``."""
        retry_for = self.settings.retry_for if retry_for is None else retry_for
        deadline = time.monotonic() + retry_for
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
                raise ChatError(f"{what}: gave up after {retry_for:g} s ({last})")
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
