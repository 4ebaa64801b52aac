"""Rings on the simulated network and its virtual clock: the real node code, no sockets."""

from __future__ import annotations

import asyncio
import functools
import random

from core.chord import Address, Local
from core.chord.sim import SimNetwork, run
from tests.ring import FAST, converged, ring_problems, true_owner, wait_until


def virtual_time(test):
    """Run an ``async def`` test on the simulator's virtual clock (``sim.run``)."""
    @functools.wraps(test)
    def on_virtual_time(*args, **kwargs):
        return run(test(*args, **kwargs))
    return on_virtual_time


def network(**settings) -> SimNetwork:
    """A network with a little latency, so that calls interleave as they would on a LAN."""
    return SimNetwork(**{"latency": 0.001, "seed": 1, "timeout": FAST["timeout"], **settings})


def sim_node(net: SimNetwork, host: str, bootstrap: Local | None = None,
             **settings) -> Local:
    return Local(Address(host, 0), bootstrap.address if bootstrap else None,
                 transport=net.transport(), **settings)


def host(i: int) -> str:
    return f"10.7.{i // 250}.{i % 250 + 1}"


_hosts = iter(range(1_000_000))


async def start_node(net: SimNetwork, bootstrap: Local | None = None, **settings) -> Local:
    """A node on ``net`` with the FAST timers, started."""
    node = sim_node(net, host(next(_hosts)), bootstrap, **{**FAST, **settings})
    await node.start()
    return node


async def start_ring(net: SimNetwork, n: int, concurrent: bool = False,
                     **settings) -> list[Local]:
    """``n`` nodes joined through the first at once, or one by one through different members."""
    first = await start_node(net, **settings)
    if concurrent:
        rest = list(await asyncio.gather(*(start_node(net, first, **settings)
                                           for _ in range(n - 1))))
    else:
        rest = []
        for i in range(n - 1):
            rest.append(await start_node(net, ([first] + rest)[i // 2 if rest else 0],
                                         **settings))
    return [first, *rest]


async def wait_converged(nodes: list[Local], timeout: float = 60.0) -> None:
    try:
        await wait_until(lambda: converged(nodes), timeout, what="the ring to converge")
    except AssertionError:
        raise AssertionError("\n".join(ring_problems(nodes)[:20])) from None


async def assert_lookups_agree(nodes: list[Local], keys_per_node: int, seed: int) -> int:
    """Every live node looks up random keys (the nodes at once) and finds the true owner;
    returns how many lookups were checked."""
    rng = random.Random(seed)
    live = [n for n in nodes if n.running]
    ids = [n.id for n in live]

    async def from_node(node: Local, keys: list[int]) -> int:
        for key in keys:
            owner, hops = await node.find_successor(key)
            assert owner.id == true_owner(ids, key), f"{node} routed {key:x} to {owner}"
            assert 0 <= hops <= len(live)
        return len(keys)

    plans = [(node, [rng.getrandbits(160) for _ in range(keys_per_node)]) for node in live]
    checked = sum(await asyncio.gather(*(from_node(node, keys) for node, keys in plans)))
    assert checked == len(live) * keys_per_node
    return checked


async def stop_all(nodes: list[Local]) -> None:
    await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)
