"""Input history: Up/Down walk back and forth through earlier lines, keeping the draft."""

from __future__ import annotations


class InputHistory:
    """Lines the user entered, oldest first; a walk starts from the line being typed."""

    def __init__(self, limit: int = 500) -> None:
        self.limit = limit
        self._lines: list[str] = []
        self._pos: int | None = None  # index into _lines while walking, else None
        self._draft = ""

    def add(self, line: str) -> None:
        """Remember an entered line (blank lines and repeats of the last one are not kept)."""
        self._pos = None
        if line.strip() and (not self._lines or self._lines[-1] != line):
            self._lines.append(line)
            del self._lines[:-self.limit]

    def older(self, current: str) -> str | None:
        """The line before the one shown, or None at the oldest (or with no history)."""
        if not self._lines or self._pos == 0:
            return None
        if self._pos is None:
            self._draft = current
            self._pos = len(self._lines)
        self._pos -= 1
        return self._lines[self._pos]

    def newer(self, current: str) -> str | None:
        """The line after the one shown; past the newest, the draft typed before the walk."""
        if self._pos is None:
            return None
        self._pos += 1
        if self._pos >= len(self._lines):
            self._pos = None
            return self._draft
        return self._lines[self._pos]
