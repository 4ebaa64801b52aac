"""A user's identity key on disk: ``identity.key`` in the user's folder, one line
``chordchat-ed25519-seed-v1 <64 hex digits>``, mode 0600, created once and never
overwritten."""

from __future__ import annotations

import binascii
import os
import stat
from pathlib import Path

from core.datadir import DataDirError, write_atomic

from ..model.identity import KEY_BYTES, Identity, IdentityError

KEY_FILE = "identity.key"
KEY_HEADER = "chordchat-ed25519-seed-v1"


def load_or_create(user_dir: Path, nick: str | None = None) -> Identity:
    """The identity kept in ``user_dir/identity.key``, made there on first start.

    The key file is created atomically with mode 0600 and never overwritten; if
    another process creates it first, that one is read.

    Args:
        user_dir: the user's folder (``DataDir.user_dir(nick)``).
        nick: the nick as typed; defaults to the folder's name.

    Raises:
        IdentityError: the file cannot be read or written, is open to others, or is
            not an identity key. The message names the file.
    """
    path = Path(user_dir) / KEY_FILE
    nick = Path(user_dir).name if nick is None else nick
    if not path.exists():
        identity = Identity.generate(nick)
        data = f"{KEY_HEADER} {identity.seed().hex()}\n".encode("ascii")
        try:
            if write_atomic(path, data, replace=False):
                return identity
        except DataDirError as e:
            raise IdentityError(f"cannot create the identity key: {e}") from None
    return load(path, nick)

def load(path: Path, nick: str = "") -> Identity:
    """Read an existing key file (see ``load_or_create``)."""
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise IdentityError(f"the identity key {path} is not a file")
            data = f.read(1024)
    except IdentityError:
        raise
    except OSError as e:
        raise IdentityError(f"cannot read the identity key {path}: "
                            f"{e.strerror or e}") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise IdentityError(f"the identity key {path} is open to other users "
                            f"(mode {stat.S_IMODE(info.st_mode):04o}); "
                            f"make it private with: chmod 600 {path}")
    seed = _parse_key_file(data)
    if seed is None:
        raise IdentityError(f"{path} is not a chordchat identity key (expected one line "
                            f"'{KEY_HEADER} <64 hex digits>')")
    return Identity(seed, nick)


def _parse_key_file(data: bytes) -> bytes | None:
    try:
        words = data.decode("ascii").split()
    except UnicodeDecodeError:
        return None
    if len(words) != 2 or words[0] != KEY_HEADER or len(words[1]) != 2 * KEY_BYTES:
        return None
    try:
        return bytes.fromhex(words[1])
    except (ValueError, binascii.Error):
        return None
