"""Hostile peers (docs/security.md): the robust lookup against colluding liars, on the
simulator's virtual clock — a small version of ``bench/security.py``, with its control
(plain Chord does fail under the same attack, so these tests can fail), and the chat's
name lookup reading past a maintainer that hides a record."""

from __future__ import annotations

import bisect
import random

from bench.security import trial
from core.chat.model.ids import name_key
from core.chat.model.records import NameRecord
from core.chat.testing import sim_ring
from core.chat.wire import verbs as p
from core.chord.robust import RobustLookup
from core.chord.sim import SimNetwork, converged_ring, run, sim_addresses
from core.chord.testing import virtual_time


def test_under_20_percent_hostile_the_defence_holds_and_plain_chord_does_not():
    result = run(trial(64, 20, 100))
    assert result["hostile_nodes"] == 13
    # the control: the attack works on plain lookups
    assert result["plain"] < 0.85, result
    # the defence: names and sends still reach the right node
    assert result["success"] >= 0.95, result
    assert result["names"]["defended"] >= 0.95, result
    assert result["sends"]["defended"] >= 0.95, result
    assert result["success"] - result["plain"] >= 0.15, result


def test_robust_lookups_on_an_honest_ring_find_the_true_owner_confirmed():
    async def main() -> None:
        network = SimNetwork(latency=0.001, seed=3, timeout=1.0)
        addresses = sim_addresses(48)
        nodes = await converged_ring(network, addresses, r=8, timeout=1.0)
        ring = sorted(addresses, key=lambda a: a.id)
        ids = [a.id for a in ring]
        rng = random.Random(3)
        try:
            for _ in range(100):
                node = rng.choice(nodes)
                key = rng.getrandbits(160)
                found = await RobustLookup(node).find(key)
                i = bisect.bisect_left(ids, key) % len(ring)
                assert found.owner == ring[i]
                assert found.confirmed
                assert not found.liars
                holders = await RobustLookup(node).holders(found, 3)
                assert holders == [ring[(i + k) % len(ring)] for k in range(4)]
        finally:
            for node in nodes:
                await node.stop()
    run(main())


@virtual_time
async def test_a_maintainer_hiding_a_nick_is_read_past_from_its_replicas():
    async with sim_ring(["ann", "bo", "cy", "di", "ed", "flo"]) as ring:
        key = name_key("ann")
        maintainer = ring.owner(key)
        asker = next(n for n in ring.nodes if n is not maintainer and n.nick != "ann")
        original = await asker.service.names.lookup("ann")
        assert original is not None and original.nick == "ann"

        async def unknown_nick(payload: dict) -> dict:
            return {"ok": False}

        # the maintainer turns hostile: "unknown nick" to every ask
        for verb in (p.NAME_GET, p.NAME_COPY):
            maintainer.node.register_command(verb.type, unknown_nick)
        record = await asker.service.names.lookup("ann")
        assert isinstance(record, NameRecord) and record == original
        holders = asker.service.name_copies.last_holders
        assert holders[0] == maintainer.node.address
        assert [h for h in holders[1:]] == [n.node.address
                                            for n in ring.successors_of(maintainer, 3)]
        # a plain routed get believes the maintainer
        asker.service.names.copies = None
        assert await asker.service.names.lookup("ann") is None
