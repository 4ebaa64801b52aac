"""The real UI process in a pseudo-terminal at 80x24, read with pyte, with real headless
peers around it: what a user sees and does, end to end."""

from __future__ import annotations

import re
import socket
import sys

import pytest

from core.chord.ids import hash_string, in_half_open
from tests.support.ports import port_with_id_in
from tests.support.procs import Cluster, kind
from tests.tui.terminal import UI_ARGS, TerminalProcess, assert_terminal_restored, free_ports

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def channel_between(low: int, high: int) -> str:
    """A channel name whose key lies in (low, high]."""
    return next(f"room{i}" for i in range(1_000_000)
                if in_half_open(hash_string(f"room{i}"), low, high))


def side_pane(lines: list[str]) -> list[str]:
    return [line[:18] for line in lines[:16]]


def log_pane(lines: list[str]) -> list[str]:
    return lines[16:22]


@pytest.fixture
def cluster(tmp_path):
    with Cluster(tmp_path) as c:
        yield c


@pytest.fixture
def terminals():
    started: list[TerminalProcess] = []
    yield started
    for t in started:
        t.close()


@pytest.fixture
def start_ui(terminals, tmp_path):
    def start(nick: str, port: int, bootstrap: str | None = None, env: dict | None = None,
              **kw) -> TerminalProcess:
        args = [sys.executable, "-m", "tui", "--nick", nick, "--listen", f"127.0.0.1:{port}",
                *UI_ARGS, *(["--bootstrap", bootstrap] if bootstrap else [])]
        ui = TerminalProcess(args, env={"CHORDCHAT_LOG": str(tmp_path / "ui.log"), **(env or {})},
                             **kw)
        terminals.append(ui)
        return ui
    return start


