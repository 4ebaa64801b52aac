"""The input line: its input history, Tab completion, and each typed line parsed once into a
Command for the shown conversation; and the commands this UI answers itself (FRONT_END).

UI thread only. Where a command runs is the COMMANDS table's word (core.chat.model.commands):
what is not the front end's goes to ChatApp.run_command, which hands it to the runtime
and hears of its end through the bridge, never waiting for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.chat.model import commands
from core.chat.model.commands import Command
from tui.completion import Completer, Sources
from tui.conversations import Conversations
from tui.input_history import InputHistory
from tui.widgets.input import InputLine

if TYPE_CHECKING:
    from tui.app import ChatApp

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
        line = self.input_history.older(self.field.edit_text)
        if line is not None:
            self.field.replace(line)

    def newer(self) -> None:
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

        Raises:
            CommandError: the line is no command; its message is the one to show.
        """
        line = self.field.take()
        self.input_history.add(line)
        if not line.strip():
            return None
        conv = self.conversations.shown
        try:
            return commands.parse(line, None if conv.kind == "home" else conv.title)
        except commands.UnknownCommand as exc:
            if conv.kind == "home" and not line.lstrip().startswith("/"):
                raise commands.CommandError(HOME_HINT) from exc
            raise


def search(app: ChatApp, command: Command) -> None:
    """Asked of the core, which alone reads the database; the hits come as an event."""
    if not app.ready:
        app.conversation_view.error("still joining the ring; search once it is ready")
        return
    app.track(str(command), app.runtime.search(command.args[0]))


def bell(app: ChatApp, command: Command) -> None:
    app.set_bell(command.args[0] == "on" if command.args else not app.bell)


def help_(app: ChatApp, _command: Command) -> None:
    app.conversation_view.help()


# the commands the COMMANDS table gives to the front end, as this UI answers them
FRONT_END: dict[str, Callable[[ChatApp, Command], None]] = {
    "help": help_,
    "bell": bell,
    "search": search,
}
