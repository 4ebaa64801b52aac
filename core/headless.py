"""The headless front end: commands on stdin, events on stdout (plain lines or JSON lines).

Each stdin line is parsed as in the UI's home pane (``core.chat.model.commands.parse``): bare
command words are commands, and the runtime gets the parsed ``Command``. With ``--json``, a
line that is a JSON object sends a text that may hold several lines (``json_command``).

End of input, ``exit``, Ctrl+C and SIGTERM all run the graceful exit sequence. A start-up
failure (nick taken, port in use, unreachable bootstrap) prints an error and returns 2.
"""

from __future__ import annotations

import json
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from core import events as ev
from core.chat.model.commands import (
    Command,
    CommandError,
    Where,
    action_command,
    help_text,
    parse,
    text_command,
)
from core.chat.model.text import visible, visible_fields
from core.counts import counted
from core.runtime import Options, Runtime, StartupError

EXIT_WAIT = 60.0  # seconds the exit sequence may take before the process gives up
UNVERIFIED = " (unverified)"
CONTINUATION = "    "   # in front of the second and later lines of a text in plain output


def when(at: float, now: float | None = None) -> str:
    """A message's time as plain output shows it: HH:MM, after the date when not today
    (local time)."""
    moment = time.localtime(at)
    if time.localtime(time.time() if now is None else now)[:3] == moment[:3]:
        return time.strftime("%H:%M", moment)
    return time.strftime("%Y-%m-%d %H:%M", moment)


def said(nick: str, text: str, action: bool, verified: bool = True) -> str:
    """``alice: text``, or an action as IRC clients show it: ``* alice waves``."""
    unverified = UNVERIFIED * (not verified)
    return f"* {nick}{unverified} {text}" if action else f"{nick}{unverified}: {text}"


def render(event: ev.Event) -> str:
    """One plain-text line (or a few, for help) for an event."""
    match event:
        case ev.Ready():
            return (f"ready: {event.nick} id {event.id} at {event.address}, "
                    f"key {event.fingerprint}")
        case ev.PrivateMessage(outgoing=True):
            return (f"{when(event.at)} [private to {event.to}] "
                    f"{said(event.from_, event.text, event.action)}")
        case ev.PrivateMessage():
            return (f"{when(event.at)} [private] "
                    f"{said(event.from_, event.text, event.action, event.verified)}")
        case ev.ChannelMessage():
            mark = " (history)" if event.history else ""
            return (f"{when(event.at)} [#{event.channel}]{mark} "
                    f"{said(event.from_, event.text, event.action, event.verified)}")
        case ev.KeyChanged():
            return (f"warning: the key of {event.nick} changed from {event.old} to "
                    f"{event.new}; its messages are marked unverified until: trust {event.nick}")
        case ev.Whois():
            pin = {"same": "pinned", "new": "not pinned yet",
                   "changed": "NOT the key pinned for this nick"}.get(event.pin, event.pin)
            return (f"{event.nick}: key {event.fingerprint} ({pin}), node {event.id[:8]} "
                    f"at {event.address}, {event.reach}")
        case ev.History():
            lines = [f"history of {event.conversation}:"]
            lines += [f"  {when(m['at'])} {said(m['from'], m['text'], m.get('action', False))}"
                      + (" (pending)" if m["state"] == "pending" else "")
                      for m in event.messages]
            return "\n".join(lines)
        case ev.Pending():
            return f"pending ({event.conversation}): {'* ' * event.action}{event.text}"
        case ev.Delivered():
            return f"delivered ({event.conversation}): {event.msg_id}"
        case ev.Failed():
            return f"not sent ({event.conversation}): {event.reason}"
        case ev.SearchResults():
            lines = [f"search {event.text!r}: {counted(len(event.hits), 'line')}"]
            lines += [f"  {h['conversation']} {h['from']}: {h['text']}" for h in event.hits]
            return "\n".join(lines)
        case ev.Sent():
            return (f"sent to #{event.channel} (seq {event.seq}, "
                    f"{counted(event.members, 'member')})")
        case ev.Joined():
            return f"joined #{event.channel}: {', '.join(event.members)}"
        case ev.Left():
            return f"left #{event.channel}"
        case ev.MemberJoined():
            return f"#{event.channel}: {event.nick} joined"
        case ev.MembersBack():
            return f"#{event.channel}: netsplit over: {', '.join(event.nicks)} back"
        case ev.MemberLeft():
            how = {"left": "left", "exit": "exited", "pruned": "was removed (unreachable)",
                   "gone": "is gone"}.get(event.reason, event.reason)
            return f"#{event.channel}: {event.nick} {how}"
        case ev.Modes(change=change) if change:
            return f"#{event.channel}: {event.nick} set mode {change}"
        case ev.Modes():
            return (f"#{event.channel}: modes {event.modes}, operators "
                    f"{', '.join(event.ops) or 'none'}")
        case ev.Kicked():
            why = f" ({event.reason})" if event.reason else ""
            return f"#{event.channel}: {event.target} was kicked by {event.nick}{why}"
        case ev.Invited(invitee=invitee) if invitee:
            return f"invited {invitee} to #{event.channel}"
        case ev.Invited():
            return f"{event.nick} invited you to #{event.channel}"
        case ev.MigrationStep():
            members = f" ({counted(event.members, 'member')})" if event.kind == "channel" else ""
            detail = f": {event.detail}" if event.detail else ""
            return (f"migration {event.step} {event.kind} {event.key}{members} "
                    f"{event.from_} -> {event.to}{detail}")
        case ev.RingStatus():
            return (f"ring: predecessor {event.predecessor or '-'}, successor {event.successor}, "
                    f"maintaining {counted(event.channels, 'channel')}, "
                    f"{counted(event.names, 'name')}")
        case ev.RingChange():
            return f"ring: {_ring_change(event)}"
        case ev.Log():
            return f"log: {event.text}"
        case ev.Gap():
            return f"gap: {event.summary()}"
        case ev.Info():
            return event.text
        case ev.Error():
            return f"error: {event.message}"
        case ev.Bye():
            return "bye"
    return str(event)


