"""The user's own lines, shown the moment Enter sends them, until the core has them.

The core shows a typed line as pending (``Pending``) once it is on disk: a front end's own
command typed after it (help, bell, search) or a quicker answer to another command could be
shown above it. So the UI shows the line at once, in the order typed, and the ``Pending``
that follows gives that line its msg_id instead of adding another. A line whose command
ends without its ``Pending`` (refused by the core) is marked not sent.

Pure bookkeeping: the app shows and marks the lines, on the UI thread.
"""

from __future__ import annotations

import concurrent.futures
from typing import Generic, TypeVar

Line = TypeVar("Line")


class Echoes(Generic[Line]):
    """Lines waiting for their ``Pending``, by conversation id, oldest first."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[tuple[str, Line]]] = {}
        self._by_future: dict[concurrent.futures.Future, tuple[str, str, Line]] = {}

    def add(self, conversation_id: str, text: str, line: Line) -> None:
        self._waiting.setdefault(conversation_id, []).append((text, line))

    def sent_by(self, future: concurrent.futures.Future, conversation_id: str, text: str,
                line: Line) -> None:
        """``future`` is the command that sends ``line``: ``settled`` asks about it."""
        self._by_future[future] = (conversation_id, text, line)

    def claim(self, conversation_id: str, text: str) -> Line | None:
        """The oldest waiting line of ``text`` in the conversation (no longer waiting), or
        None: the ``Pending`` of a line this UI did not show (another run's, a script's)."""
        waiting = self._waiting.get(conversation_id, [])
        for i, (waiting_text, line) in enumerate(waiting):
            if waiting_text == text:
                del waiting[i]
                return line
        return None

    def settled(self, future: concurrent.futures.Future) -> Line | None:
        """The command ``future`` ended: its line if it is still waiting (never sent)."""
        found = self._by_future.pop(future, None)
        if found is None:
            return None
        conversation_id, text, line = found
        waiting = self._waiting.get(conversation_id, [])
        for i, (_, waiting_line) in enumerate(waiting):
            if waiting_line is line:
                del waiting[i]
                return line
        return None
