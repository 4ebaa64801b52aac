"""The routing state as pure structures, without a transport, against a brute-force model.

The model is the ring as a plain list of addresses: the owner of a key is the node the
shortest clockwise distance from it, found by looking at every node.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.chord import Address, LookupFailed
from core.chord.ids import RING, M, distance, finger_start, in_open
from core.chord.routing import FingerTable, Routing
from core.chord.sim import ideal_state

keys = st.integers(min_value=0, max_value=RING - 1)


def address(n: int) -> Address:
    return Address(f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}", 4000)


rings = st.sets(st.integers(1, 50_000), min_size=1, max_size=24).map(
    lambda ns: [address(n) for n in sorted(ns)])
rs = st.integers(min_value=1, max_value=6)


def owner(ring: list[Address], key: int) -> Address:
    """Brute force: the node at the shortest clockwise distance from ``key`` (0 included)."""
    return min(ring, key=lambda a: distance(key, a.id))


def ordered(ring: list[Address]) -> list[Address]:
    return sorted(ring, key=lambda a: a.id)


class TestFingerTable:
    @given(rings, st.data())
    def test_finger_table__is_the_distinct_successors_of_n_plus_two_to_the_i(self, ring, data):
        n = data.draw(st.sampled_from(ring))
        want: list[Address] = []
        for i in range(M):
            s = owner(ring, finger_start(n.id, i))
            if s != n and s not in want:
                want.append(s)
        asked = []

        def successor_of(key: int) -> Address:
            asked.append(key)
            return owner(ring, key)

        assert FingerTable.build(n, successor_of) == want
        # starts inside (n, last finger] are not looked up: one lookup per finger, + 1
        assert len(asked) <= len(want) + 1

    def test_finger_table__a_failed_lookup_leaves_the_fingers_found_so_far(self):
        ring = [address(i) for i in range(1, 30)]
        n = ring[0]
        table = FingerTable(n)
        for _ in range(3):
            table.found(owner(ring, table.next_start()))
        assert table.fingers == FingerTable.build(n, lambda k: owner(ring, k))[:len(table.fingers)]

    def test_finger_table__of_a_node_alone_is_empty(self):
        me = address(1)
        assert FingerTable.build(me, lambda key: me) == []


class TestSuccessorList:
    @given(rings, rs, st.data())
    def test_successor_list__r_entries_cut_at_us_no_repeats(self, ring, r, data):
        me = data.draw(st.sampled_from(ring))
        first = data.draw(st.sampled_from(ring))
        rest = data.draw(st.lists(st.sampled_from(ring), max_size=10))
        got = Routing(me, r).successor_list(first, rest)
        walk = [first, *rest]
        before_us = walk[:walk.index(me)] if me in walk else walk
        want = list(dict.fromkeys(before_us))[:r] or [me]
        assert got == want
        assert len(got) == len(set(got)) <= r

    @given(rings, rs, st.data())
    def test_successor_list__of_a_converged_ring_is_the_next_r_nodes(self, ring, r, data):
        state = ideal_state(ring, r)
        me = data.draw(st.sampled_from(ring))
        line = ordered(ring)
        i = line.index(me)
        want = [line[(i + k) % len(line)] for k in range(1, min(r, len(line) - 1) + 1)] or [me]
        assert state[me].successors == want
        # rebuilt the way stabilize does it, from the successor's own list
        routing = Routing(me, r)
        routing.take_successors(want[0], state[want[0]].successors)
        assert routing.successors == want

    @given(rings, rs, st.data())
    def test_drop__forgets_the_dead_keeps_the_order_never_empties(self, ring, r, data):
        state = ideal_state(ring, r)
        me = data.draw(st.sampled_from(ring))
        routing = Routing(me, r)
        routing.adopt(state[me])
        dead = data.draw(st.sampled_from(ring))
        before = list(routing.successors)
        routing.drop(dead)
        assert dead not in routing.fingers
        assert routing.successors
        if dead in before and before != [dead]:
            assert routing.successors == [s for s in before if s != dead]
        elif before == [dead]:
            fallback = state[me].predecessor if state[me].predecessor != dead else None
            assert routing.successors == [fallback or me]

    @given(rings, rs, st.data())
    def test_splice__a_leaver_is_replaced_by_its_own_list(self, ring, r, data):
        # The predecessor of a node that leaves gracefully ends with the list it would have
        # in the ring without the leaver.
        if len(ring) < 2:
            return
        state = ideal_state(ring, r)
        leaver = data.draw(st.sampled_from(ring))
        p = state[leaver].predecessor
        routing = Routing(p, r)
        routing.adopt(state[p])
        routing.splice(leaver, state[leaver].successors)
        rest = [a for a in ring if a != leaver]
        assert routing.successors == ideal_state(rest, r)[p].successors
        assert leaver not in routing.fingers

    def test_splice__of_a_node_not_in_the_list_changes_nothing(self):
        ring = [address(i) for i in range(1, 10)]
        state = ideal_state(ring, 2)
        me = ring[0]
        routing = Routing(me, 2)
        routing.adopt(state[me])
        stranger = next(a for a in ring if a not in state[me].successors and a != me)
        routing.splice(stranger, ring)
        assert routing.successors == state[me].successors


class TestChanges:
    def test_changes__successor_and_predecessor_changes_are_told_once(self):
        a, b, c = address(1), address(2), address(3)
        heard = []
        routing = Routing(a, 3, lambda kind, old, new: heard.append((kind, old, new)))
        routing.set_successors([b, c])
        routing.set_successors([b])              # same first successor: no event
        routing.set_predecessor(c)
        routing.set_predecessor(c)               # no change: no event
        routing.set_predecessor(a)               # ourselves: means none
        routing.set_fingers([b])
        routing.set_fingers([b])
        assert heard == [("successor", a, b), ("predecessor", None, c), ("predecessor", c, None),
                         ("fingers", [], [b])]

    def test_predecessor_answered__suspects_a_silent_one_once_and_clears_on_an_answer(self):
        a, b = address(1), address(2)
        heard = []
        routing = Routing(a, 3, lambda kind, old, new: heard.append(kind))
        routing.set_predecessor(b)
        routing.predecessor_answered(b, alive=False)
        routing.predecessor_answered(b, alive=False)
        assert routing.predecessor_suspected
        routing.predecessor_answered(address(9), alive=True)  # not ours: ignored
        assert routing.predecessor_suspected
        routing.predecessor_answered(b, alive=True)
        assert not routing.predecessor_suspected
        assert heard == ["predecessor", "predecessor_suspected"]

    def test_routing__needs_a_successor_list_of_one_at_least(self):
        with pytest.raises(ValueError):
            Routing(address(1), 0)


class TestNextHop:
    @given(rings, rs, st.data())
    def test_is_ours__in_a_converged_ring_is_the_true_owner(self, ring, r, data):
        state = ideal_state(ring, r)
        key = data.draw(keys)
        for node in ring:
            assert state[node].is_ours(key) == (owner(ring, key) == node)

    @given(rings, rs, st.data())
    def test_next_hop__walks_to_the_true_owner_closer_each_step(self, ring, r, data):
        state = ideal_state(ring, r)
        key = data.draw(keys)
        node = data.draw(st.sampled_from(ring))
        for _ in range(len(ring) + 1):
            done, hop = state[node].next_hop(key)
            if done:
                assert hop == owner(ring, key)
                return
            assert in_open(hop.id, node.id, key)  # strictly closer to the key
            node = hop
        raise AssertionError("the lookup went round the ring")

    @given(rings, rs, st.data())
    def test_closest_preceding_node__is_the_closest_known_live_node_before_the_key(
            self, ring, r, data):
        state = ideal_state(ring, r)
        me = data.draw(st.sampled_from(ring))
        key = data.draw(keys)
        avoid = set(data.draw(st.lists(st.sampled_from(ring), max_size=4)))
        suspects = set(data.draw(st.lists(st.sampled_from(ring), max_size=4)))
        routing = state[me]
        known = [a for a in (*routing.fingers, *routing.successors)
                 if a not in avoid and a not in suspects and in_open(a.id, me.id, key)]
        want = max(known, key=lambda a: distance(me.id, a.id), default=me)
        assert routing.closest_preceding_node(key, avoid, suspects.__contains__) == want

    @given(rings, st.data())
    def test_next_hop__skips_suspects_while_a_live_looking_successor_is_left(self, ring, data):
        if len(ring) < 3:
            return
        state = ideal_state(ring, 3)
        me = data.draw(st.sampled_from(ring))
        first, second = state[me].successors[:2]
        assert state[me].next_hop(first.id) == (True, first)
        # a suspected first successor is taken for dead: its keys fall to the second
        assert state[me].next_hop(first.id, suspected={first}.__contains__) == (True, second)
        # with every successor suspected, the first one not known dead is still asked
        everyone = set(state[me].successors).__contains__
        assert state[me].next_hop(first.id, {first}, everyone) == (True, second)

    def test_next_hop__with_every_successor_dead_never_claims_the_key(self):
        ring = [address(i) for i in range(1, 13)]
        state = ideal_state(ring, 3)
        checked = failed = 0
        for me in ring:
            routing = state[me]
            dead = set(routing.successors)
            for i in range(60):
                key = (me.id + (i + 1) * (RING // 61)) % RING
                if routing.is_ours(key):
                    continue
                try:
                    done, hop = routing.next_hop(key, dead)
                except LookupFailed:
                    failed += 1
                    continue
                assert not done, "a node with no live successor named an owner"
                assert hop not in dead and hop != me
                checked += 1
        assert checked > 300, (checked, failed)
        assert failed > 0  # keys just past the dead successors: no finger precedes them