def _continued(text: str) -> str:
    """Text from the network on plain output: its control characters visible, its later
    lines indented, so that no text can pass for a line of its own."""
    return visible(text).replace("\n", "\n" + CONTINUATION)


def plain(event: ev.Event) -> str:
    """The plain output for an event: ``render`` of the event with every text field made
    safe for a terminal (``_continued``; the node's own notes, ``Info``, keep their
    lines), and the line checked once more as a whole."""
    show = visible if isinstance(event, ev.Info) else _continued
    return visible(render(visible_fields(event, show)))


def _ring_change(e: ev.RingChange) -> str:
    def node(address: str | None) -> str:
        return address or "none"

    match e.kind:
        case "predecessor" | "successor":
            return f"{e.kind} now {node(e.new)} (was {node(e.old)})"
        case "predecessor_suspected":
            return f"predecessor {node(e.old)} is not answering"
        case "fingers":
            return f"finger table: {counted(e.count or 0, 'distinct node')}"
        case "started":
            how = f"joined the ring through {e.bootstrap}" if e.bootstrap else "started a new ring"
            return f"node {node(e.new)} {how}"
        case "left":
            return "left the ring"
        case "moved":
            return f"this node moved from {node(e.old)} to {node(e.new)}"
    return e.kind


def _search(runtime: Runtime, command: Command) -> None:
    runtime.search(command.args[0])   # the hits come back as a SearchResults event


# the commands a front end answers itself, as headless answers them: with one event, or
# (search) by asking the runtime, whose answer is an event
FRONT_END: dict[str, Callable[[Runtime, Command], ev.Event | None]] = {
    "help": lambda _runtime, _command: ev.Info(text=help_text()),
    "bell": lambda _runtime, _command: ev.Error(
        message="bell is a setting of the full-screen UI; headless output has no bell"),
    "search": _search,
}


