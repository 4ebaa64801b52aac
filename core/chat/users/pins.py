"""Keys pinned on first contact (trust on first use, as ssh's known_hosts).

The first key seen for a nick is pinned; a later different key is "changed" — a warning
naming the nick and both fingerprints — until the user runs ``trust <nick>``. The pins
live in ``pins.json`` in the user's folder (mode 0600, replaced atomically); the store
may later keep them in its database behind this same small interface.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

from core.datadir import DataDirError, valid_nick, write_atomic

from ..model.identity import is_key, key_bytes

PINS_FILE = "pins.json"
VERSION = 1

Status = Literal["new", "same", "changed"]


class PinsError(Exception):
    """A pins file that cannot be read, written or understood (names the file)."""


def _hex(key: bytes | str) -> str:
    raw = key_bytes(key)
    if raw is None:
        raise ValueError("not a public key (32 bytes or 64 lower-case hex digits)")
    return raw.hex()


def _name(nick: str) -> str:
    if not valid_nick(nick):
        raise ValueError(f"not a valid nick: {nick!r}")
    return nick.lower()


class Pins:
    """The pinned key of each nick this user has met, kept in one JSON file."""

    def __init__(self, path: Path) -> None:
        """Load the pins at ``path`` (none if the file does not exist yet).

        Raises:
            PinsError: the file cannot be read or is not a pins file.
        """
        self.path = Path(path)
        self._pins: dict[str, dict] = self._load()

    @classmethod
    def in_dir(cls, user_dir: Path) -> Pins:
        return cls(Path(user_dir) / PINS_FILE)

    def check(self, nick: str, key: bytes | str) -> Status:
        """Whether ``key`` is ``nick``'s pinned key ("same"), another ("changed") or the first."""
        pinned = self._pins.get(_name(nick))
        if pinned is None:
            return "new"
        return "same" if pinned["key"] == _hex(key) else "changed"

    def get(self, nick: str) -> str | None:
        """``nick``'s pinned key (hex), or None."""
        pinned = self._pins.get(_name(nick))
        return None if pinned is None else pinned["key"]

    def pin(self, nick: str, key: bytes | str) -> Status:
        """Pin ``key`` if ``nick`` has no pin yet; a different pinned key is left as it is.

        Returns:
            What ``check`` said before: "new" (now pinned), "same" or "changed".
        """
        status = self.check(nick, key)
        if status == "new":
            self._set(nick, key)
        return status

    def trust(self, nick: str, key: bytes | str) -> None:
        """Pin ``key`` for ``nick`` in place of any other (the user accepted the change)."""
        if self.check(nick, key) != "same":
            self._set(nick, key)

    def nicks(self) -> list[str]:
        """The nicks with a pin, as last seen typed."""
        return sorted(p["nick"] for p in self._pins.values())

    def keys(self) -> list[str]:
        """The pinned keys (hex), one each: whom this user has exchanged keys with."""
        return sorted({p["key"] for p in self._pins.values()})

    def __len__(self) -> int:
        return len(self._pins)

    # -- the file ----------------------------------------------------------------------

    def _set(self, nick: str, key: bytes | str) -> None:
        pins = dict(self._pins)
        pins[_name(nick)] = {"nick": nick, "key": _hex(key), "since": time.time()}
        self._save(pins)
        self._pins = pins

    def _save(self, pins: dict[str, dict]) -> None:
        data = json.dumps({"version": VERSION, "pins": pins}, indent=1, sort_keys=True)
        try:
            write_atomic(self.path, data.encode("utf-8") + b"\n")
        except DataDirError as e:
            raise PinsError(f"cannot save the pinned keys: {e}") from None

    def _load(self) -> dict[str, dict]:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as e:
            raise PinsError(f"cannot read the pinned keys {self.path}: {e}") from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError(f"not version {VERSION}")
            pins = data["pins"]
            if not isinstance(pins, dict):
                raise ValueError("'pins' is not an object")
            for name, pin in pins.items():
                if (not isinstance(pin, dict) or not valid_nick(pin.get("nick"))
                        or pin["nick"].lower() != name or not is_key(pin.get("key"))):
                    raise ValueError(f"bad entry for {name!r}")
            return pins
        except (ValueError, KeyError) as e:
            raise PinsError(f"{self.path} is not a pinned-keys file ({e}); move it aside to "
                            f"start over (every key will then be new again)") from None
