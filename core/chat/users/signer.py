"""Who a local user is on the ring (nick, key, the node serving it) and what it signs.

One ``Signer`` per ``LocalUser``, handed to each of its parts; a ``ChatError`` when an
entry cannot be signed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.chord import Local
from core.chord.ids import hex_id

from ..model.entries import EntryError, SignedEntry, sign_entry
from ..model.errors import ChatError
from ..model.identity import Identity
from ..model.ids import new_id


@dataclass(frozen=True)
class Signer:
    """A local user's name and key; ``stamp`` is the wall clock (seconds) it signs with."""
    nick: str
    identity: Identity
    node: Local
    stamp: Callable[[], float]

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

    def sign(self, channel: str, kind: str, text: str = "",
             msg_id: str | None = None, action: bool = False) -> SignedEntry:
        """A channel entry (join, leave, msg; a msg may be an action) signed in the user's
        name."""
        try:
            return sign_entry(self.identity, channel, kind, msg_id or new_id(),
                              address=self.address, text=text, at=self.stamp(),
                              action=action)
        except EntryError as e:
            raise ChatError(f"cannot sign the {kind}: {e}") from None

