"""Direct connections between client nodes, coordinated through their relays (DCUtR).

``holepunch.py`` has the mechanics (reusable ports, the simultaneous open, the messages);
this wires them into client mode. A client node opens every connection from one shared
local port (``TcpTransport.share_port``), so the port its relay sees it at is the port a
punch leaves from. When a client A calls a client B through B's relay, A tries, in the
background and at most once a minute per peer, for a direct connection:

1. A sends ``connect`` to B through B's relay (``relay.forward``). The relay puts in the
   address *it* sees A's connection at (``seen``) before it reaches B, and in B's answer
   the address it sees B at: each side dials only what B's relay vouches for, never what
   the other says of itself.
2. A measures that round trip, sends ``sync`` the same way, and starts its connects half
   a round trip later; B starts on receiving ``sync``. Both ``simultaneous_open`` from
   their shared port to the vouched address.
3. A connection made, each side adopts it (``TcpTransport.adopt``). A dialled the address
   B's relay vouched for B, so A's calls to B go there at once (``Local.punched``). B
   does not yet know that the far end is A (anyone can send ``connect`` naming A): it
   sends a nonce over the new connection (``check``) and asks A, through A's own relay
   (the address in A's signed record), whether A got it (``confirm``); only then do B's
   calls to A take the direct way too.

Behind a NAT that randomises ports the vouched port is not the one the SYN leaves from:
the connects time out (``TRIES`` × ``ATTEMPT_TIMEOUT``) and the pair stays relayed. A
direct connection that closes sends the calls back to the relay (``Local._relayed``).
Bounds: ``CONCURRENT`` punches at once, ``PENDING`` half-done ones remembered for
``PENDING_FOR`` seconds, ``NONCES`` check nonces kept; a responder answers ``sync`` only
for a ``connect`` seen at the same address.

**Busy.** A responder already running ``CONCURRENT`` punches answers ``connect`` or
``sync`` with ``{"ok": false, "busy": true}`` (a punch towards a randomising NAT holds a
slot for its ``TRIES`` connects, about 4.7 s). The initiator does not count that as a
failed punch (which is retried only after ``RETRY_AFTER``): it stops its own connects as
soon as a busy ``sync`` answer comes back and tries again after ``BUSY_WAITS`` seconds
(1, 2, 4), as it does when it is itself at ``CONCURRENT`` (at most ``PENDING`` punches
wait so). Before, the responder let the ``connect`` through and silently refused the
``sync``; the initiator's SYNs met a router that had not been opened, and the pair stayed
relayed for a minute (tests/net/test_nat.py, intermittently).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket

from .address import Address, AddressError
from .errors import RemoteError, RpcError
from .holepunch import (
    KIND,
    Coordinator,
    PunchError,
    close_quietly,
    connect_message,
    parse,
    simultaneous_open,
    sync_message,
)
from .relay import FORWARD, PUNCH, RelayedAddress, answer, reachable

log = logging.getLogger(__name__)

RETRY_AFTER = 60.0   # seconds before a failed (or lost) direct connection is tried again
CONCURRENT = 4       # punches at once, either side
PENDING = 64         # responders' half-done punches remembered ...
PENDING_FOR = 10.0   # ... this long
NONCES = 64          # check nonces kept by an initiator
BUSY_WAITS = (1.0, 2.0, 4.0)   # seconds before trying again a punch a busy side put off


class Busy(PunchError):
    """The peer (or this node) runs ``CONCURRENT`` punches already: try again later."""


class Punching:
    """A client node's hole punches, as initiator and as responder."""

    def __init__(self, node) -> None:
        self.node = node
        self._tried: dict[str, float] = {}      # client id -> when we last tried
        self._pending: dict[str, tuple[Address, float]] = {}   # client id -> (seen, when)
        self._nonces: dict[str, float] = {}
        self._running = 0
        self._waiting = 0    # punches waiting for a busy side (``BUSY_WAITS``)
        self.direct = 0      # punches that ended in a direct connection (either side)
        self.failed = 0
        self.busy = 0        # punches put off because a side was busy
        node.register_command(PUNCH, self.serve)

    # -- the initiator -------------------------------------------------------------------------

    def _possible(self) -> bool:
        node = self.node
        return (node.running and isinstance(node.address, RelayedAddress)
                and getattr(node.transport, "share_port", False))

    def want(self, target: RelayedAddress) -> None:
        """A call to ``target`` went through its relay: try for a direct connection, in
        the background (once per ``RETRY_AFTER`` per peer)."""
        if not self._possible() or target.client == self.node.address.client:
            return
        now = _now()
        if target.client in self.node.punched or target.client in self._pending \
                or (self._running >= CONCURRENT and self._waiting >= PENDING) \
                or now - self._tried.get(target.client, -RETRY_AFTER) < RETRY_AFTER:
            return
        self._tried[target.client] = now
        if len(self._tried) > 4 * PENDING:
            for client, at in list(self._tried.items()):
                if now - at >= RETRY_AFTER:
                    del self._tried[client]
        self.node._background.spawn(self.punch(target))

    async def punch(self, target: RelayedAddress) -> bool:
        """Try a direct connection to client ``target``; True if its calls now take it. A
        side that is busy puts it off (``BUSY_WAITS``), the others end it."""
        busy: Busy | None = None
        for wait in (0.0, *BUSY_WAITS):
            if busy is not None:
                self.busy += 1
                log.info("a direct connection to %s is put off %.0f s: %s", target, wait, busy)
                self._waiting += 1
                try:
                    await asyncio.sleep(wait)   # a back-off, not a wait for a condition
                finally:
                    self._waiting -= 1
                if target.client in self.node.punched or not self._possible():
                    return target.client in self.node.punched
            if self._running >= CONCURRENT:
                busy = Busy(f"this node runs {CONCURRENT} punches already")
                continue
            self._running += 1
            try:
                return await self._punch(target)
            except Busy as e:
                busy = e
            except (RpcError, PunchError, AddressError, OSError, TimeoutError) as e:
                log.info("no direct connection to %s: %s", target, e)
                self.failed += 1
                return False
            finally:
                self._running -= 1
        log.info("no direct connection to %s: %s, %d times", target, busy, len(BUSY_WAITS) + 1)
        self.failed += 1
        return False

    async def _punch(self, target: RelayedAddress) -> bool:
        me = str(self.node.address)
        clock = Coordinator()
        clock.sent_connect()
        said = self.node.client.seen or target.relay   # ours, for the record: not dialled
        reply = await self._via_relay(target, {**connect_message([said]), "from": me})
        clock.got_connect()
        peer = _vouched(reply)
        if self.node.transport.is_connected(peer):   # it punched us meanwhile: that one
            self.node.punched[target.client] = peer
            return True
        port = self._port(peer)
        sync = asyncio.ensure_future(self._via_relay(target, {**sync_message(), "from": me}))
        opening = None
        try:
            await asyncio.sleep(clock.delay_after_sync())
            opening = asyncio.ensure_future(simultaneous_open(port, peer))
            await asyncio.wait({opening, sync}, return_when=asyncio.FIRST_COMPLETED)
            if not opening.done() and _refused(sync):
                # the peer will not connect at all: stop ours now, not after TRIES connects
                opening.cancel()
                await asyncio.wait({opening})
            if opening.cancelled():
                reply = sync.result()
                if reply.get("busy") is True:
                    raise Busy(f"the peer is busy: {str(reply.get('error'))[:100]}")
                raise PunchError(f"the peer would not start: {str(reply.get('error'))[:100]}")
            done = await opening
        finally:
            if opening is not None and not opening.done():
                opening.cancel()
            if not sync.done():
                sync.cancel()
            elif not sync.cancelled() and sync.exception() is not None:
                log.debug("the sync to %s failed: %s", target, sync.exception())
        if done.sock is None:
            if _refused(sync) and sync.result().get("busy") is True:
                raise Busy("the peer was busy")
            log.info("no direct connection to %s at %s after %d tries (%.2f s): it stays "
                     "relayed", target, peer, done.tries, done.seconds)
            self.failed += 1
            return False
        await self.node.transport.adopt(peer, done.sock)
        self.node.punched[target.client] = peer
        self.direct += 1
        log.info("direct connection to %s at %s (%.3f s)", target, peer, done.seconds)
        self.node._emit("punched", {"peer": str(target), "at": str(peer),
                                    "seconds": round(done.seconds, 3)})
        return True

    def _port(self, peer: Address) -> int:
        family = socket.AF_INET6 if ":" in peer.host else socket.AF_INET
        port = self.node.transport.shared_ports.get(family)
        if not port:
            raise PunchError(f"no shared local port for {peer}'s address family")
        return port

    async def _via_relay(self, target: RelayedAddress, payload: dict) -> object:
        """A coordination message to ``target`` through its relay, never a direct way."""
        reply = await self.node._calls.call_user(
            target.relay, FORWARD, {"to": target.client, "type": PUNCH, "payload": payload},
            self.node.timeout)
        return answer(target, reply)

    # -- the responder (and the initiator's side of check and confirm) -------------------------

    async def serve(self, d: object) -> dict:
        """A coordination message from the network (hostile until checked)."""
        try:
            step = parse(d).step if d.get("step") not in ("check", "confirm") else d["step"]
            sender = reachable(d.get("from"))
        except (PunchError, AddressError, AttributeError) as e:
            raise RemoteError(f"not a hole-punch message: {e}") from None
        if not isinstance(sender, RelayedAddress) or not self._possible():
            return {"ok": False, "error": "only client nodes punch"}
        now = _now()
        if step == "check":       # over a new direct connection: remember the nonce
            nonce = d.get("nonce")
            if isinstance(nonce, str) and len(nonce) == 32:
                self._nonces = {n: at for n, at in self._nonces.items()
                                if now - at < PENDING_FOR}
                if len(self._nonces) < NONCES:
                    self._nonces[nonce] = now
            return {"ok": True}
        if step == "confirm":     # through our relay: did that nonce come to us directly?
            nonce = d.get("nonce")
            return {"ok": isinstance(nonce, str) and self._nonces.pop(nonce, None) is not None}
        try:
            seen = Address.from_wire(d.get("seen"))   # put in by our relay, not the sender
        except (AddressError, TypeError, ValueError):
            return {"ok": False, "error": "no address vouched for by the relay"}
        if seen.is_wildcard or seen.port == 0:
            return {"ok": False, "error": "no address vouched for by the relay"}
        self._pending = {c: v for c, v in self._pending.items() if now - v[1] < PENDING_FOR}
        if step == "connect":
            if len(self._pending) >= PENDING or self._running >= CONCURRENT:
                return self._busy(sender, "connect")
            self._pending[sender.client] = (seen, now)
            return {**connect_message([seen]), "ok": True}
        pending = self._pending.pop(sender.client, None)   # sync
        if pending is None or pending[0] != seen:
            log.info("a sync from %s at %s without its connect: no punch", sender, seen)
            return {"ok": False, "error": "no connect from there"}
        if self._running >= CONCURRENT:
            return self._busy(sender, "sync")
        self.node._background.spawn(self._respond(sender, seen))
        return {"ok": True}

    def _busy(self, sender: RelayedAddress, step: str) -> dict:
        log.info("a punch from %s put off at its %s: %d punches run here", sender, step,
                 self._running)
        return {"ok": False, "busy": True,
                "error": f"busy: {self._running} punches run here (at most {CONCURRENT})"}

    async def _respond(self, sender: RelayedAddress, seen: Address) -> None:
        self._running += 1
        sock = None
        try:
            if not self.node.transport.is_connected(seen):   # else: ours to it, made meanwhile
                done = await simultaneous_open(self._port(seen), seen)
                sock = done.sock
                if sock is None:
                    self.failed += 1
                    return
                await self.node.transport.adopt(seen, sock)
                sock = None
                self.direct += 1
            # is the far end the client it says it is? A nonce over the new connection,
            # asked back through that client's own relay
            nonce = secrets.token_hex(16)
            me = str(self.node.address)
            await self.node._calls.call_user(seen, PUNCH, {"kind": KIND, "step": "check",
                                                           "nonce": nonce, "from": me},
                                             self.node.timeout)
            reply = await self._via_relay(sender, {"kind": KIND, "step": "confirm",
                                                   "nonce": nonce, "from": me})
            if isinstance(reply, dict) and reply.get("ok") is True:
                self.node.punched[sender.client] = seen
                log.info("direct connection from %s at %s", sender, seen)
        except (RpcError, PunchError, AddressError, OSError, TimeoutError) as e:
            log.info("the direct connection from %s failed: %s", sender, e)
        finally:
            close_quietly(sock)
            self._running -= 1


def _refused(sync: asyncio.Future) -> bool:
    """Whether the peer answered our ``sync`` and said no."""
    return (sync.done() and not sync.cancelled() and sync.exception() is None
            and isinstance(sync.result(), dict) and sync.result().get("ok") is not True)


def _vouched(reply: object) -> Address:
    """The address the peer's relay saw it at, from its answer to ``connect``."""
    if isinstance(reply, dict) and reply.get("busy") is True:
        raise Busy(f"the peer is busy: {str(reply.get('error'))[:100]}")
    if not isinstance(reply, dict) or reply.get("ok") is not True:
        raise PunchError(f"the peer would not punch: {reply!r:.200}")
    try:
        address = Address.from_wire(reply.get("seen"))
    except (AddressError, TypeError, ValueError) as e:
        raise PunchError(f"its relay vouched for no address: {e}") from None
    if address.is_wildcard or address.port == 0:
        raise PunchError(f"{address} cannot be dialled")
    return address


def _now() -> float:
    return asyncio.get_running_loop().time()
