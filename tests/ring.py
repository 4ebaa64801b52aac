"""Test helpers for rings of real nodes: start them, wait on conditions, check the invariant."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from core.chord import Address, Local
from core.chord.ids import in_half_open, in_open

FAST = dict(stabilize_interval=0.05, fix_fingers_interval=0.1,
            check_predecessor_interval=0.1, timeout=1.0)


async def wait_until(condition: Callable[[], bool], timeout: float = 30.0,
                     interval: float = 0.02, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds saying ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def start_node(bootstrap: Local | None = None, **settings) -> Local:
    node = Local(Address("127.0.0.1", 0), bootstrap.address if bootstrap else None,
                 **{**FAST, **settings})
    await node.start()
    return node


async def start_ring(n: int, concurrent: bool = False, **settings) -> list[Local]:
    first = await start_node(**settings)
    if concurrent:
        rest = await asyncio.gather(*(start_node(first, **settings) for _ in range(n - 1)))
    else:
        rest = []
        for i in range(n - 1):
            # join through different members, as real users would
            rest.append(await start_node(([first] + rest)[i // 2 if rest else 0], **settings))
    return [first, *rest]


async def stop_all(nodes: list[Local]) -> None:
    with contextlib.suppress(Exception):
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)


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
