"""Test doubles for the Chord layer, shipped beside it (as ``trio.testing`` is): rings of
real nodes on loopback TCP or on the simulated network (``core.chord.sim``), waiting on
conditions, and the checks of a ring's shape.

    @virtual_time                                   # the simulator's virtual clock
    async def test_something():
        nodes = await start_ring(8, network=network())
        try:
            await wait_converged(nodes)
        finally:
            await stop_all(nodes)

``start_node`` and ``start_ring`` start nodes on loopback TCP, or on ``network`` (a
``SimNetwork``) when given one. ``wait_until`` counts on the running loop's clock, so under
the virtual clock a condition that never holds costs virtual seconds, not real ones.

Imports nothing of the chat above; the product never imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import Callable

from . import Address, Local
from .ids import in_half_open, in_open
from .sim import SimNetwork, run

FAST = dict(stabilize_interval=0.05, fix_fingers_interval=0.1,
            check_predecessor_interval=0.1, timeout=1.0)


# -- running and waiting --------------------------------------------------------------------

def virtual_time(test=None, *, timeout: float = 600.0):
    """Run an ``async def`` test on a fresh virtual-clock loop (``sim.run``), failing after
    ``timeout`` virtual seconds: ``@virtual_time`` or ``@virtual_time(timeout=1200)``."""
    def wrap(fn):
        @functools.wraps(fn)
        def on_virtual_time(*args, **kwargs):
            return run(asyncio.wait_for(fn(*args, **kwargs), timeout))
        return on_virtual_time
    return wrap if test is None else wrap(test)


async def wait_until(condition: Callable[[], object], timeout: float = 30.0,
                     interval: float = 0.01, what: str = "condition") -> None:
    """Poll ``condition`` every ``interval`` s until it holds; fail after ``timeout`` s
    saying ``what``. Both count on the running loop's clock (virtual under the simulator)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


# -- starting and stopping nodes ------------------------------------------------------------

def network(**settings) -> SimNetwork:
    """A network with a little latency, so that calls interleave as they would on a LAN."""
    return SimNetwork(**{"latency": 0.001, "seed": 1, "timeout": FAST["timeout"], **settings})


def sim_node(net: SimNetwork, host: str, bootstrap: Local | None = None,
             **settings) -> Local:
    """A node at ``host`` on ``net``, not started."""
    return Local(Address(host, 0), bootstrap.address if bootstrap else None,
                 transport=net.transport(), **settings)


def host(i: int) -> str:
    """The ``i``-th simulated host address."""
    return f"10.7.{i // 250}.{i % 250 + 1}"


_hosts = iter(range(1_000_000))


async def start_node(bootstrap: Local | None = None, network: SimNetwork | None = None,
                     **settings) -> Local:
    """A node with the FAST timers, started: on loopback TCP, or on ``network``."""
    settings = {**FAST, **settings}
    if network is None:
        node = Local(Address("127.0.0.1", 0), bootstrap.address if bootstrap else None,
                     **settings)
    else:
        node = sim_node(network, host(next(_hosts)), bootstrap, **settings)
    await node.start()
    return node


async def start_ring(n: int, concurrent: bool = False, network: SimNetwork | None = None,
                     **settings) -> list[Local]:
    """``n`` nodes (on loopback TCP, or on ``network``) joined through the first at once, or
    one by one through different members, as real users would."""
    first = await start_node(network=network, **settings)
    if concurrent:
        rest = list(await asyncio.gather(*(start_node(first, network, **settings)
                                           for _ in range(n - 1))))
    else:
        rest = []
        for i in range(n - 1):
            rest.append(await start_node(([first] + rest)[i // 2 if rest else 0], network,
                                         **settings))
    return [first, *rest]


async def stop_all(nodes: list[Local]) -> None:
    with contextlib.suppress(Exception):
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)


# -- what a ring should look like -----------------------------------------------------------

def true_owner(ids: list[int], key: int) -> int:
    """The id of the first node at or after ``key``, from the sorted ids."""
    ordered = sorted(ids)
    return next((i for i in ordered if i >= key), ordered[0])


def ring_problems(nodes: list[Local]) -> list[str]:
    """What is wrong with the ring: empty when it is one ordered cycle with right pointers
    and every successor list ordered, free of duplicates and of the right length."""
    live = sorted((n for n in nodes if n.running), key=lambda n: n.id)
    problems = []
    count = len(live)
    for i, node in enumerate(live):
        want_succ = live[(i + 1) % count].address
        want_pred = live[i - 1].address if count > 1 else None
        if node.successor().address != want_succ:
            problems.append(f"{node}: successor {node.successor().address} != {want_succ}")
        pred = node.predecessor()
        if (pred.address if pred else None) != want_pred:
            problems.append(f"{node}: predecessor {pred} != {want_pred}")
        listed = [s.address for s in node.successors()]
        want = [live[(i + k) % count].address for k in range(1, min(node.r, count - 1) + 1)]
        if count == 1:
            want = [node.address]
        if listed != want:
            problems.append(f"{node}: successor list {listed} != {want}")
    return problems


def converged(nodes: list[Local]) -> bool:
    return not ring_problems(nodes)


def owner_ok(nodes: list[Local], key: int, owner_id: int) -> bool:
    return owner_id == true_owner([n.id for n in nodes if n.running], key)


def owns(node: Local, key: int) -> bool:
    pred = node.predecessor()
    return pred is None or in_half_open(key, pred.id, node.id)


def invariant_problems(nodes: list[Local]) -> list[str]:
    """Zave's inductive invariant (CHORD-NOTES.md), which must hold at every moment, not
    only after convergence: (a) every live member has a live entry in its successor list;
    (b) at least min(r + 1, members) members are principal, i.e. no member's extended list
    [m, s1 … sr] skips over them."""
    live = [n for n in nodes if n.running]
    alive = {n.address for n in live}
    problems = []
    for n in live:
        if not any(s.address in alive for s in n.successors()):
            problems.append(f"{n}: no live entry in {[str(s.address) for s in n.successors()]}")
    extended = [[n.address] + [s.address for s in n.successors() if s.address in alive]
                for n in live]

    def skipped(x: Local) -> bool:
        for chain in extended:
            for a, b in zip(chain, chain[1:], strict=False):
                if a != b and x.address not in (a, b) and in_open(x.id, a.id, b.id):
                    return True
        return False

    principal = [x for x in live if not skipped(x)]
    want = min(min(n.r for n in live) + 1, len(live)) if live else 0
    if len(principal) < want:
        problems.append(f"only {len(principal)} principal members, want {want}")
    return problems


async def wait_converged(nodes: list[Local], timeout: float = 60.0) -> None:
    """Wait until the ring is one ordered cycle; fail listing what is wrong with it."""
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
