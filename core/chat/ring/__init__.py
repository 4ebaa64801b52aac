"""The ring side: what a node does for the ring keys it owns or replicates — name
records (``names``), channels at their maintainer (``channels``), mailboxes
(``mailboxes``), delivery to members (``feeds``), replication to the successors
(``replication``), migration to a new owner (``migration``), taking over a changed
range (``takeover``) and the ring log the front ends see (``journal``).

May import: ``wire``, ``model``, ``core.chord`` and ``core.events``; never ``users`` or
the service.
"""
