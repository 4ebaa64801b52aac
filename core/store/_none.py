"""``NoStore``: the store of a user without a data directory — it keeps nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

# what each method answers when nothing is kept: every message is new, nothing is queued
_ANSWERS: dict[str, object] = {
    "add_message": True, "add_messages": 0, "add_outgoing": True, "forget": False,
    "get": None, "recent": (), "conversations": (), "set_state": False, "add_outbox": True,
    "outbox": (), "unconfirmed": (), "ack": False, "joined": (), "channel_keys": {},
    "set_joined": None, "set_channel_key": False, "pinned": None, "check": "new",
    "pin": "new", "trust": None, "saw_peer": None, "peers": (), "search": (),
}


class NoStore:
    """``AsyncStore``'s interface, keeping nothing (simulated users, tests, a user whose
    node runs without a data directory); duplicates are then dropped in memory only."""

    path: Path | None = None
    fts = False
    set_aside = None
    notice = None

    def __getattr__(self, name: str):
        if name == "add_each":
            return lambda messages: _done([True] * len(messages))
        if name not in _ANSWERS:
            raise AttributeError(name)
        answer = _ANSWERS[name]
        return lambda *args, **kwargs: _done(list(answer) if isinstance(answer, tuple)
                                             else answer)

    async def close(self) -> None:
        pass


def _done(value: object) -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future
