"""Where the user stopped reading each conversation, kept across restarts: its unread count
and mention mark, and a line at the last message read ("── unread ──" after it).

The file (``ui-read.json`` in the user's folder of the data dir) is read and written on a
thread of its own, never the UI's: ``ReadMarksFile.load`` posts a ``ReadMarksLoaded`` event
through the bridge, and ``save`` hands a copy to the writer. Nothing is written before the
file has been read, so a quick restart never loses the marks.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import urwid

from core.datadir import write_atomic

if TYPE_CHECKING:
    from tui.conversation_view import ConversationView
    from tui.conversations import Conversation, Conversations

log = logging.getLogger(__name__)

UNREAD_LINE = "── unread ──"


@dataclass(frozen=True)
class ReadMarksLoaded:
    """The marks read from the file (posted by the reader thread)."""
    marks: dict


class ReadMarksFile:
    """Reads and writes the marks on one worker thread; ``path`` None keeps nothing."""

    def __init__(self, path: Path | None, post: Callable[[object], None]) -> None:
        self.path = path
        self._post = post
        self._worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ui-read-marks")

    def load(self) -> concurrent.futures.Future:
        return self._worker.submit(self._load)

    def _load(self) -> None:
        marks: dict = {}
        if self.path is not None:
            try:
                marks = json.loads(self.path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                pass
            except (OSError, ValueError) as e:
                log.warning("could not read the read marks %s: %s", self.path, e)
        self._post(ReadMarksLoaded(marks if isinstance(marks, dict) else {}))

    def save(self, marks: dict) -> None:
        if self.path is not None:
            data = json.dumps(marks, sort_keys=True).encode()
            self._worker.submit(self._write, data)

    def _write(self, data: bytes) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, data)
        except Exception as e:  # noqa: BLE001 - a lost mark is logged, never raised
            log.warning("could not write the read marks %s: %s", self.path, e)

    def close(self) -> None:
        self._worker.shutdown(wait=True)


class ReadMarks:
    """The marks on the UI thread: restored into the conversations, noted as they change."""

    def __init__(self, conversations: Conversations, view: ConversationView,
                 save: Callable[[dict], None]) -> None:
        self.conversations = conversations
        self.view = view
        self._save = save
        self.marks: dict[str, dict] | None = None   # None: not read yet
        self._applied: set[str] = set()

    def loaded(self, marks: dict) -> None:
        self.marks = {k: v for k, v in marks.items() if isinstance(v, dict)}
        for conv in self.conversations.items:
            self.restore(conv)

    def restore(self, conv: Conversation) -> None:
        """Once per conversation, when its earlier lines are shown: the unread count since
        the mark (or the one kept), and the unread line after the last line read."""
        mark = (self.marks or {}).get(conv.id)
        if mark is None or conv.id in self._applied:
            return
        self._applied.add(conv.id)
        messages = self.view.messages(conv.id)
        position = messages.find(str(mark.get("read", ""))) if mark.get("read") else None
        if position is not None:
            after = [w for w in list(messages.body)[position + 1:]
                     if getattr(w, "msg_id", None) and not self.view.is_own(w.msg_id)]
            if after:
                messages.body.insert(position + 1, urwid.Text(("notice", UNREAD_LINE)))
            unread = len(after)
        else:
            unread = int(mark.get("unread", 0) or 0)
        if conv is not self.conversations.shown:
            conv.unread = max(conv.unread, unread)
            conv.mention = conv.mention or bool(mark.get("mention"))

    def update(self) -> None:
        """After each batch of events or key: note the shown conversation as read up to its
        newest line, the others' counts; save if anything changed."""
        if self.marks is None:
            return
        new: dict[str, dict] = dict(self.marks)
        for conv in self.conversations.items:
            old = self.marks.get(conv.id, {})
            read = old.get("read")
            if conv is self.conversations.shown:
                read = self._newest(conv) or read
            new[conv.id] = {"read": read, "unread": conv.unread, "mention": conv.mention}
        if new != self.marks:
            self.marks = new
            self._save(new)

    def _newest(self, conv: Conversation) -> str | None:
        body = self.view.messages(conv.id).body
        for i in range(len(body) - 1, -1, -1):
            msg_id = getattr(body[i], "msg_id", None)
            if msg_id:
                return msg_id
        return None