class TestUiInTerminal:
    def test_ui__joins_chats_counts_unread_logs_a_migration_and_exits_cleanly(
            self, cluster, start_ui):
        bob = cluster.start("bob")
        (ui_port,) = free_ports(1)
        ui = start_ui("alice", ui_port, bob.address)
        ui.wait_for("You are alice", what="the ready notice")

        # `join general` shows the channel in the side pane
        ui.enter("join general")
        ui.wait_for(lambda lines: any(s.startswith("2 #general") for s in side_pane(lines)),
                    what="#general in the side pane")
        bob.send("join general")
        ui.wait_for("→ bob joined #general")

        # a peer's message appears in the conversation, with time and nick
        bob.send("send general hello from bob")
        lines = ui.wait_for("<bob> hello from bob")
        assert any(re.search(r"│\d\d:\d\d <bob> hello from bob", line) for line in lines)

        # a private message raises an unread count (and a mark) on another conversation
        bob.send("msg alice a private word")
        lines = ui.wait_for(lambda ls: any(s.startswith("3 bob") and s.rstrip().endswith("1!")
                                           for s in side_pane(ls)), what="bob's unread count")
        assert "a private word" not in "\n".join(lines)  # #general is still shown
        assert b"\x07" in ui.output  # the terminal bell rang
        ui.type("\x1b3")  # Alt+3 shows it and clears the count
        lines = ui.wait_for("<bob> a private word")
        assert not side_pane(lines)[2].rstrip().endswith("1!")
        ui.type("\x1b[<0;4;2M\x1b[<0;4;2m")  # a mouse click on row 2 of the side pane
        ui.wait_for("│ #general  (2 members)", what="#general shown after the click")

        # a channel the UI's node keeps moves to a node that joins between bob and it
        bob_id, ui_id = int(bob.id, 16), hash_string(f"127.0.0.1:{ui_port}")
        newcomer_port = port_with_id_in(bob_id, ui_id - 1)
        room = channel_between(bob_id, hash_string(f"127.0.0.1:{newcomer_port}"))
        ui.enter(f"/join {room}")  # #general is shown: without "/" it would be text
        ui.wait_for(f"you joined #{room}")
        cluster.start("carol", bootstrap=bob, listen=f"127.0.0.1:{newcomer_port}")
        ui.wait_for(lambda ls: any(f"migration  moved #{room} (1 member) to " in s
                                   for s in log_pane(ls)),
                    what=f"the migration of #{room} in the log pane")

        # exit (in a channel, with its "/"): the graceful sequence, the terminal restored
        ui.enter("/exit")
        assert ui.wait_exit(timeout=60) == 0
        assert_terminal_restored(ui)
        bob.wait_for(kind("member_left", channel="general", nick="alice"),
                     what="alice leaving #general")

    def test_ui__lines_beginning_with_command_words_are_chat_text_in_a_channel(
            self, cluster, start_ui):
        bob = cluster.start("bob")
        (port,) = free_ports(1)
        ui = start_ui("alice", port, bob.address)
        ui.wait_for("You are alice")
        bob.send("join general")
        bob.wait_for(kind("joined", channel="general"))
        ui.enter("join general")
        ui.wait_for("│ #general  (2 members)", what="#general shown with bob in it")
        lines = ["exit strategy is clear", "leave it to me", "send it later", "join the fun",
                 "msg me later", "//help is on the way"]
        for line in lines:
            ui.enter(line)
        for text in [*lines[:-1], "/help is on the way"]:
            bob.wait_for(kind("channel", channel="general", text=text), what=repr(text))
        got = [e["text"] for e in bob.matching(kind("channel", channel="general"))]
        assert got == [*lines[:-1], "/help is on the way"]  # each once, in order
        # the UI is still running, still in #general, and bob never saw alice leave
        screen = ui.wait_for("<alice> msg me later")
        assert "│ #general  (2 members)" in "\n".join(screen) and ui.proc.poll() is None
        assert not bob.matching(kind("member_left"))
        assert not any(s.startswith("3 ") for s in side_pane(screen))  # no #it, no #the
        # with a "/" they are commands again
        ui.enter("/leave")
        ui.wait_for("you left #general")
        bob.wait_for(kind("member_left", channel="general", nick="alice"))
        ui.enter("/exit")
        assert ui.wait_exit(timeout=60) == 0
        assert_terminal_restored(ui)

    def test_ui__ctrl_c_runs_the_graceful_exit(self, start_ui):
        (port,) = free_ports(1)
        ui = start_ui("solo", port)
        ui.wait_for("You are solo")
        ui.type("\x03")
        assert ui.wait_exit(timeout=60) == 0
        assert_terminal_restored(ui)

    def test_ui__sigterm_runs_the_graceful_exit(self, start_ui):
        (port,) = free_ports(1)
        ui = start_ui("solo", port)
        ui.wait_for("You are solo")
        ui.proc.terminate()
        assert ui.wait_exit(timeout=60) == 0
        assert_terminal_restored(ui)

    def test_ui__the_bell_can_be_turned_off(self, cluster, start_ui):
        bob = cluster.start("bob")
        (port,) = free_ports(1)
        ui = start_ui("alice", port, bob.address, env={"CHORDCHAT_BELL": "off"})
        ui.wait_for("You are alice")
        bob.send("msg alice no bell please")
        ui.wait_for(lambda ls: any(s.startswith("2 bob") and s.rstrip().endswith("1!")
                                   for s in side_pane(ls)), what="bob's unread count")
        assert b"\x07" not in ui.output
        ui.enter("exit")
        assert ui.wait_exit(timeout=60) == 0

    def test_ui__a_pasted_over_long_line_is_refused_and_the_ui_stays_responsive(self, start_ui):
        (port,) = free_ports(1)
        ui = start_ui("solo", port)
        ui.wait_for("You are solo")
        ui.enter("join general")
        ui.wait_for("you joined #general")
        # a paste arrives as one burst of keys, and Alt+1 right behind it must not wait
        # long (an input line that wrapped laid out its whole text again on every key:
        # 10,000 keys kept the UI busy for about a minute)
        ui.type("send #general " + "x" * 10_000 + "\r" + "\x1b1")
        ui.wait_for(lambda ls: "│ chordchat" in ls[0], timeout=30,
                    what="the home pane shown by Alt+1 after the paste")
        ui.type("\x1b2")
        lines = ui.wait_for("at most 4000 are allowed", timeout=30,
                            what="the over-long message error on #general")
        assert lines[-1].startswith("#general> ") and "x" not in lines[-1]  # input emptied
        ui.enter("/exit")
        assert ui.wait_exit(timeout=60) == 0

    def test_ui__bell_off_and_f3_turn_the_bell_off_and_on_from_the_ui(self, cluster, start_ui):
        bob = cluster.start("bob")
        (port,) = free_ports(1)
        ui = start_ui("alice", port, bob.address)
        ui.wait_for("You are alice")
        ui.enter("bell off")
        ui.wait_for("the bell is off")
        bob.send("msg alice quiet one")
        ui.wait_for(lambda ls: any(s.startswith("2 bob") and s.rstrip().endswith("1!")
                                   for s in side_pane(ls)), what="bob's unread count")
        assert b"\x07" not in ui.output
        ui.type("\x1bOR")  # F3 (was Alt+B, now word back)
        ui.wait_for("the bell is on")
        bob.send("msg alice loud one")
        ui.wait_for(lambda ls: any(s.startswith("2 bob") and s.rstrip().endswith("2!")
                                   for s in side_pane(ls)), what="bob's second message")
        assert b"\x07" in ui.output
        ui.enter("exit")
        assert ui.wait_exit(timeout=60) == 0

    def test_ui__the_mouse_wheel_scrolls_the_conversation_back_and_forth(self, start_ui):
        (port,) = free_ports(1)
        ui = start_ui("solo", port)
        ui.wait_for("You are solo")
        ui.enter("join general")
        ui.wait_for("you joined #general")
        for i in range(30):  # more lines than the pane has rows
            ui.enter(f"line {i}")
        ui.wait_for(lambda ls: any("line 29 ✓" in s for s in ls[12:16]),
                    what="the last line at the bottom of the pane")
        wheel_up, wheel_down = "\x1b[<64;40;6M", "\x1b[<65;40;6M"  # SGR mouse, row 6
        ui.type(wheel_up * 5)
        lines = ui.wait_for("more below", what="the marker after scrolling back")
        assert not any("line 29" in s for s in lines[10:15])
        ui.type(wheel_down * 10)
        ui.wait_for(lambda ls: not any("more below" in s for s in ls)
                    and any("line 29 ✓" in s for s in ls[12:16]),
                    what="the newest line at the bottom again, without the marker")
        ui.enter("/exit")
        assert ui.wait_exit(timeout=60) == 0

    def test_ui__survives_resizing_and_redraws_at_the_new_size(self, start_ui):
        (port,) = free_ports(1)
        ui = start_ui("solo", port)
        ui.wait_for("You are solo")
        ui.resize(100, 30)
        ui.wait_for(lambda ls: len(ls) == 30 and "ring log" in ls[22], what="the 100x30 layout")
        ui.resize(60, 16)
        ui.wait_for(lambda ls: len(ls) == 16 and "ring log" in ls[8], what="the 60x16 layout")
        ui.enter("exit")
        assert ui.wait_exit(timeout=60) == 0


