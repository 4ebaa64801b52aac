"""What chat text may contain, and how a front end shows text that breaks the rule.

Text from the network ends up on terminals and in IRC clients, which act on control
characters: an ESC sequence can move the cursor, rewrite earlier lines, set the window
title or (on some terminals) answer back into the input; a C1 control (U+0080–U+009F) is
the same on terminals that read 8-bit controls; ``\\x01`` starts a CTCP request in IRC;
a bidi override makes text read in another order than it is stored (Trojan Source,
CVE-2021-42574): ``user\\u202egnp.exe`` shows as ``userexe.png``.

The rule (``bad_char``): chat text contains no

- C0 control (U+0000–U+001F) except newline (``\\n``): a message may have several lines,
  every front end shows each line on its own (the IRC gateway sends each as a PRIVMSG);
  tab and carriage return are refused with the rest;
- DEL (U+007F), nor any C1 control (U+0080–U+009F);
- bidi embedding, override or isolate: U+202A–U+202E, U+2066–U+2069 (the implicit marks
  LRM U+200E, RLM U+200F and ALM U+061C stay: right-to-left text needs them and they
  reorder nothing by themselves);
- lone surrogate (U+D800–U+DFFF): not text at all; a JSON string may carry one and
  writing it to a UTF-8 stream fails.

Everything else is allowed: any script, emoji with their joiners, IRC-style ``*bold*``.

``visible`` is what every front end applies at output, to text the maintainer may never
have seen (sealed private messages) or that a hostile maintainer let through: a C0 control
or DEL as caret notation (ESC as ``^[``, DEL as ``^?``), any other forbidden character as
U+FFFD. It keeps newlines unless told not to.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

REPLACEMENT = "\ufffd"
# the forbidden characters as one class (the module's docstring says why each)
_BAD = "\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_BAD_RE = re.compile(f"[{_BAD}]")
_BAD_OR_NEWLINE_RE = re.compile(f"[{_BAD}\n]")


class TextError(ValueError):
    """Text with a character chat text may not contain; the message names it."""


def bad_char(text: str) -> str | None:
    """The first character of ``text`` that chat text may not contain, or None."""
    found = _BAD_RE.search(text)
    return found.group() if found is not None else None


def is_clean(text: str) -> bool:
    """Whether ``text`` keeps the rule (newlines allowed)."""
    return _BAD_RE.search(text) is None


def describe(ch: str) -> str:
    """A forbidden character as a person reads it: ``U+001B (^[)``."""
    caret = f" ({caret_of(ch)})" if ord(ch) < 0x20 or ch == "\x7f" else ""
    return f"U+{ord(ch):04X}{caret}"


def check(text: str) -> str:
    """Return ``text`` if it keeps the rule, else raise ``TextError`` naming the character."""
    ch = bad_char(text)
    if ch is not None:
        raise TextError(f"the text contains a control character {describe(ch)}")
    return text


def caret_of(ch: str) -> str:
    """Caret notation of a C0 control or DEL: ``^@`` … ``^_``, ``^?``."""
    return "^?" if ch == "\x7f" else "^" + chr(ord(ch) + 0x40)


def _shown(found: re.Match) -> str:
    ch = found.group()
    if ch == "\n":
        return " "
    if ord(ch) < 0x20 or ch == "\x7f":
        return caret_of(ch)
    return REPLACEMENT


def visible(text: str, newlines: bool = True) -> str:
    """``text`` with every character the rule forbids made visible (caret notation for C0
    controls and DEL, U+FFFD for the rest); with ``newlines`` false a newline becomes a
    space too (for a front end that shows one line)."""
    pattern = _BAD_RE if newlines else _BAD_OR_NEWLINE_RE
    return pattern.sub(_shown, text)


def without_bad(text: str) -> str:
    """``text`` without the characters the rule forbids (newlines stay)."""
    return _BAD_RE.sub("", text)


def visible_fields(value, show: Callable[[str], str] = visible):
    """``value`` with ``show`` (``visible``) applied to every string in it that breaks the
    rule (or, with another ``show``, holds a newline): a dataclass's fields (a copy),
    lists, tuples and dict values; what needs no change is returned as it is. Front ends
    take core events through this."""
    if isinstance(value, str):
        if _BAD_RE.search(value) or (show is not visible and "\n" in value):
            return show(value)
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            if not f.init:
                continue
            old = getattr(value, f.name)
            new = visible_fields(old, show)
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, list | tuple):
        items = [visible_fields(v, show) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    if isinstance(value, dict):
        items = {k: visible_fields(v, show) for k, v in value.items()}
        if all(items[k] is v for k, v in value.items()):
            return value
        return items
    return value
