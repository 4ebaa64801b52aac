"""A local user's reading of the chat wire's replies: a refused request is a ChatError."""

from __future__ import annotations

from .errors import ChatError


def refusal(reply: dict, what: str) -> dict:
    """``reply``, unless the node refused the request: then a ChatError saying why."""
    if "refused" in reply:
        raise ChatError(f"{what}: refused: {reply.get('error', reply['refused'])}")
    return reply
