"""Compact JSON text in and out, without importing the ``json`` package.

``import json`` pulls in ``re`` and ``enum``, which cost ``mcpzip serve``
about as much start-up time as everything else it imports together.  The
parsing and serialising are done by the C accelerator module ``_json`` that
``json`` itself uses; this module calls it directly.  Results are identical
to ``json.loads`` and ``json.dumps`` (:func:`dumps` takes the same arguments,
with compact, non-ASCII output as its defaults): whenever the accelerated
path cannot give an answer (bad input, an unserialisable object, an
interpreter without ``_json``), the standard ``json`` is imported and does
the work, so errors are its errors.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:
    import _json
except ImportError:  # not CPython: the standard module does everything
    _json = None

_WHITESPACE = " \t\n\r"  # JSON's insignificant whitespace, nothing more


class _DecoderSettings:
    """What ``_json.make_scanner`` reads: the settings of a default ``json`` decoder."""

    def __init__(self) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = None
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = _CONSTANTS.__getitem__


def _reject(obj: Any) -> Any:
    raise TypeError("not serialisable")  # the fallback produces json's own message


_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


_scan = None
_encoders: dict = {}  # (ensure_ascii, separators, sort_keys) -> a _json encoder
if _json is not None:
    try:
        _scan = _json.make_scanner(_DecoderSettings())
    except (AttributeError, TypeError):  # an accelerator with another interface
        _scan = None


def loads(data: str | bytes | bytearray) -> Any:
    """Parse one JSON document, like ``json.loads``; raises ``ValueError``."""
    if _scan is not None:
        try:
            text = _utf8(data) if isinstance(data, (bytes, bytearray)) else data
            if text is not None and isinstance(text, str):
                start, end = 0, len(text)
                while start < end and text[start] in _WHITESPACE:
                    start += 1
                value, stop = _scan(text, start)
                while stop < end and text[stop] in _WHITESPACE:
                    stop += 1
                if stop == end:
                    return value
        except (StopIteration, ValueError, RecursionError, SystemError):
            # The standard module says what is wrong.  (Until json.decoder is
            # loaded, _json of Python <= 3.11 cannot build its error and fails
            # with SystemError instead.)
            pass
    import json

    try:
        return json.loads(data)
    except RecursionError:
        # Both parsers recurse per level; hostile input must be a ValueError like any other bad JSON.
        raise ValueError("JSON nested too deeply") from None


def _utf8(data: bytes | bytearray) -> str | None:
    """*data* as text when ``json.loads`` would read it as BOM-less UTF-8, else None."""
    if data[:1] in (b"", b"\x00", b"\xef", b"\xfe", b"\xff") or data[1:2] == b"\x00":
        return None  # empty, UTF-16/32 or a byte order mark: json's own detection decides
    return data.decode("utf-8", "surrogatepass")


def dumps(value: Any, *, ensure_ascii: bool = False, separators: tuple[str, str] = (",", ":"),
          sort_keys: bool = False, indent: int | None = None) -> str:  # fmt: skip
    """``json.dumps`` with these arguments; note the defaults: compact, non-ASCII kept.

    With *indent* the standard module does the work (and is imported then).
    """
    if indent is None:
        encode = _encoder(ensure_ascii, separators, sort_keys)
        if encode is not None:
            try:
                return "".join(encode(value, 0))
            except (TypeError, ValueError, RecursionError):
                pass
    import json

    try:
        return json.dumps(value, ensure_ascii=ensure_ascii, separators=separators, sort_keys=sort_keys, indent=indent)
    except RecursionError:
        raise ValueError("value nested too deeply to serialise") from None


def utf8(text: str) -> bytes:
    """*text* as UTF-8, lone surrogates (which JSON escapes can carry) replaced by U+FFFD.

    A string decoded from JSON may hold half of a surrogate pair; UTF-8
    cannot encode one, and a message or file must never be lost for it.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


def _encoder(ensure_ascii: bool, separators: tuple[str, str], sort_keys: bool) -> Any:
    key = (ensure_ascii, separators, sort_keys)
    found = _encoders.get(key)
    if found is None and _json is not None:
        item_separator, key_separator = separators
        strings = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
        try:
            # No circular-reference markers: a cycle ends in RecursionError,
            # and the fallback then reports it as json does.
            found = _json.make_encoder(None, _reject, strings, None, key_separator, item_separator, sort_keys, False, True)
        except (AttributeError, TypeError):  # an accelerator with another interface
            return None
        _encoders[key] = found
    return found
