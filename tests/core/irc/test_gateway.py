"""The IRC gateway's own rules, before any node is involved."""

import pytest

from core.irc import GatewayError, IrcGateway, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_is_loopback__loopback_addresses(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "192.168.1.5", "example.org"])
def test_is_loopback__everything_else(host):
    assert not is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1"])
def test_gateway__off_loopback_without_password_is_refused(host):
    with pytest.raises(GatewayError, match="--irc-password"):
        IrcGateway(None, host, 6667)
