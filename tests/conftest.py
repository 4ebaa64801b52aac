"""Shared pytest set-up: run ``async def`` tests on a fresh event loop each; keep every
test's default data directory (keys, pins, database) in its own temporary folder, never
the home's; property tests without Hypothesis's per-example deadline (a wall-clock
limit that a loaded machine breaks: a pure example that took 0.1 ms took 284 ms once)."""

import asyncio
import inspect

import pytest
from hypothesis import settings

settings.register_profile("chordchat", deadline=None)
settings.load_profile("chordchat")


@pytest.fixture(autouse=True)
def _own_data_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        # the test's own parameters (funcargs also holds autouse fixtures it does not take)
        args = {name: pyfuncitem.funcargs[name]
                for name in inspect.signature(pyfuncitem.obj).parameters
                if name in pyfuncitem.funcargs}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None

