"""The one key table: it drives the key handling, the help text and the tests.

An action named ``edit_<move>`` is the input line's own (``InputLine.edit``: readline's
moves, tui.line_editing); every other action is the app's (``ChatApp.act_<action>``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Binding:
    """Keys (urwid key names) that run one UI action; ``label`` is how help spells them."""
    keys: tuple[str, ...]
    action: str
    label: str
    help: str


BINDINGS: tuple[Binding, ...] = (
    Binding(tuple(f"meta {i}" for i in range(1, 10)), "goto", "Alt+1…9",
            "show conversation 1…9 of the side pane"),
    Binding(("ctrl n",), "next_conversation", "Ctrl+N", "next conversation"),
    Binding(("ctrl p",), "previous_conversation", "Ctrl+P", "previous conversation"),
    Binding(("page up",), "scroll_up", "PgUp", "scroll the conversation back"),
    Binding(("page down",), "scroll_down", "PgDn", "scroll forward (at the end it follows again)"),
    Binding(("meta page up", "shift page up"), "log_up", "Alt+PgUp",
            "scroll the ring log back (Shift+PgUp too)"),
    Binding(("meta page down", "shift page down"), "log_down", "Alt+PgDn",
            "scroll the ring log forward"),
    Binding(("f2", "meta l"), "toggle_log", "F2 / Alt+L", "show or hide the ring log pane"),
    Binding(("f3",), "toggle_bell", "F3",
            "turn the bell off or on (as bell off/on; Alt+B is now word back, as in readline)"),
    Binding(("f1",), "help", "F1", "this help: commands and keys"),
    Binding(("up",), "input_history_older", "Up", "previous line of input history"),
    Binding(("down",), "input_history_newer", "Down", "next line of input history"),
    Binding(("tab",), "complete", "Tab", "complete a command, channel or nick (again: next one)"),
    Binding(("enter",), "submit", "Enter",
            "run the command, or send the text here (several lines: one message, never a "
            "command)"),
    Binding(("meta enter",), "edit_newline", "Alt+Enter",
            "a new line in the message (a paste keeps its lines too, until Enter)"),
    Binding(("ctrl a",), "edit_line_start", "Ctrl+A", "to the start of the line"),
    Binding(("ctrl e",), "edit_line_end", "Ctrl+E", "to the end of the line"),
    Binding(("ctrl b",), "edit_char_back", "Ctrl+B", "one character back"),
    Binding(("ctrl f",), "edit_char_forward", "Ctrl+F", "one character forward"),
    Binding(("meta b",), "edit_word_back", "Alt+B", "one word back"),
    Binding(("meta f",), "edit_word_forward", "Alt+F", "one word forward"),
    Binding(("ctrl u",), "edit_kill_to_start", "Ctrl+U", "cut to the start of the line"),
    Binding(("ctrl k",), "edit_kill_to_end", "Ctrl+K", "cut to the end of the line"),
    Binding(("ctrl w",), "edit_kill_word_back", "Ctrl+W", "cut the word before the cursor "
            "(to the previous blank)"),
    Binding(("meta backspace",), "edit_kill_alnum_word_back", "Alt+Backspace",
            "cut the word before the cursor"),
    Binding(("meta d",), "edit_kill_word_forward", "Alt+D", "cut the word after the cursor"),
    Binding(("ctrl y",), "edit_yank", "Ctrl+Y", "paste back what was cut last"),
    Binding(("ctrl c",), "quit", "Ctrl+C", "leave the ring gracefully and quit (same as exit)"),
)

# key name -> (action, position of the key in its binding, e.g. 0 for Alt+1)
_BY_KEY: dict[str, tuple[str, int]] = {
    key: (b.action, i) for b in BINDINGS for i, key in enumerate(b.keys)
}


EDIT_PREFIX = "edit_"  # actions the input line runs itself


def action_for(key: str) -> tuple[str, int] | None:
    """The action bound to ``key`` and the key's position in its binding, or None."""
    return _BY_KEY.get(key)


def label_of(action: str) -> str:
    """How help spells the keys of ``action`` (for hints elsewhere on the screen)."""
    return next(b.label for b in BINDINGS if b.action == action)


def help_rows() -> list[tuple[str, str]]:
    """(label, help) of every binding, for the help text."""
    return [(b.label, b.help) for b in BINDINGS]
