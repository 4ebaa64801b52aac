"""Shared pytest set-up: run ``async def`` tests on a fresh event loop each; no test (nor a
process it starts) touches the real data directory."""

import asyncio
import inspect

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None


@pytest.fixture(autouse=True)
def _own_data_home(tmp_path_factory, monkeypatch):
    """``$XDG_DATA_HOME`` in a fresh folder: a node started without ``--data-dir`` keeps its
    user's files there, never in the home directory."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data-home")))