class _Printer:
    """Writes events from a queue on its own thread, so the core never waits on stdout."""

    def __init__(self, out: TextIO, as_json: bool, quiet_logs: bool) -> None:
        self.out, self.as_json, self.quiet_logs = out, as_json, quiet_logs
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.bye = threading.Event()
        self.thread = threading.Thread(target=self._run, name="headless-printer", daemon=True)
        self.thread.start()

    def post(self, event: ev.Event) -> None:
        self.queue.put(event)

    def _run(self) -> None:
        while True:
            event = self.queue.get()
            if event is None:
                return
            if self.quiet_logs and isinstance(event, ev.Log | ev.RingStatus | ev.RingChange):
                continue
            # JSON escapes every control and non-ASCII character (ensure_ascii): values stay as
            # they arrived; plain lines show text from the network through ``plain``
            line = json.dumps(event.to_json()) if self.as_json else plain(event)
            try:
                self.out.write(line + "\n")
                self.out.flush()
            except (OSError, ValueError):
                pass
            if isinstance(event, ev.Bye):
                self.bye.set()

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(5.0)


def json_command(line: str) -> Command:
    """A JSON input line: ``{"send": "#channel" or nick, "text": "..."}`` sends ``text`` as
    one message (its ``\n`` are lines of it, and it is never read as a command);
    ``{"me": ..., "text": ...}`` sends it as an action. CommandError if it is not one."""
    try:
        d = json.loads(line)
    except ValueError as e:
        raise CommandError(f"a line starting with {{ is a JSON object: {e}") from None
    kinds = [k for k in ("send", "me") if k in (d if isinstance(d, dict) else {})]
    if (not isinstance(d, dict) or len(kinds) != 1 or set(d) != {kinds[0], "text"}
            or not isinstance(d[kinds[0]], str) or not isinstance(d["text"], str)):
        raise CommandError('a JSON line is {"send": "#channel" or nick, "text": "..."} '
                           'or {"me": ..., "text": ...}')
    where = d[kinds[0]].strip()
    if not where:
        raise CommandError(f"{kinds[0]} names no channel or nick")
    make = text_command if kinds[0] == "send" else action_command
    return make(where, d["text"])


def run(options: Options, as_json: bool = False, quiet_logs: bool = False,
        stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Run a node headless until exit; returns the process exit code."""
    stdin = stdin or sys.stdin
    printer = _Printer(stdout or sys.stdout, as_json, quiet_logs)
    runtime = Runtime(options, printer.post)
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()

    # before the start: a signal as soon as "ready" is printed must find the handler in place
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        runtime.start().result()
    except StartupError as e:
        printer.post(ev.Error(message=e.message))
        runtime.shutdown().result(10)
        for s, handler in previous.items():
            signal.signal(s, handler)
        printer.close()
        return e.code

    def read_input() -> None:
        for line in stdin:
            if not line.strip():
                continue
            try:
                json_line = as_json and line.lstrip().startswith("{")
                command = json_command(line) if json_line else parse(line)
            except CommandError as e:
                printer.post(ev.Error(message=str(e)))
                continue
            if command.where is Where.FRONT_END:
                answer = FRONT_END[command.name](runtime, command)
                if answer is not None:
                    printer.post(answer)
                continue
            runtime.execute(command)
            if runtime.stopping:  # exit: the lines after it are not run
                break
        stop.set()

    threading.Thread(target=read_input, name="headless-input", daemon=True).start()
    while not stop.is_set() and not printer.bye.is_set():
        stop.wait(0.2)
    try:
        runtime.shutdown().result(EXIT_WAIT)
    except Exception as e:  # noqa: BLE001 - the process ends either way; say why
        printer.post(ev.Error(message=f"the exit sequence did not finish: {e!r}"))
        printer.post(ev.Bye())
    runtime.join(5.0)
    for s, handler in previous.items():
        signal.signal(s, handler)
    printer.close()
    return 0
