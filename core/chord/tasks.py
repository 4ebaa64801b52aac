"""A set of background tasks that are cancelled together: fire and forget, safely."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

log = logging.getLogger(__name__)


class TaskSet:
    """Tasks started with ``spawn`` and kept referenced until they end.

    asyncio keeps only weak references to tasks, so a task nobody holds may vanish
    mid-run; this set holds them, forgets each one as it ends, and cancels the rest on
    ``cancel_all``.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future] = set()

    def spawn(self, awaitable: Awaitable) -> asyncio.Future:
        """Run ``awaitable`` (a coroutine or future) in the background; returns its task."""
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Future) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a background task failed", exc_info=task.exception())

    async def cancel_all(self) -> None:
        """Cancel every task still running and wait until they have all ended."""
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]  # never wait on ourselves
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self):
        return iter(list(self._tasks))
