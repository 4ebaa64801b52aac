"""Channel modes as an IRC client asks for them (RFC 2812 §3.2.3, modern.ircdocs.horse
MODE): a MODE line read into the changes the chat signs (``core.chat.model.modes``), and
the answers that need no ring (the modes and lists the client knows). No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.chat.model.modes import LETTERS, MAX_CHANGES, ModeError, check_arg, needs_arg

from . import numerics as n

LISTS = {"b": (n.RPL_BANLIST, n.RPL_ENDOFBANLIST, "End of channel ban list"),
         "e": (n.RPL_EXCEPTLIST, n.RPL_ENDOFEXCEPTLIST, "End of channel exception list"),
         "I": (n.RPL_INVITELIST, n.RPL_ENDOFINVITELIST, "End of channel invite exception list")}


@dataclass
class Parsed:
    """A MODE line of a channel, read: the changes to make, the lists asked for, and the
    errors to answer (numeric, params...) for what was left out."""
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)
    errors: list[tuple[str, ...]] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)    # the nicks +o/+v name


def parse(channel: str, modestring: str, args: list[str]) -> Parsed:
    """Read ``MODE #channel modestring args...``: an unknown letter is 472, a bad argument
    696 (a key is never echoed), a list mode without an argument a list query."""
    out = Parsed()
    rest = iter(args)
    sign = "+"
    for letter in modestring:
        if letter in "+-":
            sign = letter
            continue
        if letter not in LETTERS:
            out.errors.append((n.ERR_UNKNOWNMODE, letter, "is unknown mode char to me"))
            continue
        arg = ""
        if needs_arg(sign, letter):
            got = next(rest, None)
            if got is None:
                if letter in "beI":
                    out.lists.append(letter)
                elif letter in "ov" or (letter == "k" and sign == "-"):
                    out.errors.append((n.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters"))
                else:
                    out.errors.append((n.ERR_INVALIDMODEPARAM, channel, letter, "*",
                                       f"mode +{letter} needs an argument"))
                continue
            try:
                arg = check_arg(sign, letter, got)
            except ModeError as e:
                shown = "*" if letter == "k" else got or "*"
                out.errors.append((n.ERR_INVALIDMODEPARAM, channel, letter, shown, str(e)))
                continue
            if letter in "ov":
                out.targets.append(arg)
        if len(out.changes) < MAX_CHANGES:
            out.changes.append((sign, letter, arg))
    return out


def listing(modes, letter: str) -> list[tuple[str, str, str]]:
    """The masks of list mode ``letter`` the client knows: (mask, setter, when)."""
    if modes is None:
        return []
    return [(mask, nick, str(int(at))) for ltr, mask, nick, at in modes.lists if ltr == letter]
