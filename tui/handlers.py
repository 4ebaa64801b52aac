"""What the UI does for each event: one handler per event class, found through the one
table at the end: the core's events (core.events) and the UI's own (Done, Quit).

UI thread only. The core posts its events from its own thread onto the bridge
(tui.bridge.FromCore); on the UI thread the bridge hands them, one at a time, through
ChatApp._dispatch to these handlers, and brings the panes up to date once a batch is
done. A handler changes widgets and the UI's data; anything it asks of the core goes
through the app, which never waits for an answer.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import urwid

from core import events as ev
from tui.conversation_view import UNVERIFIED
from tui.conversations import (
    HOME,
    channel_conversation_id,
    mention_spans,
    private_conversation_id,
)
from tui.read_marks import ReadMarksLoaded
from tui.ring_view import short

if TYPE_CHECKING:
    from tui.app import ChatApp

log = logging.getLogger(__name__)


# the UI's own events, which it posts to itself through the bridge like the core's

@dataclass(frozen=True)
class Done:
    """A runtime future finished (posted by its done-callback on the core thread)."""
    what: str  # "start", "shutdown" or the command
    future: concurrent.futures.Future


@dataclass(frozen=True)
class Quit:
    """The user, or a signal, asked to leave."""


def conversation_id(name: str) -> str:
    """The id of the conversation a core event names: "#channel", else a nick or "@id"."""
    if name.startswith("#"):
        return channel_conversation_id(name[1:])
    return private_conversation_id(name)


def on_ready(app: ChatApp, e: ev.Ready) -> None:
    app.ring_view.ready(e)
    app.conversation_view.notice(HOME, f"You are {e.nick}, node {short(e.id)} at {e.address}; "
                                       f"your key is {e.fingerprint}.")
    app.now_ready()


def on_history(app: ChatApp, e: ev.History) -> None:
    conv = app.conversations.named(e.conversation)
    for m in e.messages:
        app.nicks.add(m["from"])
        line = app.conversation_view.earlier(conv, m["from"], m["text"], m["at"], m["msg_id"],
                                             state=m["state"] if m["outgoing"] else None,
                                             action=m.get("action", False))
        if m["outgoing"]:
            app.conversation_view.own(m["msg_id"], line)
    app.read_marks.restore(conv)   # where the user stopped reading (tui.read_marks)


def on_pending(app: ChatApp, e: ev.Pending) -> None:
    new = app.conversations.get(conversation_id(e.conversation)) is None
    conv = app.conversations.named(e.conversation)
    if new:
        conv.opened_from = app.conversations.shown.id
    line = app.echoes.claim(conv.id, e.text)   # shown on Enter (tui.echoes)
    if line is not None:
        line.msg_id = e.msg_id
        app.conversation_view.own(e.msg_id, line)
        return
    line = app.conversation_view.message(conv, e.from_, e.text, e.at, own=True, msg_id=e.msg_id,
                                         state="pending", action=e.action)
    app.conversation_view.own(e.msg_id, line)
    if conv.kind == "private":
        app.conversations.select_id(conv.id)


def on_delivered(app: ChatApp, e: ev.Delivered) -> None:
    app.conversation_view.set_state(e.msg_id, "delivered")


def on_failed(app: ChatApp, e: ev.Failed) -> None:
    """A line that can never go: marked so; a private conversation that this line opened
    and that holds nothing else is closed again (to a nick nobody holds, say). The reason
    is said once, here: the core sends no Error for it."""
    conv = app.conversations.get(conversation_id(e.conversation))
    if (conv is not None and conv.kind == "private" and conv.opened_from is not None
            and app.conversation_view.holds_only(conv.id, e.msg_id)):
        app.conversations.close(conv.id)
        app.conversation_view.forget(conv.id)
    else:
        app.conversation_view.set_state(e.msg_id, "failed")
    app.conversation_view.error(f"not sent to {e.conversation}: {e.reason}")


def on_search(app: ChatApp, e: ev.SearchResults) -> None:
    app.show_search_results(e.text, e.hits)


def on_private(app: ChatApp, e: ev.PrivateMessage) -> None:
    other = e.to if e.outgoing else e.from_
    conv = app.conversations.private(other)
    app.nicks.add(other)
    if e.outgoing and app.conversation_view.set_state(e.msg_id, "delivered"):
        return   # shown when it was accepted
    app.conversation_view.message(conv, e.from_, e.text, e.at, own=e.outgoing,
                                  spans=() if e.outgoing else mention_spans(e.text, app.nick),
                                  verified=e.verified, action=e.action)
    if e.outgoing:
        app.conversations.select_id(conv.id)
    elif app.conversations.shown is not conv:
        conv.mention = True  # a private message is always for the user
        app.ring_bell()


def on_channel(app: ChatApp, e: ev.ChannelMessage) -> None:
    conv = app.conversations.channel(e.channel)
    app.nicks.add(e.from_)
    own = e.from_.lower() == app.nick.lower()
    if own and app.conversation_view.set_state(e.msg_id, "delivered"):
        return   # the echo of a line shown when it was accepted
    spans = [] if own else mention_spans(e.text, app.nick)
    if e.history:
        app.conversation_view.earlier(conv, e.from_, e.text, e.at, e.msg_id, verified=e.verified,
                                      spans=spans, action=e.action)
        return
    app.conversation_view.message(conv, e.from_, e.text, e.at, own=own, spans=spans,
                                  verified=e.verified, msg_id=e.msg_id, action=e.action)
    if spans:
        app.ring_bell()


def on_sent(app: ChatApp, e: ev.Sent) -> None:
    # a member sees its own message come back from the maintainer; a non-member only
    # gets this receipt, so the line is shown here instead
    conv = app.conversations.channel(e.channel)
    if not app.conversation_view.set_state(e.msg_id, "delivered") and not conv.joined:
        app.conversation_view.message(conv, app.nick, e.text, e.at, own=True, msg_id=e.msg_id,
                                      action=e.action)


def on_joined(app: ChatApp, e: ev.Joined) -> None:
    conv = app.conversations.channel(e.channel)
    conv.joined = True
    conv.members = set(e.members)
    app.nicks.update(e.members)
    who = ", ".join(sorted(e.members, key=str.lower)) or "nobody else yet"
    app.conversation_view.notice(conv.id, f"you joined {conv.title}; members: {who}", at=e.at)
    app.conversations.select_id(conv.id)


def on_left(app: ChatApp, e: ev.Left) -> None:
    conv = app.conversations.channel(e.channel)
    conv.joined = False
    app.conversation_view.notice(conv.id, f"you left {conv.title}", at=e.at)


def on_member_joined(app: ChatApp, e: ev.MemberJoined) -> None:
    conv = app.conversations.channel(e.channel)
    conv.members.add(e.nick)
    app.nicks.add(e.nick)
    app.conversation_view.notice(conv.id, f"→ {e.nick} joined {conv.title}", at=e.at)


def on_members_back(app: ChatApp, e: ev.MembersBack) -> None:
    conv = app.conversations.channel(e.channel)
    conv.members.update(e.nicks)
    app.nicks.update(e.nicks)
    app.conversation_view.notice(conv.id, f"netsplit over: {', '.join(e.nicks)} back",
                                 at=e.at)


def on_member_left(app: ChatApp, e: ev.MemberLeft) -> None:
    conv = app.conversations.channel(e.channel)
    conv.members.discard(e.nick)
    why = "" if e.reason == "left" else f" ({e.reason})"
    app.conversation_view.notice(conv.id, f"← {e.nick} left {conv.title}{why}", at=e.at)


def on_modes(app: ChatApp, e: ev.Modes) -> None:
    """A channel operator's mode change (``+o bo``, ``+t``), shown like a topic change."""
    if e.change and not e.history:
        conv = app.conversations.channel(e.channel)
        app.conversation_view.notice(conv.id, f"{e.nick} set mode {e.change}", at=e.at)


