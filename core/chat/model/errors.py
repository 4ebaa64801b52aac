"""What the chat service raises to its users: a command that could not be carried out."""


class ChatError(Exception):
    """A user command that could not be carried out; the message says what and why."""


class NickTaken(ChatError):
    """The nick is held by another live node."""


class Told(ChatError):
    """A command that could not be carried out and whose failure an event has told already
    (``Failed`` for a line that can never go): not told again as an ``Error``."""
