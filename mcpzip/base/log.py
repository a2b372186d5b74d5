"""Logging to stderr, levelled by ``MCPZIP_LOG``, with secrets masked.

stdout belongs to the protocol, so every diagnostic goes to stderr.  The
standard ``logging`` package costs more start-up time than the whole proxy is
allowed, and we need only one sink, so this module is a small replacement.

Every line passes through :func:`redact`: values registered with
:func:`add_secret` (env values, header values, API keys, tokens) are replaced by
``***`` even when an upstream echoes them on its stderr.  Text that came from
elsewhere (an upstream's stderr, its log notifications, an authorization
server's error) passes through :func:`shown` before anyone sees it: masked
first, control characters escaped, and only then cut to length — so a cut
never leaves part of a secret, and a newline in it never forges a line.

Which forms of a secret are masked (docs/security.md, "What masking
catches"): every occurrence, a secret inside a longer one (longest first), its
JSON-escaped and its URL-encoded forms, and — in lines an upstream prints on
its stderr — a piece of at least :data:`MIN_FRAGMENT` characters that ends
one line or starts the next (a secret split across lines).
"""

from __future__ import annotations

import os
import sys
import threading
import time

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40
LEVELS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "warn": WARNING, "error": ERROR}
_NAMES = {DEBUG: "debug", INFO: "info", WARNING: "warning", ERROR: "error"}

# Short values ("1", "true") would mask ordinary words all over the log; a
# secret worth hiding is longer than this.
MIN_SECRET_LENGTH = 4
# The shortest piece of a secret recognised at the edge of a line (a secret
# an upstream split across two lines); shorter pieces are too common to mean
# anything.
MIN_FRAGMENT = 8

# C0 and C1 control characters, DEL, and the Unicode line and paragraph
# separators: each forges a line or drives a terminal.  Tab stays.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if c != 0x09}
_CONTROL.update({0x0A: "\\n", 0x0D: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})
_SPACES = dict.fromkeys(_CONTROL, " ")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

_lock = threading.Lock()
_secrets: set[str] = set()
_level = WARNING
_stream = None  # None means "sys.stderr at the time of writing" (tests swap it)


def configure(env_value: str | None = None) -> None:
    """Set the level from ``MCPZIP_LOG`` (or *env_value*)."""
    global _level
    value = os.environ.get("MCPZIP_LOG", "") if env_value is None else env_value
    value = value.strip().lower()
    if not value:
        _level = WARNING
    elif value in LEVELS:
        _level = LEVELS[value]
    else:
        _level = WARNING
        warning("MCPZIP_LOG=%r is not one of debug, info, warning, error; using warning", value)


def enabled(level: int) -> bool:
    return level >= _level


def add_secret(value: object) -> None:
    """Never let *value* appear in a log line from now on (nor its JSON or URL form)."""
    if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
        forms = {value} if _UNRESERVED.issuperset(value) else {value, *_encoded_forms(value)}
        with _lock:
            _secrets.update(forms)
            _ordered.clear()


def _encoded_forms(value: str) -> set[str]:
    """How *value* reads inside a JSON string or a URL."""
    import _json  # the accelerator json itself uses; ``json`` costs start-up time

    percent = "".join(chr(b) if chr(b) in _UNRESERVED else f"%{b:02X}" for b in value.encode("utf-8"))
    forms = {
        _json.encode_basestring(value)[1:-1],
        _json.encode_basestring_ascii(value)[1:-1],
        percent,
        percent.lower(),  # some encoders write lower-case hex
        percent.replace("%20", "+"),  # form encoding
    }
    forms |= {f.replace("/", "\\/") for f in forms if "/" in f and "%" not in f}  # JSON's optional escape of /
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


_ordered: list[str] = []  # _secrets longest first, rebuilt after add_secret clears it; guarded by _lock


def _longest_first() -> list[str]:
    with _lock:
        if not _ordered:
            # Longest first, so a secret containing another is masked whole.
            _ordered.extend(sorted(_secrets, key=len, reverse=True))
        return list(_ordered)


def redact(text: str, edges: bool = False) -> str:
    """*text* with every registered secret replaced by ``***``.

    *edges*: also mask a piece of a secret (at least :data:`MIN_FRAGMENT`
    characters) that ends or starts *text* — for the lines of a stream, which
    may have split a secret between them.
    """
    if not _secrets:
        return text
    ordered = _longest_first()
    if edges:  # before whole secrets: a shorter secret inside a longer one would break the piece up
        for secret in ordered:
            text = _mask_edges(text, secret)
    for secret in ordered:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _mask_edges(text: str, secret: str) -> str:
    """Mask the longest piece of *secret* that ends *text*, and the longest that starts it."""
    n, k = len(secret), MIN_FRAGMENT
    if n <= k:
        return text
    head, tail = secret[:k], secret[-k:]
    # The end of text is secret[:m] for some k <= m < n: its first k characters are head.
    i = text.find(head, max(0, len(text) - n + 1))
    while i >= 0:
        if secret.startswith(text[i:]):
            text = text[:i] + "***"
            break
        i = text.find(head, i + 1)
    # The start of text is secret[-m:]: it ends with tail, at most n - 1 characters in.
    best = -1
    j = text.find(tail, 0, n - 1)
    while j >= 0:
        if secret.endswith(text[: j + k]):
            best = j + k
        j = text.find(tail, j + 1, n - 1)
    return "***" + text[best:] if best > 0 else text


def escape(text: str) -> str:
    """*text* with control characters written as escapes (``\\n``, ``\\x1b``): one line, no terminal codes."""
    return text.translate(_CONTROL)


def strip_controls(text: str) -> str:
    """*text* with each control character replaced by a space: for what the model reads."""
    return text.translate(_SPACES)


def shown(text: str, limit: int = 0, edges: bool = False) -> str:
    """Text from elsewhere made fit to show: masked, escaped, then cut to *limit* characters.

    The one place where masking meets truncation: masking first means a cut
    never leaves part of a secret behind.
    """
    text = escape(redact(text, edges))
    if limit and len(text) > limit:
        text = text[:limit] + "…"
    return text


def _emit(level: int, msg: str, args: tuple) -> None:
    if level < _level:
        return
    if args:
        try:
            msg = msg % args
        except (TypeError, ValueError):
            msg = f"{msg} {args!r}"
    stamp = time.strftime("%H:%M:%S")
    # One entry, one line: whatever an argument carried (an upstream's
    # newline, a terminal escape) is written as an escape.
    line = f"{stamp} mcpzip {_NAMES[level]}: {escape(redact(msg))}\n"
    with _lock:
        stream = _stream or sys.stderr
        try:
            stream.write(line)
            stream.flush()
        except (OSError, ValueError):
            pass  # stderr closed: nothing useful left to do with a log line


def debug(msg: str, *args: object) -> None:
    _emit(DEBUG, msg, args)


def info(msg: str, *args: object) -> None:
    _emit(INFO, msg, args)


def warning(msg: str, *args: object) -> None:
    _emit(WARNING, msg, args)


def error(msg: str, *args: object) -> None:
    _emit(ERROR, msg, args)
