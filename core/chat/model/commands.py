"""The one command parser of every front end, and the COMMANDS table that says where each
command is handled and drives help, completion and dispatch.

``parse(line)`` reads a line typed in the home pane or on headless stdin: ``send #general
hello`` becomes ``Command("send", ("general", "hello"))``. ``parse(line, "#general")`` reads
a line typed in a conversation: there a line is chat text unless it starts with ``/``
(``//text`` sends "/text"), so ``exit strategy is clear`` is a message, not an exit.
Anything wrong raises ``CommandError`` saying exactly what. IRC forms (``/msg``, ``/join``,
``/part``, ``/quit``) and a leading ``/`` on any command are accepted everywhere. A private
message by node id uses ``msg @<hex id>``: a nick starts with a letter, so ``@`` can never
be read as one.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from core.datadir import valid_nick

from .entries import MAX_TOPIC
from .modes import ModeError, changes_text, check_arg, parse_changes
from .text import bad_char, describe

MAX_TEXT = 4000
CHANNEL_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,49}")
ID_RE = re.compile(r"[0-9a-f]{8,40}")


class CommandError(ValueError):
    """A command line that cannot be run; the message says what is wrong with it."""


class UnknownCommand(CommandError):
    """The first word of a line is no command (a front end may add a hint of its own)."""


class Where(enum.Enum):
    """Who runs a command: every front end dispatches on this and nothing else."""
    FRONT_END = "front end"  # answered by the UI or headless itself, never sent to the core
    RUNTIME = "runtime"      # the runtime's lifecycle (exit: the graceful exit sequence)
    CHAT = "chat"            # the chat on the ring; waits until the node is in the ring


@dataclass(frozen=True)
class CommandSpec:
    """One row of the command table.

    ``usage`` names the arguments as ``<kind>`` (channel, nick, text) or ``[a|b]`` (an
    optional choice); completion reads the kinds from it.
    """
    name: str
    usage: str
    help: str
    where: Where
    read: Callable[[CommandSpec, str, str | None], Command]  # (spec, arguments, conversation)
    aliases: tuple[str, ...] = ()  # other spellings (IRC's), with or without the "/"

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def argument_kinds(self) -> list[str]:
        """What each argument is, in order: "channel", "nick", "text" or "on|off"."""
        return [word.strip("<>[]") for word in self.usage.split()[1:]]


# -- reading each command's arguments (the table below names one reader per command)

def _text_after_target(spec: CommandSpec, rest: str) -> tuple[str, str]:
    """msg and send: the first word, then the text (stripped, checked)."""
    parts = rest.split(None, 1)
    if len(parts) < 2:
        what = "a nick (or @id)" if spec.name == "msg" else "a channel"
        if not parts:
            raise CommandError(f"{spec.name} needs {what} and a text; usage: {spec.usage}")
        raise CommandError(f"{spec.name} needs a text after {parts[0]!r}; usage: {spec.usage}")
    return parts[0], check_text(parts[1].strip())


def _msg(spec: CommandSpec, rest: str, _conversation: str | None) -> Command:
    target, text = _text_after_target(spec, rest)
    return Command("msg", (_recipient(target), text))


def _send(spec: CommandSpec, rest: str, _conversation: str | None) -> Command:
    target, text = _text_after_target(spec, rest)
    return Command("send", (channel_name(target), text))


def _topic(spec: CommandSpec, rest: str, conversation: str | None) -> Command:
    target, text = _text_after_target(spec, rest)
    if len(text) > MAX_TOPIC:
        raise CommandError(f"a topic has at most {MAX_TOPIC} characters")
    return Command("topic", (channel_name(target), text))


def _in_channel(spec: CommandSpec, rest: str, conversation: str | None) -> tuple[str, str]:
    """(channel, the rest): a first word starting with # names the channel, else the
    channel shown."""
    words = rest.split(None, 1)
    if words and words[0].startswith("#"):
        return channel_name(words[0]), words[1].strip() if len(words) > 1 else ""
    if conversation and conversation.startswith("#"):
        return channel_name(conversation), rest.strip()
    raise CommandError(f"{spec.name} needs a channel; usage: {spec.usage}")


def _mode(spec: CommandSpec, rest: str, conversation: str | None) -> Command:
    channel, changes = _in_channel(spec, rest, conversation)
    try:
        return Command("mode", (channel, changes_text(parse_changes(changes))))
    except ModeError as e:
        raise CommandError(f"{e}; usage: {spec.usage}") from None


def _kick(spec: CommandSpec, rest: str, conversation: str | None) -> Command:
    channel, rest = _in_channel(spec, rest, conversation)
    words = rest.split(None, 1)
    if not words:
        raise CommandError(f"kick needs a nick; usage: {spec.usage}")
    reason = check_text(words[1].strip()) if len(words) > 1 else ""
    return Command("kick", (channel, check_nick(words[0]), reason))


def _invite(spec: CommandSpec, rest: str, conversation: str | None) -> Command:
    words = rest.split()
    if not 1 <= len(words) <= 2:
        raise CommandError(f"invite needs a nick (and a channel); usage: {spec.usage}")
    channel, _ = _in_channel(spec, " ".join(words[1:]), conversation)
    return Command("invite", (channel, check_nick(words[0])))


def _me(spec: CommandSpec, rest: str, conversation: str | None) -> Command:
    """/me in a conversation: an action there; elsewhere the first word names where."""
    if conversation is None:
        parts = rest.split(None, 1)
        if len(parts) < 2:
            raise CommandError("me needs a channel or nick and a text outside a conversation; "
                               "usage: me <#channel|nick> <text>")
        conversation, rest = parts
    elif not rest.strip():
        raise CommandError(f"me needs a text (what you do); usage: {spec.usage}")
    return action_command(conversation, rest.strip())


def _one_channel(spec: CommandSpec, rest: str, conversation: str | None) -> Command:
    words = rest.split()
    if not words and spec.name == "leave" and conversation and conversation.startswith("#"):
        words = [conversation]  # IRC's /part: the channel shown
    if not words:
        raise CommandError(f"{spec.name} needs a channel; usage: {spec.usage}")
    if len(words) > 1:
        raise CommandError(f"{spec.name} takes one channel, not {len(words)} words; "
                           f"usage: {spec.usage}")
    return Command(spec.name, (channel_name(words[0]),))


def _join(spec: CommandSpec, rest: str, _conversation: str | None) -> Command:
    """join <channel> [key]: the key of a +k channel (kept for the rejoin at each start)."""
    words = rest.split()
    if not words:
        raise CommandError(f"join needs a channel; usage: {spec.usage}")
    if len(words) > 2:
        raise CommandError(f"join takes a channel and its key, not {len(words)} words; "
                           f"usage: {spec.usage}")
    channel = channel_name(words[0])
    if len(words) == 1:
        return Command("join", (channel,))
    try:
        return Command("join", (channel, check_arg("+", "k", words[1])))
    except ModeError as e:
        raise CommandError(f"{e}; usage: {spec.usage}") from None


def _one_nick(spec: CommandSpec, rest: str, _conversation: str | None) -> Command:
    words = rest.split()
    if len(words) != 1:
        raise CommandError(f"{spec.name} needs one nick; usage: {spec.usage}")
    return Command(spec.name, (check_nick(words[0]),))


def _bell(spec: CommandSpec, rest: str, _conversation: str | None) -> Command:
    if rest and rest.lower() not in ("on", "off"):
        raise CommandError(f"bell takes on or off, not {rest!r}; usage: {spec.usage}")
    return Command("bell", (rest.lower(),) if rest else ())


def _search(spec: CommandSpec, rest: str, _conversation: str | None) -> Command:
    if not rest.strip():
        raise CommandError(f"search needs a text to look for; usage: {spec.usage}")
    return Command("search", (check_text(rest.strip()),))


def _no_arguments(spec: CommandSpec, rest: str, _conversation: str | None) -> Command:
    if rest:
        raise CommandError(f"{spec.name} takes no arguments; usage: {spec.usage}")
    return Command(spec.name)


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("msg", "msg <nick> <text>",
                "send a private message to a nick (or msg @<8-40 hex id> <text> by node id)",
                Where.CHAT, _msg),
    CommandSpec("me", "me <text>",
                "an action in the conversation shown: /me waves shows as * you waves (in the "
                "home pane and headless: me <#channel|nick> <text>)", Where.CHAT, _me),
    CommandSpec("join", "join <channel> [key]",
                "join a channel (#name or name; a +k channel with its key)", Where.CHAT, _join),
    CommandSpec("leave", "leave <channel>",
                "leave a channel you joined (in a channel, /leave alone leaves it)",
                Where.CHAT, _one_channel, ("part",)),
    CommandSpec("send", "send <channel> <text>",
                "send a message to a channel (you need not be a member)", Where.CHAT, _send),
    CommandSpec("topic", "topic <channel> <text>",
                "set the topic of a channel you are in (every member sees it)", Where.CHAT,
                _topic),
    CommandSpec("mode", "mode [#channel] <+-modes> [arguments]",
                "as a channel operator: +o/-o nick (operator), +v nick (voice), +t (only "
                "operators set the topic), +n (members only), +m (moderated), +i (invite "
                "only), +k key, +l limit, +s (secret), +b/+e/+I mask (ban, exception, invite "
                "exception)", Where.CHAT, _mode),
    CommandSpec("kick", "kick [#channel] <nick> [reason]",
                "as a channel operator: remove a member", Where.CHAT, _kick),
    CommandSpec("invite", "invite <nick> [#channel]",
                "let a nick into an invite-only channel (or past a ban)", Where.CHAT, _invite),
    CommandSpec("status", "status", "show this node's id, neighbours and what it maintains",
                Where.CHAT, _no_arguments),
    CommandSpec("whois", "whois <nick>",
                "show who holds a nick: its key's fingerprint, node id and address",
                Where.CHAT, _one_nick),
    CommandSpec("trust", "trust <nick>",
                "accept a nick's new key after a key-changed warning (compare its "
                "fingerprint first)", Where.CHAT, _one_nick),
    CommandSpec("search", "search <text>",
                "find the lines of your history holding every word (opens the conversation "
                "at a line)", Where.FRONT_END, _search),
    CommandSpec("help", "help", "list the commands", Where.FRONT_END, _no_arguments),
    CommandSpec("bell", "bell [on|off]",
                "the terminal bell for mentions and private messages: on, off, or toggle",
                Where.FRONT_END, _bell),
    CommandSpec("exit", "exit", "leave every channel, hand over what this node keeps, quit",
                Where.RUNTIME, _no_arguments, ("quit",)),
)

HELP_INTRO = ("In a channel or private conversation a line is chat text unless it starts "
              "with /  (//text sends /text); in the home pane the / is optional.")

_BY_SPELLING = {spelling: spec for spec in COMMANDS for spelling in spec.spellings}


def spec_of(name: str) -> CommandSpec:
    """The table's row for a command name or any other spelling of it (KeyError if none)."""
    return _BY_SPELLING[name.lower().removeprefix("/")]


