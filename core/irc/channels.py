"""The channels of one IRC client as it knows them: pure state, no replies.

Members are kept by lower-case nick with the nick as shown (CASEMAPPING=ascii, as the chat
compares nicks). A join or a part is under way from the command until the chat's event
says it is done; ``&ring`` is this node's own channel, joined and left without the ring.
"""

from __future__ import annotations

from core import events as ev
from core.chat.model.commands import CommandError, channel_name

BACKLOG = 500            # replayed lines held for a channel until its JOIN is shown
BACKLOG_CHANNELS = 100
RING_CHANNEL = "&ring"   # this node's ring changes and migration steps, as channel messages


def chat_channel(name: str) -> str | None:
    """The chat's name of the IRC channel ``name`` ('#' and a valid name), else None."""
    if not name.startswith("#"):
        return None
    try:
        return channel_name(name)
    except CommandError:
        return None


def is_ring(name: str) -> bool:
    return name.lower() == RING_CHANNEL


class Channels:
    """Which channels a client is in, their members, and the joins and parts under way."""

    def __init__(self) -> None:
        self.members: dict[str, dict[str, str]] = {}   # channel -> lower nick -> nick
        self.joining: set[str] = set()
        self.parting: dict[str, str] = {}              # channel -> the PART's reason
        self.in_ring = False
        self.topics: dict[str, tuple[str, str, float]] = {}   # channel -> text, setter, at
        self.modes: dict[str, ev.Modes] = {}     # channel -> its operators and modes
        self._backlog: dict[str, list] = {}        # channel -> replayed lines before JOIN

    def keep_backlog(self, channel: str, message) -> None:
        """A replayed line of a channel being joined, shown after its JOIN (at most 500)."""
        if channel not in self._backlog and len(self._backlog) >= BACKLOG_CHANNELS:
            return
        lines = self._backlog.setdefault(channel, [])
        if len(lines) < BACKLOG:
            lines.append(message)

    def take_backlog(self, channel: str) -> list:
        return self._backlog.pop(channel, [])

    def forget_member(self, nick: str) -> None:
        """``nick`` quit: gone from every channel."""
        for members in self.members.values():
            members.pop(nick.lower(), None)

    def __contains__(self, channel: str) -> bool:
        return channel in self.members

    def join(self, channel: str) -> bool:
        """A join begins; False if the channel is joined or being joined already."""
        if channel in self.members or channel in self.joining:
            return False
        self.joining.add(channel)
        return True

    def join_ring(self) -> bool:
        """The client joins ``&ring``; False if it is in it already."""
        joining, self.in_ring = not self.in_ring, True
        return joining

    def part_ring(self) -> bool:
        """The client leaves ``&ring``; False if it was not in it."""
        parting, self.in_ring = self.in_ring, False
        return parting

    def joined(self, channel: str, members: tuple[str, ...], me: str) -> list[str]:
        """The chat joined ``channel``: its members, ``me`` among them once."""
        self.joining.discard(channel)
        known = {m.lower(): m for m in members}
        known[me.lower()] = me
        self.members[channel] = known
        return list(known.values())

    def part(self, channel: str, reason: str) -> bool:
        """A part begins, with the reason to show when it is done; False if not in it."""
        if channel not in self.members:
            return False
        self.parting[channel] = reason
        return True

    def left(self, channel: str) -> str | None:
        """The chat left ``channel``: the PART's reason ('' if none), None if not in it."""
        if self.members.pop(channel, None) is None:
            return None
        self.topics.pop(channel, None)
        self.modes.pop(channel, None)
        return self.parting.pop(channel, "")

    def join_failed(self, channel: str) -> None:
        self.joining.discard(channel)
        self._backlog.pop(channel, None)

    def part_failed(self, channel: str) -> None:
        self.parting.pop(channel, None)

    def add_member(self, channel: str, nick: str) -> bool:
        """``nick`` joined ``channel``; False if the client is not in it or knew already."""
        members = self.members.get(channel)
        if members is None or nick.lower() in members:
            return False
        members[nick.lower()] = nick
        return True

    def remove_member(self, channel: str, nick: str) -> bool:
        """``nick`` left ``channel``; False if the client is not in it or did not know."""
        members = self.members.get(channel)
        if members is None or nick.lower() not in members:
            return False
        del members[nick.lower()]
        return True

    def names(self, channel: str) -> list[str]:
        return list(self.members[channel].values())

    def prefixes(self, channel: str) -> dict[str, str]:
        """lower nick -> "@", "+" or "@+": the operators and voiced members of ``channel``."""
        modes = self.modes.get(channel)
        if modes is None:
            return {}
        marks: dict[str, str] = {}
        for nick in modes.ops:
            marks[nick.lower()] = "@"
        for nick in modes.voiced:
            marks[nick.lower()] = marks.get(nick.lower(), "") + "+"
        return marks

    def is_op(self, channel: str, nick: str) -> bool:
        return "@" in self.prefixes(channel).get(nick.lower(), "")

    def secret(self, channel: str) -> bool:
        modes = self.modes.get(channel)
        return modes is not None and "s" in modes.modes

    def member(self, nick: str) -> str | None:
        """``nick`` as shown, if it shares a channel with the client."""
        for members in self.members.values():
            if nick.lower() in members:
                return members[nick.lower()]
        return None

    def shared(self, nick: str) -> list[str]:
        """The channels (as IRC names) ``nick`` shares with the client."""
        return [f"#{c}" for c, members in self.members.items() if nick.lower() in members]
