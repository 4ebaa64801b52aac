"""A local user's keys from the data directory: its process lock, identity and pinned keys.

``open_user`` takes the user's lock first (a second process for the same nick and data
directory is refused), then loads or makes ``identity.key`` and reads ``pins.json``. Every
failure is a ``KeysError`` naming the file; the runtime turns it into exit code 2.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.datadir import DataDir, DataDirError, UserLock

from ..model.errors import ChatError
from ..model.identity import Identity, IdentityError
from . import keyfile
from .pins import Pins, PinsError


class KeysError(ChatError):
    """The user's folder, lock, key or pins cannot be used (the message names the file)."""


@dataclass
class UserKeys:
    """What a local user signs with and whom it has pinned, held while it is served."""
    identity: Identity
    pins: Pins
    lock: UserLock | None = None
    scratch: Path | None = None     # an ephemeral user's folder, removed on release

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


def open_user(data_dir: DataDir, nick: str) -> UserKeys:
    """Lock ``nick``'s folder in ``data_dir`` and load (or make) its identity and pins.

    Raises:
        KeysError: another process serves the nick from this data directory, or a file
            cannot be read, written or understood.
    """
    lock = None
    try:
        lock = data_dir.lock(nick)
        folder = data_dir.user_dir(nick)
        return UserKeys(keyfile.load_or_create(folder, nick), Pins.in_dir(folder), lock)
    except (DataDirError, IdentityError, PinsError, ValueError) as e:
        if lock is not None:
            lock.release()
        raise KeysError(str(e)) from None


def ephemeral(nick: str) -> UserKeys:
    """A fresh identity kept nowhere, pins in a private scratch folder (a node embedded
    without a data directory: benchmarks)."""
    folder = Path(tempfile.mkdtemp(prefix="chordchat-"))
    return UserKeys(Identity.generate(nick), Pins.in_dir(folder), None, folder)
