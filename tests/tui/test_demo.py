"""`make demo`'s program in a pseudo-terminal: four real peers chat around the UI, and
leaving the UI stops every peer with its graceful exit."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

import pytest

from tests.tui.terminal import TerminalProcess
from tui.demo import PEERS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_demo__peers_chat_send_privates_and_leave_with_the_ui(tmp_path):
    demo = TerminalProcess([sys.executable, "-m", "tui.demo", "--nick", "sam",
                            "--pause", "0.2", "0.5", "--dir", str(tmp_path / "demo")],
                           env={"CHORDCHAT_LOG": str(tmp_path / "ui.log")})
    try:
        demo.wait_for("You are sam", timeout=90)
        demo.enter("join general")
        demo.wait_for("│ #general  (5 members)", timeout=90,
                      what="#general with the four peers and sam")
        # the peers talk in the channel, and one of them writes to sam privately
        demo.wait_for(lambda ls: sum(bool(re.search(r"\d\d:\d\d <(ada|linus|grace|ken)>", s))
                                     for s in ls) >= 3, timeout=90, what="three peer lines")
        demo.wait_for(lambda ls: any(re.match(r"\d (ada|linus|grace|ken) +\d+!", s[:18])
                                     for s in ls[:16]), timeout=90, what="a private message")
        demo.enter("/exit")  # #general is shown: without "/" it would be text
        assert demo.wait_exit(timeout=180) == 0
    finally:
        demo.close()
    out = demo.output.decode(errors="replace")
    logdir = Path(re.search(r"logs: (\S+)", out).group(1))
    for nick in PEERS:
        lines = (logdir / f"{nick}.log").read_text().splitlines()
        assert lines[-1] == "bye", f"{nick} did not leave gracefully: {lines[-3:]}"


def test_demo__a_second_ctrl_c_while_the_peers_stop_ends_quietly_and_leaves_no_folder(
        tmp_path):
    demo = TerminalProcess([sys.executable, "-m", "tui.demo", "--nick", "sam"],
                           env={"TMPDIR": str(tmp_path)})
    try:
        demo.wait_for("You are sam", timeout=90)
        assert [p.name for p in tmp_path.iterdir()][0].startswith("chordchat-demo-")
        demo.proc.send_signal(signal.SIGINT)   # Ctrl+C: the UI leaves, the peers stop
        demo.wait_for(lambda ls: any("stopping the peers" in s for s in ls), timeout=60,
                      what="the peers stopping")
        demo.proc.send_signal(signal.SIGINT)   # again, while they stop
        assert demo.wait_exit(timeout=60) == 0
    finally:
        demo.close()
    out = demo.output.decode(errors="replace")
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out[-2000:]
    assert list(tmp_path.iterdir()) == []   # its temporary folder is gone
