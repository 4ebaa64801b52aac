"""The chat service over the overlay: commands, wire protocol, maintained state, the service."""

from .model.commands import COMMANDS, Command, CommandError, parse
from .service import ChatError, ChatService, LocalUser, NickTaken, Settings

__all__ = ["COMMANDS", "ChatError", "ChatService", "Command", "CommandError", "LocalUser",
           "NickTaken", "Settings", "parse"]
