"""Every size, count and timer of the benchmarks, in one place.

``QUICK`` and ``FULL`` are the two modes of ``python -m bench`` (``--full``); the rest
are fixed for every run: the settings of the nodes each benchmark starts and the sizes
of the benchmarks that have no mode. The report's prose names some of these figures
(50 members on 10 processes, 1,000 channels): change both together.
"""

from __future__ import annotations

# -- python -m bench: the quick mode (the default) and --full ------------------------------

QUICK = dict(lookup_ns=[16, 64, 128, 256], lookups=400, converge_ns=[16, 64],
             converge_limit=120.0, sim_ns=[1000, 2000, 4000, 7000, 10000], sim_lookups=1000,
             fail_n=1000, fail_fractions=[0.05, 0.1, 0.2, 0.3, 0.4, 0.5], fail_lookups=1000,
             kad_keys=50, kad_gets=300, rtt_samples=3000, profile_lookups=200,
             chat_latency_msgs=200, chat_tput_msgs=1000, sim_converge_ns=[16, 64, 128],
             kad_rounds=3, failover_trials=3, failover_load=0, ready_ns=[16, 64], ready_joins=5,
             memory=(1000, 10, 100, [100, 300]),
             merge_ns=[16, 64, 256, 1000],   # N = 1,000 costs 25 s of one core: quick too
             security_full=False)   # hostile peers: 256 nodes (True: 1,000)
FULL = dict(QUICK, lookups=2000, converge_ns=[16, 64, 128], converge_limit=300.0,
            sim_converge_ns=[16, 64, 128, 256],
            sim_ns=[1000, 1500, 2000, 3000, 4000, 5000, 7000, 10000], sim_lookups=5000,
            fail_n=10000, fail_lookups=3000, kad_gets=2000, rtt_samples=10000,
            profile_lookups=500, chat_latency_msgs=500, chat_tput_msgs=5000,
            failover_trials=10, failover_load=2, ready_ns=[16, 64, 128], ready_joins=10,
            security_full=True)


def mode(full: bool) -> dict:
    return FULL if full else QUICK


# -- real nodes on loopback (bench.loopback) -----------------------------------------------

# The bench drives maintenance itself on the measured ring (see build_quiet_ring): the
# nodes run no rounds of their own, so nothing else runs on the loop while we time.
QUIET = dict(timeout=5.0)

# Timers for the convergence measurement: faster than the defaults (0.5 s, 1 s, 1 s) so
# that N = 256 fits in a benchmark run; the report also gives the time in rounds.
CONVERGE = dict(stabilize_interval=0.1, fix_fingers_interval=1.0,
                check_predecessor_interval=1.0, timeout=3.0)

# python -m bench.hops: a ring converging on its own timers
HOPS_CHORD = dict(stabilize_interval=0.2, fix_fingers_interval=0.5,
                  check_predecessor_interval=0.5, timeout=3.0)

# -- the chat: fan-out and migration (bench.chat, bench.workers.chat_members) --------------

CHAT_CHORD = dict(stabilize_interval=0.2, fix_fingers_interval=1.0,
                  check_predecessor_interval=1.0, timeout=3.0)
CHAT_SERVICE = dict(retry_for=90.0)
FANOUT_WORKERS, FANOUT_PER_WORKER = 10, 5   # 50 members in 10 processes
FANOUT_WINDOW = 64                          # sends in flight under load
FANOUT_PROFILED = 300                       # messages of the profiled fan-out
MIGRATION_CHANNELS = 1000
MIGRATION_LIMIT = 60.0                      # seconds before a migration is reported stuck

# -- failover (bench.failover, bench.workers.failover_node): default node settings ---------

FAILOVER_SEND_EVERY = 0.05   # seconds between a member's sends
FAILOVER_SETTLE = 6.0        # seconds of sending after the failure
FAILOVER_SPARES = 5          # nodes beside the 3 members, the victims among them

# -- ring merge after a partition (bench.merge; its sizes are QUICK/FULL["merge_ns"]) ------

MERGE_RUNS = {16: 3, 64: 3, 256: 2, 1000: 1}   # seeds per N
MERGE_R = 8
MERGE_CHECK = 0.25   # virtual seconds between checks of "one ring"
MERGE_LIMIT = 600.0  # virtual seconds before a run is reported as not merged

# -- signatures and the outbox (bench.signing, bench.outbox) -------------------------------

SIGNING_OPS = 2000   # operations timed per figure
OUTBOX_OPS = 300     # commits, and sends each way

# -- the IRC gateway (python -m bench.irc) -------------------------------------------------

IRC_CHORD = dict(stabilize_interval=0.2, fix_fingers_interval=1.0,
                 check_predecessor_interval=1.0, timeout=3.0)
IRC_STEPS = (1, 2, 5, 10, 25, 50, 100, 200)        # IRC clients of one node, step by step
IRC_MESSAGES, IRC_RATE = 60, 30.0   # per step of the fan-out: 60 messages at 30 per second
IRC_LATENCY_MESSAGES = 200          # --messages: the added-latency comparison
IRC_MAX_CLIENTS = 200               # --max-clients, and its ceiling
IRC_BUDGET = 60.0                   # --budget: seconds for the fan-out, and its ceiling
