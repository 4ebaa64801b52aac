"""The nemesis's checker: reads what every node process printed (``--headless --json``, the
events of tests/support/procs.py) and says what went wrong, per channel and per private
conversation.

    report = check(incarnations, faulted, quiet_from, bound=60.0)
    report.violations        # [] when nothing was lost, doubled, reordered or made up
    print(report.summary())

``incarnations`` maps each nick to the processes that served it, in order (a restart is a
new process with the same data directory). A message is *acknowledged* when its sender's
node printed ``sent`` (a channel's maintainer stored it) or ``delivered`` (a private
message reached its recipient or was taken from its mailbox). The violations:

- **lost**: acknowledged in a channel, never shown to a member that was a member
  throughout (joined before it was sent and never faulted: ``faulted`` lists the nicks a
  fault touched, whose gaps are allowed); a private message acknowledged as delivered and
  never shown to its recipient;
- **twice**: shown twice to one process (replayed history, marked ``history``, excluded);
- **order**: two messages of one sender shown in different orders at two members (but
  for messages typed or stored while the network was split, ``apart``: the weaker form of
  the promise, docs/failures.md);
- **made up**: shown, but no process of its sender ever printed it as typed (``pending``);
- **late**: acknowledged, shown to a member throughout more than ``bound`` seconds after
  both its acknowledgement and ``quiet_from`` (when the faults stopped), or not at all by
  the end of the run (then it is *lost*, not *late*).

``check_databases(incarnations, faulted, databases, report)`` then reads each nick's SQLite
database (``DIR/users/<nick>/chat.sqlite3``, after its last process exited) and compares it
with the event streams; its violations start with ``db``:

- **db lost**: an acknowledged channel message missing from the database of a member
  throughout, or from its sender's (as its own outgoing message, state ``delivered``); a
  private message acknowledged as delivered missing from its recipient's;
- **db made up**: a stored message that no process of its sender typed;
- **db unshown**: shown by a process (a channel or private message to it) but not stored:
  a receiver stores before it shows, so a restart must not show it again;
- **db outbox**: an acknowledged message still in its sender's outbox (it would be sent
  again at the next start).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Report:
    channels: dict[str, int] = field(default_factory=dict)      # acked per channel
    private: int = 0                                             # acked private messages
    deliveries: int = 0                                          # shown, counted per member
    violations: list[str] = field(default_factory=list)
    stored: int = 0          # message rows read from the databases
    databases: int = 0       # databases read
    outbox_left: int = 0     # outbox rows left at the end (not acknowledged: retried later)

    def summary(self) -> str:
        kinds = defaultdict(int)
        for v in self.violations:
            kinds[v.split(":", 1)[0]] += 1
        db = (f"; databases: {self.databases} read, {self.stored} message rows, "
              f"{self.outbox_left} left in outboxes" if self.databases else "")
        return (f"acknowledged: {sum(self.channels.values())} channel messages "
                f"({', '.join(f'#{c} {n}' for c, n in sorted(self.channels.items()))}), "
                f"{self.private} private; {self.deliveries} shown to members throughout"
                f"{db}; violations: {dict(kinds) or 'none'}")


def _events(procs, name: str) -> list[dict]:
    return [e for p in procs for e in p.events if e.get("event") == name]


def check(incarnations: dict[str, list], faulted: set[str], quiet_from: float,
          bound: float = 60.0, apart: list[tuple[float, float]] = ()) -> Report:
    """``apart``: the (start, end) times during which the network was split (a partition,
    a cut between two hosts): the order of messages typed or stored then is not promised
    (each side numbers its own copy; docs/failures.md), so the order check skips them. A
    message typed before a split can be stored during it (its line waited in the outbox:
    a maintainer refused its signed time, or was out of reach), in one side's copy."""
    report = Report()
    typed_at = {e["msg_id"]: e["_t"] for procs in incarnations.values()
                for e in _events(procs, "pending")}
    typed = set(typed_at)
    stored_at = {e["msg_id"]: e["_t"] for procs in incarnations.values()
                 for e in _events(procs, "sent")}

    def ordered(msg_id: str) -> bool:
        at = typed_at.get(msg_id)
        times = [t for t in (at, stored_at.get(msg_id)) if t is not None]
        return at is not None and not any(a <= t <= b for t in times for a, b in apart)
    # -- channels ----------------------------------------------------------------------------
    acked: dict[str, dict[str, tuple[str, float]]] = defaultdict(dict)  # ch -> id -> (nick, t)
    for nick, procs in incarnations.items():
        for e in _events(procs, "sent"):
            acked[e["channel"]].setdefault(e["msg_id"], (nick, e["_t"]))
    joined_at: dict[tuple[str, str], float] = {}
    for nick, procs in incarnations.items():
        for e in _events(procs, "joined"):
            joined_at.setdefault((nick, e["channel"]), e["_t"])
    orders: dict[str, dict[str, dict[str, list[str]]]] = defaultdict(dict)  # ch->nick->from
    for channel, ids in sorted(acked.items()):
        report.channels[channel] = len(ids)
    for nick, procs in incarnations.items():
        for p in procs:
            seen: set[str] = set()
            for e in p.events:
                if e.get("event") != "channel" or e.get("history"):
                    continue
                if e["msg_id"] in seen:
                    report.violations.append(f"twice: {e['msg_id'][:8]} in "
                                             f"#{e['channel']} to {nick}")
                seen.add(e["msg_id"])
                if e["msg_id"] not in typed:
                    report.violations.append(f"made up: {e['msg_id'][:8]} in "
                                             f"#{e['channel']} shown to {nick}")
                by = orders[e["channel"]].setdefault(nick, defaultdict(list))
                if e["msg_id"] not in by[e["from"]]:
                    by[e["from"]].append(e["msg_id"])
    for channel, ids in acked.items():
        for nick, procs in incarnations.items():
            start = joined_at.get((nick, channel))
            if nick in faulted or start is None or len(procs) != 1:
                continue   # not a member throughout
            shown = {e["msg_id"]: e["_t"] for e in procs[0].events
                     if e.get("event") == "channel" and e.get("channel") == channel}
            for msg_id, (sender, at) in ids.items():
                if at < start:
                    continue
                if msg_id not in shown:
                    report.violations.append(f"lost: {msg_id[:8]} of {sender} in #{channel} "
                                             f"never shown to {nick}")
                    continue
                report.deliveries += 1
                if shown[msg_id] > max(at, quiet_from) + bound:
                    report.violations.append(
                        f"late: {msg_id[:8]} of {sender} in #{channel} shown to {nick} "
                        f"{shown[msg_id] - max(at, quiet_from):.0f} s after the faults")
    for channel, by_nick in orders.items():
        acked_here = acked.get(channel, {})
        members = list(by_nick.items())
        for i, (a, a_by) in enumerate(members):
            for b, b_by in members[i + 1:]:
                for sender in set(a_by) & set(b_by):
                    sa = [m for m in a_by[sender] if m in acked_here and ordered(m)]
                    sb = [m for m in b_by[sender] if m in acked_here and ordered(m)]
                    common = set(sa) & set(sb)
                    if [m for m in sa if m in common] != [m for m in sb if m in common]:
                        report.violations.append(f"order: {sender}'s messages in #{channel} "
                                                 f"in different orders at {a} and {b}")
    # -- private conversations ---------------------------------------------------------------
    for nick, procs in incarnations.items():
        for e in _events(procs, "delivered"):
            to = e["conversation"]
            if to.startswith("#") or to not in incarnations:
                continue
            report.private += 1
            shown = [x for p in incarnations[to] for x in p.events
                     if x.get("event") == "private" and x.get("msg_id") == e["msg_id"]
                     and not x.get("outgoing")]
            if not shown:
                report.violations.append(f"lost: private {e['msg_id'][:8]} {nick} -> {to} "
                                         "acknowledged as delivered, never shown")
    for nick, procs in incarnations.items():
        for p in procs:
            ids = [x["msg_id"] for x in p.events
                   if x.get("event") == "private" and not x.get("outgoing")]
            for msg_id in {i for i in ids if ids.count(i) > 1}:
                report.violations.append(f"twice: private {msg_id[:8]} to {nick}")
            for msg_id in set(ids) - typed:
                report.violations.append(f"made up: private {msg_id[:8]} shown to {nick}")
    return report


