"""A real terminal IRC client (irssi) in a pseudo-terminal, its screen read with pyte,
against the gateway of a real node process: it logs in with SASL, joins, chats with a
headless user on another node, disconnects, misses lines, reconnects and shows them at
their authors' times (``server-time``), not at the time they arrived.

The other user's node runs under libfaketime twenty seconds in the past, so the time its
lines are signed with (what ``server-time`` carries) cannot be mistaken for the time they
reach irssi: the screen must show the sender's clock."""

from __future__ import annotations

import re
import shutil
import time
from datetime import UTC, datetime

import pytest

from tests.support.procs import Cluster, kind
from tests.tui.terminal import TerminalProcess, free_ports

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240),
              pytest.mark.skipif(shutil.which("irssi") is None,
                                 reason="irssi is not installed (apt-get install irssi)"),
              pytest.mark.skipif(shutil.which("faketime") is None,
                                 reason="libfaketime's faketime is not installed "
                                        "(apt-get install faketime)")]

SKEW = 20           # seconds the other user's clock is behind: under the ring's
#                     clock correction (ring/clock.py THRESHOLD, 30 s), so its
#                     signed times stay its own and show apart from arrival times
PASSWORD = "alices-own-word"


def irssi_config(port: int) -> str:
    """irssi's config: one network with SASL PLAIN, #room joined at connect, seconds in
    the timestamps, one window for everything (the screen the test reads), and no
    reconnecting on its own (the test says when)."""
    return f"""
servers = (
  {{ address = "127.0.0.1"; chatnet = "chordchat"; port = "{port}"; use_tls = "no";
     tls_verify = "no"; autoconnect = "yes"; }}
);
chatnets = {{
  chordchat = {{ type = "IRC"; nick = "alice"; username = "alice"; realname = "Alice";
                sasl_mechanism = "PLAIN"; sasl_username = "alice";
                sasl_password = "{PASSWORD}"; }};
}};
channels = ( {{ name = "#room"; chatnet = "chordchat"; autojoin = "yes"; }} );
settings = {{
  core = {{ real_name = "Alice"; user_name = "alice"; nick = "alice";
           server_reconnect_time = "-1"; timestamp_format = "%H:%M:%S"; }};
  "fe-common/core" = {{ autocreate_windows = "no"; }};
  "fe-text" = {{ show_server_time = "yes"; }};
}};
"""


def clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")


def shown_at(lines: list[str], text: str) -> str:
    """The HH:MM:SS irssi shows in front of the line with ``text``."""
    for line in lines:
        if text in line:
            found = re.match(r"\s*(\d\d:\d\d:\d\d)", line)
            assert found, f"no time in front of {line!r}"
            return found.group(1)
    raise AssertionError(f"{text!r} is not on the screen:\n" + "\n".join(lines))


def within(shown: str, start: float, end: float) -> bool:
    """Whether the clock time ``shown`` lies in [start, end] (seconds, a second's slack)."""
    return shown in {clock(t) for t in range(int(start) - 1, int(end) + 2)}


def test_irssi__sasl_chat_then_missed_lines_replayed_at_their_authors_times(tmp_path):
    port = free_ports(1)[0]
    home = tmp_path / "irssi"
    home.mkdir()
    (home / "config").write_text(irssi_config(port))
    with Cluster(tmp_path / "nodes") as cluster:
        gateway = cluster.start("gw", args=("--irc", f"127.0.0.1:{port}"))
        bob = cluster.start("bob", bootstrap=gateway,
                            wrapper=("faketime", "-f", f"-{SKEW}s"))
        bob.send("join #room")
        bob.wait_for(kind("joined", channel="room"), what="bob in #room")

        irssi = TerminalProcess(["irssi", f"--home={home}"], cols=120, rows=60,
                                env={"TZ": "UTC", "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
        try:
            # SASL (the first login sets alice's password), then #room with bob in it
            irssi.wait_for("You are now logged in as alice", what="the SASL login")
            irssi.wait_for(lambda lines: any("alice" in x and "#room" in x and "joined" in x
                                             for x in lines), what="alice in #room")
            bob.wait_for(kind("member_joined", channel="room", nick="alice"),
                         what="alice joining")

            # live: both ways, and bob's line at bob's clock
            start = time.time()
            bob.send("send room hello from bob")
            irssi.wait_for("hello from bob", what="bob's line")
            end = time.time()
            shown = shown_at(irssi.lines(), "hello from bob")
            assert within(shown, start - SKEW, end - SKEW), (shown, clock(start))
            mark = bob.mark()
            irssi.enter("hi bob, from irssi")
            bob.wait_for(kind("channel", channel="room", text="hi bob, from irssi"),
                         since=mark, what="alice's line")

            # alice goes; bob's lines meanwhile are missed
            mark = bob.mark()
            irssi.enter("/disconnect chordchat back soon")
            bob.wait_for(kind("member_left", channel="room", nick="alice"), since=mark,
                         what="alice leaving")
            missed = []
            for text in ("missed line one", "missed line two"):
                mark = bob.mark()
                before = time.time()
                bob.send(f"send room {text}")
                bob.wait_for(kind("channel", channel="room", text=text), since=mark,
                             what=f"{text} delivered")
                missed.append((text, before, time.time()))
            assert not any("missed line" in x for x in irssi.lines())
            irssi.enter("/clear")      # the screen from here on: the reconnect
            irssi.wait_for(lambda lines: not any("hello from bob" in x for x in lines),
                           what="a clear window")

            # back: the missed lines once, at the times bob's clock signed them
            irssi.enter("/connect chordchat")
            irssi.wait_for("missed line two", what="the missed lines replayed")
            lines = irssi.lines()
            reconnected = time.time()
            for text, before, after in missed:
                shown = shown_at(lines, text)
                assert within(shown, before - SKEW, after - SKEW), (text, shown)
                assert not within(shown, before, reconnected)   # not the arrival time
                assert sum(text in x for x in lines) == 1, "\n".join(lines)
        finally:
            irssi.close()
