"""Fixtures for tests across hosts in network namespaces (tests/support/hosts.py).

``network`` gives each test a fresh bridge and removes it afterwards, pass or fail. The
session fixture first deletes what killed earlier runs left behind and, at the end,
anything of this session still there. Without root (or where ``ip netns add`` fails)
every test that asks for a network is skipped, saying why.
"""

import pytest

from tests.support import hosts


@pytest.fixture(scope="session")
def netns_session():
    reason = hosts.unavailable()
    if reason is not None:
        pytest.skip(reason)
    hosts.remove_leftovers()
    yield
    hosts.remove_session()


@pytest.fixture
def network(netns_session):
    net = hosts.Network()
    try:
        yield net
    finally:
        net.close()