@dataclass(frozen=True)
class Command:
    """A parsed command: its canonical name and its arguments, already validated.

    For ``msg`` the arguments are (nick, text) or, by node id, ("@" + hex prefix, text).
    Channel names are canonical: lower-case, without the ``#``. For ``me`` (an action) they
    are (``#channel``, text) or (nick or ``@id``, text): the conversation, then the text.
    """
    name: str
    args: tuple[str, ...] = ()

    @property
    def spec(self) -> CommandSpec:
        return spec_of(self.name)

    @property
    def where(self) -> Where:
        return self.spec.where

    @property
    def destination(self) -> str | None:
        """Where the command goes: ``#channel`` (join, leave, send), a nick in lower case or
        ``@id`` (msg); None for the rest. Commands to one destination keep their order."""
        if self.name in ("join", "leave", "send", "mode", "kick", "invite"):
            return "#" + self.args[0]
        if self.name == "msg":
            return self.args[0].lower()
        if self.name == "me":
            return self.args[0] if self.args[0].startswith("#") else self.args[0].lower()
        return None

    @property
    def shown(self) -> str:
        """The command as a line for notices and logs: as ``str``, with a channel key
        (``join #c key``, ``mode #c +k key``) written as ``(key)``, never itself."""
        hidden = "(key)"
        if self.name == "join" and len(self.args) > 1 and self.args[1]:
            return str(Command("join", (self.args[0], hidden)))
        if self.name == "mode" and "k" in self.args[1].split(" ")[0]:
            try:
                changes = [(sign, letter, hidden if letter == "k" and arg else arg)
                           for sign, letter, arg in parse_changes(self.args[1])]
            except ModeError:
                return f"mode #{self.args[0]} {hidden}"
            return str(Command("mode", (self.args[0], changes_text(changes))))
        return str(self)

    def __str__(self) -> str:
        """The command as a line that parses back to it (a channel key too: notices and
        logs take ``shown``)."""
        args = list(self.args)
        if self.name in ("join", "leave", "send", "mode", "kick"):
            args[0] = "#" + args[0]
        if self.name == "invite":
            args = [args[1], "#" + args[0]]
        return " ".join(a for a in (self.name, *args) if a)