def on_kicked(app: ChatApp, e: ev.Kicked) -> None:
    conv = app.conversations.channel(e.channel)
    conv.members.discard(e.target)
    why = f" ({e.reason})" if e.reason else ""
    if e.target.lower() == (app.nick or "").lower():
        conv.joined = False
    app.conversation_view.notice(conv.id, f"← {e.target} was kicked by {e.nick}{why}",
                                 at=e.at)


def on_invited(app: ChatApp, e: ev.Invited) -> None:
    app.conversation_view.info(f"{e.nick} invited you to #{e.channel}" if not e.invitee
                               else f"invited {e.invitee} to #{e.channel}")


def on_key_changed(app: ChatApp, e: ev.KeyChanged) -> None:
    text = (f"the key of {e.nick} changed: pinned {e.old}, now {e.new}; its messages are "
            f"marked {UNVERIFIED} until you compare the fingerprint with {e.nick} and type "
            f"/trust {e.nick}")
    conv = app.conversations.private(e.nick)
    app.conversation_view.error(text, conv, at=e.at)
    if conv is not app.conversations.shown:
        app.conversation_view.error(text)
    app.ring_view.note(f"key changed: {e.nick} {e.old} -> {e.new}", "error", e.at)


def on_whois(app: ChatApp, e: ev.Whois) -> None:
    pin = {"same": "pinned", "new": "not pinned yet",
           "changed": "NOT the key pinned for this nick"}.get(e.pin, e.pin)
    on_info(app, ev.Info(text=f"{e.nick}: key {e.fingerprint} ({pin}), node "
                              f"{short(e.id)} at {e.address}, {e.reach}"))


