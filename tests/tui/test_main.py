"""The command line: --version, where a node listens without --listen, the log file named
by --help."""

from __future__ import annotations

import subprocess
import sys

from core.chord import Address
from tui.__main__ import default_listen, parse_options


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True,
                          text=True, timeout=60)


def test_version__prints_the_installed_version_and_exits():
    done = run("--version")
    assert done.returncode == 0 and done.stdout.startswith("chordchat 0.") and not done.stderr


def test_help__names_the_log_file_and_the_listen_default():
    text = " ".join(run("--help").stdout.split())
    assert "~/.cache/chordchat/NICK-PORT.log" in text and "127.0.0.1:0" in text


def test_listen__defaults_to_loopback_on_a_free_port_unless_told_otherwise():
    def listen(*args: str) -> Address:
        return parse_options(["--nick", "ann", *args])[0].listen

    assert listen() == Address("127.0.0.1", 0)
    assert listen("--bootstrap", "127.0.0.1:4000") == Address("127.0.0.1", 0)
    assert listen("--advertise", "192.0.2.10:4000") == Address("0.0.0.0", 4000)
    assert listen("--listen", "127.0.0.2:0") == Address("127.0.0.2", 0)
    # a bootstrap on another host: this host's own address toward it (the route's source)
    toward = default_listen(None, Address("192.0.2.1", 4000))
    assert toward.port == 0 and toward.host != "0.0.0.0"
