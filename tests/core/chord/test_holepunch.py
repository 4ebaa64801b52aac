"""The hole punch's coordination messages and clock (core/chord/holepunch.py), and a punch
that finds nobody. (A punch that succeeds needs routers that drop a stranger's SYN instead
of refusing it: tests/net/test_holepunch.py.)"""

from __future__ import annotations

import socket

import pytest

from core.chord import Address
from core.chord.holepunch import (
    MAX_ADDRESSES,
    Coordinator,
    PunchError,
    connect_message,
    parse,
    simultaneous_open,
    sync_message,
)


class TestMessages:
    def test_messages__round_trip(self):
        addresses = [Address("198.18.0.2", 4000), Address("fd00:c0a7::2", 4001)]
        punch = parse(connect_message(addresses))
        assert punch.step == "connect" and list(punch.addresses) == addresses
        assert parse(sync_message()).step == "sync"

    @pytest.mark.parametrize("message", [
        None, [], {"kind": "other", "step": "sync"}, {"kind": "holepunch", "step": "go"},
        {"kind": "holepunch", "step": "connect"},
        {"kind": "holepunch", "step": "connect", "addresses": []},
        {"kind": "holepunch", "step": "connect", "addresses": ["198.18.0.2:1"] * 5},
        {"kind": "holepunch", "step": "connect", "addresses": [7]},
        {"kind": "holepunch", "step": "connect", "addresses": ["not an address"]},
        {"kind": "holepunch", "step": "connect", "addresses": ["0.0.0.0:4000"]},
    ])
    def test_messages__hostile_ones_are_refused(self, message):
        with pytest.raises(PunchError):
            parse(message)

    def test_messages__a_connect_names_a_bounded_list(self):
        with pytest.raises(PunchError):
            connect_message([Address("198.18.0.2", 4000 + i) for i in range(MAX_ADDRESSES + 1)])


class TestCoordinator:
    def test_coordinator__starts_half_a_round_trip_after_sync(self):
        now = [10.0]
        c = Coordinator(lambda: now[0])
        with pytest.raises(PunchError):
            c.delay_after_sync()
        c.sent_connect()
        now[0] = 10.3
        c.got_connect()
        assert c.delay_after_sync() == pytest.approx(0.15)

    def test_coordinator__an_answer_before_a_question_is_refused(self):
        with pytest.raises(PunchError):
            Coordinator().got_connect()


class TestSimultaneousOpen:
    async def test_simultaneous_open__nobody_there_gives_up_after_its_tries(self):
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))   # bound, not listening: refused
            peer = Address("127.0.0.1", closed.getsockname()[1])
            punched = await simultaneous_open(0, peer, tries=2, spacing=0.01)
        assert punched.sock is None and punched.tries == 2
