"""The wire codec: a 4-byte big-endian length, then one UTF-8 JSON object, and its limits.

With ``orjson`` installed (the ``fast`` extra) frames are encoded and decoded by it, with
the standard ``json`` as the fallback for what orjson refuses (integers beyond 64 bits,
non-string dict keys) so that both accept and produce the same frames.
"""

from __future__ import annotations

import json
import re
import struct

try:
    import orjson
except ImportError:  # the standard json alone: same frames, slower
    orjson = None

MAX_FRAME = 1 << 20  # 1 MiB, the design's limit for one frame
_LENGTH = struct.Struct(">I")
CODEC = "orjson" if orjson is not None else "json"
# orjson reads integers beyond 64 bits as floats: a body with a number that long (or any
# run of 19 digits) is left to json, which keeps them exact.
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


class FrameError(Exception):
    """A frame that breaks the wire rules; the connection that sent it is closed."""


def _dumps(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


if orjson is not None:
    def _dumps(message: dict, _fallback=_dumps) -> bytes:  # noqa: F811
        try:
            return orjson.dumps(message)
        except TypeError:  # a big integer, a non-string dict key: json takes those
            return _fallback(message)


def encode(message: dict) -> bytes:
    """One frame for ``message``; raises FrameError if it would exceed MAX_FRAME."""
    body = _dumps(message)
    if len(body) > MAX_FRAME:
        raise FrameError(f"frame of {len(body)} bytes exceeds the {MAX_FRAME}-byte limit")
    return _LENGTH.pack(len(body)) + body


def decode_body(body: bytes) -> dict:
    """The JSON object in one frame's body; FrameError for bad UTF-8, bad JSON or a non-object."""
    if orjson is not None and _LONG_NUMBER.search(body) is None:
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # maybe valid JSON orjson declines (a big integer): json decides below
        else:
            if isinstance(message, dict):
                return message
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FrameError(f"frame is not valid UTF-8: {e}") from None
    try:
        message = json.loads(text)
    except json.JSONDecodeError as e:
        raise FrameError(f"frame is not valid JSON: {e}") from None
    if not isinstance(message, dict):
        raise FrameError(f"frame holds a JSON {type(message).__name__}, not an object")
    return message


def check_length(length: int) -> None:
    if length > MAX_FRAME:
        raise FrameError(f"frame length {length} exceeds the {MAX_FRAME}-byte limit")


class Frames:
    """Cuts whole frame bodies out of a byte stream as it arrives (no I/O)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def partial(self) -> bool:
        """True while part of a frame is waiting for the rest."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """The bodies of the frames ``data`` completes; FrameError for a length over the limit."""
        buffer = self._buffer
        buffer += data
        bodies = []
        start, size = 0, len(buffer)
        while size - start >= 4:
            (length,) = _LENGTH.unpack_from(buffer, start)
            check_length(length)
            end = start + 4 + length
            if end > size:
                break
            bodies.append(bytes(buffer[start + 4:end]))
            start = end
        if start:
            del buffer[:start]
        return bodies


# Message shapes. A request: {"id": int, "method": str, "args": object}; without the id,
# a one-way message (no reply).
# A reply: {"id": int, "result": any} or {"id": int, "error": str}.

def check_request(message: dict) -> tuple[int, str, dict]:
    rid, method, args = message.get("id"), message.get("method"), message.get("args", {})
    if not isinstance(rid, int) or isinstance(rid, bool):
        raise FrameError("request without an integer id")
    if not isinstance(method, str) or not method:
        raise FrameError("request without a method name")
    if not isinstance(args, dict):
        raise FrameError("request args must be an object")
    return rid, method, args


def check_oneway(message: dict) -> tuple[str, dict]:
    """A one-way message: a request without an id, which wants no reply."""
    method, args = message.get("method"), message.get("args", {})
    if not isinstance(method, str) or not method:
        raise FrameError("message without a method name")
    if not isinstance(args, dict):
        raise FrameError("message args must be an object")
    return method, args


def check_reply(message: dict) -> tuple[int, bool, object]:
    rid = message.get("id")
    if not isinstance(rid, int) or isinstance(rid, bool):
        raise FrameError("reply without an integer id")
    if "error" in message:
        if not isinstance(message["error"], str):
            raise FrameError("reply error must be a string")
        return rid, False, message["error"]
    if "result" not in message:
        raise FrameError("reply with neither result nor error")
    return rid, True, message["result"]