class TestStartupErrors:
    def test_ui__a_port_in_use_is_a_clear_message_and_exit_code_2(self, start_ui):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            ui = start_ui("alice", port)
            assert ui.wait_exit(timeout=60) == 2
        text = ui.output.decode(errors="replace")
        assert f"127.0.0.1:{port}" in text and "chordchat:" in text
        assert_terminal_restored(ui)

    def test_ui__an_unreachable_bootstrap_is_a_clear_message(self, start_ui):
        port, nobody = free_ports(2)
        ui = start_ui("alice", port, f"127.0.0.1:{nobody}")
        assert ui.wait_exit(timeout=60) == 2
        text = ui.output.decode(errors="replace")
        assert f"127.0.0.1:{nobody}" in text and "chordchat:" in text
        assert_terminal_restored(ui)

    def test_ui__a_nick_taken_is_a_clear_message(self, cluster, start_ui):
        bob = cluster.start("bob")
        (port,) = free_ports(1)
        ui = start_ui("Bob", port, bob.address)
        assert ui.wait_exit(timeout=60) == 2
        text = ui.output.decode(errors="replace")
        assert "chordchat:" in text and "bob" in text.lower() and "taken" in text.lower()
        assert_terminal_restored(ui)


def test_ui__a_backlog_shows_each_line_at_its_authors_time_in_order_above_you_joined(
        cluster, terminals, tmp_path):
    """ada's clock runs 4 minutes behind (faketime; within the clock skew the ring allows):
    her lines, sent before alice joins, show at the time ada signed them, oldest first, and the
    "you joined" line comes after the backlog it brought."""
    import shutil
    import time
    if shutil.which("faketime") is None:
        pytest.skip("needs faketime (Debian package faketime) to run a node 4 minutes behind")
    ada = cluster.start("ada", wrapper=["env", "FAKETIME_DONT_FAKE_MONOTONIC=1",
                                        "faketime", "-f", "-4m"])
    ada.send("join general")
    ada.wait_for(kind("joined", channel="general"))
    stamps = []
    for text in ("first, from the past", "second, still before you came"):
        ada.send(f"send general {text}")
        stamps.append(ada.wait_for(kind("channel", channel="general", text=text))["at"])
    assert time.time() - stamps[0] > 3 * 60   # signed on ada's clock, 4 minutes behind
    ui = TerminalProcess([sys.executable, "-m", "tui", "--nick", "alice", "--bootstrap",
                          ada.address, "--data-dir", str(tmp_path / "alice"), *UI_ARGS],
                         env={"CHORDCHAT_LOG": str(tmp_path / "ui.log")})
    terminals.append(ui)
    ui.wait_for("You are alice")
    ui.enter("join general")
    lines = ui.wait_for("you joined #general")
    first = next(i for i, s in enumerate(lines) if "<ada> first, from the past" in s)
    second = next(i for i, s in enumerate(lines) if "<ada> second, still before" in s)
    joined = next(i for i, s in enumerate(lines) if "you joined #general" in s)
    assert first < second < joined
    for row, at in ((first, stamps[0]), (second, stamps[1])):
        assert time.strftime("%H:%M", time.localtime(at)) + " <ada>" in lines[row]
    joined_at = re.search(r"(\d\d:\d\d) you joined", lines[joined]).group(1)
    assert joined_at != time.strftime("%H:%M", time.localtime(stamps[0]))
    ui.enter("/exit")
    assert ui.wait_exit(timeout=60) == 0
