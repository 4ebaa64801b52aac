"""A running full member whose address changes starts again in place (``Local.relocate``,
docs/nat.md, "A full member that moves"): real nodes on loopback TCP, one channel busy all
the while. The node is the same object, its chat service and user too (the same keys,
database, outbox and channels); only its address, id and position change. At a new port
of 127.0.0.1 the dial-back reaches it and it is a full member again; listening on
127.0.0.2 while its calls leave from 127.0.0.1, the helpers dial 127.0.0.1 and find
nobody: it is a client through a relay. Either way its nick names the new address,
private messages go both ways, and every channel message acknowledged during the move
is shown once everywhere, at the mover too.
"""

from __future__ import annotations

import asyncio
import collections

import pytest

from core import events as ev
from core.chord import Address
from core.chord.relay import RelayedAddress
from core.chord.testing import wait_until
from tests.support.clients import LoopRing, Node, loop_ring


async def _ring(ring: LoopRing) -> tuple[list[Node], Node]:
    fulls = [await ring.add(nick) for nick in ("ann", "bob", "cy", "mo")]
    await wait_until(lambda: all(len({s.address for s in n.node.successors()}) == 3
                                 for n in fulls), 30, what="the ring of four")
    for n in fulls:
        await n.user.join("busy")
    return fulls[:3], fulls[3]


async def _chatter(n: Node, texts: list[str], stop: asyncio.Event) -> None:
    """Send to #busy every 50 ms until ``stop``; ``texts`` gets each acknowledged one."""
    i = 0
    while not stop.is_set():
        text = f"{n.nick}-{i}"
        await n.user.send("busy", text)   # returns once the maintainer acknowledged it
        texts.append(text)
        i += 1
        await asyncio.sleep(0.05)


async def _whois_names(asker: Node, n: Node, timeout: float = 30.0) -> ev.Whois:
    """``asker``'s whois of ``n``'s nick once it names ``n``'s address (as it is now)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        whois = await asker.user.whois(n.nick)
        if whois.address == str(n.node.address):
            return whois
        assert asyncio.get_running_loop().time() < deadline, (whois, n.node.address)
        await asyncio.sleep(0.1)


def _once_each(n: Node, texts: list[str]) -> list[str]:
    counts = collections.Counter(n.texts("busy"))
    return ([f"{n.nick} missed {t}" for t in texts if counts[t] == 0]
            + [f"{n.nick} showed {t} {c} times" for t, c in counts.items() if c > 1])


@pytest.mark.parametrize("listen, member", [("127.0.0.1", True), ("127.0.0.2", False)],
                         ids=["member-again", "client-now"])
async def test_moving__a_running_full_member_starts_again_at_its_new_address(listen, member):
    async with loop_ring() as ring:
        others, mo = await _ring(ring)
        ann, bob, _cy = others
        await ann.user.msg("mo", "before")
        await wait_until(lambda: mo.private("ann") == ["before"], 30, what="the first PM")
        old, user = mo.node.address, mo.user
        stop = asyncio.Event()
        acked: list[str] = []
        chatter = asyncio.create_task(_chatter(ann, acked, stop))
        await wait_until(lambda: len(acked) >= 3, 30, what="a busy channel")

        mo.node.check_reachability = True   # the fresh dial-back decides, as in the runtime
        entries = [s.address for s in mo.node.successors()]
        await mo.node.relocate(Address(listen, 0), entries)
        assert mo.user is user and mo.node.address != old
        assert (mo.node.client is None) == member, mo.node.address
        if member:
            assert mo.node.address.host == "127.0.0.1" and mo.node.reachability.reachable
        else:
            assert isinstance(mo.node.address, RelayedAddress)
            assert mo.node.reachability is not None and not mo.node.reachability.reachable
        moved = [e for e in mo.events if isinstance(e, ev.RingChange) and e.kind == "moved"]
        # (a client on a loaded machine may move on to another relay later: its own move)
        assert (moved[0].old, moved[0].new) == (str(old), str(mo.node.address))

        # its user takes the move up: a new record, its channels resumed, its mail
        await wait_until(lambda: mo.user.moved_count >= 1, 30, what="the move taken up")
        whois = await _whois_names(bob, mo)
        assert whois.address != str(old)
        await ann.user.msg("mo", "after")
        await mo.user.msg("bob", "from-the-new-place")
        await mo.user.send("busy", "mo-after")
        await wait_until(lambda: mo.private("ann") == ["before", "after"]
                         and bob.private("mo") == ["from-the-new-place"], 30,
                         what="private messages both ways")
        await wait_until(lambda: all("mo-after" in n.texts("busy") for n in others), 30,
                         what="mo's channel message")
        stop.set()
        await chatter
        await wait_until(lambda: all(not _once_each(n, acked) for n in [*others, mo]), 30,
                         what="every acknowledged message at every member")
        await asyncio.sleep(0.5)   # late duplicates would come now
        assert [p for n in [*others, mo] for p in _once_each(n, acked)] == []
        # the old position is dead to the ring: nobody keeps it as a neighbour
        await wait_until(lambda: all(old not in [s.address for s in n.node.successors()]
                                     for n in others), 30, what="the old address dropped")
        for n in others:   # and the keys it owned are served: every nick still resolves
            assert (await mo.user.whois(n.nick)).address == str(n.node.address)


async def test_moving__a_member_alone_in_its_ring_starts_a_new_ring_at_its_new_address():
    async with loop_ring() as ring:
        solo = await ring.add("solo")
        await solo.user.join("alone")
        await solo.user.send("alone", "before")
        old = solo.node.address
        await solo.node.relocate(Address("127.0.0.1", 0), [])   # it knows nobody
        assert solo.node.address != old and solo.node.client is None
        assert solo.node.successor().address == solo.node.address   # a ring of its own
        await wait_until(lambda: solo.user.moved_count == 1, 30, what="the move taken up")
        await _whois_names(solo, solo)
        # what it kept at its old position is its own again: the channel goes on
        await solo.user.send("alone", "after")
        await wait_until(lambda: solo.texts("alone") == ["before", "after"], 30,
                         what="the channel after the move")
