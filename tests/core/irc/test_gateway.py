"""The IRC gateway's own rules and the adapter's reading of name records, without a node."""

import pytest

from core.chat.model.identity import Identity
from core.irc import GatewayError, IrcGateway, is_loopback
from core.irc.actions import Whois
from core.irc.adapter import whois_of


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


def test_whois_of__a_record_with_a_key_shows_its_fingerprint():
    identity = Identity.generate("bob")
    record = {"ok": True, "nick": "bob", "key": identity.key,
              "node_id": "ab" * 20, "address": "127.0.0.1:4000"}
    assert whois_of(record, "Bob") == Whois("bob", "ab" * 20, "127.0.0.1:4000",
                                            identity.fingerprint)


def test_whois_of__a_record_without_a_key_has_no_fingerprint():
    record = {"ok": True, "nick": "bob", "id": "cd" * 20, "address": "127.0.0.1:4000"}
    assert whois_of(record, "bob") == Whois("bob", "cd" * 20, "127.0.0.1:4000", None)


@pytest.mark.parametrize("name", ["", "nodot", "a b.c", ".lead.dot", "x!y.z", "é.example"])
def test_gateway__a_name_that_is_no_server_name_is_refused(name):
    with pytest.raises(GatewayError, match="server name"):
        IrcGateway(None, "127.0.0.1", 6667, name=name)
