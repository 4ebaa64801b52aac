"""What the chat service raises to its users: a command that could not be carried out."""


class ChatError(Exception):
    """A user command that could not be carried out; the message says what and why;
    ``reason``: the word of a node's refusal, if one refused it (``verbs.Refused``)."""

    def __init__(self, message: str = "", reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class NickTaken(ChatError):
    """The nick is held by another live node."""


class Told(ChatError):
    """A command that could not be carried out and whose failure an event has told already
    (``Failed`` for a line that can never go): not told again as an ``Error``."""
