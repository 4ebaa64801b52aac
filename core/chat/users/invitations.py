"""Invitations between nodes: an invitation reaches its invitee wherever it is served.

The channel's maintainer keeps an invitation (``ring/channels.py`` ``rpc_invite``); once
it took one, the inviter's node sends the inviter's signed ``invite`` entry to the node the
invitee's name record names (``chat.invited``, through its relay for a client node), as a
private message is sent. The invitee's node believes it only when it checks out, cheapest
first: the entry's size and shape, an invitation of this user, its signed time within the
replay window, not shown before, the sender's host within its rate (and all hosts together
within the user's), then the signature, then the inviter's key as the ring's name map
gives the nick (``vouching.py``: the pinned key, or the ring's record). Anything else is
refused, logged once and shown nowhere; a repeat is answered and not shown again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from core import events as ev
from core.chord.bucket import Bucket, HostBuckets
from core.chord.relay import RelayedAddress, reachable

from ..model.entries import EntryError, SignedEntry
from ..model.errors import ChatError
from ..model.ids import Seen, verified
from ..model.limits import Limits, entry_excess
from ..model.records import NameRecord
from ..wire import verbs as p
from ..wire.calls import Caller, now
from ..wire.rate import payload_size
from .signer import Signer
from .vouching import VERIFIED, Voucher

log = logging.getLogger(__name__)

MAX_ENTRY = 2_000        # bytes of an invitation's entry, as JSON (an honest one: ~600)
PER_HOST_RATE = 0.2      # invitations a second one host may have checked for one user ...
PER_HOST_BURST = 10.0    # ... and at once
ALL_RATE = 2.0           # from all hosts together, for one user ...
ALL_BURST = 30.0         # ... and at once
HOSTS = 1_000            # hosts remembered (least recently used forgotten)


class Invitations:
    """One user's invitations: telling an invitee served elsewhere, and believing one."""

    def __init__(self, me: Signer, voucher: Voucher, caller: Caller, limits: Limits,
                 post: Callable[[ev.Event], None]) -> None:
        self.me = me
        self.voucher = voucher
        self.caller = caller
        self.limits = limits
        self.post = post
        self.seen = Seen()
        self.hosts = HostBuckets(PER_HOST_RATE, PER_HOST_BURST, HOSTS)
        self.all: Bucket | None = None

    # -- the inviter's side ----------------------------------------------------------------

    async def tell(self, signed: SignedEntry, record: NameRecord) -> bool:
        """Send the invitation ``signed`` (the maintainer took it) to the node of the
        invitee's name ``record``; whether that node took it. Failing is no error: the
        maintainer lets the invitee in all the same."""
        try:
            address = reachable(record.address)
        except ValueError:
            return False
        relayed = isinstance(address, RelayedAddress)
        payload = {"to": record.nick, "to_id": record.node_id, "entry": signed.to_wire()}
        try:
            reply = await self.caller.call(
                address, p.INVITED, payload,
                f"telling {record.nick} of the invitation to #{signed.channel}",
                give_up_after=min(self.caller.retry_for, 3.0 if relayed else 8.0))
        except ChatError as e:
            log.info("%s: %s", self.me.nick, e)
            return False
        if reply.get("ok") is not True:
            log.info("%s: %s did not take the invitation to #%s: %s", self.me.nick,
                     record.nick, signed.channel, reply.get("error", reply))
            return False
        return True

    # -- the invitee's side ----------------------------------------------------------------

    def _refuse(self, reason: str, what: str) -> dict:
        log.warning("%s: refused an invitation: %s", self.me.nick, what)
        return {"ok": False, "refused": reason, "error": f"refused {what}"}

    def _within_rate(self, host: str | None) -> bool:
        if host is None:   # this node's own call
            return True
        t = now()
        if self.all is None:
            self.all = Bucket(ALL_RATE, ALL_BURST, ALL_BURST, t)
        return self.hosts.take(host, t) and self.all.take(1, t)

    async def receive(self, d: dict, host: str | None) -> dict:
        """An invitation for this user from ``host`` (the connection's, or the one a relay
        or a detour stamped; None: this node): shown as an ``Invited`` event if it checks
        out (see the module's text), once."""
        wire = d["entry"]
        if payload_size(wire) > MAX_ENTRY:
            return self._refuse("too_long", f"an entry over {MAX_ENTRY} bytes")
        try:
            signed = SignedEntry.from_wire(wire)
        except EntryError as e:
            return self._refuse("bad_invite", f"a malformed entry ({e})")
        if signed.kind != "invite" or not self.me.is_me(signed.text):
            return self._refuse("not_for_you", f"a {signed.kind} naming {signed.text[:40]!r}")
        excess = entry_excess(signed, self.limits)
        if excess is not None:
            return self._refuse("too_long", excess)
        if not signed.fresh(self.me.stamp()):
            return self._refuse("stale", f"one of {signed.nick} to #{signed.channel} signed "
                                         f"at {signed.at}, outside the replay window")
        if signed.msg_id in self.seen:
            return p.OK   # a repeat (the inviter's call timed out and came again)
        if not self._within_rate(host):
            log.info("%s: invitations from %s over their rate", self.me.nick, host)
            return p.retry(f"busy: invitations from {host}")
        if not verified(signed):
            return self._refuse("bad_signature", f"one as from {signed.nick} whose signature "
                                                 "does not verify")
        if await self.voucher.vouch(signed.nick, signed.key) != VERIFIED:
            return self._refuse("forged", f"one as from {signed.nick} under a key the ring "
                                          "does not give that nick")
        if self.seen.first(signed.msg_id):
            self.post(ev.Invited(channel=signed.channel, nick=signed.nick,
                                 at=float(signed.at)))
        return p.OK
