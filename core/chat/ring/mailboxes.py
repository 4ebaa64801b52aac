"""Mailboxes: private messages for a nick that is offline, kept sealed to its key by the
owner of hash(nick) (the node that keeps its name record), replicated and migrated like a
channel, and taken by the nick when it registers again.

A sender that cannot reach a nick whose key it has pinned puts the sealed letter in the
mailbox (``put``); the nick, once registered, asks for its letters (``take``, signed with
its key, checked against its name record) and says which it has stored (``done``, signed
too); the letters are then tombstones, so a sender can ask whether its letter was taken
(``status``) and turn its pending mark to delivered. Limits per nick (count, bytes, age).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.chord import RpcError
from core.chord.relay import reachable
from core.datadir import valid_nick

from ..model.entries import REPLAY_WINDOW
from ..model.holdings import Holdings
from ..model.identity import Identity, is_key, verify
from ..model.ids import name_key
from ..model.limits import Limits
from ..model.mailbox import Letter, Mailbox
from ..wire import verbs as p
from ..wire.calls import Caller, now
from .journal import Journal
from .replication import Replication

MAX_IDS = 500   # message ids one done or status call may name
NUDGE_EVERY = 5.0   # seconds between two reminders to one registered nick with letters


def take_fields(nick: str, at: float, msg_ids: list[str] | None = None,
                friends: list[str] | None = None) -> dict:
    fields: dict = {"nick": nick.lower(), "at": at}
    if msg_ids is not None:
        fields["msg_ids"] = msg_ids
    if friends is not None:
        fields["friends"] = friends
    return fields


class Mailboxes:
    """The mailboxes this node keeps, and the calls that reach other nodes' mailboxes.

    Args:
        stamp: the wall clock (letters' ages, the freshness of signed requests).
    """

    def __init__(self, holdings: Holdings, caller: Caller, replication: Replication,
                 journal: Journal, stamp: Callable[[], float], limits: Limits) -> None:
        self.holdings = holdings
        self.caller = caller
        self.replication = replication
        self.journal = journal
        self.stamp = stamp
        self.limits = limits
        self._nudged: dict[str, float] = {}   # nick -> when its node was last reminded

    def handlers(self) -> dict[p.Verb, p.Handler]:
        return {p.MAIL_PUT: self.rpc_mail_put, p.MAIL_TAKE: self.rpc_mail_take,
                p.MAIL_DONE: self.rpc_mail_done, p.MAIL_STATUS: self.rpc_mail_status}

    def _box(self, nick: str, create: bool = False) -> Mailbox | None:
        box = self.holdings.maintained.get("mailbox", nick.lower())
        if box is None and create:
            box = Mailbox(nick)
            self.holdings.maintain(box)
        if isinstance(box, Mailbox):
            box.expire(self.stamp(), self.limits.mailbox_age)
            return box
        return None

    async def _commit(self, box: Mailbox) -> dict:
        """Replicated before acknowledged, as a channel's entries are."""
        if await self.replication.call_replicate([box]):
            return p.OK
        return p.retry("the replica did not answer")

    # -- put: a sender leaves a letter -----------------------------------------------------

    async def call_mail_put(self, nick: str, letter: Letter, unreachable: str | None) -> dict:
        return await self.caller.route(p.MAIL_PUT, name_key(nick),
                                       {"nick": nick, "letter": letter.to_wire(),
                                        "unreachable": unreachable},
                                       f"leaving a message for {nick}")

    async def rpc_mail_put(self, d: dict) -> dict:
        nick = _nick(d)
        try:
            sent = Letter.from_wire(d["letter"], nick)
        except ValueError as e:
            raise p.ProtocolError(str(e)) from None
        letter = Letter(sent.msg_id, sent.sender, self.stamp(), sent.sealed,
                        sent.sig)   # its age: ours
        if letter.size > self.limits.letter_bytes:
            raise p.Refused("too_long", f"a letter of {letter.size} bytes for {nick} "
                                        f"(at most {self.limits.letter_bytes})")
        if not letter.signed_by_sender(nick):
            raise p.Refused("bad_signature", f"a letter for {nick} not signed by the key "
                                             "its envelope names")
        record = self.holdings.name(nick)
        if (record is not None and record.present
                and record.address != d.get("unreachable")):
            return {"ok": False, "online": True}   # registered meanwhile: send it directly
        box = self._box(nick, create=True)
        why = box.refusal(letter, self.limits)
        if why is not None:
            return {"ok": False, "full": f"the mailbox of {nick} is full: {why}"}
        if box.add(letter):
            self.journal.log(f"mailbox {nick}: a message from {letter.sender} "
                             f"({len(box.letters)} waiting)")
        return await self._commit(box)

    # -- waiting: letters for a nick that is registered again --------------------------------

    async def nudge_waiting(self, serves: Callable[[int], bool]) -> None:
        """Remind the node of each registered nick that letters wait for it. A nick takes
        its letters when it registers; letters that reach the mailbox's owner only after
        that (a join moved the mailbox a moment late, or a healed partition merged the
        other side's) would wait for its next start. The reminder only makes the nick's
        node ask again (a signed take), so a false one costs a request, nothing more."""
        calls = []
        for box in self.holdings.maintained.mailboxes():
            record = self.holdings.name(box.nick)
            if (not box.waiting() or not serves(box.key) or record is None
                    or not record.present
                    or now() - self._nudged.get(box.name, float("-inf")) < NUDGE_EVERY):
                continue
            self._nudged[box.name] = now()
            calls.append(self._nudge(record.address, record.nick))
        await asyncio.gather(*calls)

    async def _nudge(self, address: str, nick: str) -> None:
        try:
            await self.caller.node.user_command(reachable(address),
                                                p.MAIL_WAITING.type, {"to": nick})
        except (RpcError, ValueError):
            pass   # reminded again after NUDGE_EVERY while the letters wait

    # -- take and done: the nick collects its letters --------------------------------------

    async def call_mail_take(self, identity: Identity, friends: list[str] | None = None
                             ) -> dict:
        """Take the letters; ``friends``: the keys this user vouches for (its pins), whose
        letters its mailbox then keeps under the friends' quotas."""
        at = self.stamp()
        payload = {"nick": identity.nick, "at": at,
                   "sig": identity.sign("mail.take", take_fields(identity.nick, at,
                                                                 friends=friends))}
        if friends is not None:
            payload["friends"] = friends
        return await self.caller.route(p.MAIL_TAKE, name_key(identity.nick), payload,
                                       "collecting messages left while offline")

    async def rpc_mail_take(self, d: dict) -> dict:
        nick = _nick(d)
        if self._no_record(nick):
            return p.retry(f"no name record of {nick} here yet")
        friends = d.get("friends")
        if friends is not None and (not isinstance(friends, list)
                                    or len(friends) > self.limits.friends
                                    or not all(is_key(k) for k in friends)):
            raise p.Refused("too_long", f"'friends' must be at most {self.limits.friends} keys")
        self._check(nick, "mail.take", take_fields(nick, d["at"], friends=friends), d)
        box = self._box(nick, create=friends is not None)
        if friends is not None and box is not None:
            box.vouch(float(d["at"]), frozenset(friends))
        return {"ok": True, "letters": [x.to_wire() for x in box.waiting()] if box else []}

    async def call_mail_done(self, identity: Identity, msg_ids: list[str]) -> dict:
        at = self.stamp()
        return await self.caller.route(
            p.MAIL_DONE, name_key(identity.nick),
            {"nick": identity.nick, "msg_ids": msg_ids, "at": at,
             "sig": identity.sign("mail.done", take_fields(identity.nick, at, msg_ids))},
            "confirming messages left while offline")

    async def rpc_mail_done(self, d: dict) -> dict:
        nick, ids = _nick(d), _ids(d)
        if self._no_record(nick):
            return p.retry(f"no name record of {nick} here yet")
        self._check(nick, "mail.done", take_fields(nick, d["at"], ids), d)
        box = self._box(nick)
        if box is None or not box.take(ids, self.stamp()):
            return p.OK
        self.journal.log(f"mailbox {nick}: {len(ids)} taken ({len(box.letters)} waiting)")
        return await self._commit(box)

    def _no_record(self, nick: str) -> bool:
        """No present name record of ``nick`` here. The nick registered before it asks, so
        its record is on its way (a migration a moment behind the ring): asked again."""
        record = self.holdings.name(nick)
        return record is None or not record.present

    def _check(self, nick: str, kind: str, fields: dict, d: dict) -> None:
        """Only the key of the nick's name record, recently: else Refused."""
        record = self.holdings.name(nick)
        if record is None or not record.present:
            raise p.Refused("unknown", f"{nick} has no name record here")
        if not verify(record.key, kind, fields, d["sig"]):
            raise p.Refused("signature", f"not signed by {nick}'s key")
        if abs(self.stamp() - float(d["at"])) > REPLAY_WINDOW:
            raise p.Refused("stale", "signed outside the replay window")

    # -- status: did the nick take a letter? -----------------------------------------------

    async def call_mail_status(self, nick: str, msg_ids: list[str]) -> dict:
        return await self.caller.route(p.MAIL_STATUS, name_key(nick),
                                       {"nick": nick, "msg_ids": msg_ids},
                                       f"asking whether {nick} has its messages")

    async def rpc_mail_status(self, d: dict) -> dict:
        nick, ids = _nick(d), _ids(d)
        box = self._box(nick)
        return {"ok": True, "taken": [i for i in ids if box is not None and i in box.taken]}


def _nick(d: dict) -> str:
    if not valid_nick(d["nick"]):
        raise p.ProtocolError("'nick' is not a nick")
    return d["nick"]


def _ids(d: dict) -> list[str]:
    ids = d["msg_ids"]
    if len(ids) > MAX_IDS or not all(isinstance(i, str) and len(i) <= 64 for i in ids):
        raise p.ProtocolError(f"'msg_ids' must be at most {MAX_IDS} ids")
    return ids
