"""What the chat benchmark (``bench.chat``) and its member processes share: how a
message's text carries its phase and send time, and the signed entry a second check is
timed on."""

from __future__ import annotations


def stamped(phase: str, sent: float, i: int) -> str:
    """The text of message ``i`` of ``phase``, sent at ``sent`` (``time.time()``)."""
    return f"{phase} {sent!r} message {i}"


def sent_at(text: str, phase: str | None) -> float | None:
    """The send time a message of ``phase`` carries; None for any other text."""
    words = text.split(" ", 2)
    return float(words[1]) if words[0] == phase else None


def sample_entry():
    """A signed channel message of a bench message's size: what a member checks per
    delivery once channel entries carry signatures (core/chat/model/entries.py)."""
    from core.chat.model.entries import sign_entry
    from core.chat.model.identity import Identity
    return sign_entry(Identity.generate("bench"), "fanout", "msg", "0" * 32,
                      address="127.0.0.1:40000", text="tput 1764000000.123456 message 1000")
