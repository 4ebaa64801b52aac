"""The IRC line codec: one ``Message`` per line, parsed from bytes and formatted back.

The grammar is RFC 1459 §2.3.1 as the living spec (modern.ircdocs.horse, "Messages")
writes it today: ``[@tags] [:prefix] COMMAND [params...] [:trailing]``. A line is at most
512 bytes with its CR LF, not counting an IRCv3 tag section of up to 4096 bytes more.
Everything here is pure: no sockets, no event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_LINE = 512          # bytes, with the CR LF (RFC 1459 §2.3)
MAX_TAGS = 4096         # bytes of the tag section, with its '@' and trailing space (IRCv3)
MAX_PARAMS = 15         # RFC 1459 §2.3: a command and up to 15 parameters

# commands whose last parameter is free text: it gets its ':' even when it needs none, as
# servers write it, for clients that read the text as "whatever follows ' :'"
_TEXT_LAST = frozenset({"PRIVMSG", "NOTICE", "PART", "QUIT", "ERROR", "TOPIC", "KICK", "FAIL"})
_TAG_ESCAPES = {";": r"\:", " ": r"\s", "\\": "\\\\", "\r": r"\r", "\n": r"\n"}
_TAG_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


class ParseError(ValueError):
    """A line that is not an IRC message (empty, or nothing but a prefix or tags)."""


class InvalidUtf8(ParseError):
    """A line that is not UTF-8; ``command`` is its command word, read leniently."""

    def __init__(self, command: str) -> None:
        super().__init__(f"{command or 'the line'} is not valid UTF-8")
        self.command = command


@dataclass(frozen=True)
class Message:
    """One IRC message: the command (upper-case) and its parameters, the last of which may
    hold spaces. ``prefix`` names the source (``nick!user@host`` or a server name)."""
    command: str
    params: tuple[str, ...] = ()
    prefix: str | None = None
    tags: dict[str, str] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        return format_message(self)

    def param(self, index: int, default: str = "") -> str:
        """The parameter at ``index``, or ``default`` when there are fewer."""
        return self.params[index] if index < len(self.params) else default


def escape_tag_value(value: str) -> str:
    return "".join(_TAG_ESCAPES.get(ch, ch) for ch in value)


def unescape_tag_value(value: str) -> str:
    out = []
    chars = iter(value)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, "")
        out.append(_TAG_UNESCAPES.get(nxt, nxt))  # an unknown escape drops the backslash
    return "".join(out)


def _parse_tags(text: str) -> dict[str, str]:
    tags = {}
    for item in text.split(";"):
        if item:
            key, _, value = item.partition("=")
            tags[key] = unescape_tag_value(value)
    return tags


def parse(raw: bytes | str) -> Message:
    """Parse one line (with or without its CR LF).

    Raises:
        InvalidUtf8: ``raw`` is bytes that are not UTF-8.
        ParseError: there is no command.
    """
    if isinstance(raw, bytes):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            words = raw.decode("latin-1").split()
            while words and words[0][:1] in ("@", ":"):
                words.pop(0)
            raise InvalidUtf8(words[0].upper() if words else "") from None
    else:
        line = raw
    line = line.rstrip("\r\n").lstrip(" ")
    tags: dict[str, str] = {}
    prefix = None
    if line.startswith("@"):
        tag_text, _, line = line[1:].partition(" ")
        tags = _parse_tags(tag_text)
        line = line.lstrip(" ")
    if line.startswith(":"):
        prefix, _, line = line[1:].partition(" ")
        line = line.lstrip(" ")
    head, colon, trailing = line.partition(" :")
    if head.startswith(":"):     # "CMD :x" is caught above; ":x" alone has no command
        raise ParseError("the line has no command")
    words = [w for w in head.split(" ") if w]   # only ASCII space separates (not str.split's)
    if not words:
        raise ParseError("the line has no command")
    params = words[1:]
    if colon:
        params.append(trailing)
    if len(params) > MAX_PARAMS:  # fold the excess into the last one, as servers read it
        params[MAX_PARAMS - 1:] = [" ".join(params[MAX_PARAMS - 1:])]
    return Message(words[0].upper(), tuple(params), prefix, tags)


def _clean(text: str) -> str:
    """No CR, LF or NUL may reach the wire inside a parameter: each becomes a space."""
    return text.replace("\r", " ").replace("\n", " ").replace("\0", " ")


def format_message(message: Message) -> str:
    """The line for ``message`` without its CR LF. The last parameter gets a ':' when it
    must (empty, has a space, starts with ':') or holds text (a message, a reason, a
    numeric's words); the others lose their spaces."""
    parts = []
    if message.tags:
        parts.append("@" + ";".join(
            key if value == "" else f"{key}={escape_tag_value(value)}"
            for key, value in message.tags.items()))
    if message.prefix:
        parts.append(":" + _clean(message.prefix).replace(" ", ""))
    parts.append(message.command)
    params = [_clean(p) for p in message.params]
    for p in params[:-1]:
        parts.append(p.replace(" ", "").lstrip(":") or "*")
    if params:
        last = params[-1]
        text = message.command in _TEXT_LAST or (message.command.isdigit() and len(params) > 1)
        needs = not last or " " in last or last.startswith(":")
        parts.append(":" + last if (needs or text) and not (
            message.command == "PART" and len(params) == 1) else last)
    return " ".join(parts)


def encode(message: Message) -> bytes:
    """The bytes of ``message`` with CR LF, cut to 512 bytes (tags aside) on a character
    boundary if the caller did not split it (``split_text`` does)."""
    line = format_message(message).encode("utf-8")
    tags = b""
    if line.startswith(b"@"):
        tags, _, line = line.partition(b" ")
        tags += b" "
    if len(line) > MAX_LINE - 2:
        line = line[:MAX_LINE - 2].decode("utf-8", "ignore").encode("utf-8")
    return tags + line + b"\r\n"


def split_text(text: str, room: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``room`` UTF-8 bytes, at a space where one is
    near the end of a piece, never inside a character. Always at least one piece."""
    room = max(room, 4)   # a character is at most 4 bytes
    pieces = []
    data = text.encode("utf-8")
    while len(data) > room:
        cut = room
        while cut and (data[cut] & 0xC0) == 0x80:   # do not split a character
            cut -= 1
        space = data.rfind(b" ", 0, cut + 1)
        if space > room // 2:
            pieces.append(data[:space].decode("utf-8"))
            data = data[space + 1:]
        else:
            pieces.append(data[:cut].decode("utf-8"))
            data = data[cut:]
    pieces.append(data.decode("utf-8"))
    return pieces


class TooLong:
    """What ``LineBuffer.feed`` yields in place of a line over the limit (it is dropped)."""

    def __repr__(self) -> str:
        return "TooLong()"


TOO_LONG = TooLong()


class LineBuffer:
    """Bytes from a socket in, whole lines out (without their line end).

    A line ends at LF; a CR before it is dropped (clients that send a bare LF are
    accepted, as the living spec advises). Empty lines are skipped. A line longer than
    ``MAX_LINE`` bytes after its tags (or with tags over ``MAX_TAGS``) is dropped whole and
    reported once as ``TOO_LONG``, even when it arrives in many pieces.
    """

    def __init__(self, max_line: int = MAX_LINE, max_tags: int = MAX_TAGS) -> None:
        self.max_line = max_line
        self.max_tags = max_tags
        self._partial = bytearray()
        self._discarding = False

    def _too_long(self, line: bytes) -> bool:
        if line.startswith(b"@"):
            tags, _, rest = line.partition(b" ")
            return len(tags) + 1 > self.max_tags or len(rest) + 2 > self.max_line
        return len(line) + 2 > self.max_line

    def feed(self, data: bytes) -> list[bytes | TooLong]:
        out: list[bytes | TooLong] = []
        self._partial += data
        while True:
            end = self._partial.find(b"\n")
            if end < 0:
                break
            line = bytes(self._partial[:end]).rstrip(b"\r")
            del self._partial[:end + 1]
            if self._discarding:
                self._discarding = False
                continue
            if self._too_long(line):
                out.append(TOO_LONG)
            elif line.strip(b" "):
                out.append(line)
        if len(self._partial) > self.max_line + self.max_tags:
            # no line end in sight: drop what came, and the rest of the line when it comes
            self._partial.clear()
            if not self._discarding:
                self._discarding = True
                out.append(TOO_LONG)
        return out
