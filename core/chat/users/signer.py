"""Who a local user is on the ring (nick, key, the node serving it) and what it signs.

One ``Signer`` per ``LocalUser``, handed to each of its parts; a ``ChatError`` when an
entry cannot be signed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.chord import Local
from core.chord.ids import hex_id

from ..model.entries import EntryError, SignedEntry, sign_entry
from ..model.errors import ChatError
from ..model.identity import Identity
from ..model.ids import new_id


def new_series() -> str:
    return new_id()[:16]


@dataclass(frozen=True)
class Signer:
    """A local user's name and key; ``stamp`` is the wall clock (seconds) it signs with.

    ``series`` and ``counts``: its messages to each channel are numbered 1, 2, … in a
    series drawn once per session (entries.py: a restart starts a fresh series, so the
    counter is never persisted and never reused)."""
    nick: str
    identity: Identity
    node: Local
    stamp: Callable[[], float]
    series: str = field(default_factory=new_series)
    counts: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def address(self) -> str:
        return str(self.node.address)

    @property
    def id_hex(self) -> str:
        return hex_id(self.node.id)

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    def is_me(self, nick: str) -> bool:
        return nick.lower() == self.nick.lower()

    def wall_ms(self) -> int:
        return int(self.stamp() * 1000)

    def sign(self, channel: str, kind: str, text: str = "", msg_id: str | None = None,
             count: tuple[str, int] | None = None, action: bool = False) -> SignedEntry:
        """A channel entry (join, leave, msg; a msg may be an action) signed in the user's
        name; ``count`` is a message's (series, n) (``next_count``)."""
        try:
            return sign_entry(self.identity, channel, kind, msg_id or new_id(),
                              address=self.address, text=text, at=self.stamp(), count=count,
                              action=action)
        except EntryError as e:
            raise ChatError(f"cannot sign the {kind}: {e}") from None

    def next_count(self, channel: str) -> tuple[str, int]:
        """(series, n) for the user's next message to ``channel``: taken once per message
        (when it is accepted), so a resend keeps its number."""
        n = self.counts[channel] = self.counts.get(channel, 0) + 1
        return self.series, n

