"""Client mode from the command line and the runtime: ``--client``, ``--relay``,
``--relay-clients``, and the reachability hook (``Options.reachability``) deciding it."""

from __future__ import annotations

import pytest

from core import events as ev
from core.chat.model.commands import parse
from core.chord import Address
from core.runtime import Runtime
from tests.support.runtime import Collector, bo_hears_ann, options
from tui.__main__ import parse_options

BASE = ["--nick", "anna", "--listen", "127.0.0.1:0"]


def test_cli__client_and_relays():
    o, _ = parse_options([*BASE, "--client", "--relay", "10.0.0.1:4000",
                          "--relay", "10.0.0.2:4000"])
    assert o.client and o.relays == (Address("10.0.0.1", 4000), Address("10.0.0.2", 4000))
    o, _ = parse_options([*BASE, "--relay-clients", "0", "--bootstrap", "10.0.0.1:4000"])
    assert not o.client and o.relay_clients == 0 and o.relays == ()


@pytest.mark.parametrize("argv, why", [
    (["--client"], "--client needs --bootstrap or --relay"),
    (["--relay", "10.0.0.1:4000"], "--relay needs --client"),
    (["--client", "--relay", "nowhere"], "--relay: bad address"),
    (["--relay-clients", "-1"], "--relay-clients must be at least 0"),
])
def test_cli__client_options_that_make_no_sense_are_refused(argv, why):
    with pytest.raises(ValueError, match=why):
        parse_options([*BASE, *argv])


def test_runtime__the_reachability_decision_starts_a_client_that_chats():
    asked = []

    async def unreachable(listen: Address, bootstrap: Address) -> bool:
        asked.append((listen, bootstrap))
        return False

    first, second = Collector(), Collector()
    a = Runtime(options("ann"), first.post)
    ready = a.start().result(20)
    bootstrap = Address.parse(ready.address)
    b = Runtime(options("bo", bootstrap)._replace(reachability=unreachable), second.post)
    try:
        client_ready = b.start().result(20)
        assert asked == [(Address("127.0.0.1", 0), bootstrap)]
        assert client_ready.address.startswith(f"{bootstrap}/")   # relayed via ann's node
        assert b.node.client is not None and not b.node.is_ours(b.node.id)
        bo_hears_ann(a, b, second)
        a.execute(parse("whois bo")).result(20)
        assert first.wait(ev.Whois, nick="bo").reach == f"relayed via {bootstrap}"
    finally:
        b.shutdown().result(30)
        a.shutdown().result(30)
    assert b.join(10) and a.join(10)
    assert [isinstance(e, ev.Bye) for e in second.drain()][-1]
