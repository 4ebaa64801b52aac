"""Shared pytest set-up: run ``async def`` tests on a fresh event loop each; keep every
test's default data directory (keys, pins, database) in its own temporary folder, never
the home's."""

import asyncio
import inspect

import pytest


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

