"""Reachability found by dial-backs (core/chord/reachability.py): the verdict, the helper's
bounds, and real nodes on loopback that are, or are not, reached."""

from __future__ import annotations

import asyncio

import pytest

from core.chord import Address, JoinError, Local, NotReachable, PeerUnreachable, RemoteError
from core.chord.reachability import (
    BOOTSTRAP_TRIES,
    MAX_PORTS,
    DialBacks,
    Verdict,
    check,
    pick_helpers,
)
from core.chord.testing import (
    FAST,
    converged,
    network,
    sim_node,
    start_node,
    start_ring,
    stop_all,
    virtual_time,
    wait_until,
)
from core.chord.testing import host as sim_host

NONCE = "ab" * 16


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def recording_dial(answer: bool = True):
    dialled: list[Address] = []

    async def dial(address: Address, nonce: str, timeout: float) -> bool:
        dialled.append(address)
        return answer
    return dial, dialled


# -- the helper's side --------------------------------------------------------------------------

class TestDialBacks:
    async def test_dial_backs__dial_only_the_callers_own_host(self):
        dial, dialled = recording_dial()
        helper = DialBacks(dial, Clock())
        reply = await helper.serve("198.18.0.9", [4000, 4001], NONCE)
        assert reply == {"seen": "198.18.0.9", "reached": [4000, 4001]}
        assert dialled == [Address("198.18.0.9", 4000), Address("198.18.0.9", 4001)]
        # an IPv4 caller on a dual-stack listen is dialled over IPv4
        await helper.serve("::ffff:198.18.0.7", [4000], NONCE)
        assert dialled[-1] == Address("198.18.0.7", 4000)

    async def test_dial_backs__refuse_what_a_stranger_should_not_make_us_do(self):
        dial, dialled = recording_dial()
        helper = DialBacks(dial, Clock())
        bad = [(None, [4000], NONCE, "where this call came from"),
               ("198.18.0.9", [4000] * 0, NONCE, "ports"),
               ("198.18.0.9", list(range(4000, 4001 + MAX_PORTS)), NONCE, "ports"),
               ("198.18.0.9", [True], NONCE, "integer"),
               ("198.18.0.9", [70000], NONCE, "integer"),
               ("198.18.0.9", "4000", NONCE, "ports"),
               ("198.18.0.9", [4000], "not hex", "nonce"),
               ("198.18.0.9", [4000], "ab" * 40, "nonce"),
               ("example.org", [4000], NONCE, "cannot dial back")]
        for host, ports, nonce, why in bad:
            with pytest.raises(RemoteError, match=why):
                await helper.serve(host, ports, nonce)
        assert dialled == []

    async def test_dial_backs__are_bounded_per_requesting_host(self):
        dial, dialled = recording_dial()
        clock = Clock()
        helper = DialBacks(dial, clock, per_host=3, window=60.0)
        for _ in range(3):
            await helper.serve("198.18.0.9", [4000], NONCE)
        with pytest.raises(RemoteError, match="too many"):
            await helper.serve("198.18.0.9", [4000], NONCE)
        await helper.serve("198.18.0.10", [4000], NONCE)   # another host has its own bound
        clock.now = 61.0
        await helper.serve("198.18.0.9", [4000], NONCE)     # and the window moves on
        assert len(dialled) == 5 and helper.refused == 1

    async def test_dial_backs__a_failing_dial_is_not_reached(self):
        async def dial(address, nonce, timeout):
            raise ConnectionRefusedError("refused")
        reply = await DialBacks(dial, Clock()).serve("198.18.0.9", [4000], NONCE)
        assert reply["reached"] == []

    def test_dial_backs__expect_only_their_own_nonces(self):
        helper = DialBacks(recording_dial()[0], Clock())
        nonce = helper.new_nonce()
        assert helper.expects(nonce) and not helper.expects(NONCE) and not helper.expects(7)
        helper.forget(nonce)
        assert not helper.expects(nonce)


# -- the asker's side ---------------------------------------------------------------------------

def helpers(n: int) -> list[Address]:
    return [Address(f"198.18.1.{i}", 4000) for i in range(1, n + 1)]


def asker(seen: str, reach: dict[Address, list[list[int]]]):
    """Helpers that see us at ``seen`` and reach the ports listed per round."""
    rounds: dict[Address, int] = {}

    async def ask(helper: Address, ports: list[int], nonce: str) -> dict:
        i = rounds.get(helper, 0)
        rounds[helper] = i + 1
        plan = reach.get(helper)
        if plan is None:
            raise RemoteError("not a helper")
        return {"seen": seen, "reached": plan[min(i, len(plan) - 1)]}
    return ask


WILDCARD = Address("0.0.0.0", 4000)


async def verdict_of(ask, hs, claimed=WILDCARD, advertised=False,
                     listen_port=4000) -> Verdict:
    return await check(ask, hs, DialBacks(recording_dial()[0], Clock()), claimed=claimed,
                       listen_port=listen_port, advertised=advertised, gap=0.0)


