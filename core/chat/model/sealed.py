"""End-to-end private messages: NaCl crypto_box between the two users' keys.

Each user's ed25519 key converts to an X25519 key (libsodium's
``crypto_sign_ed25519_{pk,sk}_to_curve25519``), so one key signs and receives. A sealed
message is ``crypto_box(inner, nonce, recipient X25519, sender X25519)``: only the
recipient can open it, and opening proves that the holder of the sender's key made it
(crypto_box authenticates both ends). The authenticated ``inner`` plaintext repeats the
sender's nick, the recipient's nick and the message id, and opening checks them against
the envelope and the recipient: a captured message replayed to another recipient, under
another id or as from another nick does not open.

What nodes on the way see (the envelope): sender and recipient nicks, the sender's
public key, the message id, the size. Whether the sender's key is *the* key of that
nick is for the caller to decide (``core.chat.users.pins``; a name record on first contact).
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import time
from dataclasses import dataclass

import nacl.bindings
import nacl.public

from .identity import Identity, is_key, key_bytes

VERSION = 1
PREFIX = b"chordchat/1/private\n"
NONCE_BYTES = 24
MAX_BOX = 1 << 20
_NONCE_RE = re.compile(r"[0-9a-f]{48}")


def box_public(public_key: bytes | str) -> bytes:
    """The X25519 public key of an ed25519 public key.

    Raises:
        ValueError: not a 32-byte key, or not a point that converts.
    """
    raw = key_bytes(public_key)
    if raw is None:
        raise ValueError("not a public key")
    try:
        return nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(raw)
    except Exception as e:  # libsodium refuses small-order and non-canonical points
        raise ValueError(f"not a usable public key: {e}") from None


def seal(sender: Identity, recipient_public_key: bytes | str, plaintext: str, msg_id: str, *,
         to: str, at: float | None = None, action: bool = False) -> dict:
    """Encrypt and authenticate ``plaintext`` from ``sender`` to the user ``to``.

    Args:
        recipient_public_key: ``to``'s ed25519 public key (bytes or hex).
        msg_id: the message id (also in the clear, for acknowledgements and dedup).
        to: the recipient's nick, bound into the authenticated plaintext.
        at: the sender's wall clock in seconds (now if None), bound in too.
        action: an action (``/me``), bound in (only when true: "action": true).

    Returns:
        The envelope, a JSON-able dict: v, from, to, key (the sender's), msg_id, nonce, box.

    Raises:
        ValueError: the recipient key is unusable.
    """
    inner = {"from": sender.nick, "to": to, "msg_id": msg_id, "text": plaintext,
             "at": time.time() if at is None else at}
    if action:
        inner["action"] = True
    message = PREFIX + json.dumps(inner, sort_keys=True, separators=(",", ":")).encode("ascii")
    box = nacl.public.Box(nacl.public.PrivateKey(sender.box_secret()),
                          nacl.public.PublicKey(box_public(recipient_public_key)))
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = box.encrypt(message, nonce).ciphertext
    return {"v": VERSION, "from": sender.nick, "to": to, "key": sender.key, "msg_id": msg_id,
            "nonce": nonce.hex(), "box": base64.b64encode(ciphertext).decode("ascii")}


@dataclass(frozen=True)
class Opened:
    """What a sealed message says inside, authenticated by the sender's key: its text, the
    sender's time (None if absent or not a finite number) and whether it is an action."""
    text: str
    at: float | None = None
    action: bool = False


def open_sealed(recipient: Identity, sender_public_key: bytes | str, sealed: object
                ) -> str | None:
    """The text of ``sealed`` if it opens (``open_letter``), else None."""
    opened = open_letter(recipient, sender_public_key, sealed)
    return None if opened is None else opened.text


def open_letter(recipient: Identity, sender_public_key: bytes | str, sealed: object
                ) -> Opened | None:
    """What ``sealed`` says if it opens for ``recipient`` under ``sender_public_key``.

    None for anything else — another key, a changed byte, a replay to another recipient
    or under another id, or any malformed envelope (hostile input never raises).
    """
    try:
        if not isinstance(sealed, dict) or sealed.get("v") != VERSION:
            return None
        sender, to, msg_id = sealed.get("from"), sealed.get("to"), sealed.get("msg_id")
        nonce, box_text = sealed.get("nonce"), sealed.get("box")
        if not (isinstance(sender, str) and isinstance(to, str) and isinstance(msg_id, str)
                and isinstance(nonce, str) and _NONCE_RE.fullmatch(nonce)
                and isinstance(box_text, str) and len(box_text) <= MAX_BOX):
            return None
        if to.lower() != recipient.nick.lower():
            return None
        ciphertext = base64.b64decode(box_text, validate=True)
        box = nacl.public.Box(nacl.public.PrivateKey(recipient.box_secret()),
                              nacl.public.PublicKey(box_public(sender_public_key)))
        message = box.decrypt(ciphertext, bytes.fromhex(nonce))
        if not message.startswith(PREFIX):
            return None
        inner = json.loads(message[len(PREFIX):])
        if (not isinstance(inner, dict) or inner.get("from") != sender
                or inner.get("to") != to or inner.get("msg_id") != msg_id
                or not isinstance(inner.get("text"), str)):
            return None
        at = inner.get("at")
        if not isinstance(at, int | float) or isinstance(at, bool) or not math.isfinite(at):
            at = None
        return Opened(inner["text"], at, inner.get("action") is True)
    except Exception:  # hostile input (bad base64, CryptoError, …) must never crash a handler
        return None


def claimed_key(sealed: object) -> str | None:
    """The sender key an envelope claims (to look up in the pins), or None if malformed."""
    if isinstance(sealed, dict) and is_key(sealed.get("key")):
        return sealed["key"]
    return None
