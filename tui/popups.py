"""What the popups over the screen show: the help (commands and keys, from their tables)
and the hits of a search, each of which opens its line. UI thread only."""

from __future__ import annotations

from collections.abc import Callable

import urwid

from core.chat.model import commands
from core.counts import counted
from tui import keys
from tui.conversation_view import clock
from tui.widgets.conversation import HitLine, MessageLine
from tui.widgets.palette import nick_attr
from tui.widgets.popup import Popup


def help_popup() -> Popup:
    """The commands and keys, from their tables; a long help scrolls in its pane."""
    lines: list[urwid.Widget] = [urwid.Text(("info", commands.HELP_INTRO))]
    for title, rows in (("Commands:", commands.help_rows()), ("Keys:", keys.help_rows())):
        lines.append(urwid.Text(("info", title)))
        width = max(len(name) for name, _ in rows)
        lines += [MessageLine(("info", f"  {name.ljust(width)}  "), ("info", text))
                  for name, text in rows]
    return Popup(" help ", lines, hint="Up/Down/PgUp/PgDn scroll · Esc closes")


def search_popup(text: str, hits, open_hit: Callable[[dict], None]) -> Popup:
    """The hits of a search, newest last; Enter (or a click) on one opens it."""
    lines: list[urwid.Widget] = []
    for hit in hits:
        line = HitLine([("time", f"{clock(hit['at'])} {hit['conversation']} "),
                        (nick_attr(hit["from"]), f"<{hit['from']}>"), " ", hit["text"]])
        urwid.connect_signal(line, "open", lambda _w, h=hit: open_hit(h))
        lines.append(line)
    return Popup(f" search {text!r}: {counted(len(hits), 'line')} ", lines,
                 hint="Up/Down choose · Enter opens · Esc closes")
