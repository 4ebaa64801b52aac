"""What the ring log pane says: one line for each ring change and each migration step,
naming nodes by short id and address. Pure text: the app shows it, the tests read it.

The core reports a predecessor change twice (the ring's event, then the chat service's own
line about the same change) and the end of a graceful exit twice; each is shown once here.
A migration is three steps on the sender (send, ack, delete): its one line is the last,
when the item has moved; a failure or a deferral has its own line. Every step is still in
the log file and in the headless JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import events as ev
from core.chord import hash_string, short_id
from core.counts import counted


@dataclass(frozen=True)
class LogLine:
    """One line of the log pane: its text and display attribute; ``tag`` stands out before it."""
    text: str
    attr: str = "log"
    tag: str = ""


def node(address: str | None, me: str = "") -> str:
    """A node as the log names it: short id and address ("this node" for our own)."""
    if not address or address in ("None", "-"):
        return "none"
    if address == me:
        return "this node"
    return f"{short_id(hash_string(address))} {address}"


def _was(address: str | None, me: str) -> str:
    """The node a change replaced, briefly: its short id (the line names the new one in full)."""
    if not address or address in ("None", "-"):
        return "none"
    return "this node" if address == me else short_id(hash_string(address))


def _item(kind: str, key: str, members: int) -> str:
    if kind == "channel":
        return f"#{key} ({counted(members, 'member')})"
    if kind == "name":
        return f"name map {key}"
    return f"{kind} {key}"


def _fields(text: str) -> dict[str, str]:
    """``"old None, new 127.0.0.1:4001"`` -> {"old": "None", "new": "127.0.0.1:4001"}."""
    fields = {}
    for part in text.split(", "):
        name, _, value = part.partition(" ")
        fields[name] = value
    return fields


class RingLog:
    """Turns the core's Log and Migration events into log lines (None: already said)."""

    def __init__(self) -> None:
        self.me = ""  # this node's address, once known
        self._last_predecessor: tuple[str, str] | None = None

    def ready(self, e: ev.Ready) -> LogLine:
        self.me = e.address
        return LogLine(f"ready: the nick {e.nick} is registered", "log ring")

    def line(self, event: ev.Log | ev.Migration) -> LogLine | None:
        if isinstance(event, ev.Migration):
            return self.migration(event)
        return self.log(event)

    # -- ring changes ------------------------------------------------------------------------

    def log(self, e: ev.Log) -> LogLine | None:
        attr = "log error" if e.level in ("error", "warning") else "log"
        text = e.text
        if text.startswith("ring: "):
            kind, _, rest = text[len("ring: "):].partition(": ")
            return self._ring(kind, _fields(rest) if rest else {}, text)
        if text.startswith("predecessor ") and " -> " in text:
            # the chat service's line about the change the ring has just reported
            old, _, new = text[len("predecessor "):].partition(" -> ")
            if self._last_predecessor == (_plain(old), _plain(new)):
                return None
            return self._predecessor(old, new)
        return LogLine(text.replace(" -> ", " → "), attr)

    def _ring(self, kind: str, f: dict[str, str], text: str) -> LogLine:
        me = self.me
        if kind == "predecessor":
            return self._predecessor(f.get("old"), f.get("new"))
        if kind == "successor":
            return LogLine(f"successor → {node(f.get('new'), me)} (was {_was(f.get('old'), me)})",
                           "log ring")
        if kind == "predecessor_suspected":
            return LogLine(f"predecessor {node(f.get('predecessor'), me)} is not answering",
                           "log error")
        if kind == "fingers":
            count = f.get("count", "?")
            return LogLine(f"finger table: {count} distinct node{'' if count == '1' else 's'}",
                           "log")
        if kind == "started":
            self.me = me = f.get("address", me)
            boot = f.get("bootstrap")
            how = (f"joined the ring through {node(boot)}" if boot and boot != "None"
                   else "started a new ring")
            return LogLine(f"node {node(me)} {how}", "log ring")
        if kind == "left":
            return LogLine("left the ring: neighbours told, state handed over", "log ring")
        return LogLine(text, "log")

    def _predecessor(self, old: str | None, new: str | None) -> LogLine:
        self._last_predecessor = (_plain(old), _plain(new))
        return LogLine(f"predecessor → {node(new, self.me)} (was {_was(old, self.me)})",
                       "log ring")

    # -- migration steps ---------------------------------------------------------------------

    def migration(self, e: ev.Migration) -> LogLine | None:
        me = self.me
        item = _item(e.kind, e.key, e.members)
        to, from_ = node(e.to, me), node(e.from_, me)
        bad = "log error"
        match e.step:
            case "send" | "ack":
                return None  # under way: the "delete" step says it has moved
            case "delete":
                text, attr = f"moved {item} to {to}", "log migration"
            case "receive":
                text, attr = f"received {item} from {from_}", "log migration"
            case "takeover":
                why = f" ({e.detail})" if e.detail else ""
                text, attr = f"took over {item} from a replica{why}", "log migration"
            case "deferred":
                text, attr = f"kept {item} here: {to} does not own it yet", "log migration"
            case "failed":
                text, attr = f"could not move {item} to {to}: {e.detail}", bad
            case "leave":
                text, attr = f"exit: left #{e.key} (kept by {to})", "log migration"
            case "unname":
                text, attr = f"exit: deleted {item} (kept by {to})", "log migration"
            case "drop":
                text, attr = f"exit: dropped {item}: {e.detail}", bad
            case "leave-ring":
                return None  # the ring's "left" line says it
            case _:
                detail = f": {e.detail}" if e.detail else ""
                text, attr = f"{e.step} {item}: {from_} → {to}{detail}", "log migration"
        return LogLine(text, attr, tag="migration")


def _plain(address: str | None) -> str:
    return "" if not address or address in ("None", "-") else address
