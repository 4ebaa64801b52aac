"""The chat application: builds the screen, turns core events into what it shows, and
turns keys and typed lines into runtime calls (never waiting on them)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import urwid

from core import events as ev
from core.chat import commands
from core.chat.commands import Command, Where
from tui import terminal
from tui.bridge import FromCore
from tui.completion import Completer, Sources
from tui.conversations import HOME, Conversations, mention_spans
from tui.history import History
from tui.logfile import setup_logging
from tui.ringview import RingView, short
from tui.view import UNVERIFIED, ConversationView
from tui.widgets.palette import PALETTE
from tui.widgets.screen import ChatScreen
from tui.widgets.status import Status

log = logging.getLogger(__name__)

LEAVE_TIMEOUT = 60.0  # seconds the graceful exit may take before the UI closes anyway


@dataclass(frozen=True)
class Done:
    """A runtime future finished (posted by its done-callback on the core thread)."""
    what: str  # "start", "shutdown" or the command
    future: concurrent.futures.Future


@dataclass(frozen=True)
class Quit:
    """The user, or a signal, asked to leave."""


class ChatApp:
    """The UI of one node. ``__init__`` builds widgets only; ``create`` makes the MainLoop."""

    def __init__(self, runtime, nick: str, bell: bool = True) -> None:
        self.runtime = runtime
        self.nick = nick
        self.bell = bell
        self.screen = ChatScreen()
        self.conversations = Conversations()
        self.view = ConversationView(self.screen, self.conversations)
        self.nicks: set[str] = set()
        self.history = History()
        self.completer = Completer(Sources(
            commands=commands.command_words,
            arguments=commands.argument_kinds,
            channels=self.conversations.channels,
            nicks=lambda: sorted(self.nicks),
            bare_commands=lambda: self.conversations.shown.kind == "home",
        ))
        self.bridge = FromCore(self._dispatch, on_error=self._handler_failed,
                               settle=self.view.show_current)
        self.ring = RingView(self.screen, nick)
        self.loop: urwid.MainLoop | None = None
        self.quitting = False
        self.ready = False
        self._waiting: list[Command] = []  # chat commands typed before the node was ready
        self.failure: str | None = None  # why the UI ended early (a start-up error)
        self.exit_code = 0
        urwid.connect_signal(self.screen, "action", self._on_action)
        urwid.connect_signal(self.screen.side, "select", self._on_select)
        self.view.notice(HOME, "Welcome to chordchat. Type  join general  to join a channel, "
                               "help (or F1) for commands and keys.")
        self.view.show_current()

    # ---- lifecycle -------------------------------------------------------------------

    def create(self, screen: urwid.display.raw.Screen | None = None) -> urwid.MainLoop:
        """Build the MainLoop on the terminal and start taking events from the core."""
        self.loop = urwid.MainLoop(self.screen, PALETTE, screen=screen or terminal.Screen(),
                                   handle_mouse=True)
        self.bridge.attach(self.loop)
        return self.loop

    def quit(self) -> None:
        """Ctrl+C or a signal: the same graceful exit as ``exit``. Twice: close now."""
        if self.quitting:
            raise urwid.ExitMainLoop
        self.run_command(Command("exit"))

    def _leaving(self, shutdown: concurrent.futures.Future) -> None:
        """The runtime runs its exit sequence: say so, and close when it is done."""
        self.quitting = True
        self.ring.set_status(state="leaving")
        self.ring.note("leaving the ring: leaving channels, handing over what this node keeps",
                       "log ring")
        self._track("shutdown", shutdown)
        if self.loop is not None:
            self.loop.set_alarm_in(LEAVE_TIMEOUT, self._leave_timed_out)

    def _leave_timed_out(self, _loop, _data) -> None:
        log.warning("graceful exit took over %s s; closing the UI anyway", LEAVE_TIMEOUT)
        raise urwid.ExitMainLoop

    def _track(self, what: str, future: concurrent.futures.Future) -> None:
        """Hear of ``future``'s end on the UI thread, without waiting for it."""
        future.add_done_callback(lambda f: self.bridge.post(Done(what, f)))

    @property
    def status(self) -> Status:
        """What the status bar says now."""
        return self.ring.status

    def _list(self, key: str):
        """The lines of conversation ``key`` (the bridge's tests read them here)."""
        return self.view.messages(key)

    # ---- core events (UI thread) -----------------------------------------------------

    def handle(self, event: object) -> None:
        """Show one event now (the bridge dispatches a batch, then brings the panes up to date
        once)."""
        self._dispatch(event)
        self.view.show_current()

    def _dispatch(self, event: object) -> None:
        """Dispatch on the event's class through the table at the end of this module."""
        handler = HANDLERS.get(type(event))
        if handler is None:
            log.warning("no handler for %r", event)
            return
        handler(self, event)

    def _handler_failed(self, event: object, exc: Exception) -> None:
        self.view.error(f"could not show a {type(event).__name__} event ({exc!r}); "
                        "details are in the log file")

    def _on_ready(self, e: ev.Ready) -> None:
        self.ready = True
        self.ring.ready(e)
        self.view.notice(HOME, f"You are {e.nick}, node {short(e.id)} at {e.address}; "
                               f"your key is {e.fingerprint}.")
        waiting, self._waiting = self._waiting, []
        for command in waiting:
            self.run_command(command)

    def _on_history(self, e: ev.History) -> None:
        conv = self.conversations.named(e.conversation)
        for m in e.messages:
            self.nicks.add(m["from"])
            line = self.view.earlier(conv, m["from"], m["text"], m["at"], m["msg_id"],
                                     state=m["state"] if m["outgoing"] else None)
            if m["outgoing"]:
                self.view.own(m["msg_id"], line)

    def _on_pending(self, e: ev.Pending) -> None:
        conv = self.conversations.named(e.conversation)
        line = self.view.message(conv, e.from_, e.text, e.at, own=True, msg_id=e.msg_id,
                                 state="pending")
        self.view.own(e.msg_id, line)
        if conv.kind == "private":
            self.conversations.select_key(conv.key)

    def _on_delivered(self, e: ev.Delivered) -> None:
        self.view.set_state(e.msg_id, "delivered")

    def _on_failed(self, e: ev.Failed) -> None:
        self.view.set_state(e.msg_id, "failed")
        self.view.error(f"not sent to {e.conversation}: {e.reason}")

    def _on_search(self, e: ev.SearchResults) -> None:
        self.view.search_results(e.text, e.hits)

    def _on_private(self, e: ev.PrivateMessage) -> None:
        other = e.to if e.outgoing else e.from_
        conv = self.conversations.private(other)
        self.nicks.add(other)
        if e.outgoing and self.view.set_state(e.msg_id, "delivered"):
            return   # shown when it was accepted
        self.view.message(conv, e.from_, e.text, e.at, own=e.outgoing,
                          spans=() if e.outgoing else mention_spans(e.text, self.nick),
                          verified=e.verified)
        if e.outgoing:
            self.conversations.select_key(conv.key)
        elif self.conversations.shown is not conv:
            conv.mention = True  # a private message is always for the user
            self._ring_bell()

    def _on_channel(self, e: ev.ChannelMessage) -> None:
        conv = self.conversations.channel(e.channel)
        self.nicks.add(e.from_)
        own = e.from_.lower() == self.nick.lower()
        if own and self.view.set_state(e.msg_id, "delivered"):
            return   # the echo of a line shown when it was accepted
        spans = [] if own else mention_spans(e.text, self.nick)
        if e.history:
            self.view.earlier(conv, e.from_, e.text, e.at, e.msg_id, verified=e.verified,
                              spans=spans)
            return
        self.view.message(conv, e.from_, e.text, e.at, own=own, spans=spans,
                          verified=e.verified, msg_id=e.msg_id)
        if spans:
            self._ring_bell()

    def _on_sent(self, e: ev.Sent) -> None:
        # a member sees its own message come back from the maintainer; a non-member only
        # gets this receipt, so the line is shown here instead
        conv = self.conversations.channel(e.channel)
        if not self.view.set_state(e.msg_id, "delivered") and not conv.joined:
            self.view.message(conv, self.nick, e.text, e.at, own=True, msg_id=e.msg_id)

    def _on_joined(self, e: ev.Joined) -> None:
        conv = self.conversations.channel(e.channel)
        conv.joined = True
        conv.members = set(e.members)
        self.nicks.update(e.members)
        who = ", ".join(sorted(e.members, key=str.lower)) or "nobody else yet"
        self.view.notice(conv.key, f"you joined {conv.title}; members: {who}", at=e.at)
        self.conversations.select_key(conv.key)

    def _on_left(self, e: ev.Left) -> None:
        conv = self.conversations.channel(e.channel)
        conv.joined = False
        self.view.notice(conv.key, f"you left {conv.title}", at=e.at)

    def _on_member_joined(self, e: ev.MemberJoined) -> None:
        conv = self.conversations.channel(e.channel)
        conv.members.add(e.nick)
        self.nicks.add(e.nick)
        self.view.notice(conv.key, f"→ {e.nick} joined {conv.title}", at=e.at)

    def _on_member_left(self, e: ev.MemberLeft) -> None:
        conv = self.conversations.channel(e.channel)
        conv.members.discard(e.nick)
        why = "" if e.reason == "left" else f" ({e.reason})"
        self.view.notice(conv.key, f"← {e.nick} left {conv.title}{why}", at=e.at)

    def _on_key_changed(self, e: ev.KeyChanged) -> None:
        text = (f"the key of {e.nick} changed: pinned {e.old}, now {e.new}; its messages are "
                f"marked {UNVERIFIED} until you compare the fingerprint with {e.nick} and type "
                f"/trust {e.nick}")
        conv = self.conversations.private(e.nick)
        self.view.error(text, conv, at=e.at)
        if conv is not self.conversations.shown:
            self.view.error(text)
        self.ring.note(f"key changed: {e.nick} {e.old} -> {e.new}", "error", e.at)

    def _on_whois(self, e: ev.Whois) -> None:
        pin = {"same": "pinned", "new": "not pinned yet",
               "changed": "NOT the key pinned for this nick"}.get(e.pin, e.pin)
        self._on_info(ev.Info(text=f"{e.nick}: key {e.fingerprint} ({pin}), node "
                                   f"{short(e.id)} at {e.address}"))

    def _on_migration(self, e: ev.Migration) -> None:
        self.ring.log(e)

    def _on_ring(self, e: ev.RingStatus) -> None:
        self.ring.ring_status(e)

    def _on_ring_change(self, e: ev.RingChange) -> None:
        self.ring.change(e)

    def _on_log(self, e: ev.Log) -> None:
        self.ring.log(e)

    def _on_info(self, e: ev.Info) -> None:
        for line in e.text.splitlines() or [""]:
            self.view.info(line)

    def _on_error(self, e: ev.Error) -> None:
        self.view.error(e.message)

    def _on_bye(self, _e: ev.Bye) -> None:
        raise urwid.ExitMainLoop

    def _on_done(self, e: Done) -> None:
        try:
            e.future.result()
        except Exception as exc:  # noqa: BLE001 - every failure is shown, none is raised
            if e.what == "start":
                self.failure = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                self.exit_code = getattr(exc, "code", 1)
                log.info("start-up failed: %s", self.failure)
                raise urwid.ExitMainLoop from None
            log.error("%s failed", e.what, exc_info=exc)
            self.view.error(f"{e.what}: {exc or type(exc).__name__}")
        if e.what == "shutdown":
            raise urwid.ExitMainLoop

    def _on_quit(self, _e: Quit) -> None:
        self.quit()

    # ---- what the user does (UI thread) ----------------------------------------------

    def _on_action(self, action: str, position: int) -> None:
        getattr(self, "act_" + action)(position)
        self.view.show_current()

    def _on_select(self, index: int) -> None:
        self.conversations.select(index)
        self.view.show_current()

    def act_goto(self, position: int) -> None:
        self.conversations.select(position)

    def act_next_conversation(self, _position: int) -> None:
        self.conversations.step(+1)

    def act_previous_conversation(self, _position: int) -> None:
        self.conversations.step(-1)

    def act_scroll_up(self, _position: int) -> None:
        self.view.messages(self.conversations.shown.key).scroll("page up")

    def act_scroll_down(self, _position: int) -> None:
        self.view.messages(self.conversations.shown.key).scroll("page down")

    def act_toggle_log(self, _position: int) -> None:
        self.screen.set_log_visible(not self.screen.log_visible)

    def act_log_up(self, _position: int) -> None:
        self.screen.set_log_visible(True)  # scrolling a hidden log would show nothing
        self.screen.log.scroll("page up")

    def act_log_down(self, _position: int) -> None:
        self.screen.set_log_visible(True)
        self.screen.log.scroll("page down")

    def act_toggle_bell(self, _position: int) -> None:
        self.set_bell(not self.bell)

    def act_help(self, _position: int) -> None:
        self.view.help()

    def act_history_older(self, _position: int) -> None:
        line = self.history.older(self.screen.input.edit_text)
        if line is not None:
            self.screen.input.replace(line)

    def act_history_newer(self, _position: int) -> None:
        line = self.history.newer(self.screen.input.edit_text)
        if line is not None:
            self.screen.input.replace(line)

    def act_complete(self, _position: int) -> None:
        field = self.screen.input
        done = self.completer.complete(field.edit_text, field.edit_pos)
        if done is not None:
            field.replace(*done)

    def act_submit(self, _position: int) -> None:
        line = self.screen.input.take()
        self.history.add(line)
        self.submit_line(line)

    def act_quit(self, _position: int) -> None:
        self.quit()

    def submit_line(self, line: str) -> None:
        """Run a typed line: parsed once, for the shown conversation (where a line is chat
        text unless it starts with "/"), then run where the COMMANDS table says."""
        if not line.strip():
            return
        conv = self.conversations.shown
        try:
            command = commands.parse(line, None if conv.kind == "home" else conv.title)
        except commands.CommandError as exc:
            home_text = isinstance(exc, commands.UnknownCommand) and conv.kind == "home" \
                and not line.lstrip().startswith("/")
            self.view.error("this is the home pane: join a channel first (join <channel>), "
                            "or msg <nick> <text>" if home_text else str(exc))
            return
        self.run_command(command)

    def run_command(self, command: Command) -> None:
        """Run a parsed command: the UI's own here, the rest in the runtime (the chat's once
        the node is in the ring), never waiting for it."""
        if command.where is Where.FRONT_END:
            FRONT_END[command.name](self, command)
            return
        if self.quitting:
            self.view.error("leaving the ring; no more commands (Ctrl+C again closes at once)")
            return
        if command.where is Where.CHAT and not self.ready:
            self._waiting.append(command)
            self.view.notice(HOME, f"still joining the ring; will run when ready: {command}")
            return
        future = self.runtime.execute(command)
        if self.runtime.stopping:
            self._leaving(future)
        else:
            self._track(str(command), future)

    def cmd_search(self, command: Command) -> None:
        """Asked of the core, which alone reads the database; the hits come as an event."""
        if not self.ready:
            self.view.error("still joining the ring; search once it is ready")
            return
        self._track(str(command), self.runtime.search(command.args[0]))

    def cmd_bell(self, command: Command) -> None:
        self.set_bell(command.args[0] == "on" if command.args else not self.bell)

    def cmd_help(self, _command: Command) -> None:
        self.view.help()

    # ---- the bell ----------------------------------------------------------------------

    def set_bell(self, on: bool) -> None:
        """Turn the terminal bell for mentions and private messages on or off, and say so."""
        self.bell = on
        self.view.info("the bell is on: it rings for mentions and private messages" if on
                       else "the bell is off (bell on, or Alt+B, turns it on again)")

    def _ring_bell(self) -> None:
        if self.bell and self.loop is not None:
            self.loop.screen.write("\a")


