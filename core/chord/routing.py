"""What a node knows of the ring, and how it routes on it (Chord §4.2–4.3, Zave 2017).

Pure structures, no I/O: the successor list, the predecessor and the finger table, and
the routing decisions taken from them (``is_ours``, ``next_hop``,
``closest_preceding_node``). The node feeds in what its calls learn; the simulator
builds a converged ring's state directly. Both compute fingers with ``FingerTable``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from .address import Address
from .errors import LookupFailed
from .ids import RING, M, finger_start, in_half_open

Suspected = Callable[[Address], bool]
OnChange = Callable[[str, object, object], None]


def _never(address: Address) -> bool:
    return False


def _ignore(kind: str, old: object, new: object) -> None:
    pass


class FingerTable:
    """Builds the distinct fingers of node ``n``: finger i is successor(n + 2**i) (§4.2).

    Fingers are listed once each, for rising i, up to the last one before the starts come
    round to ``n`` itself. A start that lies in (n, last finger found] has that finger
    as its successor and needs no lookup, so a ring of N nodes costs about log2 N lookups,
    not M. Drive it with ``next_start`` and ``found`` (a lookup in between), or ``build``
    it when successors are known.
    """

    def __init__(self, n: Address) -> None:
        self.n = n
        self.fingers: list[Address] = []
        self._i = 0
        self._last: Address | None = None  # successor of the start looked up last
        self._complete = False

    def next_start(self) -> int | None:
        """The next start whose successor must be looked up; None when the table is done."""
        n, last = self.n.id, self._last
        while not self._complete and self._i < M:
            start = finger_start(n, self._i)
            self._i += 1
            if last is None or not in_half_open(start, n, last.id):
                return start
        self._complete = True
        return None

    def found(self, owner: Address) -> None:
        """Record ``owner``, the successor of the start ``next_start`` gave last."""
        if owner == self.n:
            self._complete = True  # past the last node: every later start is ours too
            return
        self._last = owner
        if owner not in self.fingers:
            self.fingers.append(owner)

    @classmethod
    def build(cls, n: Address, successor_of: Callable[[int], Address]) -> list[Address]:
        """The fingers of ``n`` on a ring where ``successor_of(key)`` is known."""
        table = cls(n)
        while (start := table.next_start()) is not None:
            table.found(successor_of(start))
        return table.fingers


class Routing:
    """One node's view of the ring: successor list (r entries), predecessor, fingers.

    The one owner of that state: read the attributes, change them only through the
    methods. ``on_change(kind, old, new)`` hears every change of the first successor
    ("successor"), of the predecessor ("predecessor"), of the fingers ("fingers") and a
    predecessor that stopped answering ("predecessor_suspected", predecessor, None).
    """

    def __init__(self, me: Address, r: int, on_change: OnChange | None = None, *,
                 successors: Iterable[Address] = (), predecessor: Address | None = None,
                 fingers: Iterable[Address] = ()) -> None:
        if r < 1:
            raise ValueError("the successor list needs at least one entry")
        self.me = me
        self.r = r
        self.successors: list[Address] = list(successors) or [me]
        self.predecessor = predecessor
        self.predecessor_suspected = False
        self.fingers: list[Address] = list(fingers)
        self.notifiers: list[Address] = []   # who said lately we are their successor
        # a live node between us and our successor that we cannot reach (our successor's
        # predecessor, by its word; a firewall between the two of us): the owner of the keys
        # up to its id, so lookups name it there (calls to it take a detour, detour.py)
        self.hidden: Address | None = None
        self._on_change = on_change or _ignore

    def adopt(self, other: Routing) -> None:
        """Take ``other``'s successors, predecessor and fingers (copies), with no events."""
        self.successors = list(other.successors)
        self.predecessor = other.predecessor
        self.predecessor_suspected = False
        self.fingers = list(other.fingers)

    # -- the successor list ----------------------------------------------------------------

    @property
    def successor(self) -> Address:
        return self.successors[0]

    def successor_list(self, first: Address, rest: Iterable[Address]) -> list[Address]:
        """``([first] + rest)[:r]``, cut where it comes back round to us, without repeats."""
        out: list[Address] = []
        for a in (first, *rest):
            if a == self.me:
                break
            if a not in out:
                out.append(a)
                if len(out) == self.r:
                    break
        return out or [self.me]

    def set_successors(self, successors: list[Address]) -> None:
        old = self.successors[0]
        self.successors = successors
        if old != successors[0]:
            self._on_change("successor", old, successors[0])

    def take_successors(self, first: Address, rest: Iterable[Address]) -> None:
        """``L := ([first] + first.L)[:r]`` (Zave 2017: join and stabilize)."""
        self.set_successors(self.successor_list(first, rest))

    def drop(self, dead: Address) -> None:
        """Forget ``dead`` as successor and finger. With no successor left, the
        predecessor is the last node we know of (stabilize checks it); then ourselves."""
        rest = [s for s in self.successors if s != dead]
        self.fingers = [f for f in self.fingers if f != dead]
        self.notifiers = [n for n in self.notifiers if n != dead]
        if not rest and self.predecessor is not None and self.predecessor != dead:
            rest = [self.predecessor]
        self.set_successors(rest or [self.me])

    def notified_by(self, node: Address) -> None:
        """Remember that ``node`` notified us (it takes us for its successor), the last
        2r of them: a graceful leave tells each, not only the predecessor. While joins
        settle, a node can point at us without being our predecessor (another joiner
        notified us after it); told nothing, it would be left alone when we go."""
        if node == self.me:
            return
        if node in self.notifiers:
            self.notifiers.remove(node)
        self.notifiers.append(node)
        del self.notifiers[:-2 * self.r]

    def splice(self, leaver: Address, theirs: Iterable[Address]) -> None:
        """A successor leaves gracefully (ToN'03 §IV.E.4): its own list takes its place."""
        self.notifiers = [n for n in self.notifiers if n != leaver]
        if leaver not in self.successors:
            return
        i = self.successors.index(leaver)
        candidates = [*self.successors[:i], *(s for s in theirs if s != leaver),
                      *self.successors[i + 1:]]
        self.fingers = [f for f in self.fingers if f != leaver]
        successors = (self.successor_list(candidates[0], candidates[1:]) if candidates
                      else [self.me])
        if successors == [self.me] and self.predecessor not in (None, leaver):
            successors = [self.predecessor]   # as ``drop``: the last node we know of
        self.set_successors(successors)

    def predecessor_leaves(self, leaver: Address, heir: Address | None) -> None:
        """Our predecessor leaves gracefully and names ``heir`` to take its place. Alone by
        our successor list (a leave spliced us first), the heir is our successor too."""
        self.notifiers = [n for n in self.notifiers if n != leaver]
        if self.predecessor != leaver:
            return
        self.set_predecessor(heir)
        if self.successor == self.me and self.predecessor is not None:
            self.set_successors([self.predecessor])

    # -- the predecessor -------------------------------------------------------------------

    def set_predecessor(self, new: Address | None) -> None:
        old = self.predecessor
        if new == self.me:
            new = None
        if new == old:
            return
        self.predecessor = new
        self.predecessor_suspected = False
        self._on_change("predecessor", old, new)

    def predecessor_answered(self, predecessor: Address, alive: bool) -> None:
        """Record a ping of ``predecessor``, if it still is ours: a silent one is suspected."""
        if predecessor != self.predecessor or self.predecessor_suspected != alive:
            return
        self.predecessor_suspected = not alive
        if not alive:
            self._on_change("predecessor_suspected", predecessor, None)

    # -- fingers ---------------------------------------------------------------------------

    def set_fingers(self, fingers: list[Address]) -> None:
        if fingers != self.fingers:
            old, self.fingers = self.fingers, fingers
            self._on_change("fingers", old, fingers)

    # -- routing (§4.3) --------------------------------------------------------------------

    def is_ours(self, key: int) -> bool:
        """True when ``key`` lies in (predecessor, me]; a node alone owns everything."""
        if self.predecessor is None:
            return self.successors[0] == self.me
        return in_half_open(key, self.predecessor.id, self.me.id)

    def next_hop(self, key: int, avoid: Collection[Address] = frozenset(),
                 suspected: Suspected = _never) -> tuple[bool, Address]:
        """(True, owner) if we know the owner of ``key``, else (False, the next node to ask).

        Skips nodes in ``avoid`` (known dead) and, while a live-looking one is left, the
        ``suspected``. Raises LookupFailed when every successor is avoided and no finger
        precedes the key: claiming the key then would be a wrong answer nobody could catch.
        """
        if self.is_ours(key):
            return True, self.me
        hidden = self.hidden
        if hidden is not None and hidden not in avoid and in_half_open(key, self.me.id,
                                                                       hidden.id):
            return True, hidden
        successor = next((s for s in self.successors
                          if s not in avoid and not suspected(s)), None)
        if successor is None:
            successor = next((s for s in self.successors if s not in avoid), None)
        if successor is None:
            # (n, n] would make us the owner of every key: route on by a finger instead.
            closest = self.closest_preceding_node(key, avoid, suspected)
            if closest == self.me:
                raise LookupFailed(f"{self.me} knows no live successor")
            return False, closest
        if in_half_open(key, self.me.id, successor.id):
            return True, successor
        closest = self.closest_preceding_node(key, avoid, suspected)
        if closest == self.me:
            return True, successor
        return False, closest

    def closest_preceding_node(self, key: int, avoid: Collection[Address] = frozenset(),
                               suspected: Suspected = _never) -> Address:
        """The known node that most closely precedes ``key`` (§4.3), or ``me``."""
        # Once per hop on every node a lookup passes: plain arithmetic on the clockwise
        # distance, the cheap test first. Strictly inside (n, key) means
        # 0 < d < distance(n, key), where (n, n) is the whole ring but n.
        me = self.me.id
        limit = (key - me) % RING or RING
        best, best_distance = self.me, 0
        for node in (*self.fingers, *self.successors):
            d = (node.id - me) % RING
            if best_distance < d < limit and node not in avoid and not suspected(node):
                best, best_distance = node, d
        return best
