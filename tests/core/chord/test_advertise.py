"""Where a node says it is: --advertise, and a wildcard listen that learns its address."""

import pytest

from core.chord import Address, AddressError, JoinError, Local
from core.chord.testing import FAST, converged, start_node, stop_all, wait_until


class TestAdvertise:
    async def test_advertise__names_the_node_and_its_id_while_it_listens_elsewhere(self):
        first = await start_node()
        # listen on every address of this host; others dial the advertised loopback one
        probe = Local(Address("0.0.0.0", 0), first.address, **FAST)
        await probe.start()
        port = probe.address.port
        await probe.stop()
        advertised = Address("127.0.0.1", port)
        node = Local(Address("0.0.0.0", port), first.address, advertise=advertised, **FAST)
        try:
            await node.start()
            assert node.address == advertised and node.id == advertised.id
            await wait_until(lambda: converged([first, node]), what="a ring of two")
            assert first.successor().address == advertised
        finally:
            await stop_all([first, node])

    def test_advertise__a_wildcard_or_port_0_cannot_be_advertised(self):
        for text in ("0.0.0.0:4000", "[::]:4000", "127.0.0.1:0"):
            with pytest.raises(AddressError, match="cannot advertise"):
                Local(Address("0.0.0.0", 4000), advertise=Address.parse(text,
                                                                        allow_any_port=True))


class TestWildcardListen:
    async def test_wildcard__learns_its_address_from_the_bootstrap(self):
        first = await start_node()
        node = Local(Address("0.0.0.0", 0), first.address, **FAST)
        try:
            await node.start()
            assert node.address.host == "127.0.0.1" and node.address.port != 0
            assert node.id == node.address.id
            await wait_until(lambda: converged([first, node]), what="a ring of two")
        finally:
            await stop_all([first, node])

    async def test_wildcard__over_ipv6(self):
        first = Local(Address("::1", 0), **FAST)
        try:
            await first.start()
        except OSError as e:
            pytest.skip(f"no IPv6 loopback here: {e}")
        node = Local(Address("::", 0), first.address, **FAST)
        try:
            await node.start()
            assert str(node.address) == f"[::1]:{node.address.port}"
            await wait_until(lambda: converged([first, node]), what="a ring of two")
        finally:
            await stop_all([first, node])

    async def test_wildcard__without_bootstrap_or_advertise_is_refused_naming_advertise(self):
        node = Local(Address("0.0.0.0", 0), **FAST)
        with pytest.raises(JoinError, match="--advertise"):
            await node.start()
        assert not node.running
