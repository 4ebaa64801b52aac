"""The benchmarks' worker processes, each run as ``python -m bench.workers.NAME`` by the
benchmark that needs it (never by hand): chat members (bench.chat), one failover node
(bench.failover), the footprint's node (bench.footprint), IRC clients (bench.irc)."""
