"""The chat application: ChatApp builds the parts and owns the lifecycle; run_ui runs it.

Two threads meet here, each crossing named for its direction. Core → UI: the core posts
events from its own thread with ``bridge.post`` (tui.bridge.FromCore); the bridge hands
them to ``_dispatch`` on the UI thread, which finds their handler (tui.handlers). UI →
core: ``run_command`` and ``track`` give work to the runtime, which answers at once with
a future; its end comes back through the bridge as a ``handlers.Done`` event. So the UI
thread never waits on the network or the disk: only the core does I/O (run_ui waits for
the graceful exit only after the UI has closed).

The parts: tui.conversation_view (conversation pane), tui.ring_view (status bar, ring log
pane), tui.prompt (input line, typed commands), tui.front_end_commands (the commands the UI
answers itself), tui.handlers (core events), tui.keys (the key table, whose actions are the
``act_*`` methods here), tui.terminal (tty, signals, stderr).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import urwid

from core.chat.model import commands
from core.chat.model.commands import Command, Where
from core.chat.model.text import visible_fields
from core.datadir import DataDir
from tui import handlers, terminal
from tui.bridge import FromCore
from tui.conversation_view import ConversationView
from tui.conversations import HOME, Conversations
from tui.echoes import Echoes
from tui.front_end_commands import FRONT_END
from tui.logfile import setup_logging
from tui.popups import help_popup, search_popup
from tui.prompt import Prompt
from tui.read_marks import ReadMarks, ReadMarksFile
from tui.ring_view import RingView
from tui.widgets.palette import PALETTE
from tui.widgets.screen import ChatScreen

log = logging.getLogger(__name__)

LEAVE_TIMEOUT = 60.0  # seconds the graceful exit may take before the UI closes anyway


class ChatApp:
    """The UI of one node. ``__init__`` builds widgets only; ``create`` makes the MainLoop."""

    def __init__(self, runtime, nick: str, bell: bool = True,
                 keep_marks: Callable[[dict], None] | None = None) -> None:
        self.runtime = runtime
        self.nick = nick
        self.bell = bell
        self.screen = ChatScreen()
        self.conversations = Conversations()
        self.conversation_view = ConversationView(self.screen, self.conversations)
        self.nicks: set[str] = set()
        self.prompt = Prompt(self.screen.input, self.conversations, lambda: sorted(self.nicks))
        self.bridge = FromCore(self._dispatch, on_error=self._handler_failed,
                               settle=self.settle)
        # where the user stopped reading; run_ui keeps it in a file (tui.read_marks)
        self.read_marks = ReadMarks(self.conversations, self.conversation_view,
                                    save=keep_marks or (lambda marks: None))
        self.ring_view = RingView(self.screen, nick)
        self.loop: urwid.MainLoop | None = None
        self.quitting = False
        self.ready = False
        # chat commands typed before the node was ready, each with its echo (or None)
        self._waiting: list[tuple[Command, tuple | None]] = []
        self.echoes: Echoes = Echoes()      # own lines shown on Enter, until their Pending
        self.failure: str | None = None  # why the UI ended early (a start-up error)
        self.exit_code = 0
        urwid.connect_signal(self.screen, "action", self._on_action)
        urwid.connect_signal(self.screen.side, "select", self._on_select)
        self.conversation_view.notice(HOME, "Welcome to chordchat. Type  join general  to join a "
                                            "channel, help (or F1) for commands and keys.")
        self.conversation_view.show_current()

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
        self.ring_view.set_status(state="leaving")
        self.ring_view.note("leaving the ring: leaving channels, handing over what this node keeps",
                            "log ring")
        self.track("shutdown", shutdown)
        if self.loop is not None:
            self.loop.set_alarm_in(LEAVE_TIMEOUT, self._leave_timed_out)

    def _leave_timed_out(self, _loop, _data) -> None:
        log.warning("graceful exit took over %s s; closing the UI anyway", LEAVE_TIMEOUT)
        raise urwid.ExitMainLoop

    def start_failed(self, exc: Exception) -> None:
        """The node could not start: once the UI is closed, run_ui says why and exits with
        the error's code."""
        self.failure = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        self.exit_code = getattr(exc, "code", 1)
        log.info("start-up failed: %s", self.failure)

    # ---- core → UI: events the bridge hands over on the UI thread --------------------

    def handle(self, event: object) -> None:
        """Show one event now, synchronously, on the calling (UI) thread: dispatch it and
        bring the panes up to date, as a drain of a batch of one does, except that a
        failing handler's exception reaches the caller. The entry for whatever drives the
        UI without the core thread (the tests, about 90 calls). The bridge does not use it:
        it dispatches a whole batch (``_dispatch``, each handler guarded and a failure shown
        by ``_handler_failed``), then settles once."""
        self._dispatch(event)
        self.settle()

    def settle(self) -> None:
        """Bring the panes up to date, and note what has been read."""
        self.conversation_view.show_current()
        self.read_marks.update()

    def _dispatch(self, event: object) -> None:
        """Dispatch on the event's class through the one table (tui.handlers.HANDLERS),
        every control character in its text made visible first (core.chat.model.text:
        an ESC from another user's message never reaches the terminal)."""
        handler = handlers.HANDLERS.get(type(event))
        if handler is None:
            log.warning("no handler for %r", event)
            return
        handler(self, visible_fields(event))

    def _handler_failed(self, event: object, exc: Exception) -> None:
        self.conversation_view.error(f"could not show a {type(event).__name__} event ({exc!r}); "
                                     "details are in the log file")

    # ---- UI → core: the runtime runs it; a future says when it is done ---------------

    def run_command(self, command: Command) -> None:
        """Run a parsed command: the UI's own here, the rest in the runtime (the chat's once
        the node is in the ring), never waiting for it."""
        if command.where is Where.FRONT_END:
            FRONT_END[command.name](self, command)
            return
        if self.quitting:
            self.conversation_view.error("leaving the ring; no more commands "
                                         "(Ctrl+C again closes at once)")
            return
        echo = self._echo(command) if command.name in ("send", "msg") else None
        if command.where is Where.CHAT and not self.ready:
            self._waiting.append((command, echo))
            self.conversation_view.notice(HOME, "still joining the ring; will run when ready: "
                                                f"{command.shown}")
            return
        self._execute(command, echo)

    def _execute(self, command: Command, echo=None) -> None:
        future = self.runtime.execute(command)
        if echo is not None:
            self.echoes.sent_by(future, *echo)
        if self.runtime.stopping:
            self._leaving(future)
        else:
            self.track(command.shown, future)

    def _echo(self, command: Command) -> tuple:
        """Show a line to send now, in the order typed (tui.echoes says why)."""
        target, text = command.args
        name = "#" + target if command.name == "send" else target
        new = self.conversations.get(handlers.conversation_id(name)) is None
        conv = self.conversations.named(name)
        if new:   # opened by this line: closed again if the line can never go (on_failed)
            conv.opened_from = self.conversations.shown.id
        line = self.conversation_view.message(conv, self.nick, text, time.time(), own=True,
                                              state="pending")
        self.echoes.add(conv.id, text, line)
        if conv.kind == "private":
            self.conversations.select_id(conv.id)
        return conv.id, text, line

    def now_ready(self) -> None:
        """The node is in the ring: run the chat commands typed before it was."""
        self.ready = True
        waiting, self._waiting = self._waiting, []
        for command, echo in waiting:
            if echo is None:
                self.run_command(command)
            elif self.quitting:
                echo[2].set_state("failed")
            else:
                self._execute(command, echo)  # shown when typed

    def track(self, what: str, future: concurrent.futures.Future) -> None:
        """Hear of ``future``'s end on the UI thread, without waiting for it."""
        future.add_done_callback(lambda f: self.bridge.post(handlers.Done(what, f)))

    # ---- what the user does: the key table's actions (tui.keys), clicks --------------

    def _on_action(self, action: str, position: int) -> None:
        getattr(self, "act_" + action)(position)
        self.settle()

    def _on_select(self, index: int) -> None:
        self.conversations.select(index)
        self.settle()

    def act_goto(self, position: int) -> None:
        self.conversations.select(position)

    def act_next_conversation(self, _position: int) -> None:
        self.conversations.step(+1)

    def act_previous_conversation(self, _position: int) -> None:
        self.conversations.step(-1)

    def act_scroll_up(self, _position: int) -> None:
        self.conversation_view.messages(self.conversations.shown.id).scroll("page up")

    def act_scroll_down(self, _position: int) -> None:
        self.conversation_view.messages(self.conversations.shown.id).scroll("page down")

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
        self.show_help()

    # ---- popups over the screen (tui.popups) -----------------------------------------

    def show_help(self) -> None:
        """The commands and keys in a popup (Esc closes it; F1 again too)."""
        popup = self.screen.popup
        if popup is not None and popup.title == " help ":
            self.screen.close_popup()
        else:
            self.screen.open_popup(help_popup())

    def show_search_results(self, text: str, hits) -> None:
        """The hits of a search in a popup, where the arrows choose one and Enter opens it;
        no hits is a line under the shown conversation."""
        if not hits:
            self.conversation_view.info(f"search {text!r}: no lines")
        else:
            self.screen.open_popup(search_popup(text, hits, self.conversation_view.open_hit))

    def act_input_history_older(self, _position: int) -> None:
        self.prompt.older()

    def act_input_history_newer(self, _position: int) -> None:
        self.prompt.newer()

    def act_complete(self, _position: int) -> None:
        self.prompt.complete()

    def act_submit(self, _position: int) -> None:
        try:
            command = self.prompt.take()
        except commands.CommandError as exc:
            self.conversation_view.error(str(exc))
            return
        if command is not None:
            self.run_command(command)

    def act_quit(self, _position: int) -> None:
        self.quit()

    # ---- the bell --------------------------------------------------------------------

    def set_bell(self, on: bool) -> None:
        """Turn the terminal bell for mentions and private messages on or off, and say so."""
        self.bell = on
        self.conversation_view.info(
            "the bell is on: it rings for mentions and private messages" if on
            else "the bell is off (bell on, or Alt+B, turns it on again)")

    def ring_bell(self) -> None:
        if self.bell and self.loop is not None:
            self.loop.screen.write("\a")


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
    marks_file = ReadMarksFile(_marks_path(options), lambda event: app.bridge.post(event))
    app = ChatApp(None, options.nick, bell=bell, keep_marks=marks_file.save)
    marks_file.load()   # on its own thread; the marks arrive as an event
    try:
        app.runtime = Runtime(options, app.bridge.post)
        app.track("start", app.runtime.start())
        loop = app.create()
        with (terminal.signals_to(lambda: app.bridge.post(handlers.Quit())),
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
        marks_file.close()   # the last marks written, now that the UI is closed
    if app.failure:
        _say_why(app.failure, options, log_path)
    return app.exit_code


def _marks_path(options) -> Path | None:
    """The read marks' file in the user's folder of the data dir (None: no valid nick)."""
    data_dir = DataDir(options.data_dir) if options.data_dir else DataDir.default()
    try:
        return data_dir.user_path(options.nick) / "ui-read.json"
    except ValueError:
        return None


def _say_why(failure: str, options, log_path: str) -> None:
    """Why the UI ended early, once it has given the terminal back."""
    print(f"chordchat: {failure}", file=sys.stderr)
    where = [str(a) for a in (options.listen, options.bootstrap) if a is not None]
    if not any(a in failure for a in where):
        # say which node and which bootstrap the message is about
        via = f", joining through {options.bootstrap}" if options.bootstrap else ""
        print(f"chordchat: (this node: {options.listen}{via}; log: {log_path})",
              file=sys.stderr)
