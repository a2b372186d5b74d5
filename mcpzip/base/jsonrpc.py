"""JSON-RPC 2.0 messages framed as one JSON object per line.

Both directions of mcpzip use this framing: the client talks to mcpzip on
stdin/stdout, and mcpzip talks to stdio upstreams on their pipes.
"""

from __future__ import annotations

import threading

from . import jsontext

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are strings here
    from typing import IO, Any, Iterator

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# MCP: a request cancelled or timed out, and a request whose protocol version
# the receiver does not speak.
REQUEST_TIMEOUT = -32001
UNSUPPORTED_PROTOCOL_VERSION = -32022


class RPCError(Exception):
    """A JSON-RPC error, raised by handlers and by calls that received one."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_dict(self) -> dict:
        err: dict = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


class Unencodable(ValueError):
    """A message that cannot be written as JSON (too deeply nested, or not JSON data)."""


def encode(message: dict) -> bytes:
    """One message as a line of UTF-8 JSON, newline included; raises :class:`Unencodable`.

    Lone surrogates in strings are replaced (see ``jsontext.utf8``), so any
    string a peer sent can be sent back.
    """
    try:
        text = jsontext.dumps(message)
    except (TypeError, ValueError) as e:
        raise Unencodable(str(e)) from e
    return jsontext.utf8(text + "\n")


def decode(line: bytes | str) -> Any:
    """Parse one line; raises ``ValueError`` for anything that is not JSON."""
    return jsontext.loads(line)


def request(id: Any, method: str, params: dict | None = None) -> dict:
    msg: dict = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def notification(method: str, params: dict | None = None) -> dict:
    msg: dict = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def result(id: Any, value: Any) -> dict:
    return {"jsonrpc": "2.0", "id": id, "result": value}


def error(id: Any, code: int, message: str, data: Any = None) -> dict:
    return {"jsonrpc": "2.0", "id": id, "error": RPCError(code, message, data).to_dict()}


def kind(message: Any) -> str:
    """Classify a decoded message: request, notification, response or invalid."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return "invalid"
    if "method" in message:
        if not isinstance(message["method"], str):
            return "invalid"
        if "id" not in message:
            return "notification"
        return "request" if valid_id(message["id"]) else "invalid"
    if "id" in message and ("result" in message or "error" in message):
        # An error response may have a null id (the sender could not read ours).
        ok = valid_id(message["id"]) or (message["id"] is None and "error" in message)
        return "response" if ok else "invalid"
    return "invalid"


def valid_id(value: Any) -> bool:
    # MCP forbids null ids on requests; booleans are ints to Python but not ids.
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def leading_id(head: bytes) -> Any:
    """The id of a message too long to parse, when it comes first (``{"jsonrpc":"2.0","id":7,...``); else None."""
    import re  # lazily: only an oversized message needs it

    m = re.match(rb'\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*("(?:[^"\\]|\\.){0,200}"|-?\d{1,30})\s*,', head)
    if m is None:
        return None
    try:
        rid = decode(m.group(1))
    except ValueError:
        return None
    return rid if valid_id(rid) else None


# A line longer than the limit is read on in pieces of this size and thrown away.
DISCARD_PIECE = 1 << 20


def read_lines(stream: IO[bytes], limit: int) -> Iterator[tuple[bytes, int]]:
    """``(line, size)`` for each line of *stream*, never holding more than *limit* bytes of one.

    A line longer than *limit* is read on in pieces and thrown away: it is
    yielded as its first *limit* bytes (where its id may be) with its whole
    size, which :func:`too_long` answers.
    """
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        size = len(line)
        if size > limit and not line.endswith(b"\n"):
            while True:
                piece = stream.readline(DISCARD_PIECE)
                size += len(piece)
                if not piece or piece.endswith(b"\n"):
                    break
        yield line, size


def too_long(head: bytes, size: int, limit: int) -> dict:
    """The answer to a message of *size* bytes, more than *limit*, whose first bytes are *head*."""
    return error(leading_id(head), INVALID_REQUEST,
                 f"Invalid Request: the message is {size} bytes, more than max_message_bytes ({limit})")  # fmt: skip


class Writer:
    """Writes whole messages to a binary stream; safe to share between threads.

    The lock makes each message one uninterrupted line, so concurrent answers
    never interleave on the wire.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, message: dict) -> None:
        data = encode(message)
        with self._lock:
            self._stream.write(data)
            self._stream.flush()