class TestCheck:
    async def test_check__reached_by_every_helper_in_both_rounds_is_reachable(self):
        hs = helpers(3)
        v = await verdict_of(asker("198.18.0.5", {h: [[4000]] for h in hs}), hs)
        assert v.reachable and v.address == Address("198.18.0.5", 4000)
        assert v.text() == "reachable at 198.18.0.5:4000 (dialled back by 3 of 3)"

    async def test_check__reached_by_nobody_is_a_client(self):
        hs = helpers(3)
        v = await verdict_of(asker("198.18.0.5", {h: [[]] for h in hs}), hs)
        assert not v.reachable and v.address is None
        assert v.text().startswith("not reachable from outside: client of the ring through "
                                   "relays (198.18.0.5:4000: dialled back by 0 of 3")

    async def test_check__one_helper_of_three_is_not_enough(self):
        hs = helpers(3)
        plan = {hs[0]: [[4000]], hs[1]: [[]], hs[2]: [[]]}
        assert not (await verdict_of(asker("198.18.0.5", plan), hs)).reachable
        plan[hs[1]] = [[4000]]
        assert (await verdict_of(asker("198.18.0.5", plan), hs)).reachable

    async def test_check__reached_at_first_but_not_in_the_second_round_is_a_client(self):
        hs = helpers(2)
        v = await verdict_of(asker("198.18.0.5", {h: [[4000], []] for h in hs}), hs)
        assert not v.reachable and "at first, then by only 0 of 2" in v.why

    async def test_check__helpers_that_fail_do_not_count(self):
        hs = helpers(3)
        v = await verdict_of(asker("198.18.0.5", {hs[0]: [[4000]]}), hs)
        assert not v.reachable
        v = await verdict_of(asker("198.18.0.5", {}), hs)
        assert not v.reachable and "none of the 3" in v.why

    async def test_check__a_helper_we_cannot_reach_at_all_is_not_asked(self):
        # non-transitive connectivity: a firewall between us and one helper of two; the
        # other reaches us, and the unreachable one says nothing either way
        hs = helpers(2)

        async def ask(helper, ports, nonce):
            if helper == hs[0]:
                raise PeerUnreachable(f"{helper} did not answer dial_back within 3 s")
            return {"seen": "198.18.0.5", "reached": ports}
        v = await verdict_of(ask, hs)
        assert v.reachable and v.address == Address("198.18.0.5", 4000)

        async def nobody(helper, ports, nonce):   # a NAT lets us out: helpers answer
            if helper == hs[0]:
                raise PeerUnreachable("no answer")
            return {"seen": "198.18.0.5", "reached": []}
        assert not (await verdict_of(nobody, hs)).reachable

        async def none_at_all(helper, ports, nonce):
            raise PeerUnreachable("no answer")
        v = await verdict_of(none_at_all, hs)
        assert not v.reachable and "none of the 2" in v.why

    async def test_check__an_advertised_address_on_another_host_is_taken_as_given(self):
        hs = helpers(2)
        claimed = Address("203.0.113.7", 4000)
        v = await verdict_of(asker("198.18.0.5", {h: [[]] for h in hs}), hs, claimed,
                             advertised=True)
        assert v.reachable and not v.checked and v.address == claimed
        assert "not checked" in v.text()

    async def test_check__an_advertised_address_on_the_seen_host_is_checked(self):
        hs = helpers(2)
        claimed = Address("198.18.0.5", 5000)
        v = await verdict_of(asker("198.18.0.5", {h: [[4000]] for h in hs}), hs, claimed,
                             advertised=True)
        assert not v.reachable and "is --advertise right?" in v.why

    async def test_check__a_lying_helper_naming_no_host_is_ignored(self):
        hs = helpers(2)

        async def ask(helper, ports, nonce):
            if helper == hs[0]:
                return {"seen": "not a host at all", "reached": ports}
            return {"seen": "198.18.0.5", "reached": ports}
        v = await verdict_of(ask, hs)
        assert not v.reachable

    async def test_check__nobody_to_ask_starts_a_ring_unchecked(self):
        v = await verdict_of(asker("x", {}), [], claimed=Address("198.18.0.5", 4000))
        assert v.reachable and not v.checked

    def test_pick_helpers__distinct_networks_then_hosts_never_ourselves(self):
        me = Address("93.184.216.1", 4000)
        same_net = [Address("93.184.216.2", 4000), Address("93.184.216.3", 4000)]
        other = Address("151.101.1.9", 4000)
        same_host = Address("93.184.216.2", 4001)
        got = pick_helpers([*same_net, same_host, me, other], [me], count=3)
        assert got == [same_net[0], other, same_net[1]]
        assert pick_helpers([me, same_host, same_host], [me]) == [same_host]


# -- real nodes on loopback ---------------------------------------------------------------------

