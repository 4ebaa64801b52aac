"""The conversations the side pane lists: home, channels and private chats, with unread
counts and mention marks. Pure data: the widgets render it, the app changes it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HOME = "*"  # the id of the home conversation


def channel_conversation_id(name: str) -> str:
    """The id of a channel's conversation: "#" and the name in lower case (as the core
    compares names), whether or not ``name`` starts with "#"."""
    return "#" + name.lstrip("#").lower()


def private_conversation_id(nick: str) -> str:
    """The id of the private conversation with ``nick``: "@" and the nick in lower case."""
    return "@" + nick.lower()


@dataclass
class Conversation:
    id: str              # HOME, channel_conversation_id or private_conversation_id
    title: str           # as shown: "chordchat", "#general", "bob"; where a line typed
    #                      in a channel or private conversation goes (commands.parse)
    kind: str            # "home", "channel" or "private"
    unread: int = 0
    mention: bool = False
    joined: bool = True  # channels: whether the user is a member (Joined, not yet Left)
    members: set[str] = field(default_factory=set)
    opened_from: str | None = None   # the conversation shown when a line of ours opened it


class Conversations:
    """The ordered list of conversations and which one is shown."""

    def __init__(self, home_title: str = "chordchat") -> None:
        self.items: list[Conversation] = [Conversation(HOME, home_title, "home")]
        self.current = 0

    @property
    def shown(self) -> Conversation:
        return self.items[self.current]

    def get(self, conversation_id: str) -> Conversation | None:
        return next((c for c in self.items if c.id == conversation_id), None)

    def channel(self, name: str) -> Conversation:
        """The conversation of a channel, opened (at the end) if new."""
        conversation_id = channel_conversation_id(name)
        return self.get(conversation_id) or self._open(
            Conversation(conversation_id, "#" + name.lstrip("#"), "channel", joined=False))

    def private(self, nick: str) -> Conversation:
        """The private conversation with ``nick``, opened if new."""
        conversation_id = private_conversation_id(nick)
        return self.get(conversation_id) or self._open(
            Conversation(conversation_id, nick, "private"))

    def named(self, name: str) -> Conversation:
        """The conversation a core event names: "#channel", else a nick (or "@id")."""
        return self.channel(name[1:]) if name.startswith("#") else self.private(name)

    def close(self, conversation_id: str) -> None:
        """Take a conversation away (not home); show the one it was opened from, if still
        there, else the one before it."""
        conv = self.get(conversation_id)
        if conv is None or conv.kind == "home":
            return
        shown = self.shown
        index = self.items.index(conv)
        self.items.remove(conv)
        if shown is conv:
            back = self.get(conv.opened_from or "")
            self.select(self.items.index(back) if back is not None else index - 1)
        else:
            self.current = self.items.index(shown)

    def _open(self, conv: Conversation) -> Conversation:
        self.items.append(conv)
        return conv

    def select(self, index: int) -> bool:
        """Show conversation ``index``; it counts as read. False if there is none there."""
        if not 0 <= index < len(self.items):
            return False
        self.current = index
        conv = self.items[index]
        conv.unread, conv.mention = 0, False
        return True

    def select_id(self, conversation_id: str) -> bool:
        conv = self.get(conversation_id)
        return conv is not None and self.select(self.items.index(conv))

    def step(self, delta: int) -> None:
        """Show the next (+1) or previous (-1) conversation, wrapping around."""
        self.select((self.current + delta) % len(self.items))

    def arrived(self, conv: Conversation, mention: bool) -> None:
        """A message arrived in ``conv``: unread unless shown; a mention marks it."""
        if conv is not self.shown:
            conv.unread += 1
            conv.mention = conv.mention or mention

    def channels(self) -> list[str]:
        return [c.title.lstrip("#") for c in self.items if c.kind == "channel"]


def mention_spans(text: str, nick: str) -> list[tuple[int, int]]:
    """Where ``text`` names ``nick`` as a word: (start, end) of each occurrence, in order.

    Nicks compare case-insensitively; "malice" does not name alice, "alice:" does.
    """
    if not nick:
        return []
    pattern = r"(?<![A-Za-z0-9_-])" + re.escape(nick) + r"(?![A-Za-z0-9_-])"
    return [m.span() for m in re.finditer(pattern, text, re.IGNORECASE)]