# the commands the COMMANDS table gives to the front end, as this UI answers them
FRONT_END: dict[str, Callable[[ChatApp, Command], None]] = {
    "help": ChatApp.cmd_help,
    "bell": ChatApp.cmd_bell,
    "search": ChatApp.cmd_search,
}


HANDLERS: dict[type, Callable[[ChatApp, object], None]] = {
    ev.Ready: ChatApp._on_ready,
    ev.PrivateMessage: ChatApp._on_private,
    ev.ChannelMessage: ChatApp._on_channel,
    ev.Sent: ChatApp._on_sent,
    ev.History: ChatApp._on_history,
    ev.Pending: ChatApp._on_pending,
    ev.Delivered: ChatApp._on_delivered,
    ev.Failed: ChatApp._on_failed,
    ev.SearchResults: ChatApp._on_search,
    ev.Joined: ChatApp._on_joined,
    ev.Left: ChatApp._on_left,
    ev.MemberJoined: ChatApp._on_member_joined,
    ev.MemberLeft: ChatApp._on_member_left,
    ev.KeyChanged: ChatApp._on_key_changed,
    ev.Whois: ChatApp._on_whois,
    ev.Migration: ChatApp._on_migration,
    ev.RingStatus: ChatApp._on_ring,
    ev.RingChange: ChatApp._on_ring_change,
    ev.Log: ChatApp._on_log,
    ev.Info: ChatApp._on_info,
    ev.Error: ChatApp._on_error,
    ev.Bye: ChatApp._on_bye,
    Done: ChatApp._on_done,
    Quit: ChatApp._on_quit,
}


