"""The chat's pure model: rules and data, no I/O, no asyncio, no network.

Owns: ids and ring keys (``ids``), signatures (``identity``) and sealed boxes
(``sealed``), signed channel entries (``entries``) and name records (``records``),
a channel's members and log (``channel``), offline mail (``mailbox``), the item
registry (``items``), what a node holds for the ring (``holdings``), the one command
parser (``commands``), what chat text may contain (``text``) and the errors users see (``errors``).

May import: the standard library, PyNaCl, ``core.chord.ids`` and ``core.datadir``'s
nick rule; never ``wire``, ``ring``, ``users`` or the service above it.
"""
