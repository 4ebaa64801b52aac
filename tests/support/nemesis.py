"""A nemesis on namespace hosts: chordchat processes on hosts of tests/support/hosts.py
chat at a steady pace while a seeded random schedule of faults hits them; afterwards
tests/support/history.py checks what every process printed.

    with Network() as net, Cluster(tmp) as cluster:
        run = Run(net, cluster, seed=7, seconds=60, hosts=5)
        report = run.go()                 # start, chat under the faults, settle, check
        print(run.describe(), report.summary())

The schedule is a pure function of the seed (``schedule``), so a seed replays the same
faults at the same moments (the ring's own timing still varies from run to run). Faults,
one at a time, each undone after its duration:

- ``kill``: SIGKILL, then a restart with the same data directory;
- ``pause``: SIGSTOP of the node maintaining a channel, SIGCONT after;
- ``exit``: a graceful exit (``exit`` typed), and a start again later;
- ``partition``: the hosts split into two random groups, then healed;
- ``skew``: a restart under libfaketime with the clock minutes ahead or behind, and a
  restart with the right clock after;
- ``join``: a new node (on a spare host) joins and joins the channels;
- ``cut``: non-transitive connectivity: two hosts stop reaching each other (nft rules in
  their namespaces), every other pair fine, then uncut;
- ``oneway``: one direction between two hosts loses 30-70 % of its packets (nft), the
  other direction is clean. The kernel here has no netem, so there is no pure delay:
  what the lossy direction carries arrives late, by TCP's retransmissions (200 ms and
  doubling), and a call that needs too many of them times out;
- ``jump``: a running node's clock jumps minutes ahead or behind, and back after: every
  node runs under libfaketime reading its offset from a file of its own
  (``FAKETIME_TIMESTAMP_FILE``, re-read every second), so the jump hits the running
  process, no restart. Without libfaketime ``skew`` restarts on the right clock and
  ``jump`` is skipped (counted as "skipped jump").

After the run every node exits gracefully and the checker reads each nick's SQLite
database too (``history.check_databases``): acknowledged messages stored by every member,
nothing stored that nobody typed, nothing shown and not stored, nothing acknowledged left
in an outbox.

``python -m tests.support.nemesis --seed 7 --minutes 10 --hosts 8`` (``make nemesis``) runs
one and prints the seed, the schedule, the counts and every violation (exit 1 if any).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .history import Report, check, check_databases, database_of
from .hosts import PORT, RING_ARGS, Host, Network, wait_one_ring
from .procs import Cluster, Proc, kind

CHANNELS = ("red", "green", "blue")
KINDS = ("kill", "pause", "exit", "partition", "skew", "join", "cut", "oneway", "jump")
FAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
MERGE = 15.0   # seconds after a heal during which the two sides may still be two rings


@dataclass(frozen=True)
class Fault:
    at: float          # seconds after the chat started
    kind: str
    target: int        # index into the nodes running then (modulo their number)
    lasts: float       # seconds until undone
    detail: float = 0.0   # skew, jump: minutes (signed); partition: the fraction cut
    #                       off; oneway: the percentage of packets lost


def schedule(seed: int, seconds: float, kinds: tuple[str, ...] = KINDS,
             joins: int = 2) -> list[Fault]:
    """The faults of a run: one after the other, 3-8 s each, 2-4 s apart, at most
    ``joins`` joins; the same seed gives the same list."""
    rng = random.Random(seed)
    faults, t, joined = [], 3.0, 0
    while True:
        kind_ = rng.choice([k for k in kinds if k != "join" or joined < joins])
        lasts = rng.uniform(3.0, 8.0)
        if t + lasts > seconds:
            return faults
        detail = 0.0
        if kind_ in ("skew", "jump"):
            detail = rng.choice([-1, 1]) * rng.uniform(2.0, 15.0)
        elif kind_ == "partition":
            detail = rng.uniform(0.2, 0.5)
        elif kind_ == "oneway":
            detail = rng.uniform(30.0, 70.0)
        joined += kind_ == "join"
        faults.append(Fault(round(t, 2), kind_, rng.randrange(1000), round(lasts, 2),
                            round(detail, 2)))
        t += lasts + rng.uniform(2.0, 4.0)


class Run:
    """One nemesis run: ``hosts`` nodes (plus spare hosts for joins), three channels."""

    def __init__(self, network: Network, cluster: Cluster, seed: int, seconds: float,
                 hosts: int = 5, every: float = 1.0, bound: float = 60.0,
                 kinds: tuple[str, ...] = KINDS) -> None:
        self.net = network
        self.cluster = cluster
        self.seed = seed
        self.seconds = seconds
        self.every = every
        self.bound = bound
        self.faults = schedule(seed, seconds, kinds)
        joins = sum(f.kind == "join" for f in self.faults)
        self.hosts: list[Host] = network.add_hosts(hosts + joins)
        self.spare = self.hosts[hosts:]
        self.size = hosts
        self.rng = random.Random(seed + 1)   # the workload's choices
        self.incarnations: dict[str, list[Proc]] = {}
        self.host_of: dict[str, Host] = {}
        self.current: dict[str, Proc] = {}   # nick -> its live process (or the last one)
        self.paused: set[str] = set()
        self.down: set[str] = set()
        self.faulted: set[str] = set()
        self.applied: Counter = Counter()
        self.apart: list[tuple[float, float]] = []   # (cut, healed + MERGE) of splits
        self.log: list[dict] = []   # the faults applied, with their times and victims
        self.last_victim: object = None
        self.sent = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # -- nodes --------------------------------------------------------------------------

    def _start(self, nick: str, host: Host, data_dir: Path | None = None,
               skew: float = 0.0) -> Proc:
        bootstrap = next((p for n, p in self.current.items()
                          if p.alive and n not in self.paused and n != nick), None)
        wrapper = list(host.wrapper)
        if FAKETIME:   # the clock's offset is read from a file of its own: jumps while it runs
            self._set_clock(nick, skew)
            wrapper += ["env", f"LD_PRELOAD={FAKETIME[0]}",
                        f"FAKETIME_TIMESTAMP_FILE={self._clock_file(nick)}",
                        "FAKETIME_CACHE_DURATION=1", "FAKETIME_DONT_FAKE_MONOTONIC=1"]
        proc = self.cluster.start(nick, bootstrap=bootstrap, wrapper=wrapper,
                                  listen=host.address(PORT), fast=False, args=RING_ARGS,
                                  timeout=60, data_dir=data_dir)
        with self._lock:
            self.incarnations.setdefault(nick, []).append(proc)
            self.host_of[nick] = host
            self.current[nick] = proc
            self.down.discard(nick)
        return proc

    def _clock_file(self, nick: str) -> Path:
        return self.cluster.log_dir / f"clock-{nick}"

    def _set_clock(self, nick: str, minutes: float) -> None:
        """The offset libfaketime gives ``nick``'s process from now on (within a second)."""
        path = self._clock_file(nick)
        path.with_suffix(".tmp").write_text(f"{minutes:+.0f}m\n" if minutes else "+0\n")
        path.with_suffix(".tmp").replace(path)

    def _join_channels(self, proc: Proc) -> None:
        for c in CHANNELS:
            proc.send(f"join #{c}")
        for c in CHANNELS:
            proc.wait_for(kind("joined", channel=c), timeout=60, what=f"joined #{c}")

    def _live(self) -> list[str]:
        with self._lock:
            return [n for n, p in self.current.items()
                    if p.alive and n not in self.paused and n not in self.down]

    # -- the workload -----------------------------------------------------------------------

    def _chat(self) -> None:
        i = 0
        while not self._stop.is_set():
            for nick in self._live():
                proc = self.current[nick]
                channel = CHANNELS[(i + len(nick)) % len(CHANNELS)]
                try:
                    proc.send(f"send {channel} m{i} {nick}")
                    self.sent["channel"] += 1
                    if i % 4 == 0:   # a private message, to an online or an offline nick
                        to = self.rng.choice(sorted(self.incarnations))
                        if to != nick:
                            proc.send(f"msg {to} p{i} {nick}")
                            self.sent["private"] += 1
                except (BrokenPipeError, OSError, ValueError):
                    pass   # it died meanwhile (a fault)
            i += 1
            self._stop.wait(self.every)   # pacing the traffic, not waiting for anything

    # -- the faults -------------------------------------------------------------------------

    def _victim(self, fault: Fault) -> str | None:
        live = self._live()
        return live[fault.target % len(live)] if len(live) > 2 else None

    def _apply(self, fault: Fault) -> None:
        began = time.monotonic()
        self._apply_one(fault)
        self.log.append({"kind": fault.kind, "at": began, "until": time.monotonic(),
                         "victim": self.last_victim})

    def _apply_one(self, fault: Fault) -> None:
        self.last_victim = None
        if fault.kind == "partition":
            hosts = list(self.hosts)
            random.Random(fault.target).shuffle(hosts)
            cut = max(1, int(len(hosts) * fault.detail))
            began = time.monotonic()
            self.last_victim = [[h.name for h in hosts[:cut]], [h.name for h in hosts[cut:]]]
            self.net.partition(hosts[:cut], hosts[cut:])
            time.sleep(fault.lasts)   # the fault's duration
            self.net.heal()
            self.apart.append((began, time.monotonic() + MERGE))
        elif fault.kind in ("cut", "oneway"):
            hosts = [self.host_of[n] for n in self._live()]
            if len(hosts) < 3:
                return
            pick = random.Random(fault.target)
            a, b = pick.sample(hosts, 2)
            self.last_victim = [a.name, b.name]
            began = time.monotonic()
            if fault.kind == "cut":
                self.net.cut(a, b)
            else:
                self.net.lossy(a, b, round(fault.detail))
            time.sleep(fault.lasts)   # the fault's duration
            self.net.uncut(a, b)
            if fault.kind == "cut":   # the ring around it may have split for a moment
                self.apart.append((began, time.monotonic() + MERGE))
        elif fault.kind == "jump":
            nick = self.last_victim = self._victim(fault)
            if nick is None or not FAKETIME:
                self.applied["skipped " + fault.kind] += 1
                return
            self._set_clock(nick, fault.detail)
            time.sleep(fault.lasts)   # the fault's duration: it runs on the jumped clock
            self._set_clock(nick, 0.0)
        elif fault.kind == "join":
            if not self.spare:
                return
            host = self.spare.pop(0)
            proc = self._start(f"new{len(self.incarnations)}", host)
            self._join_channels(proc)
        else:
            nick = self.last_victim = self._victim(fault)
            if nick is None:
                return
            self.faulted.add(nick)
            proc, host = self.current[nick], self.host_of[nick]
            if fault.kind == "pause":
                with self._lock:
                    self.paused.add(nick)
                proc.process.send_signal(signal.SIGSTOP)
                time.sleep(fault.lasts)   # the fault's duration
                proc.process.send_signal(signal.SIGCONT)
                with self._lock:
                    self.paused.discard(nick)
            else:
                with self._lock:
                    self.down.add(nick)
                if fault.kind == "exit":
                    proc.stop()
                else:
                    proc.kill()
                time.sleep(fault.lasts)   # the fault's duration
                skew = fault.detail if fault.kind == "skew" and FAKETIME else 0.0
                self._start(nick, host, proc.data_dir, skew=skew)
                if skew:   # and back to the right clock
                    time.sleep(fault.lasts)   # the skewed node chats meanwhile
                    with self._lock:
                        self.down.add(nick)
                    self.current[nick].stop()
                    self._start(nick, host, proc.data_dir)
        self.applied[fault.kind] += 1

    # -- a run ------------------------------------------------------------------------------

    def go(self) -> Report:
        for i, host in enumerate(self.hosts[:self.size]):
            self._start(f"n{i}", host)
        wait_one_ring(list(self.current.values()), timeout=60)
        for proc in list(self.current.values()):
            self._join_channels(proc)
        chatting = threading.Thread(target=self._chat, daemon=True)
        began = time.monotonic()
        chatting.start()
        try:
            for fault in self.faults:
                delay = began + fault.at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)   # the schedule's moment for this fault
                self._apply(fault)
            quiet_from = time.monotonic()
            time.sleep(10.0)   # chat on without faults for a while
        finally:
            self._stop.set()
            chatting.join(10)
        self._settle()
        report = check(self.incarnations, self.faulted, quiet_from, self.bound, self.apart)
        for proc in list(self.current.values()):   # exit, so that every commit is on disk
            if proc.alive:
                proc.stop()
        databases = {nick: database_of(procs[-1].data_dir, nick)
                     for nick, procs in self.incarnations.items()}
        return check_databases(self.incarnations, self.faulted, databases, report)

    def _settle(self) -> None:
        """Wait (at most ``bound`` s) until every live node shows every acknowledged
        message of the channels; the checker then says what is missing."""
        deadline = time.monotonic() + self.bound
        while time.monotonic() < deadline:
            acked = {e["msg_id"] for procs in self.incarnations.values() for p in procs
                     for e in p.matching(kind("sent"))}
            missing = sum(len(acked - {e["msg_id"] for e in p.matching(kind("channel"))})
                          for p in self.current.values() if p.alive)
            if not missing:
                return
            time.sleep(0.5)   # polling the processes' output until the deadline

    def keep(self, where: Path) -> None:
        """Every process's events (JSON lines), stderr and log file, the faults and hosts,
        in ``where``."""
        where.mkdir(parents=True, exist_ok=True)
        for nick, procs in self.incarnations.items():
            for i, p in enumerate(procs):
                with open(where / f"{nick}-{i}.jsonl", "w") as f:
                    for e in p.events:
                        f.write(json.dumps(e) + "\n")
                shutil.copy(p.stderr_path, where / f"{nick}-{i}.stderr")
                if p.stderr_path.with_suffix(".log").exists():   # the ring log, for why
                    shutil.copy(p.stderr_path.with_suffix(".log"), where / f"{nick}-{i}.log")
        (where / "faults.json").write_text(json.dumps(
            {"log": self.log, "apart": self.apart,
             "hosts": {n: h.name for n, h in self.host_of.items()}}, indent=1))

    def describe(self) -> str:
        faults = ", ".join(f"{k} {n}" for k, n in sorted(self.applied.items()))
        return (f"nemesis seed {self.seed}: {self.size} hosts (+{len(self.hosts) - self.size} "
                f"for joins), {self.seconds:.0f} s, {len(self.faults)} faults scheduled; "
                f"applied: {faults or 'none'}; typed: {self.sent['channel']} channel, "
                f"{self.sent['private']} private; restarts/processes: "
                f"{sum(len(v) for v in self.incarnations.values())}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.nemesis")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--keep", type=Path, default=None,
                        help="write every process's events, stderr and log, and the faults, "
                             "here")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"nemesis: seed {seed} (replay with SEED={seed})", flush=True)
    for fault in schedule(seed, args.minutes * 60):
        print(f"  {fault}")
    with tempfile.TemporaryDirectory(prefix="nemesis-") as tmp, Network() as net, \
            Cluster(Path(tmp)) as cluster:
        run = Run(net, cluster, seed, args.minutes * 60, hosts=args.hosts)
        report = run.go()
        print(run.describe())
        print(report.summary())
        for v in report.violations:
            print("  " + v)
        for proc in cluster.live():
            proc.stop()
        if args.keep is not None:
            run.keep(args.keep)
    return 1 if report.violations else 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("the nemesis needs root (network namespaces)")
    sys.exit(main())
