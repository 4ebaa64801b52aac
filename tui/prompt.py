"""The input line: its input history, Tab completion, and each typed line parsed once into a
Command for the shown conversation.

UI thread only. Where a command runs is the COMMANDS table's word (core.chat.model.commands):
ChatApp.run_command answers the front end's (tui.front_end_commands) and hands the rest to
the runtime, hearing of their end through the bridge, never waiting for it.
"""

from __future__ import annotations

from collections.abc import Callable

from core.chat.model import commands
from core.chat.model.commands import MAX_TEXT, Command, CommandError
from core.chat.model.text import bad_char, describe
from tui.completion import Completer, Sources
from tui.conversations import Conversation, Conversations
from tui.input_history import InputHistory
from tui.widgets.input import InputLine

# what a line that is no command gets in the home pane, where chat text has nowhere to go
HOME_HINT = "this is the home pane: join a channel first (join <channel>), or msg <nick> <text>"


class Prompt:
    """Owns the input history and the completer; edits the input line."""

    def __init__(self, field: InputLine, conversations: Conversations,
                 nicks: Callable[[], list[str]]) -> None:
        self.field = field
        self.conversations = conversations
        self.input_history = InputHistory()
        self.completer = Completer(Sources(
            commands=commands.command_words,
            arguments=commands.argument_kinds,
            channels=conversations.channels,
            nicks=nicks,
            bare_commands=lambda: conversations.shown.kind == "home",
        ))

    def older(self) -> None:
        if self.field.move_line(-1):  # a text of several lines: its line above first
            return
        line = self.input_history.older(self.field.edit_text)
        if line is not None:
            self.field.replace(line)

    def newer(self) -> None:
        if self.field.move_line(+1):
            return
        line = self.input_history.newer(self.field.edit_text)
        if line is not None:
            self.field.replace(line)

    def complete(self) -> None:
        done = self.completer.complete(self.field.edit_text, self.field.edit_pos)
        if done is not None:
            self.field.replace(*done)

    def take(self) -> Command | None:
        """Enter: the typed line, kept in the input history and parsed once for the shown
        conversation (where a line is chat text unless it starts with "/"); None if blank.
        A text of several lines, or one pasted, is chat text as it is: never a command.

        Raises:
            CommandError: the line is no command; its message is the one to show.
        """
        pasted = self.field.pasted
        line = self.field.take()
        self.input_history.add(line)
        if not line.strip():
            return None
        conv = self.conversations.shown
        if pasted or "\n" in line:
            return chat_text(conv, line)
        try:
            return commands.parse(line, None if conv.kind == "home" else conv.title)
        except commands.UnknownCommand as exc:
            if conv.kind == "home" and not line.lstrip().startswith("/"):
                raise commands.CommandError(HOME_HINT) from exc
            raise



def chat_text(conv: Conversation, text: str) -> Command:
    """A message of one or several lines to ``conv``, built as it is, never parsed: a line in
    it that starts with "/" is text. Blank lines around it and blanks ending lines go.

    Raises:
        CommandError: it cannot be sent (nowhere to go, empty, too long, a control character).
    """
    if conv.kind == "home":
        raise CommandError(HOME_HINT)
    text = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    if not text.strip():
        raise CommandError("the message is empty")
    if len(text) > MAX_TEXT:
        raise CommandError(f"the message has {len(text)} characters; at most {MAX_TEXT} are "
                           "allowed")
    if (ch := bad_char(text)) is not None:
        raise CommandError(f"the message contains a control character {describe(ch)}")
    if conv.kind == "channel":
        return Command("send", (commands.channel_name(conv.title), text))
    return Command("msg", (conv.title, text))
