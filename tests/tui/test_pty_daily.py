"""The real UI in a pseudo-terminal (pyte) for what a day of use needs: a bracketed paste,
the editing keys, search hits opened by keyboard, a message taller than the pane, small and
usual screen sizes, nick completion. One solo node each (its own ring), its own data dir."""

from __future__ import annotations

import sys

import pytest

from tests.tui.terminal import UI_ARGS, TerminalProcess, assert_terminal_restored, free_ports

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
        lines = ui.wait_for(lambda ls: any("last pasted line ✓" in s for s in ls)
                            and any("<solo> first pasted line" in s for s in ls)
                            and ls[-1].rstrip() == "#general>",
                            what="the one message, delivered, and the input empty")
        shown = [s for s in lines if "first pasted line" in s or "/exit" in s]
        assert len(shown) == 2  # one message of three lines, shown once
        assert ui.proc.poll() is None
        ui.enter("/exit")
        assert ui.wait_exit(timeout=60) == 0
        assert_terminal_restored(ui)
        out = bytes(ui.output)
        assert out.rfind(b"\x1b[?2004l") > out.rfind(b"\x1b[?2004h")  # and off again


class TestEditingKeys:
    def test_ui__readline_keys_edit_the_input_line(self, solo):
        ui = solo()
        join_general(ui)
        last = lambda ls: ls[-1].rstrip()  # noqa: E731 - the input row
        ui.type("one two three")
        ui.type("\x17")                      # Ctrl+W: cut "three"
        ui.wait_for(lambda ls: last(ls) == "#general> one two", what="Ctrl+W")
        ui.type("\x01")                      # Ctrl+A, then text at the start
        ui.type("zero ")
        ui.wait_for(lambda ls: last(ls) == "#general> zero one two", what="Ctrl+A")
        ui.type("\x05\x19")                  # Ctrl+E, Ctrl+Y: "three" back at the end
        ui.wait_for(lambda ls: last(ls) == "#general> zero one two three", what="Ctrl+Y")
        ui.type("\x1bb\x1bb")                # Alt+B twice: before "two"
        ui.type("\x1bd")                     # Alt+D: cut "two"
        ui.wait_for(lambda ls: last(ls) == "#general> zero one  three", what="Alt+B, Alt+D")
        ui.type("\x1bf")                     # Alt+F: to the end of "three"
        ui.type("\x02\x02\x02")              # Ctrl+B three times: before "ree"
        ui.type("\x0b")                      # Ctrl+K: cut "ree"
        ui.wait_for(lambda ls: last(ls) == "#general> zero one  th", what="Alt+F, Ctrl+B, Ctrl+K")
        ui.type("\x06\x06")                  # Ctrl+F twice: at the end (no further)
        ui.type("\x1b\x7f")                  # Alt+Backspace: cut "th"
        ui.wait_for(lambda ls: last(ls) == "#general> zero one", what="Alt+Backspace")
        ui.type("\x15")                      # Ctrl+U: cut the rest
        ui.wait_for(lambda ls: last(ls) == "#general>", what="Ctrl+U")
        assert ui.proc.poll() is None
        ui.enter("/exit")
        assert ui.wait_exit(timeout=60) == 0

    def test_ui__alt_enter_types_a_newline_and_enter_sends_one_message(self, solo):
        ui = solo()
        join_general(ui)
        ui.type("top line\x1b\r/exit is text here")
        ui.wait_for(lambda ls: [s.rstrip() for s in ls[-2:]] == [
            "#general> top line", "/exit is text here"], what="two rows in the input")
        ui.type("\r")
        ui.wait_for("/exit is text here ✓", what="the message delivered")
        assert ui.proc.poll() is None
        ui.enter("/exit")
        assert ui.wait_exit(timeout=60) == 0


