"""The one command parser of every front end, and the COMMANDS table behind help and completion.

A line such as ``send #general hello`` becomes a ``Command(name="send", args=("general",
"hello"))``; anything wrong with it raises ``CommandError`` saying exactly what.
IRC forms (``/msg``, ``/join``, ``/part``, ``/quit``) and a leading ``/`` on any command are
accepted. A private message by node id uses ``msg @<hex id>``: a nick starts with a letter,
so ``@`` can never be read as one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_TEXT = 4000
NICK_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
CHANNEL_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,49}")
ID_RE = re.compile(r"[0-9a-f]{8,40}")


class CommandError(ValueError):
    """A command line that cannot be run; the message says what is wrong with it."""


@dataclass(frozen=True)
class CommandSpec:
    """One row of the command table: its name, other spellings, usage and one-line help."""
    name: str
    usage: str
    help: str
    aliases: tuple[str, ...] = ()


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("msg", "msg <nick> <text>",
                "send a private message to a nick (or msg @<8-40 hex id> <text> by node id)",
                ("/msg",)),
    CommandSpec("join", "join <channel>", "join a channel (#name or name)", ("/join",)),
    CommandSpec("leave", "leave <channel>", "leave a channel you joined", ("/leave", "/part")),
    CommandSpec("send", "send <channel> <text>",
                "send a message to a channel (you need not be a member)", ("/send",)),
    CommandSpec("status", "status", "show this node's id, neighbours and what it maintains",
                ("/status",)),
    CommandSpec("help", "help", "list the commands", ("/help",)),
    CommandSpec("exit", "exit", "leave every channel, hand over what this node keeps, quit",
                ("/exit", "/quit", "quit")),
)

_BY_NAME = {spelling: spec for spec in COMMANDS for spelling in (spec.name, *spec.aliases)}


@dataclass(frozen=True)
class Command:
    """A parsed command: its canonical name and its arguments, already validated.

    For ``msg`` the arguments are (nick, text) or, by node id, ("@" + hex prefix, text).
    Channel names are canonical: lower-case, without the ``#``.
    """
    name: str
    args: tuple[str, ...] = ()

    @property
    def destination(self) -> str | None:
        """Where the command goes: ``#channel`` (join, leave, send), a nick in lower case or
        ``@id`` (msg); None for the rest. Commands to one destination keep their order."""
        if self.name in ("join", "leave", "send"):
            return "#" + self.args[0]
        if self.name == "msg":
            return self.args[0].lower()
        return None


def check_nick(nick: str) -> str:
    """Return ``nick`` if it is a valid nickname, else raise CommandError saying why."""
    if not NICK_RE.fullmatch(nick):
        raise CommandError(
            f"invalid nick {nick!r}: 1-32 letters, digits, '_' or '-', starting with a letter")
    return nick


def channel_name(text: str) -> str:
    """The canonical channel name (lower-case, no leading ``#``), or CommandError."""
    name = text[1:] if text.startswith("#") else text
    name = name.lower()
    if not CHANNEL_RE.fullmatch(name):
        raise CommandError(
            f"invalid channel name {text!r}: 1-50 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit, optionally after '#'")
    return name


def check_text(text: str) -> str:
    """Return ``text`` if it can be sent as a message, else raise CommandError saying why."""
    if not text.strip():
        raise CommandError("the message is empty")
    if len(text) > MAX_TEXT:
        raise CommandError(
            f"the message has {len(text)} characters; at most {MAX_TEXT} are allowed")
    for ch in text:
        if unicodedata.category(ch) == "Cc":
            raise CommandError(f"the message contains a control character ({ord(ch):#04x})")
    return text


def _split(rest: str, count: int) -> list[str]:
    """The first ``count - 1`` words of ``rest`` and then everything after them."""
    parts = rest.split(None, count - 1)
    if len(parts) == count:
        parts[-1] = parts[-1].strip()
    return parts


def parse(line: str) -> Command:
    """Parse one command line; raise CommandError with a specific message if it is wrong."""
    line = line.rstrip("\r\n")
    if not line.strip():
        raise CommandError("empty command; type help for the list of commands")
    word, _, rest = line.strip().partition(" ")
    spec = _BY_NAME.get(word.lower())
    if spec is None:
        raise CommandError(f"unknown command {word!r}; type help for the list of commands")
    name = spec.name
    if name in ("msg", "send"):
        parts = _split(rest.strip(), 2)
        if len(parts) < 2 or not parts[1]:
            what = "a nick (or @id)" if name == "msg" else "a channel"
            if not parts:
                raise CommandError(f"{name} needs {what} and a text; usage: {spec.usage}")
            raise CommandError(f"{name} needs a text after {parts[0]!r}; usage: {spec.usage}")
        target, text = parts
        check_text(text)
        if name == "send":
            return Command(name, (channel_name(target), text))
        if target.startswith("@"):
            node_id = target[1:].lower()
            if not ID_RE.fullmatch(node_id):
                raise CommandError(f"invalid node id {target!r}: '@' and then 8 to 40 hex digits")
            return Command(name, ("@" + node_id, text))
        return Command(name, (check_nick(target), text))
    if name in ("join", "leave"):
        words = rest.split()
        if not words:
            raise CommandError(f"{name} needs a channel; usage: {spec.usage}")
        if len(words) > 1:
            raise CommandError(f"{name} takes one channel, not {len(words)} words; "
                               f"usage: {spec.usage}")
        return Command(name, (channel_name(words[0]),))
    if rest.strip():
        raise CommandError(f"{name} takes no arguments; usage: {spec.usage}")
    return Command(name)


def help_text() -> str:
    """The help listing, one command per line, from the COMMANDS table."""
    width = max(len(spec.usage) for spec in COMMANDS)
    return "\n".join(f"{spec.usage:<{width}}  {spec.help}" for spec in COMMANDS)


def completions(prefix: str) -> list[str]:
    """Command names (and IRC forms) that start with ``prefix``, for Tab completion."""
    spellings = [s for spec in COMMANDS for s in (spec.name, *spec.aliases)]
    return sorted(s for s in spellings if s.startswith(prefix.lower()))
