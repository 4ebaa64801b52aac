"""A local user's identity: an ed25519 key kept in its data folder, and canonical signatures.

Everything done in a user's name (name records, joins, leaves, channel messages) is a
dict of JSON values signed by that user's key. The signed bytes are
``b"chordchat/1/" + kind + b"\\n" + canonical JSON``: the kind separates domains, so a
signature made for one kind of record never verifies as another.

The canonical JSON is ``json.dumps(fields, sort_keys=True, separators=(",", ":"),
ensure_ascii=True, allow_nan=False)``: sorted keys, no blanks, every non-ASCII character
escaped (so the bytes are plain ASCII, hence UTF-8, and even a lone surrogate from a
badly decoded terminal encodes). A verifier must hash the fields exactly as received
(``1`` and ``1.0`` differ), never after converting them.

Fingerprint: the SHA-256 of the 32-byte public key, the first 80 bits in lower-case
base32 (RFC 4648: a-z and 2-7, so no 0/O or 1/l to confuse), in 4 groups of 4 joined by
``-``, e.g. ``vq3k-7dxa-mz2p-4hgt``. 80 bits make an accidental match practically
impossible and a made-to-match key cost about 2**80 key generations; people compare it
aloud or by eye, as they do an ssh fingerprint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import stat
from pathlib import Path

import nacl.bindings
import nacl.signing

from core.datadir import DataDirError, write_atomic

KEY_FILE = "identity.key"
KEY_HEADER = "chordchat-ed25519-seed-v1"
DOMAIN = b"chordchat/1/"
KEY_BYTES = 32
SIGNATURE_BYTES = 64
_KIND_RE = re.compile(r"[a-z][a-z0-9_.]{0,31}")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")


class IdentityError(Exception):
    """An identity key file that cannot be read, written or understood (names the file)."""


def canonical(kind: str, fields: dict) -> bytes:
    """The bytes that are signed for a record of ``kind`` with ``fields``.

    Raises:
        ValueError: ``kind`` is not a short lower-case word, or ``fields`` is not a
            dict with string keys of JSON values.
    """
    if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
        raise ValueError(f"not a record kind: {kind!r}")
    if not isinstance(fields, dict) or not all(isinstance(k, str) for k in fields):
        raise ValueError("fields must be a dict with string keys")
    try:
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise ValueError(f"fields are not plain JSON: {e}") from None
    return DOMAIN + kind.encode("ascii") + b"\n" + text.encode("ascii")


def key_bytes(public_key: object) -> bytes | None:
    """A public key as 32 bytes, from bytes or 64 lower-case hex digits; None if neither."""
    if isinstance(public_key, bytes):
        return public_key if len(public_key) == KEY_BYTES else None
    if isinstance(public_key, str) and _HEX64_RE.fullmatch(public_key):
        return bytes.fromhex(public_key)
    return None


def is_key(value: object) -> bool:
    """True for a public key as the wire carries it: 64 lower-case hex digits."""
    return isinstance(value, str) and _HEX64_RE.fullmatch(value) is not None


def fingerprint(public_key: bytes | str) -> str:
    """The short readable name of a public key (see the module docstring).

    Raises:
        ValueError: not a 32-byte key (or its hex).
    """
    raw = key_bytes(public_key)
    if raw is None:
        raise ValueError("not a public key")
    digest = hashlib.sha256(raw).digest()[:10]
    text = base64.b32encode(digest).decode("ascii").lower()
    return "-".join(text[i:i + 4] for i in range(0, 16, 4))


def verify(public_key: object, kind: object, fields: object, signature: object) -> bool:
    """Whether ``signature`` (128 hex digits) is ``public_key``'s over (kind, fields).

    Never raises: any argument may come from a hostile peer (wrong types, bad hex,
    wrong lengths, a point that is not a key) and then the answer is False.
    """
    try:
        raw_key = key_bytes(public_key)
        if raw_key is None or not isinstance(signature, str) or len(signature) != 128:
            return False
        sig = bytes.fromhex(signature)
        message = canonical(kind, fields)  # type: ignore[arg-type]
        nacl.signing.VerifyKey(raw_key).verify(message, sig)
        return True
    except Exception:  # hostile input (ValueError, CryptoError, …) must never crash a handler
        return False


class Identity:
    """One local user's signing key (ed25519), and the nick it speaks for."""

    def __init__(self, seed: bytes, nick: str = "") -> None:
        if not isinstance(seed, bytes) or len(seed) != KEY_BYTES:
            raise ValueError("an ed25519 seed is 32 bytes")
        self.nick = nick
        self._signing = nacl.signing.SigningKey(seed)
        self.public_key: bytes = bytes(self._signing.verify_key)
        self.key: str = self.public_key.hex()
        self.fingerprint: str = fingerprint(self.public_key)
        self._box_secret: bytes | None = None

    def __repr__(self) -> str:
        return f"Identity({self.nick!r}, {self.fingerprint})"

    @classmethod
    def generate(cls, nick: str = "") -> Identity:
        """A new random identity (kept nowhere)."""
        return cls(os.urandom(KEY_BYTES), nick)

    @classmethod
    def load_or_create(cls, user_dir: Path, nick: str | None = None) -> Identity:
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
            identity = cls.generate(nick)
            data = f"{KEY_HEADER} {identity._signing.encode().hex()}\n".encode("ascii")
            try:
                if write_atomic(path, data, replace=False):
                    return identity
            except DataDirError as e:
                raise IdentityError(f"cannot create the identity key: {e}") from None
        return cls.load(path, nick)

    @classmethod
    def load(cls, path: Path, nick: str = "") -> Identity:
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
        return cls(seed, nick)

    def sign(self, kind: str, fields: dict) -> str:
        """This key's signature over (kind, fields), as 128 hex digits.

        Raises:
            ValueError: see ``canonical``.
        """
        return self._signing.sign(canonical(kind, fields)).signature.hex()

    def box_secret(self) -> bytes:
        """The X25519 secret key converted from this ed25519 key (for ``core.chat.sealed``)."""
        if self._box_secret is None:
            _, secret64 = nacl.bindings.crypto_sign_seed_keypair(self._signing.encode())
            self._box_secret = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(secret64)
        return self._box_secret


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
