"""The core's runtime: the asyncio loop in one background thread, and the two crossings.

Front end -> core: ``start``, ``execute(command)``, ``submit(coro)`` and ``shutdown`` return
``concurrent.futures.Future`` objects and never block. Commands run at once, except that
those to one channel or one nick wait for each other and keep the order given. Core ->
front end: ``post(event)``, called on the core thread; the front end makes it thread-safe
(a queue and a wake-up). This module never imports urwid or tui.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import NamedTuple

from core import events as ev
from core.chat.commands import Command, CommandError, Where, check_nick
from core.chat.service import ChatError, ChatService, LocalUser, NickTaken
from core.chord import Address, JoinError, ListenError, Local
from core.irc import GatewayError, IrcGateway

log = logging.getLogger(__name__)

COMMANDS_BEFORE_EXIT = 5.0  # seconds the exit sequence waits for commands still running


class Options(NamedTuple):
    """How to start a node: who the user is, where it listens, whom it joins through."""
    nick: str
    listen: Address
    bootstrap: Address | None = None
    chord: dict = {}            # keyword settings for Local (intervals, successors, timeout)
    replicas: int = 3
    chat: dict = {}             # keyword settings for ChatService (see core.chat.Settings)
    irc: Address | None = None  # serve IRC clients here (core.irc)
    irc_password: str | None = None


class StartupError(Exception):
    """The node could not start: nick taken or invalid, port in use, bootstrap unreachable.

    ``message`` says what and names the address; ``code`` is the process exit code.
    """

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class _Lanes:
    """One queue per destination: commands to one channel or one nick run one after the
    other in the order given; commands to different destinations run at the same time, so a
    message retried to a crashed node holds up nothing else."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}   # asyncio.Lock wakes its waiters in order
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def turn(self, destination: str | None):
        """Wait for the turn of a command to ``destination`` (None: no order to keep)."""
        if destination is None:
            yield
            return
        lock = self._locks.setdefault(destination, asyncio.Lock())
        self._users[destination] = self._users.get(destination, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[destination] -= 1
            if not self._users[destination]:  # nobody waits: forget the lane
                del self._users[destination], self._locks[destination]

    def __len__(self) -> int:
        return len(self._locks)


class Runtime:
    """Runs one chat node on a background event loop for a front end.

    Args:
        options: the ``Options`` of the node.
        post: ``post(event)``, called on the core thread for every event.
    """

    def __init__(self, options: Options, post: Callable[[ev.Event], None]) -> None:
        self.options = options
        self.post = post
        self.loop = asyncio.new_event_loop()
        self.node: Local | None = None
        self.service: ChatService | None = None
        self.user: LocalUser | None = None
        self.gateway: IrcGateway | None = None
        self._thread = threading.Thread(target=self._run, name="chordchat-core", daemon=True)
        self._lock = threading.Lock()
        self._start_future: concurrent.futures.Future | None = None
        self._shutdown_future: concurrent.futures.Future | None = None
        self._lanes = _Lanes()
        self._running: set[asyncio.Task] = set()  # commands not finished yet

    # -- front end -> core -------------------------------------------------------------------

    def start(self) -> concurrent.futures.Future:
        """Start the node; the future resolves to the ``Ready`` event or raises StartupError."""
        with self._lock:
            if self._start_future is None:
                self._thread.start()
                self._start_future = self.submit(self._start())
            return self._start_future

    def execute(self, command: Command) -> concurrent.futures.Future:
        """Run a parsed command where the COMMANDS table says: the runtime's own (exit) at
        once, the chat's once the node is in the ring. Outcomes and errors are posted as
        events; a front end's own command (help, bell) is refused with an Error."""
        match command.where:
            case Where.RUNTIME:
                return self.RUNTIME_COMMANDS[command.name](self)
            case Where.CHAT:
                return self.submit(self._execute(command))
        return self.submit(self._post(ev.Error(
            message=f"{command.name} is answered by the front end, not by the core")))

    def submit(self, coro: Coroutine) -> concurrent.futures.Future:
        """Run ``coro`` on the core loop (``asyncio.run_coroutine_threadsafe``)."""
        if self.loop.is_closed():
            coro.close()
            future: concurrent.futures.Future = concurrent.futures.Future()
            future.set_exception(RuntimeError("the core has stopped"))
            return future
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def shutdown(self) -> concurrent.futures.Future:
        """The graceful exit sequence (leave, hand over, leave the ring); posts ``Bye`` last."""
        with self._lock:
            if self._shutdown_future is None:
                if not self._thread.is_alive():
                    self._shutdown_future = concurrent.futures.Future()
                    self._shutdown_future.set_result(None)
                else:
                    self._shutdown_future = self.submit(self._shutdown())
            return self._shutdown_future

    @property
    def stopping(self) -> bool:
        """Whether the exit sequence has been asked for (by ``exit`` or ``shutdown``)."""
        return self._shutdown_future is not None

    RUNTIME_COMMANDS: dict[str, Callable[[Runtime], concurrent.futures.Future]] = {
        "exit": shutdown,
    }

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the core thread to end; True if it did."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- on the core thread ------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

    async def _post(self, event: ev.Event) -> None:
        self.post(event)

    async def _start(self) -> ev.Ready:
        o = self.options
        try:
            check_nick(o.nick)
        except CommandError as e:
            raise StartupError(str(e)) from None
        settings = {"replicas": o.replicas, **o.chat}
        self.node = Local(o.listen, o.bootstrap, **o.chord)
        try:
            self.service = ChatService(self.node, self._post_node, **settings)
        except TypeError as e:
            raise StartupError(f"bad chat settings: {e}") from None
        try:
            await self.node.start()
        except ListenError as e:
            raise StartupError(e.strerror or str(e)) from None
        except JoinError as e:
            raise StartupError(str(e)) from None
        await self.service.start()
        try:
            self.user = await self.service.add_user(o.nick, self.post)
        except ChatError as e:
            await self.service.depart()  # it may already keep state for others: hand it on
            if isinstance(e, NickTaken):
                raise StartupError(str(e)) from None
            raise StartupError(f"could not register the nick {o.nick!r}: {e}") from None
        if o.irc is not None:
            try:
                self.gateway = IrcGateway(self.service, o.irc.host, o.irc.port,
                                          password=o.irc_password)
                await self.gateway.start()
            except GatewayError as e:
                self.gateway = None
                await self.service.remove_user(self.user)
                await self.service.depart()
                raise StartupError(str(e)) from None
        return ev.Ready(nick=self.user.nick, id=self.user.id_hex, address=self.user.address)

    def _post_node(self, event: ev.Event) -> None:
        """The node-wide events: to the front end, and to the IRC clients as ring news."""
        self.post(event)
        if self.gateway is not None:
            self.gateway.node_event(event)

    def _started(self) -> bool:
        """Whether the start finished well: the node is in the ring and the nick is ours."""
        started = self._start_future
        return (started is not None and started.done() and not started.cancelled()
                and started.exception() is None)

    async def _execute(self, command: Command) -> object:
        started = self._start_future
        if started is not None and not started.done():
            # Ready is posted just before the start returns: a command sent on seeing it
            # may arrive first. (Once started, no await comes before the lane is taken.)
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(started)
        if not self._started():
            self.post(ev.Error(message="the node has not started yet"))
            return None
        task = asyncio.current_task()
        self._running.add(task)
        try:
            # no await before this: the lane is taken in the order the commands were given
            async with self._lanes.turn(command.destination):
                return await self.user.execute(command)
        except Exception as e:
            log.exception("the command %s failed", command)
            self.post(ev.Error(message=f"{command.name} failed: {type(e).__name__}: {e}"))
            return None
        finally:
            self._running.discard(task)

    async def _shutdown(self) -> None:
        try:
            started = self._start_future
            if started is not None and not started.done():
                await asyncio.wrap_future(started)
        except Exception:
            pass
        if self._running:
            # let the commands typed before exit finish (a script's last send), within reason
            await asyncio.wait(set(self._running), timeout=COMMANDS_BEFORE_EXIT)
        try:
            if self.gateway is not None:
                await self.gateway.stop("the node is leaving the ring")
            if self.service is not None and self._started():
                await self.service.exit()
            else:
                if self.node is not None and self.node.running:
                    await self.node.stop()
                self.post(ev.Bye())
        except Exception:
            log.exception("the exit sequence failed")
            if self.node is not None:
                await self.node.stop()
            self.post(ev.Bye())
        finally:
            self.loop.call_soon(self.loop.stop)