def check_nick(nick: str) -> str:
    """Return ``nick`` if it is a valid nickname, else raise CommandError saying why."""
    if not valid_nick(nick):
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
    """Return ``text`` if it can be sent as a message, else raise CommandError saying why.

    A message may have several lines (``\n``; a ``\r\n`` or lone ``\r`` becomes ``\n``):
    it travels as one message. Blank lines at either end are left out."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if not text.strip():
        raise CommandError("the message is empty")
    if len(text) > MAX_TEXT:
        raise CommandError(
            f"the message has {len(text)} characters; at most {MAX_TEXT} are allowed")
    ch = bad_char(text)
    if ch is not None:   # the rule every maintainer applies (core.chat.model.text)
        raise CommandError(f"the message contains a control character {describe(ch)}")
    return text


def _conversation_target(conversation: str) -> str:
    """``#channel`` (canonical) for a channel conversation, else the nick or ``@id``."""
    if conversation.startswith("#"):
        return "#" + channel_name(conversation)
    return _recipient(conversation)


def text_command(conversation: str, text: str) -> Command:
    """The Command that sends ``text`` to ``conversation`` ("#channel", a nick or "@id") as
    chat text, never read as a command: for a front end's multi-line input or a paste.
    ``text`` may hold newlines; CommandError if it cannot be sent."""
    target = _conversation_target(conversation)
    text = check_text(text)
    if target.startswith("#"):
        return Command("send", (target[1:], text))
    return Command("msg", (target, text))


