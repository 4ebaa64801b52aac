"""`make demo`: four headless peers that chat on #general, and the UI as the fifth node.

The peers are real ``chordchat --headless`` processes on free loopback ports; their output
goes to log files. Leaving the UI (``/exit`` or Ctrl+C) sends each peer ``exit`` too (a
second Ctrl+C ends them at once); the temporary folder of their keys, data and logs is
removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from core.chord import Address
from core.runtime import Options

PEERS = ("ada", "linus", "grace", "ken")
CHANNEL = "general"
READY_TIMEOUT = 30.0
EXIT_TIMEOUT = 30.0

# (who, where, text): where is "#" for the channel, "@" for a private message to the user.
# {you} is the UI user's nick.
SCRIPT = (
    ("ada", "#", "morning all, coffee is on"),
    ("linus", "#", "morning. did anyone look at the flaky ring test yesterday?"),
    ("grace", "#", "I did: a stabilize round raced a join. fixed it with a retry"),
    ("ken", "#", "nice. we are five on the ring now, hi {you}"),
    ("ada", "@", "hi {you}! type  join general  if you have not yet, we are all there"),
    ("linus", "#", "fun fact: a lookup here takes about log2(n) hops, so 2 or 3 for us"),
    ("grace", "#", "and if one of us crashes, the successors keep copies of the channel"),
    ("ken", "#", "{you}: try  msg ada hello  for a private message"),
    ("ada", "#", "lunch at noon? the place with the dumplings"),
    ("grace", "#", "yes please"),
    ("linus", "@", "psst {you}, press F2 to watch channels migrate in the ring log"),
    ("ken", "#", "who owns #general right now? the status bar says what each node keeps"),
    ("ada", "#", "not me, I only keep two name maps"),
    ("grace", "#", "leaving with /exit hands everything to the successor, nothing is lost"),
    ("linus", "#", "unlike my last laptop"),
    ("ken", "@", "{you}, Alt+1..9 switches conversations, PgUp scrolls back"),
)


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_nick() -> str:
    """The login name made into a valid nick, avoiding the peers' names."""
    try:
        name = re.sub(r"[^A-Za-z0-9_-]", "", getpass.getuser())[:24]
    except Exception:  # noqa: BLE001 - no login name: any nick will do
        name = ""
    if not name or not name[0].isalpha():
        name = "me"
    return name + "2" if name.lower() in PEERS else name


class Peer:
    """One background ``chordchat --headless`` process, its commands on stdin."""

    def __init__(self, nick: str, port: int, bootstrap: int | None, logdir: Path) -> None:
        self.nick, self.port = nick, port
        self.log_path = logdir / f"{nick}.log"
        args = [sys.executable, "-m", "tui", "--nick", nick, "--listen", f"127.0.0.1:{port}",
                "--headless", "--data-dir", str(logdir / "data")]   # the peers' keys: throwaway
        if bootstrap is not None:
            args += ["--bootstrap", f"127.0.0.1:{bootstrap}"]
        with open(self.log_path, "w", encoding="utf-8") as out:
            # a session of its own: Ctrl+C in the terminal is for the UI, not for the peers
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=out,
                                         stderr=subprocess.STDOUT, text=True,
                                         start_new_session=True)
        self._lock = threading.Lock()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            if "ready:" in text:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"peer {self.nick} ended at start: {text.strip()[-300:]}")
            time.sleep(0.1)
        raise RuntimeError(f"peer {self.nick} was not ready within {timeout:.0f} s")

    def say(self, line: str) -> None:
        with self._lock:
            if self.proc.poll() is None and self.proc.stdin and not self.proc.stdin.closed:
                try:
                    self.proc.stdin.write(line + "\n")
                    self.proc.stdin.flush()
                except (BrokenPipeError, ValueError):
                    pass

    def exit(self) -> None:
        """Ask for the graceful exit; ``wait`` for it."""
        self.say("exit")
        with self._lock:
            if self.proc.stdin and not self.proc.stdin.closed:
                try:
                    self.proc.stdin.close()
                except BrokenPipeError:
                    pass

    def kill(self) -> None:
        """End the process at once (no graceful exit) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                return self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()


def chatter(peers: dict[str, Peer], you: str, stop: threading.Event,
            pause: tuple[float, float]) -> None:
    """Play the script round and round, a line every few seconds, until ``stop``."""
    step = 0
    while not stop.wait(random.uniform(*pause)):
        who, where, text = SCRIPT[step % len(SCRIPT)]
        text = text.format(you=you)
        if where == "@":
            peers[who].say(f"msg {you} {text}")
        else:
            peers[who].say(f"send {CHANNEL} {text}")
        step += 1


def start_peers(logdir: Path) -> dict[str, Peer]:
    peers: dict[str, Peer] = {}
    first: int | None = None
    for nick in PEERS:
        peer = Peer(nick, free_port(), first, logdir)
        peers[nick] = peer
        peer.wait_ready()
        first = first or peer.port
        peer.say(f"join {CHANNEL}")
    return peers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui.demo", description=__doc__)
    parser.add_argument("--nick", default=default_nick(), help="your nick in the demo")
    parser.add_argument("--pause", type=float, nargs=2, default=(4.0, 10.0),
                        metavar=("MIN", "MAX"), help="seconds between the peers' lines")
    parser.add_argument("--dir", type=Path, metavar="DIR",
                        help="keep the peers' keys, data and logs in DIR (default: a "
                             "temporary folder, removed at the end)")
    args = parser.parse_args(argv)
    made = args.dir is None
    logdir = Path(tempfile.mkdtemp(prefix="chordchat-demo-")) if made else args.dir
    logdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CHORDCHAT_LOG", str(logdir / f"{args.nick}.log"))
    print(f"starting four peers ({', '.join(PEERS)}) in {logdir}"
          + (" (removed at the end)" if made else ""), flush=True)
    peers: dict[str, Peer] = {}
    stop = threading.Event()
    code = 1
    try:
        peers = start_peers(logdir)
        talk = threading.Thread(target=chatter, args=(peers, args.nick, stop, args.pause),
                                name="demo-chatter", daemon=True)
        talk.start()
        from tui.app import run_ui

        first = next(iter(peers.values()))
        code = run_ui(Options(nick=args.nick, listen=Address("127.0.0.1", free_port()),
                              bootstrap=Address("127.0.0.1", first.port)))
    except RuntimeError as e:
        print(f"demo: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        stop_peers(list(peers.values()))
        if made:
            shutil.rmtree(logdir, ignore_errors=True)   # the peers' keys, data and logs
        else:
            print(f"logs: {logdir}")
    return code


def stop_peers(peers: list[Peer]) -> None:
    """Each peer leaves the ring gracefully, one at a time (so that each hands what it
    keeps to a successor that stays); Ctrl+C meanwhile ends the rest at once, quietly."""
    if not peers:
        return
    print("stopping the peers (each leaves the ring gracefully; Ctrl+C ends them now)…",
          flush=True)
    left = list(peers)
    try:
        while left:
            left[0].exit()
            left[0].wait(EXIT_TIMEOUT)
            left.pop(0)
    except KeyboardInterrupt:
        print("ending the peers now", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            for peer in left:
                peer.kill()


if __name__ == "__main__":
    sys.exit(main())
