"""The channels a local user is in, as a member sees them: joining, leaving, sending to
them, what their maintainers deliver (verified, vouched for, kept, each shown once and in
order), and saying again that it is in after a partition or a takeover.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

from core import events as ev
from core.datadir import valid_nick

from ..model.channel import NOTICES, Entry, topic_from_wire
from ..model.entries import EntryError, SignedEntry
from ..model.errors import ChatError, Told
from ..model.ids import Seen
from ..model.modes import Modes, changes_text, parse_changes
from ..model.text import without_bad
from ..ring.channelcopies import ChannelCopies
from ..ring.channels import MAX_REASON, Channels
from ..ring.journal import Journal
from ..wire import verbs as p
from ..wire.calls import now
from .database import Outbox, Outgoing
from .gaps import Gaps
from .maintainers import Maintainers
from .signer import Signer
from .vouching import FORGED, VERIFIED, Voucher

log = logging.getLogger(__name__)

REJOIN_GAP = 1.0     # seconds between two resumes of one channel at least
SETTLE = 3.0         # seconds a maintainer's removal (pruned, gone) waits to be shown
STALE_FOR = 120.0    # seconds a line refused for its signed time is signed and sent again
STALE_PAUSE, STALE_PAUSE_CAP = 0.5, 8.0   # the pauses between, doubling


@dataclass
class Membership:
    """A channel the user is in: what it has shown, to drop repeats and keep the order."""
    channel: str
    joining: bool = True
    last_seq: int = 0
    # the join's time and the maintainer's last seq then: a message numbered up to there
    # and written before it is history, got with the join or from before it
    joined_at: float = float("-inf")
    join_seq: int = 0
    # each author's (key, series) highest count in the join's history: a message counted
    # below it was written before that one, before the join, whatever time it was signed at
    counted: dict[tuple[str, str], int] = field(default_factory=dict)
    seen: Seen = field(default_factory=Seen)
    heard: float = 0.0          # when its maintainer last reached us (the loop's clock)
    resuming: bool = False      # a resume (``rejoin``) is under way
    resumed: float = float("-inf")
    # who the user was last shown to be in (lower-case nick -> (nick, reason: "" when in,
    # else the leave's reason)): a delivery shows only what changed that
    shown: dict[str, tuple[str, str]] = field(default_factory=dict)
    said: dict[str, float] = field(default_factory=dict)   # each one's latest signed word
    words: dict[str, str] = field(default_factory=dict)    # ... and its msg_id
    # the maintainer's word, with its latest delivery, on which signed entry the membership
    # of each member a removal names rests on (``Channel.standing``)
    standing: dict[str, str] = field(default_factory=dict)
    # removals not shown yet: (nick, reason, the join it ends)
    held: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)
    back: list[str] = field(default_factory=list)    # members back, not shown yet
    settling: asyncio.TimerHandle | None = None
    # shows in the order their deliveries came (two maintainers may deliver at once while
    # a channel moves, and one show may wait on a key lookup the other does not need)
    in_turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    modes: Modes = field(default_factory=Modes)   # its operators and modes, as delivered
    # the topic, mode and kick entries shown: by the feed, or the user's own when their
    # maintainer took them (an IRC client sees its change answered in order), once
    told: set[str] = field(default_factory=set)
    key: str | None = None      # the key (+k) it was joined with, or the channel's since


def topic_event(channel: str, e: Entry) -> ev.Topic:
    """A topic a member set, as its members see it: at the setter's signed time."""
    return ev.Topic(channel=channel, nick=e.nick, text=e.text, at=e.at)


