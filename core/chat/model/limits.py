"""Every limit on what a stranger can make a node keep or send, in one place.

Anyone who reaches a node can send it any frame (docs/security.md), so whatever a node
keeps for others or sends on their behalf is bounded here and checked by the node that
keeps it (the maintainer, on receipt), not only by the sender's UI. docs/security.md
says, verb by verb, which limit bounds what.

The numbers keep the largest item inside one 1 MiB frame (``core.chord.wire.MAX_FRAME``):
a channel of ``members`` worst-case joins (about 500 bytes each once the address is the
sender's own) plus its log (300 entries, 150,000 characters of text) is under 1 MiB, and
a mailbox holds at most ``mailbox_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """The limits a node enforces on what others ask it to keep or send."""

    # -- fields (characters; nick 1-32 and channel 1-50 are also the shape rules) --------
    text: int = 4000
    """A channel message's text (as the UI allows)."""
    note: int = 64
    """The text of a join (it says nothing)."""
    reason: int = 306
    """The text of a leave: ``left`` or ``exit``, or either with ``: `` and up to 300
    characters of the user's words (an IRC QUIT message; ``ring.channels.good_reason``)."""
    topic: int = 300
    """A channel's topic (``entries.MAX_TOPIC``, as the UI allows)."""
    nick: int = 32
    """A nick (``core.datadir.valid_nick``)."""
    channel: int = 50
    """A channel's canonical name (``entries.CHANNEL_RE``)."""
    address: int = 100
    """A member's or a name record's node address, ``host:port``."""
    msg_id: int = 64
    """A message id (a uuid4 is 32 hex digits)."""

    # -- how much one key or one address may hold at one maintainer --------------------------
    members: int = 1000
    """Present members of one channel; a join beyond is refused ``full``."""
    channels_per_key: int = 100
    """Channels of this maintainer one key may be a member of."""
    channels_per_address: int = 500
    """Channels of this maintainer the users of one node address may be members of."""
    records_per_key: int = 4
    """Name records this maintainer keeps under one key."""
    records_per_address: int = 64
    """Name records this maintainer keeps naming one node address."""

    # -- mailboxes (per recipient nick) ----------------------------------------------------
    letter_bytes: int = 256_000
    """One letter, everything included (its JSON as stored and sent on)."""
    mailbox_bytes: int = 640_000
    """All letters waiting for one nick (a mailbox travels in one frame)."""
    mailbox_letters: int = 300
    """Letters waiting for one nick, from everyone."""
    letters_per_sender: int = 50
    """Letters waiting from one sender key the recipient vouched for (a friend)."""
    letters_per_stranger: int = 5
    """Letters waiting from one key the recipient did not vouch for."""
    stranger_letters: int = 100
    """Letters waiting from all strangers together: they never crowd out a friend."""
    stranger_bytes: int = 256_000
    """Bytes of letters waiting from all strangers together."""
    friends: int = 1000
    """Keys a recipient may vouch for at its mailbox."""
    mailbox_age: float = 14 * 86400.0
    """Seconds a letter (and the tombstone of a taken one) is kept."""

    # -- traffic per peer host (``core.chat.wire.rate``) ------------------------------------
    requests_per_second: float = 500.0
    """Chat requests one peer host may make per second, sustained ..."""
    request_burst: float = 2000.0
    """... and at once."""
    bytes_per_second: float = 4_000_000.0
    """Payload bytes one peer host may send per second, sustained ..."""
    byte_burst: float = 8_000_000.0
    """... and at once."""
    claims_per_second: float = 2.0
    """Name claims (``chat.name.set``) one peer host may make per second, sustained ..."""
    claim_burst: float = 40.0
    """... and at once."""


MODE_TEXT = 1400   # a mode entry's changes: 12 at most (``modes.MAX_CHANGES``), masks of 100


# -- the field checks a keeper makes on receipt (pure; ``None``: within the limits) --------

def entry_excess(entry, limits: Limits) -> str | None:
    """What of a signed channel entry (``entries.SignedEntry``) is over ``limits``."""
    text_limit = {"msg": limits.text, "leave": limits.reason, "kick": limits.reason + 65,
                  "mode": MODE_TEXT, "topic": limits.topic}.get(entry.kind, limits.note)
    for name, value, most in (("text", entry.text, text_limit),
                              ("nick", entry.nick, limits.nick),
                              ("channel", entry.channel, limits.channel),
                              ("address", entry.address, limits.address),
                              ("msg_id", entry.msg_id, limits.msg_id)):
        if len(value) > most:
            return f"the {name} of a {entry.kind} has {len(value)} characters (at most {most})"
    return None


def record_excess(record, limits: Limits) -> str | None:
    """What of a signed name record (``records.NameRecord``) is over ``limits``."""
    for name, value, most in (("nick", record.nick, limits.nick),
                              ("address", record.address, limits.address)):
        if len(value) > most:
            return f"the {name} of a name record has {len(value)} characters (at most {most})"
    return None


DEFAULT = Limits()
"""The limits a node keeps unless told otherwise (``Settings.limits``)."""
