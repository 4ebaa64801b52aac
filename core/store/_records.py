"""What the store hands back: rows as named tuples, and the one error it raises."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class StoreError(Exception):
    """The database cannot be used; ``str()`` names the file and says why.

    ``kind``: "locked" (another program holds the database), "in_use" (another chordchat
    process has it), "corrupt", "unwritable", "newer" (made by a newer version), or
    "closed" (used after ``close``).
    ``set_aside``: where a corrupt database was moved, when it was.
    """

    def __init__(self, message: str, path: Path, kind: str, set_aside: Path | None = None):
        super().__init__(message)
        self.path = path
        self.kind = kind
        self.set_aside = set_aside


class Message(NamedTuple):
    conversation: str   # "#channel" or a nick
    msg_id: str
    sender: str
    text: str
    at: float
    outgoing: bool
    state: str          # one of STATES
    action: bool = False   # a ``/me``


class Hit(NamedTuple):
    """A search result: where the line is and what it says."""
    conversation: str
    msg_id: str
    sender: str
    text: str
    at: float


class Conversation(NamedTuple):
    name: str
    last_at: float
    messages: int


class OutboxRow(NamedTuple):
    """An outbox row: a message to (re)send until acknowledged, with its original id."""
    msg_id: str
    kind: str
    destination: str
    payload: dict
    at: float
