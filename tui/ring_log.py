"""What the ring log pane says: one line for each ring change and each migration step,
naming nodes by short id and address. Pure text: the app shows it, the tests read it.

Ring changes come as RingChange events and are rendered from their fields. The core
reports the end of a graceful exit twice (the ring's "left", the migration log's
"leave-ring"); it is shown once here. A migration is three steps on the sender (send,
ack, delete): its one line is the last, when the item has moved; a failure or a deferral
has its own line. Every step is still in the log file and in the headless JSON.
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
    if not address or address == "-":
        return "none"
    if address == me:
        return "this node"
    return f"{short_id(hash_string(address))} {address}"


def _was(address: str | None, me: str) -> str:
    """The node a change replaced, briefly: its short id (the line names the new one in full)."""
    if not address or address == "-":
        return "none"
    return "this node" if address == me else short_id(hash_string(address))


def _item(kind: str, key: str, members: int) -> str:
    if kind == "channel":
        return f"#{key} ({counted(members, 'member')})"
    if kind == "name":
        return f"name map {key}"
    return f"{kind} {key}"


class RingLog:
    """Turns the core's RingChange, Log and Migration events into log lines (None: already
    said)."""

    def __init__(self) -> None:
        self.me = ""  # this node's address, once known

    def ready(self, e: ev.Ready) -> LogLine:
        self.me = e.address
        return LogLine(f"ready: the nick {e.nick} is registered", "log ring")

    def line(self, event: ev.RingChange | ev.Log | ev.MigrationStep | ev.Gap) -> LogLine | None:
        if isinstance(event, ev.MigrationStep):
            return self.migration(event)
        if isinstance(event, ev.Gap):
            return self.gap(event)
        if isinstance(event, ev.RingChange):
            return self.change(event)
        return self.log(event)

    def log(self, e: ev.Log) -> LogLine:
        """A free-text line of the core, shown as it is: what it says is not read here."""
        return LogLine(e.text, "log")

    def gap(self, e: ev.Gap) -> LogLine:
        """Entries a maintainer did not deliver (core/chat/users/gaps.py)."""
        me = self.me
        more = f" ({e.detail})" if e.detail else ""
        who = node(e.maintainer, me)
        if e.kind == "withheld":
            text = (f"maintainer {who} withheld {counted(e.count, 'message')} of "
                    f"#{e.channel}; got them from replica {node(e.replica, me)}{more}")
        elif e.kind == "lost":
            text = (f"{counted(e.count, 'message')} of #{e.channel} never arrived: "
                    f"maintainer {who} did not deliver them and no replica has them{more}")
        else:
            text = (f"maintainer {who} acknowledged a message to #{e.channel} but did not "
                    f"deliver it, and no replica has it{more}")
        return LogLine(text, "log error", tag="gap")

    # -- ring changes ------------------------------------------------------------------------

    def change(self, e: ev.RingChange) -> LogLine:
        me = self.me
        match e.kind:
            case "predecessor":
                return LogLine(f"predecessor → {node(e.new, me)} (was {_was(e.old, me)})",
                               "log ring")
            case "successor":
                return LogLine(f"successor → {node(e.new, me)} (was {_was(e.old, me)})",
                               "log ring")
            case "predecessor_suspected":
                return LogLine(f"predecessor {node(e.old, me)} is not answering", "log error")
            case "fingers":
                return LogLine(f"finger table: {counted(e.count or 0, 'distinct node')}", "log")
            case "started":
                self.me = me = e.new or me
                how = (f"joined the ring through {node(e.bootstrap)}" if e.bootstrap
                       else "started a new ring")
                return LogLine(f"node {node(me)} {how}", "log ring")
            case "left":
                return LogLine("left the ring: neighbours told, state handed over", "log ring")
            case "moved":
                # a new address: a client's new relay, or a member started again there
                self.me = e.new or me
                return LogLine(f"this node moved: {node(e.old)} → {node(e.new)}", "log ring")
        changed = ", ".join(f"{k} {v}" for k, v in (("old", e.old), ("new", e.new)) if v)
        return LogLine(f"ring: {e.kind}" + (f" ({changed})" if changed else ""), "log")

    # -- migration steps ---------------------------------------------------------------------

    def migration(self, e: ev.MigrationStep) -> LogLine | None:
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