def action_command(conversation: str, text: str) -> Command:
    """The ``me`` Command: ``text`` as an action in ``conversation`` (as ``text_command``)."""
    return Command("me", (_conversation_target(conversation), check_text(text)))


def _recipient(target: str) -> str:
    """A nick, or ``@`` and a node id prefix (lower-cased), else CommandError."""
    if target.startswith("@"):
        node_id = target[1:].lower()
        if not ID_RE.fullmatch(node_id):
            raise CommandError(f"invalid node id {target!r}: '@' and then 8 to 40 hex digits")
        return "@" + node_id
    return check_nick(target)


def parse(line: str, conversation: str | None = None) -> Command:
    """Parse one typed line into a Command; raise CommandError with a specific message.

    Args:
        line: the line as typed (a trailing newline is ignored).
        conversation: where it was typed: "#channel", a nick, or None for the home pane
            and headless stdin. In a conversation a line is chat text to it unless it
            starts with "/"; "//" sends the text from the second "/" on.
    """
    line = line.strip()
    if line.startswith("//") or (conversation is not None and not line.startswith("/")):
        if conversation is None:
            raise UnknownCommand(f"unknown command {line.split()[0]!r}; // sends text "
                                 "starting with / in a channel or private conversation")
        text = check_text(line[1:] if line.startswith("//") else line)
        if conversation.startswith("#"):
            return Command("send", (channel_name(conversation), text))
        return Command("msg", (_recipient(conversation), text))
    if not line:
        raise CommandError("empty command; type help for the list of commands")
    word, _, rest = line.partition(" ")
    try:
        spec = spec_of(word)
    except KeyError:
        raise UnknownCommand(f"unknown command {word!r}; type help for the list of commands") \
            from None
    return spec.read(spec, rest.strip(), conversation)


def help_rows() -> list[tuple[str, str]]:
    """(usage, help) of every command, with its other spellings, in table order."""
    rows = []
    for spec in COMMANDS:
        also = f" (also /{', /'.join(spec.aliases)})" if spec.aliases else ""
        rows.append((spec.usage, spec.help + also))
    return rows


def help_text() -> str:
    """The help listing for a line-mode front end: the rule for "/", then one command a line."""
    rows = help_rows()
    width = max(len(usage) for usage, _ in rows)
    return "\n".join([HELP_INTRO, *(f"{usage:<{width}}  {text}" for usage, text in rows)])


def command_words() -> list[str]:
    """Every spelling of every command, without "/", for Tab completion."""
    return sorted(s for spec in COMMANDS for s in spec.spellings)


def argument_kinds(word: str) -> list[str]:
    """What the arguments of the command spelled ``word`` are ([] if it is none)."""
    try:
        return spec_of(word).argument_kinds
    except KeyError:
        return []