class TestSearchByKeyboard:
    def test_ui__search_hits_open_with_the_arrows_and_enter(self, solo):
        ui = solo()
        join_general(ui)
        for i in range(25):
            ui.enter(f"needle {i}" if i in (2, 20) else f"hay {i}")
        ui.wait_for("hay 24 ✓", what="the last line delivered")
        ui.type("\x1b1")                       # home pane
        ui.wait_for(lambda ls: "│ chordchat" in ls[0], what="the home pane")
        ui.enter("search needle")
        ui.wait_for(lambda ls: all(any(want in s for s in ls) for want in (
            "search 'needle': 2 lines", "<solo> needle 2", "<solo> needle 20",
            "Enter opens")), what="the hits popup, drawn whole")
        ui.type("\x1b[A\x1b[B")                # Down, Up (xterm arrow keys): back on the first
        ui.type("\r")
        # opened at the old line, not at the end: the marker says there is more below
        ui.wait_for(lambda ls: "│ #general" in ls[0]
                    and not any("search 'needle'" in s for s in ls)
                    and any("<solo> needle 2 ✓" in s for s in ls)
                    and any("more below" in s for s in ls), what="#general shown at the hit")
        ui.enter("/exit")
        assert ui.wait_exit(timeout=60) == 0


class TestTallMessage:
    def test_ui__a_3000_character_message_shows_its_start_a_marker_and_its_mark(self, solo):
        ui = solo()
        join_general(ui)
        text = "begin " + "".join(f"w{i:04d} " for i in range(498)) + "finish"
        assert len(text) >= 3000
        ui.type(PASTE_START + text + PASTE_END + "\r")
        lines = ui.wait_for(lambda ls: any("── more below: PgDn ── ✓" in s for s in ls)
                            and any("<solo> begin w0000" in s for s in ls),
                            what="its start and the marker with the delivered mark")
        assert not any("finish" in s for s in lines)
        for _ in range(30):
            ui.type("\x1b[6~")                 # PgDn
        ui.wait_for(lambda ls: any("finish ✓" in s for s in ls)
                    and not any("more below" in s for s in ls), what="its end, marker gone")
        ui.enter("/exit")
        assert ui.wait_exit(timeout=60) == 0


class TestLayouts:
    def test_ui__at_80x24_the_status_bar_says_everything_uncut(self, solo):
        ui = solo(cols=80, rows=24)
        lines = ui.wait_for(lambda ls: ls[22].rstrip().endswith(" 1 name") and "ring log" in ls[16],
                            what="the whole status bar, and the log with its 6 rows")
        assert lines[22].startswith(" solo ") and "127.0.0.1:" in lines[22]
        ui.enter("exit")
        assert ui.wait_exit(timeout=60) == 0

    def test_ui__at_40x12_the_log_gives_way_and_the_status_bar_fits(self, solo):
        ui = solo(cols=40, rows=12)
        lines = ui.wait_for(lambda ls: "ch " in ls[10] and ls[11].startswith("> "),
                            what="the status bar in the ring, and the input line")
        assert not any("ring log" in s for s in lines)   # hidden: the chat keeps its rows
        status = lines[10].rstrip()
        assert status.startswith(" solo") and not status.endswith(("nam", "na", "n "))
        assert lines[11].startswith("> ")
        ui.enter("join general")
        # ten rows of side pane | chat, the join notice among them
        ui.wait_for(lambda ls: any("you joined" in s for s in ls)
                    and sum("│" in s for s in ls[:10]) == 10, what="the chat with ten rows")
        ui.resize(80, 24)
        ui.wait_for(lambda ls: len(ls) == 24 and "ring log" in ls[16], what="the log back")
        ui.enter("/exit")
        assert ui.wait_exit(timeout=60) == 0


class TestCompletion:
    def test_ui__a_nick_at_the_start_of_a_line_completes_to_nick_colon(self, solo):
        ui = solo("linus")
        join_general(ui)
        ui.type("lin\t")
        ui.wait_for(lambda ls: ls[-1].rstrip() == "#general> linus:", what="linus: ")
        ui.type("look at lin\t")
        ui.wait_for(lambda ls: ls[-1].rstrip() == "#general> linus: look at linus",
                    what="linus elsewhere")
        ui.type("\x15")   # Ctrl+U
        ui.enter("/exit")
        assert ui.wait_exit(timeout=60) == 0
