"""Helpers the tests share (no tests here): real node processes (procs), hosts in network
namespaces (hosts), free ports (ports), a node's runtime driven from a test (runtime),
messages across processes (delivery), an IRC client (irc), chat nodes on loopback TCP
(clients) and a module's imports read without running it (imports). The doubles of the product
itself ship beside it: core/chord/testing.py and core/chat/testing.py."""
