"""The commands this UI answers itself: those the COMMANDS table (core.chat.model.commands)
gives to the front end (Where.FRONT_END), one function each, found through FRONT_END.

UI thread only: ChatApp.run_command calls them; what one asks of the core goes through
the app, which never waits for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.chat.model.commands import Command

if TYPE_CHECKING:
    from tui.app import ChatApp


def search(app: ChatApp, command: Command) -> None:
    """Asked of the core, which alone reads the database; the hits come as an event."""
    if not app.ready:
        app.conversation_view.error("still joining the ring; search once it is ready")
        return
    app.track(command.shown, app.runtime.search(command.args[0]))


def bell(app: ChatApp, command: Command) -> None:
    app.set_bell(command.args[0] == "on" if command.args else not app.bell)


def help_(app: ChatApp, _command: Command) -> None:
    app.show_help()


# the commands the COMMANDS table gives to the front end, as this UI answers them
FRONT_END: dict[str, Callable[[ChatApp, Command], None]] = {
    "help": help_,
    "bell": bell,
    "search": search,
}
