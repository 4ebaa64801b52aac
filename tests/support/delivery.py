"""Messages across real node processes (tests/support/procs.py): which process owns a key,
sends typed at a steady pace, and the check that every acknowledged message reached every
member exactly once, in one order."""

from __future__ import annotations

import threading
import time

from .procs import kind, whois_until


def ring_order(procs):
    return sorted(procs, key=lambda p: int(p.id, 16))


def owner_of(procs, key: int):
    ordered = ring_order(p for p in procs if p.alive)
    return next((p for p in ordered if int(p.id, 16) >= key), ordered[0])


def successor_of(procs, proc):
    ordered = ring_order(procs)
    return ordered[(ordered.index(proc) + 1) % len(ordered)]


def paced_sends(sender, channel: str, count: int, every: float, prefix: str,
                at: dict[str, float] | None = None) -> threading.Thread:
    """Type ``count`` sends into ``sender``, one every ``every`` seconds, in a thread."""
    def run() -> None:
        for i in range(count):
            if at is not None:
                at[f"{prefix}{i}"] = time.monotonic()
            sender.send(f"send {channel} {prefix}{i}")
            time.sleep(every)  # pacing the traffic, not waiting for anything
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def check_delivery(members, sender, channel: str, prefix: str, count: int) -> list[str]:
    """Every acknowledged message reached every member exactly once, in one order."""
    outcome = sender.wait_for(
        lambda e: (e["event"] == "sent" and e["channel"] == channel
                   and e["text"].startswith(prefix))
        or (e["event"] == "error" and f"#{channel}" in e["message"]),
        count=count, timeout=180, what=f"{count} acks or errors")
    assert outcome
    acked = [e["msg_id"] for e in sender.matching(kind("sent", channel=channel))
             if e["text"].startswith(prefix)]
    errors = [e["message"] for e in sender.matching(kind("error"))]
    assert len(acked) == count, f"only {len(acked)} of {count} acknowledged; errors {errors}"
    orders = []
    for m in members:
        m.wait_for(lambda e: e["event"] == "channel" and e["msg_id"] in set(acked),
                   count=len(acked), timeout=120, what=f"all {len(acked)} acked messages")
        got = [e["msg_id"] for e in m.matching(kind("channel", channel=channel))
               if e["text"].startswith(prefix)]
        assert len(got) == len(set(got)), f"{m.nick} was shown a message twice"
        assert set(acked) <= set(got), f"{m.nick} misses {len(set(acked) - set(got))}"
        seqs = [e["seq"] for e in m.matching(kind("channel", channel=channel))]
        assert seqs == sorted(seqs), f"{m.nick} saw sequence numbers out of order"
        orders.append([i for i in got if i in set(acked)])
    assert all(o == orders[0] for o in orders), "members saw different orders"
    return acked


def acked_all(typed, channel: str, timeout: float = 40.0) -> list[str]:
    """Wait until every ``(sender, text)`` of ``typed`` (sends into ``#channel``) is
    acknowledged; the texts. Nothing typed is lost, also across a maintainer's crash: a
    send in flight to it is made again to its successor."""
    for sender, text in typed:
        sender.wait_for(kind("sent", channel=channel, text=text), timeout=timeout,
                        what=f"the acknowledgement of {text}")
    return [text for _, text in typed]


def private_every_pair(procs, timeout: float = 40.0) -> None:
    """Every node sends every other one a private message; each arrives (``a-to-b``)."""
    for a in procs:
        for b in procs:
            if a is not b:
                a.send(f"msg {b.nick} {a.nick}-to-{b.nick}")
    for b in procs:
        for a in procs:
            if a is not b:
                b.wait_for(kind("private", text=f"{a.nick}-to-{b.nick}"), timeout=timeout,
                           what=f"{a.nick}'s message")


def hello_everyone(procs, channel: str, timeout: float = 40.0) -> None:
    """Every member of ``#channel`` says hello there; each hello reaches every member."""
    for p in procs:
        p.send(f"send {channel} hello-from-{p.nick}")
    for p in procs:
        for q in procs:
            p.wait_for(kind("channel", channel=channel, text=f"hello-from-{q.nick}"),
                       timeout=timeout, what=f"{q.nick}'s hello at {p.nick}")


def carried_client_keeps_up(fulls, gus, channel: str, move, relayed: str) -> None:
    """A running client ``gus`` whose network changes under it (``move()``: its home is
    carried to another router): what the full members ``fulls`` (the first two) send while
    its connections are dead reaches it once, it attaches again from the new network (says
    "reachable at"), and it goes on both ways, still relayed (whois starts with
    ``relayed``), all within 30 s of the move."""
    alice, bob = fulls[:2]
    everyone = [*fulls, gus]
    for p in everyone:
        p.send(f"join #{channel}")
    for p in everyone:
        p.wait_for(kind("joined", channel=channel), timeout=30, what=f"joined #{channel}")
    alice.send("msg gus before-the-move")
    gus.wait_for(kind("private", text="before-the-move"), timeout=30, what="first PM")
    move()
    moved_at = time.monotonic()
    # sent while gus's connections are dead, before it can have noticed
    alice.send("msg gus during-the-move")
    bob.send(f"send {channel} during-the-move")
    gus.wait_for(kind("private", text="during-the-move"), timeout=40,
                 what="the PM sent during the move")
    gus.wait_for(kind("channel", channel=channel, text="during-the-move"), timeout=40,
                 what="the channel message sent during the move")
    back = time.monotonic() - moved_at
    # it noticed (its relay's renewal failed) and attached again from the new network
    said = [e for e in gus.events if e["_t"] > moved_at and e.get("event") == "info"
            and "reachable at" in e.get("text", "")]
    assert said, gus.events[-8:]
    gus.send(f"send {channel} gus-after-the-move")
    gus.send("msg alice gus-after-the-move")
    for p in fulls:
        p.wait_for(kind("channel", channel=channel, text="gus-after-the-move"), timeout=30,
                   what=f"gus's channel message at {p.nick}")
    alice.wait_for(kind("private", text="gus-after-the-move"), timeout=30,
                   what="gus's PM after the move")
    assert whois_until(alice, "gus", "direct", timeout=1).startswith(relayed)
    time.sleep(1.0)   # lets late duplicates arrive before they are counted
    for text in ("during-the-move", "before-the-move"):
        assert len(gus.matching(kind("private", text=text))) == 1, text
    assert len(gus.matching(kind("channel", channel=channel, text="during-the-move"))) == 1
    assert back < 30, back
