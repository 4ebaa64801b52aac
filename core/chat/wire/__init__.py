"""The chat's wire: the verb table (``verbs``: every user command of the overlay, its
payload and replies, served beside called) and how a node calls others (``calls``:
routed requests that follow ``not_owner``/``retry``, direct calls, one back-off).

May import: ``model`` and ``core.chord``; never ``ring``, ``users`` or the service.
"""