def run_ui(options, bell: bool | None = None) -> int:
    """Run the full-screen UI for ``options`` (a core.runtime.Options) until the user leaves.

    Returns the exit code: 0 after a graceful exit, the StartupError's code (2) when the
    node could not join, 1 after an unexpected failure. Never leaves a traceback on the
    terminal: those go to the log file, whose path the error message names.
    """
    from core.runtime import Runtime  # the UI module itself needs no runtime (tests)

    log_path = setup_logging(options)
    if bell is None:
        bell = os.environ.get("CHORDCHAT_BELL", "on").lower() not in ("0", "off", "no")
    app = ChatApp(None, options.nick, bell=bell)
    try:
        app.runtime = Runtime(options, app.bridge.post)
        app._track("start", app.runtime.start())
        loop = app.create()
        with (terminal.signals_to(lambda: app.bridge.post(Quit())),
              terminal.stderr_to(log_path)):
            loop.run()
    except Exception:
        log.exception("the UI failed")
        app.failure = app.failure or f"the UI failed unexpectedly; details are in {log_path}"
        app.exit_code = app.exit_code or 1
    finally:
        if app.runtime is not None and not app.quitting:
            with contextlib.suppress(Exception):
                app.runtime.shutdown().result(timeout=LEAVE_TIMEOUT)
    if app.failure:
        print(f"chordchat: {app.failure}", file=sys.stderr)
        where = [str(a) for a in (options.listen, options.bootstrap) if a is not None]
        if not any(a in app.failure for a in where):
            # say which node and which bootstrap the message is about
            via = f", joining through {options.bootstrap}" if options.bootstrap else ""
            print(f"chordchat: (this node: {options.listen}{via}; log: {log_path})",
                  file=sys.stderr)
    return app.exit_code
