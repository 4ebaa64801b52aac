"""Local mistakes: a port already in use, an unreachable bootstrap, bad addresses."""

import asyncio

import pytest

from core.chord import Address, AddressError, JoinError, ListenError, Local
from core.chord.testing import FAST, start_node


class TestStartupErrors:
    async def test_start__port_in_use_names_the_address(self):
        first = await start_node()
        try:
            clash = Local(first.address, **FAST)
            with pytest.raises(ListenError, match=f"{first.address}.*in use"):
                await clash.start()
        finally:
            await first.stop()

    async def test_start__unreachable_bootstrap_names_the_address(self):
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        nowhere = Address("127.0.0.1", port)
        node = Local(Address("127.0.0.1", 0), nowhere, **FAST)
        with pytest.raises(JoinError, match=str(nowhere)):
            await asyncio.wait_for(node.start(), 10)
        assert not node.running
        # The address it tried to listen on is free again.
        again = Local(node.address, **FAST)
        await again.start()
        await again.stop()


class TestAddress:
    @pytest.mark.parametrize("text, message", [
        ("localhost", "expected HOST:PORT"),
        (":4000", "expected HOST:PORT"),
        ("127.0.0.1:http", "not a number"),
        ("127.0.0.1:70000", "outside"),
        ("127.0.0.1:0", "outside"),
        ("bad host!:4000", "not a host name"),
        ("[::1:4000", "IPv6"),
    ])
    def test_parse__says_what_is_wrong(self, text, message):
        with pytest.raises(AddressError, match=message):
            Address.parse(text)

    def test_parse__round_trips_and_ids_follow_the_design(self):
        from core.chord import hash_string
        a = Address.parse("127.0.0.1:4000")
        assert (a.host, a.port, str(a)) == ("127.0.0.1", 4000, "127.0.0.1:4000")
        assert a.id == hash_string("127.0.0.1:4000")
        assert Address.parse("[::1]:5") == Address("::1", 5)
        assert Address.parse("127.0.0.1:0", allow_any_port=True).port == 0

    @pytest.mark.parametrize("text, message", [
        ("-:4000", "not a host name"),
        ("...:4000", "not an IPv4 address"),
        ("a..b:4000", "not a host name"),
        ("-a.example:4000", "not a host name"),
        ("198.018.0.1:4000", "not an IPv4 address"),
        ("[fe80::1%eth0]:4000", "zone"),
    ])
    def test_parse__refuses_what_no_host_is_called(self, text, message):
        with pytest.raises(AddressError, match=message):
            Address.parse(text)

    def test_parse__one_node_has_one_spelling_and_one_id(self):
        spellings = ["[FD00:c0a7::0001]:4000", "[fd00:c0a7:0:0:0:0:0:1]:4000",
                     "[fd00:c0a7::1]:4000"]
        parsed = {Address.parse(t) for t in spellings}
        assert len(parsed) == 1 and str(parsed.pop()) == "[fd00:c0a7::1]:4000"
        assert Address.parse("Node-1.Example:4000") == Address("node-1.example", 4000)
        assert Address("FD00::0001", 4000).id == Address.parse("[fd00::1]:4000").id
        assert Address.parse("0.0.0.0:4000").is_wildcard
        assert Address.parse("[::]:4000").is_wildcard
        assert not Address.parse("198.18.0.1:4000").is_wildcard
