"""The ring log pane: ring changes and migration steps, each with its time, newest last.
It follows the newest line unless scrolled back, like a conversation."""

from __future__ import annotations

from .conversation import ConversationPane, MessageLine, MessageList


class LogPane(ConversationPane):
    """One titled MessageList that keeps at most ``limit`` lines."""

    def __init__(self, title: str = "ring log", more_key: str = "PgDn",
                 limit: int = 2000) -> None:
        super().__init__(more_key)
        self.show(MessageList(limit), title)

    def add(self, prefix, markup) -> None:
        """Append a line: ``prefix`` (its time) stays to the left of the wrapped text."""
        self.messages.append(MessageLine(prefix, markup))
        self.refresh_marker()

    def scroll(self, key: str) -> None:
        """Page back ("page up") or forward ("page down"); at the end it follows again."""
        self.messages.scroll(key)
        self.refresh_marker()

    def texts(self) -> list[str]:
        return self.messages.texts()
