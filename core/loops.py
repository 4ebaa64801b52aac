"""The event loop a node runs on: uvloop when it is installed (the ``fast`` extra), else
asyncio's own. ``CHORDCHAT_LOOP=asyncio`` chooses the standard loop regardless."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine


def new_event_loop() -> asyncio.AbstractEventLoop:
    if os.environ.get("CHORDCHAT_LOOP", "") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def name(loop: asyncio.AbstractEventLoop) -> str:
    """"uvloop" or "asyncio", for reports."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine):
    """``asyncio.run`` on the loop ``new_event_loop`` gives."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