class TestNodes:
    async def test_nodes__a_reachable_node_joins_with_its_verdict(self):
        first = await start_node()
        node = Local(Address("0.0.0.0", 0), first.address, check_reachability=True, **FAST)
        try:
            await node.start()
            assert node.reachability is not None and node.reachability.reachable
            assert node.address == node.reachability.address
            assert node.address.host == "127.0.0.1"
            assert node.reachability.text() == f"reachable at {node.address} (dialled back by " \
                                               "1 of 1)"
            await wait_until(lambda: converged([first, node]), what="a ring of two")
        finally:
            await stop_all([first, node])

    async def test_nodes__a_node_nobody_can_dial_does_not_join(self):
        first = await start_node()
        second = await start_node(first)
        await wait_until(lambda: converged([first, second]), what="a ring of two")
        # it listens on one port but claims another that nothing answers
        with _closed_port() as port:
            node = Local(Address("127.0.0.1", 0), first.address, check_reachability=True,
                         advertise=Address("127.0.0.1", port), **FAST)
            with pytest.raises(NotReachable) as refused:
                await node.start()
        verdict = refused.value.verdict
        assert not verdict.reachable and verdict.asked == 2 and verdict.reached == 0
        assert not node.running
        # it never entered anyone's view of the ring
        for n in (first, second):
            assert node.address not in [s.address for s in n.successors()]
            assert n.predecessor() is None or n.predecessor().address != node.address
        await stop_all([first, second])

    async def test_nodes__answer_dialled_only_for_their_own_nonce(self):
        first = await start_node()
        try:
            reply = await first.transport.call(first.address, "dialled", {"nonce": NONCE})
            assert reply == {"ok": False}
        finally:
            await stop_all([first])


class _closed_port:
    """A loopback port that nothing listens on (bound, never listening, while in use)."""

    def __enter__(self) -> int:
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


class TestSimulated:
    @virtual_time
    async def test_simulated__nodes_on_distinct_hosts_are_dialled_back_by_two(self):
        net = network()
        nodes = [await start_node(network=net)]
        for _ in range(3):
            nodes.append(await start_node(nodes[0], network=net, check_reachability=True))
            await wait_until(lambda: converged(nodes), what="one ring")
        last = nodes[-1].reachability
        assert last is not None and last.reachable and last.checked
        assert (last.reached, last.asked) == (3, 3)
        await stop_all(nodes)

    @virtual_time
    async def test_simulated__a_bootstrap_that_misses_the_first_calls_is_asked_again(self):
        """The first call of a start (the bootstrap's state) lost twice (a router that has
        just come up, a busy bootstrap) does not end the start; a bootstrap that never
        answers still does, after its tries."""
        net = network()
        nodes = await start_ring(3, network=net)
        timeout = FAST["timeout"]
        joiner = sim_node(net, sim_host(900), nodes[0], check_reachability=True, **FAST)
        net.cut(sim_host(900), nodes[0].address)
        asyncio.get_running_loop().call_later(1.5 * timeout, net.uncut)   # the 2nd is lost too
        started = asyncio.get_running_loop().time()
        await joiner.start()
        assert asyncio.get_running_loop().time() - started >= 2 * timeout
        assert joiner.reachability.reachable and joiner.reachability.asked == 3
        nodes.append(joiner)
        await wait_until(lambda: converged(nodes), what="one ring of four")
        # never answering: the start fails after BOOTSTRAP_TRIES calls, each timed out
        never = sim_node(net, sim_host(901), nodes[0], check_reachability=True, **FAST)
        net.cut(sim_host(901), nodes[0].address)
        started = asyncio.get_running_loop().time()
        with pytest.raises(JoinError, match=f"{BOOTSTRAP_TRIES} tries"):
            await never.start()
        assert asyncio.get_running_loop().time() - started >= BOOTSTRAP_TRIES * timeout
        assert not never.running
        await stop_all(nodes)


class TestBusyHelpers:
    """A helper over its bound for our host (other nodes there asked just before) refuses:
    it checked nothing, so it counts neither way."""

    @staticmethod
    def busy_for(busy: set, ask):
        async def wrapped(helper, ports, nonce):
            if helper in busy:
                # a real refusal, from a real DialBacks over its bound
                bounded = DialBacks(recording_dial()[0], Clock(), per_host=0)
                await bounded.serve("198.18.0.5", ports, nonce)
            return await ask(helper, ports, nonce)
        return wrapped

    async def test_check__busy_helpers_are_left_out_of_the_count(self):
        hs = helpers(3)
        ask = self.busy_for({hs[1], hs[2]}, asker("198.18.0.5", {h: [[4000]] for h in hs}))
        v = await verdict_of(ask, hs)
        assert v.reachable and v.checked and v.address == Address("198.18.0.5", 4000)
        # the one that checked and could not reach us still decides
        ask = self.busy_for({hs[1], hs[2]}, asker("198.18.0.5", {h: [[]] for h in hs}))
        assert not (await verdict_of(ask, hs)).reachable

    async def test_check__every_helper_busy_checks_nothing(self):
        hs = helpers(3)
        ask = self.busy_for(set(hs), asker("198.18.0.5", {h: [[]] for h in hs}))
        claimed = Address("198.18.0.5", 4000)
        v = await verdict_of(ask, hs, claimed=claimed)
        assert v.reachable and not v.checked and v.address == claimed and "busy" in v.why
        v = await verdict_of(ask, hs)   # a wildcard listen: nobody told us our address
        assert not v.reachable and "busy" in v.why