def modes_event(membership: Membership, nick: str, change: str,
                history: bool = False) -> ev.Modes:
    """A channel's operators and modes as the member's copy of them stands."""
    modes = membership.modes
    flags, args = modes.summary()
    members = {m.lower(): m for m, reason in membership.shown.values() if reason == ""}
    ops = tuple(sorted(members.get(n, n) for n in modes.reached if modes.is_op(n)))
    voiced = tuple(sorted(arg for (letter, _), (sign, arg, _) in modes.slots.items()
                          if letter == "v" and sign == "+"))
    lists = tuple((letter, *item) for letter in "beI" for item in modes.listed(letter))
    created = float(modes.founder.at) if modes.founder is not None else 0.0
    return ev.Modes(channel=membership.channel, nick=nick, change=change, ops=ops,
                    voiced=voiced, modes=flags, args=tuple(args), lists=lists,
                    created=created, history=history)


def exit_reason(words: str) -> str:
    """What a leave on exit says: 'exit', with the user's words if it gave some (an IRC
    QUIT message), made fit to sign (one line, no control characters, 300 characters)."""
    words = without_bad(" ".join(words.split()))[:MAX_REASON].strip()
    return "exit" if not words or words == "exit" else f"exit: {words}"


def _count(e: Entry) -> tuple[tuple[str, str], int] | None:
    """``e``'s author's (key, series) and its count there, if it was counted."""
    counted = e.signed.counted if e.signed is not None else None
    if counted is None:
        return None
    author, series, n = counted
    return (author, series), n


def _before_history(membership: Membership, e: Entry) -> bool:
    """Whether ``e``'s author counted it before a message the join's history held: written
    before the join, even if signed at a time after it (a clock that had jumped ahead)."""
    count = _count(e)
    return count is not None and membership.counted.get(count[0], -1) > count[1]


def _message(channel: str, e: Entry, status: str, history: bool = False) -> ev.ChannelMessage:
    """The event of a message entry: at its author's signed time, an action if signed so."""
    return ev.ChannelMessage(channel=channel, from_=e.nick, text=e.text, msg_id=e.msg_id,
                             seq=e.seq, history=history, verified=status == VERIFIED,
                             action=e.action, at=e.at)


