"""Logging to stderr, levelled by ``MCPZIP_LOG``, with secrets masked.

stdout belongs to the protocol, so every diagnostic goes to stderr.  The
standard ``logging`` package costs more start-up time than the whole proxy is
allowed, and we need only one sink, so this module is a small replacement.

Every line passes through :func:`redact`: values registered with
:func:`add_secret` (env values, header values, API keys, tokens) are replaced by
``***`` even when an upstream echoes them on its stderr.
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
    """Never let *value* appear in a log line from now on."""
    if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    if _secrets:
        # Longest first, so a secret containing another is masked whole.
        for secret in sorted(_secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "***")
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
    line = redact(f"{stamp} mcpzip {_NAMES[level]}: {msg}\n")
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
