"""The core's runtime: the asyncio loop in one background thread, and the two crossings.

Front end -> core: ``start``, ``execute(command)``, ``search(text)``, ``submit(coro)`` and
``shutdown`` return ``concurrent.futures.Future`` objects and never block. Commands run at
once, except that those to one channel or one nick wait for each other and keep the order
given (the user's lanes: ``core.chat.users.lanes``). Core ->
front end: ``post(event)``, called on the core thread; the front end makes it thread-safe
(a queue and a wake-up). This module never imports urwid or tui.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import NamedTuple

from core import events as ev
from core import loops
from core.chat.model.commands import Command, CommandError, Where, check_nick
from core.chat.service import ChatError, ChatService, LocalUser, NickTaken
from core.chat.users.keyring import KeysError, UserKeys, open_user
from core.chord import (
    Address,
    AddressError,
    JoinError,
    ListenError,
    Local,
    NotReachable,
    TcpTransport,
)
from core.chord.client import ClientSettings
from core.chord.moves import CHECK_EVERY, AddressWatch
from core.chord.peers import REMEMBERED
from core.chord.relay import RelayLimits
from core.datadir import DataDir, DataDirError
from core.irc import GatewayError, IrcGateway
from core.store import FILENAME, AsyncStore, StoreError

log = logging.getLogger(__name__)

COMMANDS_BEFORE_EXIT = 5.0  # seconds the exit sequence waits for commands still running
KNOWN_PEERS_TRIED = 8       # without --bootstrap: the most recently seen peers tried
MOVE_RETRY = 5.0            # seconds between two tries to join again from a new address
MOVE_ENTRIES = 16           # ring nodes remembered to join again through after a move


Reachability = Callable[[Address, "Address | None"], Awaitable[bool]]
"""``reachable(listen, bootstrap)``: whether other nodes can dial this node (the
reachability decision, core/chord/reachability.py: a peer dials back). False starts it in
client mode (core/chord/client.py)."""


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
    irc_name: str | None = None  # the gateway's server name; None: "<short id>.chordchat"
    data_dir: str | None = None  # the user's keys and pins; None: DataDir.default()
    client: bool = False        # --client: start in client mode, whatever is decided
    relays: tuple = ()          # --relay: relays a client tries first
    relay_clients: int = 32     # a full member relays for this many clients (0: none)
    reachability: Reachability | None = None   # decides client mode when not --client


class StartupError(Exception):
    """The node could not start: nick taken or invalid, port in use, bootstrap unreachable.

    ``message`` says what and names the address; ``code`` is the process exit code.
    """

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Runtime:
    """Runs one chat node on a background event loop for a front end.

    Args:
        options: the ``Options`` of the node.
        post: ``post(event)``, called on the core thread for every event.
    """

    def __init__(self, options: Options, post: Callable[[ev.Event], None]) -> None:
        self.options = options
        self.post = post
        self.loop = loops.new_event_loop()   # uvloop if installed (docs/performance.md)
        self.loop.set_exception_handler(_log_loop_failure)
        self.node: Local | None = None
        self.service: ChatService | None = None
        self.user: LocalUser | None = None
        self.store: AsyncStore | None = None
        self.gateway: IrcGateway | None = None
        self._thread = threading.Thread(target=self._run, name="chordchat-core", daemon=True)
        self._lock = threading.Lock()
        self._start_future: concurrent.futures.Future | None = None
        self._shutdown_future: concurrent.futures.Future | None = None
        self._running: set[asyncio.Task] = set()  # commands not finished yet
        self._watch: asyncio.Task | None = None   # a full member's address (_follow_moves)
        self._known: list[Address] = []           # the known peers read at start
        self.moves = 0                            # in-place moves done (Local.relocate)

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

    def search(self, text: str) -> concurrent.futures.Future:
        """Search the user's local history; the hits come as a ``SearchResults`` event."""
        return self.submit(self._search(text))

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
        data_dir = DataDir(o.data_dir) if o.data_dir else DataDir.default()
        keys = self._open_keys(data_dir, o.nick)   # the lock first: a second process stops here
        try:
            self.store = await self._open_store(data_dir)
            known = await self._known_peers()   # read once: to join through, to remember
            self._known = known
            if o.bootstrap is not None:
                await self._join(o.bootstrap, data_dir)
            else:
                await self._join_known_peers(data_dir, known)
            self._remember(known)
        except StartupError:
            keys.release()
            raise
        await self.service.start()
        if o.irc is not None:
            # listen before the user registers, which posts Ready: "ready" means that every
            # front end can connect. IRC nicks wait for admit(): the node's own user first.
            await self._serve_irc(keys)
        try:
            self.user = await self.service.add_user(o.nick, self.post, keys, store=self.store)
        except ChatError as e:
            if self.gateway is not None:
                await self.gateway.stop("the node could not start")
                self.gateway = None
            await self.service.depart()  # it may already keep state for others: hand it on
            if isinstance(e, NickTaken):
                raise StartupError(str(e)) from None
            raise StartupError(f"could not register the nick {o.nick!r}: {e}") from None
        if self.gateway is not None:
            self.gateway.admit()
        if self.node.client is None and isinstance(self.node.transport, TcpTransport):
            self._watch = asyncio.ensure_future(self._follow_moves())
        return ev.Ready(nick=self.user.nick, id=self.user.id_hex, address=self.user.address,
                        fingerprint=self.user.fingerprint)

    async def _serve_irc(self, keys: UserKeys) -> None:
        """Open the IRC gateway's socket (not yet admitting nicks); a StartupError naming
        the address if not, after the node has handed on what it keeps and left."""
        o = self.options
        try:
            gateway = IrcGateway(self.service, o.irc.host, o.irc.port, password=o.irc_password,
                                 name=o.irc_name)
            await gateway.start(admit=False)
        except GatewayError as e:
            keys.release()
            await self.service.depart()
            raise StartupError(str(e)) from None
        self.gateway = gateway

    @staticmethod
    def _open_keys(data_dir: DataDir, nick: str) -> UserKeys:
        """The user's lock, identity and pins; a StartupError naming the file if not."""
        try:
            return open_user(data_dir, nick)
        except KeysError as e:
            raise StartupError(str(e)) from None

    async def _open_store(self, data_dir: DataDir) -> AsyncStore:
        """The user's database (StartupError naming the file); a corrupt one set aside is
        said so."""
        try:
            store = await AsyncStore.open(data_dir.user_dir(self.options.nick) / FILENAME)
        except (StoreError, DataDirError) as e:
            raise StartupError(str(e)) from None
        if store.notice:
            self.post(ev.Error(message=store.notice))
        return store

    async def _join(self, bootstrap: Address | None, data_dir: DataDir,
                    only_try: bool = False) -> bool:
        """Start the node and join the ring through ``bootstrap`` (None: a new ring).

        ``only_try``: False (not a StartupError) if the bootstrap does not answer.
        """
        o = self.options
        client = None if await self._reachable(bootstrap) else ClientSettings(
            relays=tuple(o.relays))
        self._build(bootstrap, data_dir, client)
        try:
            try:
                await self.node.start()
            except NotReachable as e:
                # nobody could dial us back: a client of the ring through relays instead,
                # never a full member that owns keys nobody can reach (docs/nat.md)
                self.post(ev.Log(text=e.verdict.text()))
                await self.node.stop()
                self._build(bootstrap, data_dir, ClientSettings(relays=tuple(o.relays)))
                await self.node.start()
        except ListenError as e:
            raise StartupError(e.strerror or str(e)) from None
        except JoinError as e:
            if only_try:
                log.info("%s", e)
                return False
            raise StartupError(str(e)) from None
        if self.node.reachability is not None:
            self.post(ev.Log(text=self.node.reachability.text()))
        return True

    def _build(self, bootstrap: Address | None, data_dir: DataDir,
               client: ClientSettings | None) -> None:
        """The node (a full member checked for reachability and relaying for clients, or a
        client) and its chat service, not yet started."""
        o = self.options
        relay = (RelayLimits(clients=o.relay_clients)
                 if o.relay_clients > 0 and client is None else None)
        self.node = Local(o.listen, bootstrap, client=client, relay=relay,
                          **{"check_reachability": client is None, **o.chord})
        try:
            self.service = ChatService(self.node, self._from_node, data_dir=data_dir,
                                       **{"replicas": o.replicas, **o.chat})
        except TypeError as e:
            raise StartupError(f"bad chat settings: {e}") from None

    async def _reachable(self, bootstrap: Address | None) -> bool:
        """Whether this node can be a full member: not with --client; else what the
        reachability decision says (``Options.reachability``); without one, yes."""
        o = self.options
        if o.client:
            return False
        if o.reachability is None or bootstrap is None:
            return True
        try:
            return await o.reachability(o.listen, bootstrap)
        except Exception:
            log.exception("the reachability check failed: starting as a full member")
            return True

    async def _known_peers(self) -> list[Address]:
        """The peers of earlier runs in the user's database, most recently seen first."""
        try:
            known = await self.store.peers(REMEMBERED)
        except StoreError as e:
            self.post(ev.Error(message=f"cannot read the known peers: {e}"))
            return []
        peers = []
        for text in known:
            try:
                peers.append(Address.parse(text))
            except AddressError:
                continue   # written by an older version, or by hand: not ours to trust
        return peers

    async def _join_known_peers(self, data_dir: DataDir, known: list[Address]) -> None:
        """Without --bootstrap: join through the known peers that answers first, the most
        recently seen first; none (or none answers): start a new ring. The log says which.
        A wildcard listen without --advertise learns its address from the peer it joins
        through; with none to join through it cannot start (a StartupError naming
        --advertise)."""
        peers = [p for p in known if p != self.options.listen][:KNOWN_PEERS_TRIED]
        for peer in peers:
            if await self._join(peer, data_dir, only_try=True):
                self.post(ev.Log(text=f"joined the ring through the known peer {peer}"))
                return
        await self._join(None, data_dir)
        self.post(ev.Log(text=f"none of the {len(peers)} known peers answered: started a new "
                              "ring" if peers else "no known peers: started a new ring"))

    def _remember(self, known: list[Address]) -> None:
        """Hand the known peers of earlier runs to the ring's memory for merges, as not yet
        seen in this run: a node that started a ring of its own because none answered (it
        came up on one side of a partition, or before the others) probes them now and then,
        and the rings merge when one answers (docs/failures.md, "A partition")."""
        now = asyncio.get_running_loop().time()
        peers = self.node.peers
        for address in known:
            if address != self.node.address and address not in peers:
                peers.lost(address, now)

    # -- a full member whose address changes (docs/nat.md, "A full member that moves") ------

    async def _follow_moves(self) -> None:
        """Watch this full member's address (``moves.AddressWatch``: is it still one of the
        host's, or do packets to the ring still leave from where they did); when it is
        gone, start the node again in place at the new one (``Local.relocate``: the fresh
        dial-back makes it a full member or a client), under the same user, with the same
        keys, database, outbox and channels, while the front ends go on. A client moves by
        itself (core/chord/client.py): the watch ends when the node is one."""
        node = self.node
        watch = self._address_watch()
        ring: list[Address] = []
        while node.client is None or not node.running:
            await asyncio.sleep(CHECK_EVERY)
            if not node.moving and node.running:
                ring = self._ring_entries(ring)
            why = watch.gone(ring)
            if why is None:
                continue
            self.post(ev.Log(text=f"moved: {why}: starting again at the new address"))
            listen = watch.new_listen(ring)
            while listen is None:   # no way out yet (the new cable, the new route)
                await asyncio.sleep(CHECK_EVERY)
                listen = watch.new_listen(ring)
            if await self._move(listen, ring):
                watch = self._address_watch()
            else:
                await asyncio.sleep(MOVE_RETRY)

    def _address_watch(self) -> AddressWatch:
        listen = self.node.listen_address
        if listen.port == 0 and not listen.is_wildcard:
            listen = Address(listen.host, self.node.address.port)   # keep the port it got
        return AddressWatch(listen, self.node.address)

    def _ring_entries(self, before: list[Address]) -> list[Address]:
        """Ring nodes to join again through, the nearest first: the successors, the
        predecessor, the fingers (as now, or as last seen while the address was good),
        the bootstrap and the known peers of earlier runs."""
        node = self.node
        now = [*(s.address for s in node.successors()),
               *([node.predecessor().address] if node.predecessor() else []),
               *(f.address for f in node.fingers())]
        mine = {node.address, node.listen_address}
        fresh = [a for a in dict.fromkeys(now) if a not in mine]
        if len(fresh) < len(before) // 2:
            fresh = fresh + before   # a list emptied by failing calls: keep what we knew
        extra = [a for a in (self.options.bootstrap, *self._known) if a is not None]
        return [a for a in dict.fromkeys([*fresh, *extra]) if a not in mine][:MOVE_ENTRIES]

    async def _move(self, listen: Address, entries: list[Address]) -> bool:
        """``Local.relocate`` to ``listen``; the ring log says how it went. False: not
        in the ring yet (the node is stopped until the next try)."""
        node, old = self.node, self.node.address
        started = asyncio.get_running_loop().time()
        try:
            await node.relocate(listen, entries, ClientSettings(relays=tuple(self.options.relays)))
        except (JoinError, ListenError) as e:
            self.post(ev.Log(text=f"moved: could not join again from {listen}: {e}; "
                                  f"trying again in {MOVE_RETRY:.0f} s"))
            return False
        except Exception as e:   # never the end of the watch: the next try may do
            log.exception("the move to %s failed", listen)
            self.post(ev.Log(text=f"moved: the move to {listen} failed: "
                                  f"{type(e).__name__}: {e}; trying again in "
                                  f"{MOVE_RETRY:.0f} s"))
            return False
        self.moves += 1
        took = asyncio.get_running_loop().time() - started
        if node.reachability is not None:
            self.post(ev.Log(text=node.reachability.text()))
        what = ("a full member" if node.client is None
                else f"a client, {node.reach}")
        self.post(ev.Log(text=f"moved from {old} to {node.address} as {what} "
                              f"(in {took:.1f} s); the users register again there"))
        return True

    def _from_node(self, event: ev.Event) -> None:
        """The node-wide events: to the front end, and to the IRC clients as ring news; the
        neighbours they name are remembered (known peers for the next start)."""
        if isinstance(event, ev.RingStatus) and self.store is not None:
            for address in (event.predecessor, event.successor):
                if address and address != event.address:
                    self.store.saw_peer(address, time.time()).add_done_callback(_logged)
        self.post(event)
        if self.gateway is not None:
            self.gateway.node_event(event)

    async def _search(self, text: str) -> None:
        if not self._started():
            self.post(ev.Error(message="the node has not started yet"))
            return
        try:
            await self.user.search(text)
        except ChatError as e:
            self.post(ev.Error(message=str(e)))

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
            # no await before this: the user takes the command's place in its lane (and
            # commits a line to send) in the order the commands were given
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
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
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
            if self.store is not None:
                with contextlib.suppress(StoreError):
                    await self.store.close()
            self.loop.call_soon(self.loop.stop)


def _logged(future: asyncio.Future) -> None:
    """A write nobody awaits: its failure goes to the log."""
    if not future.cancelled() and future.exception() is not None:
        log.warning("a store write failed: %s", future.exception())


def _log_loop_failure(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """What the loop cannot hand to anyone (a task's exception never retrieved, a callback
    that raised) goes to the log, never to a front end's terminal or stdout."""
    error = context.get("exception")
    log.error("core loop: %s", context.get("message", "unexpected failure"),
              exc_info=(type(error), error, error.__traceback__) if error else None)