class Memberships:
    """The channels one user is in (``joined``), by name."""

    def __init__(self, me: Signer, channels: Channels, voucher: Voucher, outbox: Outbox,
                 journal: Journal, post: Callable[[ev.Event], None],
                 copies: ChannelCopies, spawn: Callable[[Coroutine], asyncio.Task],
                 **gaps) -> None:
        self.me = me
        self.channels = channels
        self.voucher = voucher
        self.outbox = outbox
        self.journal = journal
        self.post = post
        self.joined: dict[str, Membership] = {}
        self.spawn = spawn
        # who may deliver a channel: the node that answered our join or send, or the
        # owner our own lookup finds (maintainers.py)
        self.maintainers = Maintainers(channels.caller,
                                       say=lambda text: journal.log(f"{me.nick}: {text}"))
        # entries missing from what maintainers deliver (gaps.py): ``gaps`` are its
        # ``grace`` and ``deadline``
        self.gaps = Gaps(me.nick, copies, journal, post, self._seen, self._show_later,
                         spawn, **gaps)

    async def join(self, channel: str, key: str | None = None) -> list[str]:
        """Join a channel (``key``: its +k key, if it has one); its members and recent
        history come back. Returns the members."""
        if channel in self.joined:
            raise ChatError(f"you are already in #{channel}")
        membership = self.joined[channel] = Membership(channel, key=key or None)
        signed = self.me.sign(channel, "join")
        try:
            reply = p.refusal(await self.channels.call_join(signed, key=key),
                              f"joining #{channel}")
        except ChatError:
            self.joined.pop(channel, None)
            raise
        membership.joining = False
        membership.heard = now()
        self.maintainers.saw(channel, reply.get("via"))
        last_seq = reply.get("last_seq", 0)
        membership.last_seq = max(membership.last_seq, last_seq if type(last_seq) is int else 0)
        membership.joined_at, membership.join_seq = float(signed.at), membership.last_seq
        members = tuple(m for m in reply.get("members", []) if valid_nick(m))
        await self.outbox.remember_joined(channel, True, membership.key)
        joined = ev.Joined(channel=channel, members=members)
        membership.shown = {m.lower(): (m, "") for m in members}
        try:
            membership.modes = Modes.from_wire(reply.get("modes"), channel)[0]
        except (ValueError, KeyError):
            log.warning("%s: the modes of #%s did not parse", self.me.nick, channel)
        self.post(modes_event(membership, "", "", history=True))   # before the join: NAMES
        entries = self._entries(channel, reply.get("history", []))
        for e in entries:
            count = _count(e) if e.kind == "msg" else None
            if count is not None:
                who, n = count
                membership.counted[who] = max(membership.counted.get(who, n), n)
        history = [e for e in entries if e.kind == "msg" and membership.seen.first(e.msg_id)]
        self.gaps.start(channel, membership.last_seq, history, membership.joined_at)
        # the backlog first, each line at its author's time, then the join that received
        # it; a delivery meanwhile waits its turn (shown after both)
        async with membership.in_turn:
            statuses, shown = await self._vouch_and_keep(channel, history)
            for e, status in zip(history, statuses, strict=True):
                if e.msg_id in shown:
                    self.post(_message(channel, e, status, history=True))
            self.post(joined)
        self._post_topic(channel, reply.get("topic"))
        return list(members)

    async def mode(self, channel: str, changes: str) -> None:
        """Change a channel's modes (``"+o alice"``, ``"-t"``): the user must be one of
        its operators; the members, the user among them, see it by their feeds."""
        if channel not in self.joined:
            raise ChatError(f"you are not in #{channel}")
        text = changes_text(parse_changes(changes))    # ModeError (a ValueError) if bad
        signed = self.me.sign(channel, "mode", text)
        p.refusal(await self.channels.call_mode(signed), f"changing the modes of #{channel}")
        self._tell(channel, signed)

    async def kick(self, channel: str, nick: str, reason: str = "") -> None:
        """Remove a member from a channel the user is an operator of."""
        if channel not in self.joined:
            raise ChatError(f"you are not in #{channel}")
        words = without_bad(" ".join(reason.split()))[:MAX_REASON]
        text = f"{nick} {words}" if words else nick
        signed = self.me.sign(channel, "kick", text)
        p.refusal(await self.channels.call_kick(signed), f"kicking {nick} from #{channel}")
        self._tell(channel, signed)

    def _tell(self, channel: str, signed: SignedEntry) -> None:
        """Show the user's own change its maintainer took, now (once: not again when the
        feed brings it)."""
        membership = self.joined.get(channel)
        if membership is None or signed.msg_id in membership.told:
            return
        if len(membership.told) > 1000:
            membership.told.clear()
        membership.told.add(signed.msg_id)
        self._show_change(membership, Entry.of(0, signed))

    def _show_change(self, membership: Membership, e: Entry) -> bool:
        """A topic, mode or kick entry: shown; True if it removed the user (a kick)."""
        channel = membership.channel
        if e.kind == "topic":
            self.post(topic_event(channel, e))
        elif e.kind == "mode" and e.signed is not None:
            membership.modes.add(e.signed)
            self.post(modes_event(membership, e.nick, e.text))
            key = membership.modes.value("k")
            if ("k" in e.text.partition(" ")[0] and key != membership.key
                    and self.joined.get(channel) is membership):
                membership.key = key   # an operator's +k or -k: the next start rejoins so
                self.spawn(self.outbox.remember_key(channel, key))
        elif e.kind == "kick":
            target, _, reason = e.text.partition(" ")
            membership.shown[target.lower()] = (target, "kicked")
            self.post(ev.Kicked(channel=channel, nick=e.nick, target=target,
                                reason=reason, at=e.at))
            if self.me.is_me(target):
                self._kicked(channel)
                return True
        return False

    async def invite(self, channel: str, nick: str) -> SignedEntry:
        """Invite a nick into a channel the user is in (past +i and +b); returns the
        signed invitation its maintainer took."""
        if channel not in self.joined:
            raise ChatError(f"you are not in #{channel}")
        signed = self.me.sign(channel, "invite", nick)
        p.refusal(await self.channels.call_invite(signed), f"inviting {nick} to #{channel}")
        return signed

    def _post_topic(self, channel: str, wire: object) -> None:
        """The topic a join's reply brought, if any and if it verifies."""
        signed = topic_from_wire(wire, channel)
        if isinstance(signed, SignedEntry):
            self.post(ev.Topic(channel=channel, nick=signed.nick, text=signed.text,
                               history=True, at=float(signed.at)))

    async def topic(self, channel: str, text: str) -> None:
        """Set the topic of a channel the user is in (the maintainer keeps the latest
        signed); the members, the user among them, see it by their feeds."""
        if channel not in self.joined:
            raise ChatError(f"you are not in #{channel}")
        signed = self.me.sign(channel, "topic", text)
        p.refusal(await self.channels.call_topic(signed), f"setting the topic of #{channel}")
        self._tell(channel, signed)

    async def leave(self, channel: str, retry_for: float | None = None,
                    reason: str = "left") -> str:
        """Leave a channel the user joined; returns its maintainer's address.

        ``reason`` ("left" or "exit") is what the other members are told.
        """
        if channel not in self.joined:
            raise ChatError(f"you are not in #{channel}")
        del self.joined[channel]
        self.gaps.stop(channel)
        if reason.partition(":")[0] == "left":   # not on exit: the next start rejoins
            await self.outbox.remember_joined(channel, False)
        reply = p.refusal(await self.channels.call_leave(self.me.sign(channel, "leave", reason),
                                                       retry_for), f"leaving #{channel}")
        self.post(ev.Left(channel=channel))
        return reply["via"]

    def _kicked(self, channel: str) -> None:
        """An operator removed the user: no longer in the channel (nor rejoined at the
        next start)."""
        if self.joined.pop(channel, None) is not None:
            self.gaps.stop(channel)
            self.spawn(self.outbox.remember_joined(channel, False))

    async def leave_all(self, retry_for: float, reason: str) -> None:
        """Leave every channel on exit (they stay remembered: the next start rejoins)."""
        async def leave(channel: str) -> None:
            try:
                via = await self.leave(channel, retry_for, reason=exit_reason(reason))
                self.journal.migration("leave", ("channel", channel), self.me.address, via,
                                       reason)
            except ChatError as e:
                self.post(ev.Error(message=f"could not leave #{channel} on exit: {e}"))

        await asyncio.gather(*(leave(c) for c in list(self.joined)))

    async def deliver(self, item: Outgoing) -> tuple[str, int | None]:
        """Send an accepted line to its channel's maintainer; returns (msg_id, seq). The
        user need not be a member."""
        channel = item.target
        signed = None
        if isinstance(item.signed, dict):   # the original, as first signed (a resend)
            with contextlib.suppress(EntryError, ValueError):
                signed = SignedEntry.from_wire(item.signed)
        if signed is None or signed.msg_id != item.msg_id:
            signed = self.me.sign(channel, "msg", item.text, item.msg_id, item.action)
        try:
            reply = await self.channels.call_send(signed)
            if reply.get("refused") == "stale":
                reply = await self._sign_again(item, signed, reply)
            if reply.get("refused") == "cannot_send":   # +n or +m: this line never goes
                await self.outbox.failed(item, str(reply.get("error", "cannot send")))
                raise Told(f"sending to #{channel}: refused: {reply.get('error')}",
                           "cannot_send")
            if reply.get("refused") == "replay":
                # the maintainer took this id before: a resend of a line that got there
                await self.outbox.delivered(item)
                return item.msg_id, None
            reply = p.refusal(reply, f"sending to #{channel}")
        except Told:
            raise
        except ChatError as e:
            raise ChatError(f"{e}; the message stays in the outbox and is sent again at "
                            "the next start", e.reason) from None
        seq = int(reply["seq"])
        self.maintainers.saw(channel, reply.get("via"))
        self.post(ev.Sent(channel=channel, text=item.text, msg_id=item.msg_id, seq=seq,
                          members=int(reply.get("members", 0)), action=item.action))
        self.gaps.sent(channel, item.msg_id, seq, str(reply.get("via", "")))
        await self.outbox.delivered(item)
        return item.msg_id, seq

    async def _sign_again(self, item: Outgoing, signed: SignedEntry, reply: dict) -> dict:
        """The maintainer refused the line for the time it was signed at (resent long
        after, or signed while this node's clock had jumped): it is signed again with the
        time now — the same id and the same number, so it is still stored and shown once —
        and sent again, with pauses while the refusal is still about the time (a clock
        that jumped comes back, or the ring's clock measurement corrects it), for up to
        ``STALE_FOR`` seconds. The user is told when it had to wait."""
        channel = item.target
        count = (None if signed.n is None or signed.key != self.me.identity.key
                 else (str(signed.series), signed.n))
        deadline, pause, told = now() + STALE_FOR, STALE_PAUSE, False
        while True:
            reply = await self.channels.call_send(
                self.me.sign(channel, "msg", item.text, item.msg_id, count, item.action))
            if reply.get("refused") != "stale" or now() + pause > deadline:
                break
            if not told:
                told = True
                self.post(ev.Info(text=(
                    f"#{channel}: your line was refused as signed outside the maintainer's "
                    f"time window ({reply.get('error', 'stale')}): this node's clock may "
                    "have jumped; it is signed again with the time now and sent again")))
            await asyncio.sleep(pause)
            pause = min(pause * 2, STALE_PAUSE_CAP)
        if told and "refused" not in reply:
            self.post(ev.Info(text=f"#{channel}: your line signed again went through"))
        return reply

    # -- what maintainers deliver ----------------------------------------------------------

    async def receive(self, channel: str, wires: object, maintainer: str | None = None,
                      origin: str | None = None,
                      joins: dict[str, str] | None = None) -> dict:
        """Entries a maintainer delivers; each verified again, shown once (by id), in
        sequence order (those after a gap wait for it: ``gaps.py``), marked unverified
        unless signed by the key pinned for its author, and not shown at all if the ring
        names another key for that nick. ``origin``: the host the delivery came from (None:
        this node); from a host that is not the channel's maintainer's, as this node knows
        or looks it up (``Maintainers``), nothing is read."""
        membership = self.joined.get(channel)
        if membership is None:
            return {"member": False}
        if membership.joining:
            return {"member": True, "last_seq": None}
        if not await self.maintainers.admits(channel, origin):
            return p.Refused("not_maintainer", f"{origin} does not maintain #{channel}, "
                                               "by our lookup").reply()
        membership.heard = now()
        for key, msg_id in (joins or {}).items():
            membership.standing[key.lower()] = msg_id
            held = membership.held.get(key.lower())
            if held is not None and held[2] is not None and held[2] != msg_id:
                del membership.held[key.lower()]   # its join no longer stands there: old
        fresh = []
        for e in sorted(self._entries(channel, wires), key=lambda e: e.seq):
            if (e.kind == "msg" and e.seq <= membership.join_seq
                    and (e.at < membership.joined_at or _before_history(membership, e))):
                # history older than what the join brought, sent again by a maintainer
                # that took over and does not know how far we got: not shown as new
                continue
            # By message id, not by seq: after two copies of a channel were merged, an entry
            # may arrive with a seq below one already shown (the maintainer resends it).
            if membership.seen.first(e.msg_id):
                membership.last_seq = max(membership.last_seq, e.seq)
                fresh.append(e)
        fresh = self.gaps.arrived(channel, fresh, maintainer)
        # marked seen: shown even if this call is cancelled (its caller timed out)
        await self.outbox.showing(self._show_in_turn(membership, fresh))
        return {"member": True, "last_seq": membership.last_seq}

    def _seen(self, channel: str) -> Seen | None:
        membership = self.joined.get(channel)
        return None if membership is None else membership.seen

    def _show_later(self, channel: str, entries: list[Entry]) -> None:
        """Show entries that waited behind a gap, after what is being shown now."""
        membership = self.joined.get(channel)
        if membership is not None:
            self.spawn(self.outbox.showing(self._show_in_turn(membership, entries)))

    def _entries(self, channel: str, wires: object) -> list[Entry]:
        """The entries of a delivery that verify (each one left out is one log line)."""
        entries = []
        for wire in wires if isinstance(wires, list) else []:
            try:
                entries.append(Entry.from_wire(wire, channel))
            except (ValueError, EntryError) as e:
                log.warning("%s: dropped an entry of #%s: %s", self.me.nick, channel, e)
        return entries

    async def _vouch_and_keep(self, channel: str,
                              entries: list[Entry]) -> tuple[list[str], set[str]]:
        """Each entry's standing (``Voucher.vouch_all``), and the ids of its lines to show:
        those not forged that are new to the history (``Outbox.keep_channel``)."""
        statuses = await self.voucher.vouch_all(entries)
        shown = await self.outbox.keep_channel(
            channel, [e for e, s in zip(entries, statuses, strict=True) if s != FORGED])
        return statuses, shown

    async def _show_in_turn(self, membership: Membership, fresh: list[Entry]) -> None:
        async with membership.in_turn:
            await self._show(membership, fresh)

    async def _show(self, membership: Membership, fresh: list[Entry]) -> None:
        """Verify, record and show entries seen for the first time (in this run): the
        messages, then who came and went, once per member whose presence changed."""
        channel = membership.channel
        statuses, shown = await self._vouch_and_keep(channel, fresh)
        moves: list[Entry] = []
        for e, status in zip(fresh, statuses, strict=True):
            if status == FORGED:
                log.warning("%s: not shown: a %s in #%s as %s under a key the ring does "
                            "not give that nick", self.me.nick, e.kind, channel, e.nick)
            elif e.kind == "msg" and e.msg_id not in shown:
                continue   # shown before (a repeat, maybe from before a restart)
            elif e.kind == "msg":
                self.post(_message(channel, e, status))
            elif e.kind in ("topic", "mode", "kick"):
                if e.msg_id in membership.told:
                    continue   # shown when it was taken
                membership.told.add(e.msg_id)
                if self._show_change(membership, e):
                    return
            elif not self.me.is_me(e.nick):
                moves.append(e)
        self._show_moves(membership, moves)

    def _show_moves(self, membership: Membership, moves: list[Entry]) -> None:
        """Joins and leaves, shown once for each member whose presence changed.

        A maintainer's removal ("pruned", "gone") is its guess, and after a partition heals
        the merged copies deliver each side's removals of the other side and, moments
        later, the rejoins that followed: a removal waits ``SETTLE`` seconds and is never
        shown if the member is back meanwhile. Members back after a removal that was shown
        are one notice (``MembersBack``): "netsplit over: ada, linus back"."""
        by_member: dict[str, list[Entry]] = {}
        for e in moves:
            by_member.setdefault(e.nick.lower(), []).append(e)
        last: dict[str, Entry] = {}
        for key, entries in by_member.items():
            # the member's own signed word decides, the latest by its time (two merged logs
            # put one side's removals after the other side's rejoins in sequence order); a
            # removal by a maintainer, a guess, only when the member said nothing here
            signed = [e for e in entries if e.signed is not None]
            for e in signed:
                if e.at >= membership.said.get(key, float("-inf")):
                    membership.said[key], membership.words[key] = e.at, e.msg_id
            latest = membership.said.get(key, float("-inf"))
            words = signed + [e for e in entries
                              if e.signed is None and self._current(membership, key, e, latest)]
            if words:
                last[key] = max(words, key=lambda e: e.at)
        for key, e in last.items():
            was = membership.shown.get(key, (e.nick, "left"))[1]
            if e.kind == "join":
                if membership.held.pop(key, None) is not None or was == "":
                    continue   # in before, in after: nothing happened
                membership.shown[key] = (e.nick, "")
                if was in NOTICES:
                    membership.back.append(e.nick)
                else:
                    self.post(ev.MemberJoined(channel=membership.channel, nick=e.nick))
                continue
            reason = e.text or "left"
            if key in membership.shown and was != "":
                continue   # shown out already
            if reason in NOTICES:
                membership.held[key] = (e.nick, reason, e.ended)
            else:
                membership.held.pop(key, None)
                membership.shown[key] = (e.nick, reason)
                self.post(ev.MemberLeft(channel=membership.channel, nick=e.nick,
                                        reason=reason))
        if (membership.held or membership.back) and membership.settling is None:
            membership.settling = asyncio.get_running_loop().call_later(
                SETTLE, self._settled, membership)

    @staticmethod
    def _current(membership: Membership, key: str, e: Entry, latest: float) -> bool:
        """Whether a maintainer's removal ends the member's membership as it stands: it
        names the join it ends, and that must be the join the membership rests on (the
        maintainer's word with the delivery, else the member's latest signed word seen
        here). A merge of two copies brings one side's removals of joins the member has
        since made again: those end nothing. A notice without its join (an older node's)
        counts if it is later than the member's latest signed word."""
        current = membership.standing.get(key, membership.words.get(key))
        if e.ended is not None and current is not None:
            return e.ended == current
        return e.at > latest

    def _settled(self, membership: Membership) -> None:
        """Show the removals that stood for ``SETTLE`` seconds, and who is back."""
        membership.settling = None
        if self.joined.get(membership.channel) is not membership:
            return   # left meanwhile
        for key, (nick, reason, _ended) in membership.held.items():
            membership.shown[key] = (nick, reason)
            self.post(ev.MemberLeft(channel=membership.channel, nick=nick, reason=reason))
        if membership.back:
            self.post(ev.MembersBack(channel=membership.channel,
                                     nicks=tuple(dict.fromkeys(membership.back))))
        membership.held.clear()
        membership.back.clear()

    # -- after a partition -----------------------------------------------------------------

    async def keep_memberships(self, silence: float) -> None:
        """Say again that we are in each channel whose maintainer has not reached us for
        ``silence`` seconds (its feed asks a quiet member every few seconds): after a
        partition or a takeover the maintainer may be a copy that never knew us, or that
        pruned us. Silent when we are still a member; missed entries follow by the feed."""
        quiet = [m.channel for m in self.joined.values() if not (m.joining or m.resuming)
                 and now() - m.heard > silence]
        await asyncio.gather(*(self.rejoin(channel) for channel in quiet))

    async def rejoin(self, channel: str) -> None:
        """A resume: a fresh signed join of a channel we are in (a maintainer that doubts us
        asked, or ours went quiet); the maintainer readmits us and resends its log."""
        membership = self.joined.get(channel)
        if (membership is None or membership.joining or membership.resuming
                or now() - membership.resumed < REJOIN_GAP):
            return
        membership.resuming, membership.resumed = True, now()
        try:
            reply = await self.channels.call_join(self.me.sign(channel, "join"), resume=True,
                                                  key=membership.key)
            if reply.get("ok"):
                membership.heard = now()
                self.maintainers.saw(channel, reply.get("via"))
        except ChatError:
            pass   # unreachable meanwhile: asked again after the next silence
        finally:
            membership.resuming = False
