"""Hostile text against real nodes: a user signs channel entries and private messages full
of terminal escapes, CTCP, C1 and bidi characters and sends them as real frames. The
maintainer refuses them; when a maintainer lets them through anyway (one that does not
check, as before the rule) or the text is sealed (a private message, which no maintainer
sees), the headless plain and JSON output, an IRC client's lines (a real IRC client
library) and the UI's screen still hold no control character. Honest text, non-ASCII and a
genuine IRC ``/me`` arrive intact in the same run."""

from __future__ import annotations

import io
import json

import pytest

pytest.importorskip("irc.client_aio")

from core import events as ev  # noqa: E402
from core.chat.model.text import is_clean  # noqa: E402
from core.chat.ring import channels as ring_channels  # noqa: E402
from core.chord.testing import wait_until  # noqa: E402
from core.headless import _Printer  # noqa: E402
from core.irc.message import parse  # noqa: E402
from tests.support.irc import Client, ring  # noqa: E402
from tests.tui.doubles import RecordingRuntime  # noqa: E402
from tui.app import ChatApp  # noqa: E402

pytestmark = pytest.mark.timeout(120)

HONEST = "héllo ✓ 日本 — ok"
HOSTILE = [
    "clear\x1b[2J\x1b[H",                  # erase the screen, cursor home
    "title\x1b]0;pwned\x07",               # set the terminal's title
    "\x01VERSION\x01",                     # a CTCP query
    "\x01ACTION is root\x01",              # a CTCP ACTION not from /me
    "csi\x9b31mred\x9b0m",                 # C1 CSI
    "user\u202egnp.exe",                   # bidi override (shows as userexe.png)
    "\u2066iso\u2069 \x02bold\x0304red\x0f",  # bidi isolate, IRC formatting
    "fake\r\n:evil PRIVMSG dave :injected\r\nline\x7f",
]
CONTROLS = {chr(c) for c in [*range(0x20), *range(0x7f, 0xa0)]} | {
    chr(c) for c in [*range(0x202a, 0x202f), *range(0x2066, 0x206a)]}


def raw_controls(text: str, allow: str = "") -> set[str]:
    return {c for c in text if c in CONTROLS and c not in allow}


async def test_hostile_text__refused_by_the_maintainer_and_never_shown_raw_by_a_front_end(
        monkeypatch):
    async with ring(2) as (nodes, clients):
        a, b = nodes
        mallory_events: list = []
        carol_events: list = []
        mallory = await a.service.add_user("mallory", mallory_events.append)
        carol = await b.service.add_user("carol", carol_events.append)
        dave = Client()
        erin = Client()
        clients += [dave, erin]
        await dave.connect(b, "dave")
        await erin.connect(a, "erin")
        await dave.wait("welcome")
        await erin.wait("welcome")
        await mallory.join("general")
        await carol.join("general")
        dave.conn.join("#general")
        erin.conn.join("#general")
        await dave.wait("join", nick="dave")
        await erin.wait("join", nick="erin")

        # the hostile user signs its entries itself and sends them as frames: refused
        for text in HOSTILE:
            entry = mallory.me.sign("general", "msg", text)
            reply = await a.service.channels.call_send(entry)
            assert reply.get("refused") == "bad_text", (text, reply)

        # honest text, and a genuine /me from an IRC user
        await mallory.send("general", HONEST)
        erin.conn.action("#general", "waves ✓")

        # a maintainer that does not check (a hostile or an old one) lets them through,
        # and a private message is sealed: no maintainer can check it
        monkeypatch.setattr(ring_channels, "bad_char", lambda text: None)
        for text in HOSTILE:
            await mallory.send("general", text)
        await mallory.msg("carol", HOSTILE[0] + " " + HOSTILE[5])
        await mallory.msg("dave", HOSTILE[3])
        await mallory.send("general", "the end")

        def got(events, text):
            return [e for e in events if isinstance(e, ev.ChannelMessage | ev.PrivateMessage)
                    and text in e.text]
        await wait_until(lambda: got(carol_events, "the end") and got(carol_events, "pwned")
                         and [e for e in carol_events if isinstance(e, ev.PrivateMessage)],
                         what="carol's messages")
        await wait_until(lambda: any("the end" in line for line in dave.lines)
                         and any("PRIVMSG dave" in line and "root" in line
                                 for line in dave.lines), what="dave's lines")

    # what carol's headless front end prints, plain and JSON
    for as_json in (False, True):
        out = io.StringIO()
        printer = _Printer(out, as_json, quiet_logs=True)
        for event in carol_events:
            printer.post(event)
        printer.close()
        text = out.getvalue()
        assert not raw_controls(text, "\n"), (as_json, sorted(raw_controls(text, "\n")))
        if as_json:
            assert text.isascii()
            shown = [json.loads(line) for line in text.splitlines()]
            assert any(d.get("text") == HONEST for d in shown)          # intact
            assert any(d.get("text") == "waves ✓" and d.get("action") for d in shown)
        else:
            assert f"mallory: {HONEST}" in text
            assert "* erin waves ✓" in text   # her CTCP ACTION, a signed action
            assert "clear^[[2J^[[H" in text and "user\ufffdgnp.exe" in text
            assert "[private] mallory: clear^[[2J" in text
            # a line break in a text cannot start a line of its own
            assert not [line for line in text.splitlines() if line.startswith(":evil")]

    # what dave's IRC client received: the only CTCP is erin's genuine /me
    for line in dave.lines:
        message = parse(line)
        allowed = "\x01" if (message.command == "PRIVMSG" and message.prefix.startswith("erin!")
                             and line.endswith("\x01ACTION waves ✓\x01")) else ""
        assert not raw_controls(line, allowed), line
        assert message.prefix != "evil"
    assert any(line.endswith(f"PRIVMSG #general :{HONEST}") for line in dave.lines)
    assert any(line.endswith("PRIVMSG #general :\x01ACTION waves ✓\x01") for line in dave.lines)
    assert any(line.endswith("PRIVMSG dave :^AACTION is root^A") for line in dave.lines)
    assert any(line.endswith("PRIVMSG #general :line^?") for line in dave.lines)
    # the library saw no CTCP but erin's action
    assert {e.source.nick for e in dave.events if e.type in ("action", "ctcp")} == {"erin"}

    # what carol's UI shows
    app = ChatApp(RecordingRuntime(), "carol", bell=False)
    app.handle(ev.Ready("carol", "ab" * 20, "127.0.0.1:4000"))
    for event in carol_events:
        app.handle(event)
    shown = []
    for key in ("#general", "@mallory"):
        app.conversations.select_id(key)
        app.conversation_view.show_current()
        rows = [row.decode() for row in app.screen.render((100, 60), focus=True).text]
        assert not [r for r in rows if raw_controls(r)], rows
        shown += app.screen.conversation.messages.texts()
    assert all(is_clean(t) for t in shown)
    assert any(HONEST in t for t in shown) and any("^[[2J" in t for t in shown)
