"""The one thread crossing: ``AsyncStore`` runs a ``UserStore`` on its own worker thread."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
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

    def __init__(self, store: UserStore, executor: ThreadPoolExecutor | None):
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

    def worker_thread(self) -> asyncio.Future:
        """The thread the store's calls run on (a future, in call order with the calls)."""
        return self._submit(lambda _: threading.current_thread())

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


class InlineStore(AsyncStore):
    """A ``UserStore`` run on the calling thread, behind ``AsyncStore``'s interface.

    For the simulator: its virtual clock jumps to the next timer while the loop waits on
    another thread, so a worker's disk time would become seconds of ring time. Here each
    call runs at once and returns a finished future (the loop waits on the disk: tests only).
    """

    def __init__(self, store: UserStore):
        super().__init__(store, None)

    @classmethod
    async def open(cls, path: str | os.PathLike, **options) -> InlineStore:
        return cls(UserStore.open(path, **options))

    async def close(self) -> None:
        self._store.close()

    def _submit(self, method: Callable, *args, **kwargs) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        try:
            future.set_result(method(self._store, *args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - it reaches whoever awaits, as on a worker
            future.set_exception(exc)
        return future


ASYNC_METHODS = ("add_message", "add_messages", "add_each", "add_outgoing", "forget", "get",
                 "recent", "conversations", "set_state", "add_outbox", "outbox",
                 "unconfirmed", "ack", "joined", "channel_keys", "set_joined",
                 "set_channel_key", "pinned", "check", "pin",
                 "trust", "saw_peer", "peers", "search")
for _name in ASYNC_METHODS:
    setattr(AsyncStore, _name, _to_thread(_name))
