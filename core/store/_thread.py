"""The one thread crossing: ``AsyncStore`` runs a ``UserStore`` on its own worker thread."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ._user import UserStore


class AsyncStore:
    """A ``UserStore`` on its own worker thread, for the asyncio core.

    Every method is submitted to the worker when it is *called* and returns an
    ``asyncio.Future``: calls run one at a time in call order, whether or not (and in
    whatever order) they are awaited; awaiting gives the result or raises the error. A
    write's future is done once the write is committed.

        store = await AsyncStore.open(path)
        await store.add_outgoing(message, "channel", "general", payload)  # durable now
        store.saw_peer(address, now)                                      # fire and forget
    """

    def __init__(self, store: UserStore, executor: ThreadPoolExecutor):
        self._store = store   # its methods only ever run on the worker
        self._executor = executor
        self.path = store.path
        self.fts = store.fts
        self.set_aside = store.set_aside
        self.notice = store.notice

    @classmethod
    async def open(cls, path: str | os.PathLike, **options) -> AsyncStore:
        """``UserStore.open`` on a new worker thread (the connection belongs to it)."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        try:
            store = await asyncio.get_running_loop().run_in_executor(
                executor, functools.partial(UserStore.open, path, **options))
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(store, executor)

    async def close(self) -> None:
        """Close the store after every call submitted before, then end the worker."""
        try:
            await self._submit(UserStore.close)
        finally:
            self._executor.shutdown(wait=False)

    def _submit(self, method: Callable, *args, **kwargs) -> asyncio.Future:
        return asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(method, self._store, *args, **kwargs))


def _to_thread(name: str) -> Callable[..., asyncio.Future]:
    method = getattr(UserStore, name)

    def submit(self: AsyncStore, *args, **kwargs) -> asyncio.Future:
        return self._submit(method, *args, **kwargs)

    submit.__name__ = submit.__qualname__ = name
    submit.__doc__ = method.__doc__
    return submit


ASYNC_METHODS = ("add_message", "add_messages", "add_outgoing", "get", "recent",
                 "conversations", "set_state", "add_outbox", "outbox", "ack", "joined",
                 "set_joined", "pinned", "check", "pin", "trust", "saw_peer", "peers",
                 "search")
for _name in ASYNC_METHODS:
    setattr(AsyncStore, _name, _to_thread(_name))
