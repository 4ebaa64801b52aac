"""The node's event loop: uvloop when installed, the standard one when asked for."""

import asyncio

from core import loops


class TestLoops:
    def test_new_event_loop__chordchat_loop_asyncio_gives_the_standard_loop(self, monkeypatch):
        monkeypatch.setenv("CHORDCHAT_LOOP", "asyncio")
        loop = loops.new_event_loop()
        try:
            assert type(loop).__module__.startswith("asyncio")
            assert loops.name(loop) == "asyncio"
        finally:
            loop.close()

    def test_run__runs_a_coroutine_on_the_loop_it_makes(self):
        async def which() -> str:
            return loops.name(asyncio.get_running_loop())

        assert loops.run(which()) in ("uvloop", "asyncio")
