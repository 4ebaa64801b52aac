"""What the conversation pane, the side pane and the input caption show: each
conversation's lines, the user's own lines and their delivery state, a search hit opened
(the help and the hits are popups: tui.popups).

UI thread only: everything here changes widgets, and nothing waits on the core.
"""

from __future__ import annotations

import time

import urwid

from core.counts import counted
from tui.conversations import HOME, Conversation, Conversations
from tui.widgets.conversation import MessageLine, MessageList
from tui.widgets.palette import nick_attr
from tui.widgets.screen import ChatScreen
from tui.widgets.side import Entry

UNVERIFIED = "[unverified]"   # how a message not signed by the pinned key is marked


def clock(at: float, seconds: bool = False) -> str:
    return time.strftime("%H:%M:%S" if seconds else "%H:%M", time.localtime(at))


def day_of(at: float) -> tuple[int, int, int]:
    return time.localtime(at)[:3]


def date_line(at: float) -> str:
    """The line that starts a day in a conversation: ``── Tuesday 14 May 2024 ──``."""
    return time.strftime("── %A %d %B %Y ──", time.localtime(at))


def highlight(text: str, spans, base: str | None = None) -> list:
    """Markup of ``text`` with each (start, end) span shown as a mention."""
    plain = (lambda t: (base, t)) if base else (lambda t: t)
    markup: list = []
    at = 0
    for start, end in spans:
        if start > at:
            markup.append(plain(text[at:start]))
        markup.append(("mention", text[start:end]))
        at = end
    if at < len(text) or not markup:
        markup.append(plain(text[at:]))
    return markup


class ConversationView:
    """Owns the message list of each conversation and the user's lines by msg_id."""

    def __init__(self, screen: ChatScreen, conversations: Conversations) -> None:
        self.screen = screen
        self.conversations = conversations
        self._lists: dict[str, MessageList] = {HOME: MessageList()}
        self._own: dict[str, MessageLine] = {}   # the user's lines by msg_id (their state)
        self._days: dict[str, tuple[int, int, int]] = {}   # the day of each one's last line

    def messages(self, conversation_id: str) -> MessageList:
        """The lines of conversation ``conversation_id`` (made empty on first use)."""
        if conversation_id not in self._lists:
            self._lists[conversation_id] = MessageList()
        return self._lists[conversation_id]

    def append(self, conv: Conversation, markup) -> None:
        self.messages(conv.id).append(urwid.Text(markup))

    def info(self, text: str) -> None:
        self.append(self.conversations.shown, [("info", text)])

    def dated(self, conv: Conversation, at: float) -> None:
        """A date line before a conversation's line of another day than the line before
        it (before its first line, unless that is of today)."""
        day = day_of(at)
        if self._days.get(conv.id, day_of(time.time())) != day:
            self.append(conv, [("time", date_line(at))])
        self._days[conv.id] = day

    def notice(self, conversation_id: str, text: str, at: float | None = None) -> None:
        conv = self.conversations.get(conversation_id) or self.conversations.shown
        at = at or time.time()
        self.dated(conv, at)
        self.append(conv, [("time", clock(at) + " "), ("notice", text)])

    def error(self, message: str, conv: Conversation | None = None,
              at: float | None = None) -> None:
        """An error line, in the shown conversation unless ``conv``; with a time if ``at``."""
        markup: list = [("error", "! " + message)]
        if at is not None:
            markup[:0] = [("time", clock(at) + " ")]
        self.append(conv or self.conversations.shown, markup)

    def message(self, conv: Conversation, nick: str, text: str, at: float, own: bool = False,
                spans=(), verified: bool = True, msg_id: str | None = None,
                state: str | None = None, action: bool = False) -> MessageLine:
        """A message line at its author's time ``at``; ``spans`` are where it names the user
        (highlighted, and a mention); one not signed by the key pinned for ``nick`` is
        marked unverified; an action shows as ``* nick text``. The later lines of a text
        of several lines stand indented under its first."""
        who = f"* {nick}" if action else f"<{nick}>"
        prefix = [("time", clock(at) + " "), (nick_attr(nick), who), " "]
        if not verified:
            prefix[2:2] = [" ", ("unverified", UNVERIFIED)]
        body = ("own", text) if own else highlight(text, spans)
        line = MessageLine(prefix, body, msg_id=msg_id, state=state)
        self.dated(conv, at)
        self.messages(conv.id).append(line)
        if not own:
            self.conversations.arrived(conv, bool(spans))
        return line

    def earlier(self, conv: Conversation, nick: str, text: str, at: float, msg_id: str,
                state: str | None = None, verified: bool = True, spans=(),
                action: bool = False) -> MessageLine:
        """A line from before this session (or a channel's backlog), dimmed, at its
        author's time; it counts as neither unread nor a mention."""
        who = f"* {nick}" if action else f"<{nick}>"
        prefix = [("history", f"{clock(at)} {who} "),
                  *([] if verified else [("unverified", UNVERIFIED), " "])]
        line = MessageLine(prefix, highlight(text, spans, "history"), msg_id=msg_id,
                           state=state)
        self.dated(conv, at)
        self.messages(conv.id).append(line)
        return line

    def holds_only(self, conversation_id: str, msg_id: str) -> bool:
        """Whether the line ``msg_id`` (with a date line maybe) is all a conversation shows."""
        lines = [w for w in self.messages(conversation_id).body
                 if getattr(w, "msg_id", None) is not None or not isinstance(w, urwid.Text)]
        return [getattr(w, "msg_id", None) for w in lines] == [msg_id]

    def forget(self, conversation_id: str) -> None:
        """Drop the lines of a conversation that is closed."""
        self._lists.pop(conversation_id, None)
        self._days.pop(conversation_id, None)

    def own(self, msg_id: str, line: MessageLine) -> None:
        """Keep one of the user's lines, whose delivery state later events change."""
        self._own[msg_id] = line

    def is_own(self, msg_id: str) -> bool:
        """Whether ``msg_id`` is one of the user's lines shown here."""
        return msg_id in self._own

    def set_state(self, msg_id: str, state: str) -> bool:
        """Mark one of the user's lines; False if it is not shown."""
        line = self._own.get(msg_id)
        if line is None:
            return False
        if line.state != "delivered" or state == "delivered":
            line.set_state(state)
        return True

    def open_hit(self, hit: dict) -> None:
        """Show a search result in its conversation, at its line (closing the hits)."""
        self.screen.close_popup()
        conv = self.conversations.named(hit["conversation"])
        self.conversations.select_id(conv.id)
        messages = self.messages(conv.id)
        position = messages.find(hit["msg_id"])
        if position is None:   # older than the lines shown: show it at the end
            self.earlier(conv, hit["from"], hit["text"], hit["at"], hit["msg_id"])
            position = len(messages.body) - 1
        messages.show_line(position)
        self.show_current()

    def show_current(self) -> None:
        """Bring the side pane, conversation pane and input caption up to date."""
        convs = self.conversations
        self.screen.side.update([Entry(c.title, c.unread, c.mention, c.joined)
                                 for c in convs.items], convs.current)
        shown = convs.shown
        title = shown.title
        if shown.kind == "channel":
            title += (f"  ({counted(len(shown.members), 'member')})" if shown.joined
                      else "  (not joined)")
        self.screen.conversation.show(self.messages(shown.id), title)
        self.screen.input.set_target(shown.title if shown.kind != "home" else "")
