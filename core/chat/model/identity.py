"""A user's identity: an ed25519 key, and canonical signatures (the key file is ``users.keyfile``).

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
import hashlib
import json
import os
import re

import nacl.bindings
import nacl.signing

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

    def sign(self, kind: str, fields: dict) -> str:
        """This key's signature over (kind, fields), as 128 hex digits.

        Raises:
            ValueError: see ``canonical``.
        """
        return self._signing.sign(canonical(kind, fields)).signature.hex()

    def seed(self) -> bytes:
        """The 32-byte secret seed (for the key file, ``users.keyfile``)."""
        return self._signing.encode()

    def box_secret(self) -> bytes:
        """The X25519 secret key converted from this ed25519 key (for ``model.sealed``)."""
        if self._box_secret is None:
            _, secret64 = nacl.bindings.crypto_sign_seed_keypair(self._signing.encode())
            self._box_secret = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(secret64)
        return self._box_secret

