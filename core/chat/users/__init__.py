"""The users: the people this node serves (the UI's user, IRC clients), each a
``LocalUser`` (``user``) made of parts — its signing self (``signer``), its claim on a
nick (``claim``), its channels as a member (``memberships``), private messages
(``private``), its database (``database``: outbox, history, mailbox receipts), pinned
keys (``pins``), who vouches for a key (``vouching``), its keys and lock on disk
(``keyring``, ``keyfile``) and one queue per destination (``lanes``).

May import: ``ring``, ``wire``, ``model``, ``core.chord``, ``core.store``,
``core.events`` and ``core.datadir``; never the service above it.
"""
