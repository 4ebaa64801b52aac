"""How a running full member notices that its address is gone (core/chord/moves.py),
asked of this machine's own kernel: a bind of an address it has or has not, the source
address toward a peer. (The same on hosts whose address really goes: tests/net/
test_moving.py.)"""

from __future__ import annotations

from core.chord import Address
from core.chord.moves import AddressWatch, bindable, source_toward

NOT_OURS = "203.0.113.77"   # TEST-NET-3: not an address of a test machine
PEER = Address("127.0.0.1", 9)


def test_moves__an_address_of_this_host_binds_and_one_of_another_does_not():
    assert bindable("127.0.0.1") and bindable("0.0.0.0")
    assert not bindable(NOT_OURS)
    assert source_toward(PEER) == "127.0.0.1"


def test_moves__a_specific_listen_address_gone_says_why_and_where_to_listen_now():
    here = AddressWatch(Address("127.0.0.1", 4000), Address("127.0.0.1", 4000))
    assert here.gone([PEER]) is None
    gone = AddressWatch(Address(NOT_OURS, 4000), Address(NOT_OURS, 4000))
    assert gone.gone([PEER]) == f"{NOT_OURS} is no longer an address of this host"
    assert gone.new_listen([PEER]) == Address("127.0.0.1", 4000)   # same port, new host


def test_moves__a_wildcard_listen_behind_a_forwarded_port_watches_the_way_out():
    # its ring address (a router's, say) is not one of this host's: what changes is the
    # local address its packets to the ring leave from
    watch = AddressWatch(Address("0.0.0.0", 4000), Address(NOT_OURS, 4000))
    assert watch.own is None
    assert watch.gone([PEER]) is None and watch.source == "127.0.0.1"
    assert watch.gone([PEER]) is None
    watch.source = "10.9.9.9"   # as if it had left from there before the move
    assert watch.gone([PEER]) == ("packets to the ring leave from 127.0.0.1 now, no longer "
                                  "from 10.9.9.9")
    assert watch.new_listen([PEER]) == Address("0.0.0.0", 4000)
    # a wildcard listen that learned an address of this host watches that address
    assert AddressWatch(Address("0.0.0.0", 4000), Address("127.0.0.1", 4000)).own == \
        "127.0.0.1"
