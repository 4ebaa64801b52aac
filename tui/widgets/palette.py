"""Colours: the palette of display attributes and a stable colour for every nick."""

from __future__ import annotations

import zlib

NICK_COLOURS = ("light red", "light green", "yellow", "light blue", "light magenta",
                "light cyan", "dark red", "dark green", "brown", "dark blue", "dark magenta",
                "dark cyan")

PALETTE = [
    ("time", "dark gray", ""),
    ("notice", "dark cyan", ""),
    ("info", "", ""),
    ("error", "light red", ""),
    ("unverified", "black", "light red"),
    ("own", "white", ""),
    ("mention", "black", "yellow"),
    ("history", "dark gray", ""),
    ("more", "black", "yellow"),
    ("popup", "", ""),
    ("title", "black", "light gray"),
    ("status", "white", "dark blue"),
    ("status key", "yellow", "dark blue"),
    ("side", "", ""),
    ("side current", "black", "light gray"),
    ("side unread", "white,bold", ""),
    ("side mention", "light red,bold", ""),
    ("side left", "dark gray", ""),
    ("divider", "dark gray", ""),
    ("log", "", ""),
    ("log time", "dark gray", ""),
    ("log migration", "light magenta", ""),
    ("log ring", "light cyan", ""),
    ("log error", "light red", ""),
    ("log migration tag", "black", "light magenta"),  # a tag before the line stands out
    ("log error tag", "white", "dark red"),
    ("prompt", "light green", ""),
] + [(f"nick {i}", colour, "") for i, colour in enumerate(NICK_COLOURS)]


def nick_attr(nick: str) -> str:
    """The display attribute of ``nick``: the same in every run and on every machine."""
    # crc32 rather than hash(): str hashes are salted per process
    return f"nick {zlib.crc32(nick.lower().encode('utf-8')) % len(NICK_COLOURS)}"
