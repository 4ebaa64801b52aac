"""What the chat service raises to its users: a command that could not be carried out."""


class ChatError(Exception):
    """A user command that could not be carried out; the message says what and why."""


class NickTaken(ChatError):
    """The nick is held by another live node."""
