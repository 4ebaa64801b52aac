"""Commands the UI answers itself, without the core: their table (the same shape as the
core's COMMANDS) drives help and Tab completion, and ``parse_bell`` reads their lines."""

from __future__ import annotations

from core.chat.commands import COMMANDS, CommandError, CommandSpec

LOCAL_COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("bell", "bell [on|off]",
                "the terminal bell for mentions and private messages: on, off, or toggle",
                ("/bell",)),
)

_BY_SPELLING = {s: spec for spec in LOCAL_COMMANDS for s in (spec.name, *spec.aliases)}


def local_command(line: str) -> CommandSpec | None:
    """The UI command a typed line runs, or None when it is not one of them."""
    return _BY_SPELLING.get(line.strip().split(" ", 1)[0].lower())


def all_commands() -> tuple[CommandSpec, ...]:
    """The core's commands and the UI's, in the order help lists them."""
    return (*COMMANDS, *LOCAL_COMMANDS)


def help_rows() -> list[tuple[str, str]]:
    """(usage, help) of every command, for the help text."""
    return [(spec.usage, spec.help) for spec in all_commands()]


def parse_bell(line: str, current: bool) -> bool:
    """The bell setting that ``bell``, ``bell on`` or ``bell off`` asks for."""
    words = line.split()[1:]
    if not words:
        return not current
    if len(words) == 1 and words[0].lower() in ("on", "off"):
        return words[0].lower() == "on"
    raise CommandError(f"bell takes on or off, not {' '.join(words)!r}; usage: bell [on|off]")