# -- the databases ------------------------------------------------------------------------------

def database_of(data_dir: Path, nick: str) -> Path:
    return Path(data_dir) / "users" / nick.lower() / "chat.sqlite3"


def read_database(path: Path) -> tuple[list[dict], list[dict]]:
    """(message rows, outbox rows) of one user's database, read-only."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        db.row_factory = sqlite3.Row
        messages = [dict(r) for r in db.execute(
            "SELECT msg_id, conversation, sender, outgoing, state FROM messages")]
        outbox = [dict(r) for r in db.execute("SELECT msg_id, kind, destination FROM outbox")]
    finally:
        db.close()
    return messages, outbox


def check_databases(incarnations: dict[str, list], faulted: set[str],
                    databases: dict[str, Path], report: Report) -> Report:
    """Compare each nick's database (``databases``: nick -> file) with the event streams."""
    typed = {e["msg_id"] for procs in incarnations.values()
             for e in _events(procs, "pending")}
    acked: dict[str, dict[str, str]] = defaultdict(dict)   # channel -> msg id -> sender
    sent_at: dict[str, float] = {}
    for nick, procs in incarnations.items():
        for e in _events(procs, "sent"):
            acked[e["channel"]].setdefault(e["msg_id"], nick)
            sent_at.setdefault(e["msg_id"], e["_t"])
    delivered = {e["msg_id"]: (nick, e["conversation"]) for nick, procs in incarnations.items()
                 for e in _events(procs, "delivered") if not e["conversation"].startswith("#")}
    acked_ids = {m for ids in acked.values() for m in ids} | set(delivered)
    stored: dict[str, dict[str, dict]] = {}
    for nick, path in databases.items():
        if not Path(path).exists():
            continue
        messages, outbox = read_database(path)
        report.databases += 1
        report.stored += len(messages)
        stored[nick] = {m["msg_id"]: m for m in messages}
        for m in messages:
            if m["msg_id"] not in typed:
                report.violations.append(f"db made up: {m['msg_id'][:8]} in "
                                         f"{m['conversation']} stored by {nick}")
        for o in outbox:
            if o["msg_id"] in acked_ids:
                report.violations.append(f"db outbox: {o['msg_id'][:8]} of {nick} acknowledged "
                                         "but still in its outbox")
            else:
                report.outbox_left += 1
        for p in incarnations.get(nick, []):
            for e in p.events:
                incoming = (e.get("event") == "channel" or
                            (e.get("event") == "private" and not e.get("outgoing")))
                if incoming and e["msg_id"] not in stored[nick]:
                    report.violations.append(f"db unshown: {e['msg_id'][:8]} shown to {nick} "
                                             "but not stored")
    joined_at: dict[tuple[str, str], float] = {}
    for nick, procs in incarnations.items():
        for e in _events(procs, "joined"):
            joined_at.setdefault((nick, e["channel"]), e["_t"])
    for channel, ids in acked.items():
        for msg_id, sender in ids.items():
            own = stored.get(sender, {}).get(msg_id)
            if sender in stored and (own is None or own["state"] != "delivered"):
                report.violations.append(f"db lost: {msg_id[:8]} acknowledged in #{channel} "
                                         f"but not stored as delivered by its sender {sender}")
        for nick, procs in incarnations.items():
            start = joined_at.get((nick, channel))
            if nick in faulted or start is None or len(procs) != 1 or nick not in stored:
                continue   # not a member throughout
            for msg_id, sender in ids.items():
                if sent_at[msg_id] >= start and msg_id not in stored[nick]:
                    report.violations.append(f"db lost: {msg_id[:8]} of {sender} in #{channel} "
                                             f"not in {nick}'s database")
    for msg_id, (sender, to) in delivered.items():
        if to in stored and msg_id not in stored[to]:
            report.violations.append(f"db lost: private {msg_id[:8]} {sender} -> {to} "
                                     "acknowledged as delivered, not in its database")
    return report