def on_migration(app: ChatApp, e: ev.MigrationStep) -> None:
    app.ring_view.log(e)


def on_ring(app: ChatApp, e: ev.RingStatus) -> None:
    app.ring_view.ring_status(e)


def on_ring_change(app: ChatApp, e: ev.RingChange) -> None:
    app.ring_view.change(e)


def on_log(app: ChatApp, e: ev.Log) -> None:
    app.ring_view.log(e)


def on_info(app: ChatApp, e: ev.Info) -> None:
    for line in e.text.splitlines() or [""]:
        app.conversation_view.info(line)


def on_error(app: ChatApp, e: ev.Error) -> None:
    app.conversation_view.error(e.message)


def on_bye(app: ChatApp, _e: ev.Bye) -> None:
    raise urwid.ExitMainLoop


def on_done(app: ChatApp, e: Done) -> None:
    unsent = app.echoes.settled(e.future)   # a line shown on Enter that the core refused
    if unsent is not None:
        unsent.set_state("failed")
    try:
        e.future.result()
    except Exception as exc:  # noqa: BLE001 - every failure is shown, none is raised
        if e.what == "start":
            app.start_failed(exc)
            raise urwid.ExitMainLoop from None
        log.error("%s failed", e.what, exc_info=exc)
        app.conversation_view.error(f"{e.what}: {exc or type(exc).__name__}")
    if e.what == "shutdown":
        raise urwid.ExitMainLoop


def on_quit(app: ChatApp, _e: Quit) -> None:
    app.quit()


def on_read_marks(app: ChatApp, e: ReadMarksLoaded) -> None:
    app.read_marks.loaded(e.marks)


HANDLERS: dict[type, Callable[[ChatApp, Any], None]] = {
    ev.Ready: on_ready,
    ev.PrivateMessage: on_private,
    ev.ChannelMessage: on_channel,
    ev.Sent: on_sent,
    ev.History: on_history,
    ev.Pending: on_pending,
    ev.Delivered: on_delivered,
    ev.Failed: on_failed,
    ev.SearchResults: on_search,
    ev.Joined: on_joined,
    ev.Left: on_left,
    ev.MemberJoined: on_member_joined,
    ev.MemberLeft: on_member_left,
    ev.MembersBack: on_members_back,
    ev.Modes: on_modes,
    ev.Kicked: on_kicked,
    ev.Invited: on_invited,
    ev.KeyChanged: on_key_changed,
    ev.Whois: on_whois,
    ev.MigrationStep: on_migration,
    ev.RingStatus: on_ring,
    ev.RingChange: on_ring_change,
    ev.Log: on_log,
    ev.Gap: on_log,
    ev.Info: on_info,
    ev.Error: on_error,
    ev.Bye: on_bye,
    Done: on_done,
    Quit: on_quit,
    ReadMarksLoaded: on_read_marks,
}
