"""The IRC gateway: an asyncio server on the core's loop, one ``Session`` per connection,
and the connection that carries out what the session asks of the chat.

Each connection reads lines, feeds them to its session and does the session's actions:
the nick is claimed on the ring (``add_user``) before the next line is read; chat
commands run in one lane per destination (a channel or a nick), so a client's messages
to one place keep their order while a slow one holds up nothing else. A client silent
for ``ping_interval`` is sent a PING and closed if it stays silent as long again; a client
that does not read its lines (over ``SENDQ`` bytes waiting) is closed, as IRC servers do.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import time

from core import events as ev
from core.chat.model.commands import Command
from core.chat.model.errors import ChatError, NickTaken
from core.chord.ids import short_id

from . import accounts, history
from .actions import (
    Authenticate,
    Close,
    Counts,
    Gone,
    History,
    ListChannels,
    Lookup,
    Oper,
    Peer,
    Quit,
    Register,
    Rename,
    Run,
    Trust,
)
from .adapter import IrcUser
from .message import LineBuffer, Message, encode
from .replies import ServerInfo
from .session import Session

log = logging.getLogger(__name__)

SENDQ = 1 << 20          # bytes a client may leave unread before it is dropped
QUIT_WAIT = 5.0          # seconds a quit waits for the client's commands still running
READ_SIZE = 4096
PONG_WAIT = 10.0         # seconds a PONG waits for the client's commands sent before it
ECHO_WAIT = 2.0          # seconds a PONG waits for the echo of a channel message before it
WHOWAS_KEPT = 200        # the clients that left that WHOWAS remembers, the latest


class GatewayError(Exception):
    """The gateway cannot start: a non-loopback address without a password, or the port."""


def valid_server_name(name: str) -> bool:
    """A server name as it may appear as a message's source (RFC 2812 §2.3.1: a host name,
    which needs a '.' so that clients do not take it for a nick)."""
    return (0 < len(name) <= 63 and "." in name and not name.startswith((".", "-"))
            and all(c.isascii() and (c.isalnum() or c in "-.") for c in name))


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Connection:
    """One IRC client: its socket, its session and, once registered, its chat user."""

    def __init__(self, gateway: IrcGateway, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.gateway = gateway
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else "localhost"
        self.session = Session(gateway.info, self.write, host=host, directory=gateway)
        self.user: IrcUser | None = None
        self.closing = False
        self.gone = asyncio.Event()   # set once its user has quit (or it never had one)
        self._lanes: dict[str | None, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()
        self._ponging: asyncio.Task | None = None   # a PONG waiting for earlier commands
        self.killed: str | None = None   # an operator's KILL closed it: the quit reason
        self._generation = 0   # which user's events reach the session (NICK makes a new one)
        # echo-message: the ids of this client's channel messages it was shown (the latest),
        # the echoes awaited, and the waits a PONG follows
        self._echoed: collections.deque[str] = collections.deque(maxlen=64)
        self._echoes: dict[str, asyncio.Future] = {}
        self._echo_waits: set[asyncio.Task] = set()
        self._answering: set[asyncio.Task] = set()   # WHOIS, TRUST, CHATHISTORY asking

    def write(self, message: Message) -> None:
        if self.closing or self.writer.is_closing():
            return
        self.writer.write(encode(message))
        if self.writer.transport.get_write_buffer_size() > SENDQ:
            log.warning("IRC client %s does not read its lines: dropped", self.session.nick)
            self.closing = True
            self.writer.transport.abort()

    async def serve(self) -> None:
        buffer = LineBuffer()
        loop = asyncio.get_running_loop()
        pinged_at: float | None = None
        try:
            while not self.closing:
                try:
                    data = await asyncio.wait_for(self.reader.read(READ_SIZE),
                                                  self.gateway.ping_interval)
                except TimeoutError:
                    if pinged_at is not None:
                        self.write(Message("ERROR", ("Closing link: Ping timeout",)))
                        await self.quit_user("Ping timeout")
                        break
                    pinged_at = loop.time()
                    self.write(Message("PING", (self.gateway.info.name,)))
                    continue
                if not data:
                    await self.quit_user(self.killed or "Connection closed")
                    break
                pinged_at = None
                for line in buffer.feed(data):
                    if self._pong_later(line):
                        continue
                    for action in self.session.receive(line):
                        await self._do(action)
                    if self.closing:
                        break
                await self.writer.drain()
            if self.user is not None:   # killed while its lines were read
                await self.quit_user(self.killed or "Connection closed")
        except (ConnectionError, OSError) as e:
            await self.quit_user(self.killed or f"Connection error: {e.__class__.__name__}")
        finally:
            self.closing = True
            for task in self._tasks:
                task.cancel()
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    def _pong_later(self, line) -> bool:
        """A PING while commands of this client are still running (a JOIN the ring has
        not answered yet, a WHOIS it is asked): its PONG waits for them (``PONG_WAIT`` at
        most), so that the PONG follows the replies to what the client asked before it, as
        a server that answers commands in order would. True if the line is left to that
        wait."""
        if not isinstance(line, bytes) or not line.lstrip().upper().startswith(b"PING"):
            return False
        waiting = set(self._lanes.values()) | self._echo_waits | self._answering
        if self._ponging is not None and not self._ponging.done():
            waiting.add(self._ponging)   # PONGs keep the order of the PINGs
        if not waiting:
            return False

        async def pong() -> None:
            await asyncio.wait(waiting, timeout=PONG_WAIT)
            if self._echo_waits:   # echoes of the messages those commands sent
                await asyncio.wait(set(self._echo_waits), timeout=ECHO_WAIT)
            if not self.closing:
                for action in self.session.receive(line):
                    await self._do(action)
                with contextlib.suppress(ConnectionError, OSError):
                    await self.writer.drain()
        self._ponging = self._spawn(pong())
        return True

    async def _do(self, action) -> None:
        if isinstance(action, Register):
            await self._register(action.nick, action.account)
        elif isinstance(action, Authenticate):
            await self._authenticate(action)
        elif isinstance(action, Oper):
            await self._oper(action)
        elif isinstance(action, Rename):
            await self._rename(action.nick)
        elif isinstance(action, Run):
            self._in_lane(action)
        elif isinstance(action, Lookup):
            self._answer(self._lookup(self.user, action.nick))
        elif isinstance(action, Trust):
            self._answer(self._trust(self.user, action.nick))
        elif isinstance(action, History):
            self._answer(self._history(self.user, action))
        elif isinstance(action, ListChannels):
            self.session.listing(self.gateway.channels(self.session), action.only)
        elif isinstance(action, Quit):
            await self.quit_user(action.reason)
        elif isinstance(action, Close):
            self.closing = True

    async def _guess(self, attempts, check, name: str, password: str) -> str | None:
        """One password guess for ``name``, checked by ``check`` (scrypt: in a thread)
        unless ``attempts`` says this IP or name failed too often: None if right, else
        why not."""
        now = asyncio.get_running_loop().time()
        why = attempts.check(self.session.host, name, now)
        if why is not None:
            return f"not checked: {why}"
        why = await asyncio.to_thread(check, self.gateway.service.data_dir, name, password)
        if why is not None:
            attempts.failed(self.session.host, name, now)
        return why

    async def _authenticate(self, login: Authenticate) -> None:
        """Check a SASL login (scrypt: in a thread) before the next line is read; after
        too many failures from its IP or as its account, refused unchecked."""
        why = await self._guess(self.gateway.attempts, accounts.login, login.account,
                                login.password)
        if why is None:
            log.info("IRC client %s logged in as %s", self.session.host, login.account)
            actions = self.session.logged_in(login.account)
        else:
            log.warning("IRC client %s could not log in as %s: %s", self.session.host,
                        login.account, why)
            actions = self.session.login_failed()
        for action in actions:
            await self._do(action)

    async def _oper(self, oper: Oper) -> None:
        """Check an OPER (scrypt: in a thread) before the next line is read; after too
        many failures from its IP or as its name, refused unchecked (464)."""
        why = await self._guess(self.gateway.oper_attempts, accounts.oper_login, oper.name,
                                oper.password)
        if why is None:
            log.info("IRC client %s (%s) is an operator as %s", self.session.host,
                     self.session.nick, oper.name)
            self.session.opered(oper.name)
        else:
            log.warning("IRC client %s (%s) could not OPER as %s: %s", self.session.host,
                        self.session.nick, oper.name, why)
            self.session.oper_failed(why)

    def kill(self, by: str, reason: str) -> None:
        """An operator (mask ``by``) closes this connection: the client is told (KILL,
        ERROR) and its user quits with the reason."""
        self.killed = self.session.killed(by, reason)
        self.closing = True
        self.writer.close()   # the reader sees the end; serve() quits the user

    async def _register(self, nick: str, account: str | None = None) -> None:
        await self.gateway.admitting.wait()
        if self.closing:
            return   # the gateway stopped before it admitted anyone
        # a client that reconnects at once: its old connection may still be giving the
        # nick back (closed sockets free a nick on IRC servers): wait for that, not 433
        await self.gateway.released(nick, self)
        try:
            user = await IrcUser.add(self.gateway.service, nick, self._poster(), account)
        except NickTaken as e:
            actions = self.session.refused(nick, str(e), taken=True)
        except ChatError as e:
            actions = self.session.refused(nick, str(e), taken=False)
        else:
            self.user = user
            self.session.registered(replay=user.store is not None)
            log.info("IRC client %s registered as %s", self.session.host, nick)
            return
        for action in actions:
            await self._do(action)

    def _poster(self, generation: int = 0):
        """What a user of this connection posts its events with: they reach the session
        while that user is the connection's (a NICK change makes another)."""
        def post(event: ev.Event) -> None:
            if generation != self._generation:
                return
            self.session.event(event)
            if (isinstance(event, ev.ChannelMessage) and not event.history
                    and self.session.registration.is_me(event.from_)):
                self._echoed.append(event.msg_id)
                waiter = self._echoes.pop(event.msg_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
        return post

    def _await_echo(self, msg_id: str) -> None:
        """A channel message of this echo-message client was acknowledged: a PING sent
        after it is answered once the client was shown its echo (``ECHO_WAIT`` at most),
        as a server that echoes at once would; the next commands do not wait."""
        if msg_id in self._echoed:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._echoes[msg_id] = waiter

        async def wait() -> None:
            try:
                await asyncio.wait_for(waiter, ECHO_WAIT)
            except TimeoutError:
                pass
            finally:
                self._echoes.pop(msg_id, None)
        task = self._spawn(wait())
        self._echo_waits.add(task)
        task.add_done_callback(self._echo_waits.discard)

    async def _rename(self, nick: str) -> None:
        """NICK once registered (before the next line is read): ``nick`` is claimed as a new
        user with a fresh key, which joins the client's channels; then it takes the old
        user's place, which quits (the others see that nick quit and the new one join).
        Refused (the old nick kept): 433 if taken, else 447 with why."""
        old = self.user
        if old is None:
            return
        running = set(self._lanes.values())
        if running:   # the commands sent before the NICK finish as the old nick
            await asyncio.wait(running, timeout=QUIT_WAIT)
        generation = self._generation + 1
        try:
            user = await IrcUser.add(self.gateway.service, nick, self._poster(generation))
        except NickTaken as e:
            self.session.rename_refused(nick, str(e), taken=True)
            return
        except ChatError as e:
            self.session.rename_refused(nick, str(e), taken=False)
            return
        channel = None
        try:
            for channel in list(self.session.channels):
                await user.run(Command("join", (channel,)))
        except ChatError as e:
            with contextlib.suppress(Exception):
                await user.quit("could not take the place of the old nick")
            self.session.rename_refused(nick, f"could not join #{channel}: {e}", taken=False)
            return
        if self.closing or self.user is not old:   # it quit (or was stopped) meanwhile
            with contextlib.suppress(Exception):
                await user.quit("the connection closed")
            return
        r = self.session.registration
        self.gateway.left(Gone(r.nick or "", r.user or "", r.host, r.realname, time.time()))
        self._generation, self.user = generation, user
        self.session.renamed(nick)
        log.info("IRC client %s changed nick from %s to %s", r.host, old.user.nick, nick)
        try:
            await old.quit(f"Nick changed to {nick}")
        except Exception:
            log.exception("IRC user %s could not quit after a NICK", nick)

    def _answer(self, coro) -> None:
        """A query the ring (or the database) answers; a PING sent after it waits for it."""
        task = self._spawn(coro)
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _in_lane(self, run: Run) -> None:
        destination = run.command.destination
        task = self._spawn(self._run_after(self._lanes.get(destination), self.user, run))
        self._lanes[destination] = task

        def forget(done: asyncio.Task) -> None:
            if self._lanes.get(destination) is done:
                del self._lanes[destination]
        task.add_done_callback(forget)

    async def _run_after(self, before: asyncio.Task | None, user: IrcUser, run: Run) -> None:
        if before is not None:
            await asyncio.wait([before])
        try:
            done = await user.run(run.command)
        except ChatError as e:
            self.session.failed(run, str(e), e.reason)
            return
        except Exception as e:
            log.exception("IRC command %s failed", run.command.shown)
            self.session.failed(run, f"{type(e).__name__}: {e}")
            return
        if (run.command.name in ("send", "me") and "echo-message" in self.session.replies.caps
                and isinstance(done, tuple) and done and isinstance(done[0], str)):
            self._await_echo(done[0])

    async def _lookup(self, user: IrcUser, nick: str) -> None:
        self.session.whois(nick, await user.whois(nick))

    async def _trust(self, user: IrcUser, nick: str) -> None:
        try:
            await user.trust(nick)
        except ChatError as e:
            self.session.trusted(nick, str(e))
        else:
            self.session.trusted(nick, None)

    async def _history(self, user: IrcUser, query: History) -> None:
        """A CHATHISTORY query, answered from the user's own database."""
        if query.subcommand == "TARGETS":
            found = [(c.name, c.last_at) for c in await user.conversations()
                     if history.within(c.last_at, query.after, query.before)]
            self.session.targets(sorted(found, key=lambda f: f[1])[:query.limit])
            return
        lines = await user.history(query.target.lower() if query.target.startswith("#")
                                   else query.target)
        picked = history.pick(lines, query)
        self.session.history(query.target, [history.event(m, self.session.nick or "",
                                                          query.target) for m in picked])

    async def quit_user(self, reason: str) -> None:
        """The user quits (once): commands still running may finish first, within reason."""
        self.closing = True
        user, self.user = self.user, None
        if user is None:
            self.gone.set()
            return
        r = self.session.registration
        if r.nick:
            self.gateway.left(Gone(r.nick, r.user or "", r.host, r.realname, time.time()))
        running = set(self._lanes.values())
        try:
            if running:
                await asyncio.wait(running, timeout=QUIT_WAIT)
            await user.quit(reason)
        except Exception:
            log.exception("IRC user %s could not quit cleanly", self.session.nick)
        finally:
            self.gone.set()


class IrcGateway:
    """Serves IRC clients for one node's chat service.

    Args:
        service: the node's ``ChatService`` (``add_user``, ``node``).
        host, port: where to listen; port 0 picks a free one (see ``address``).
        password: required from clients (PASS); a must off loopback.
        ping_interval: seconds of silence before the server PINGs, and then closes.
        name: its server name (a host name, see ``valid_server_name``); None: the node's
            short id and ``.chordchat``.
    """

    def __init__(self, service, host: str = "127.0.0.1", port: int = 6667, *,
                 password: str | None = None, ping_interval: float = 120.0,
                 motd: tuple[str, ...] | None = None, name: str | None = None) -> None:
        if not is_loopback(host) and not password:
            raise GatewayError(f"the IRC gateway on {host}:{port} is not on loopback: "
                               "give it a password (--irc-password)")
        if name is not None and not valid_server_name(name):
            raise GatewayError(f"not a server name: {name!r}")
        self.service = service
        self.host = host
        self.port = port
        self.ping_interval = ping_interval
        self.attempts = accounts.Attempts()   # failed SASL logins per IP and per account
        self.oper_attempts = accounts.Attempts()   # failed OPERs per IP and per name
        node = service.node
        name = name or f"{short_id(node.id)}.chordchat"
        if motd is None:
            motd = (f"chordchat: the IRC gateway of node {short_id(node.id)} at {node.address}.",
                    "Channels are #name; every nick is registered on the ring.",
                    "JOIN &ring to follow this node's ring changes and migration steps.")
        self.info = ServerInfo(name=name, motd=motd, password=password,
                               sasl=service.data_dir is not None)
        self.connections: set[Connection] = set()
        self._whowas: collections.deque[Gone] = collections.deque(maxlen=WHOWAS_KEPT)
        self._server: asyncio.Server | None = None
        self._serving: set[asyncio.Task] = set()
        self.admitting = asyncio.Event()   # set: nicks are claimed; clear: they wait

    @property
    def address(self) -> tuple[str, int]:
        """The address it listens on (the real port when it was given 0)."""
        if self._server is None or not self._server.sockets:
            return self.host, self.port
        return self._server.sockets[0].getsockname()[:2]

    async def start(self, admit: bool = True) -> None:
        """Listen. With ``admit`` false clients may connect, but their nicks wait for
        ``admit()`` (the runtime lets the node's own user claim its nick first)."""
        try:
            self._server = await asyncio.start_server(self._accept, self.host.strip("[]"),
                                                      self.port)
        except OSError as e:
            raise GatewayError(f"cannot serve IRC on {self.host}:{self.port}: "
                               f"{e.strerror or e}") from None
        log.info("IRC gateway listening on %s:%s", *self.address)
        if admit:
            self.admit()

    def admit(self) -> None:
        """Claim the nicks of clients on the ring from now on (those waiting first)."""
        self.admitting.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(self, reader, writer)
        self.connections.add(connection)
        self._serving.add(asyncio.current_task())
        try:
            await connection.serve()
        finally:
            self.connections.discard(connection)
            self._serving.discard(asyncio.current_task())

    # -- what a session may learn of the others (commands.Directory) ------------------------

    async def released(self, nick: str, asking: Connection) -> None:
        """Wait (a while at most) until no closing connection of this gateway holds
        ``nick`` any more."""
        leaving = [c.gone.wait() for c in self.connections
                   if c is not asking and c.closing and not c.gone.is_set()
                   and c.session.registration.is_me(nick)]
        if leaving:
            await asyncio.wait([asyncio.ensure_future(w) for w in leaving],
                               timeout=2 * QUIT_WAIT)

    def peer(self, nick: str) -> Peer | None:
        for connection in self.connections:
            session = connection.session
            if (session.state == "registered" and not connection.closing
                    and session.registration.is_me(nick)):
                r = session.registration
                return Peer(r.nick or nick, r.user or "", r.host, r.realname, session.away,
                            r.account, "o" in session.commands.modes)
        return None

    def has_channel(self, channel: str) -> bool:
        return any(channel in c.session.channels for c in self.connections)

    def left(self, gone: Gone) -> None:
        """A client that had a nick left: WHOWAS remembers it (the last ``WHOWAS_KEPT``)."""
        self._whowas.append(gone)

    def was(self, nick: str) -> list[Gone]:
        return [g for g in reversed(self._whowas) if g.nick.lower() == nick.lower()]

    def counts(self) -> Counts:
        registered = [c for c in self.connections
                      if c.session.state == "registered" and not c.closing]
        channels = {ch for c in registered for ch in c.session.channels}
        return Counts(users=len(registered),
                      invisible=sum("i" in c.session.commands.modes for c in registered),
                      unregistered=sum(c.session.state in ("connecting", "registering")
                                       for c in self.connections if not c.closing),
                      channels=len(channels),
                      opers=sum("o" in c.session.commands.modes for c in registered))

    def kill(self, nick: str, by: str, reason: str) -> bool:
        for connection in list(self.connections):
            session = connection.session
            if (session.state == "registered" and not connection.closing
                    and session.registration.is_me(nick)):
                log.info("IRC client %s killed by %s: %s", nick, by, reason)
                connection.kill(by, reason)
                return True
        return False

    def wallops(self, message: Message) -> None:
        for connection in list(self.connections):
            session = connection.session
            if (session.state == "registered" and not connection.closing
                    and "w" in session.commands.modes):
                session.replies.send(message)

    def node_event(self, event: ev.Event) -> None:
        """A node-wide event (ring change, migration step) for every client."""
        for connection in list(self.connections):
            connection.session.node_event(event)

    def channels(self, viewer: Session | None = None) -> list[tuple[str, int]]:
        """The channels this gateway's users are in, with the members they know of (a
        secret one, +s, only if ``viewer`` is in it)."""
        counts: dict[str, int] = {}
        for connection in self.connections:
            for channel, members in connection.session.channels.items():
                if (viewer is not None and connection.session.secret(channel)
                        and channel not in viewer.channels):
                    continue
                counts[channel] = max(counts.get(channel, 0), len(members))
        return list(counts.items())

    async def stop(self, reason: str = "the node is shutting down",
                   quit_users: bool = True) -> None:
        """Close every connection (its user quits unless ``quit_users`` is false: the chat
        service's exit quits them itself) and stop listening."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.write(Message("ERROR", (f"Closing link: {reason}",)))
            if quit_users:
                await connection.quit_user(reason)
            connection.user = None   # the chat service's exit quits it
            connection.closing = True
            connection.gone.set()
            connection.writer.close()
        self.admitting.set()   # a registration still waiting sees its connection closing
        if self._serving:
            await asyncio.wait(set(self._serving), timeout=QUIT_WAIT)
        if self._server is not None:
            await self._server.wait_closed()
