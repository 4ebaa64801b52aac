"""The real UI in a pseudo-terminal (pyte) for what a day of use needs: a bracketed paste,
the editing keys, search hits opened by keyboard, a message taller than the pane, small and
usual screen sizes, nick completion. One solo node each (its own ring), its own data dir."""

from __future__ import annotations

import sys

import pytest

from tests.tui.terminal import TerminalProcess
from tests.tui.test_pty import UI_ARGS, assert_terminal_restored, free_ports

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


@pytest.fixture
def solo(tmp_path):
    """A function starting the UI of one solo node in a terminal of the given size."""
    started: list[TerminalProcess] = []

    def start(nick: str = "solo", cols: int = 80, rows: int = 24) -> TerminalProcess:
        (port,) = free_ports(1)
        data = tmp_path / f"data-{nick}-{len(started)}"
        args = [sys.executable, "-m", "tui", "--nick", nick, "--listen", f"127.0.0.1:{port}",
                "--data-dir", str(data), *UI_ARGS]
        ui = TerminalProcess(args, cols=cols, rows=rows,
                             env={"CHORDCHAT_LOG": str(tmp_path / f"{nick}.log")})
        started.append(ui)
        ui.wait_for(f"You are {nick}")
        return ui

    yield start
    for ui in started:
        ui.close()


def join_general(ui: TerminalProcess) -> None:
    ui.enter("join general")
    ui.wait_for("you joined #general")


def input_rows(lines: list[str]) -> list[str]:
    """The input line's rows: from the one starting with the caption to the end."""
    start = max(i for i, line in enumerate(lines) if line.startswith("#general> ")
                or line.startswith("> "))
    return lines[start:]


class TestPaste:
    def test_ui__a_bracketed_paste_with_exit_is_one_message_and_the_ui_keeps_running(
            self, solo):
        ui = solo()
        assert b"\x1b[?2004h" in ui.output  # bracketed paste turned on
        join_general(ui)
        ui.type(PASTE_START + "first pasted line\r/exit\rlast pasted line" + PASTE_END)
        lines = ui.wait_for(lambda ls: any("last pasted line" in s for s in ls[-3:]),
                            what="the paste kept in the input, on several rows")
        assert [s.rstrip() for s in lines[-3:]] == [
            "#general> first pasted line", "/exit", "last pasted line"]
        ui.type("\r")
        lines = ui.wait_for(lambda ls: any("last pasted line ✓" in s for s in ls),
                            what="the one message, delivered")
        text = "\n".join(lines)
        assert "<solo> first pasted line" in text and "\n" in text
        shown = [s for s in lines if "first pasted line" in s or "/exit" in s]
        assert len(shown) == 2  # one message of three lines, shown once
        assert ui.proc.poll() is None and lines[-1].rstrip() == "#general>"
        ui.enter("/exit")
        assert ui.wait_exit(timeout=60) == 0
        assert_terminal_restored(ui)
        out = bytes(ui.output)
        assert out.rfind(b"\x1b[?2004l") > out.rfind(b"\x1b[?2004h")  # and off again
