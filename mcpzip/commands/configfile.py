"""Config files as JSON documents, for the commands that write them (migrate, init).

:mod:`mcpzip.config` turns a file into settings; this module edits the file
itself: it keeps every key it does not understand, writes atomically with
the private mode secrets need, and checks one server entry the way loading
the whole file would, without the user's environment.
"""

from __future__ import annotations

import json
import os
import re

from ..base import config
from ..base.files import write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CONFIG_MODE = 0o600
BACKUP_SUFFIX = ".mcpzip-backup-"

_NAME_ALLOWED = re.compile(r"[^A-Za-z0-9_-]+")


class DocumentError(Exception):
    """A file that cannot be read or edited; the message names it."""


def read_document(path: str, what: str = "file", lenient: bool = False) -> tuple[dict | None, bytes]:
    """The JSON object in *path* and its exact bytes; ``(None, b"")`` when it does not exist.

    *lenient* also accepts the comments and trailing commas that some
    clients (VS Code) allow in their files.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None, b""
    except OSError as e:
        raise DocumentError(f"cannot read {what} {path}: {e.strerror}") from None
    text = raw.decode("utf-8-sig", "replace")
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as e:
        try:
            if not lenient:
                raise
            data = json.loads(strip_comments(text))
        except ValueError:
            raise DocumentError(f"{what} {path} is not valid JSON ({e}); fix or move it first") from None
    if not isinstance(data, dict):
        raise DocumentError(f"{what} {path} does not hold a JSON object; fix or move it first")
    return data, raw


def is_strict_json(raw: bytes) -> bool:
    try:
        json.loads(raw.decode("utf-8-sig", "replace"))
    except ValueError:
        return False
    return True


def strip_comments(text: str) -> str:
    """JSON with ``//`` and ``/* */`` comments and trailing commas made plain JSON."""
    out: list[str] = []  # pieces: whole string literals, or single characters
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            if c in "}]":
                k = len(out) - 1
                while k >= 0 and out[k].isspace():
                    k -= 1
                if k >= 0 and out[k] == ",":
                    del out[k]
            out.append(c)
            i += 1
    return "".join(out)


def servers_of(document: dict, path: str, key: str = "mcpServers") -> dict:
    """The server table of *document* (created empty when missing)."""
    servers = document.setdefault(key, {})
    if not isinstance(servers, dict):
        raise DocumentError(f"{key} in {path} is not an object mapping names to servers; fix it first")
    return servers


def dump(document: dict) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_config(path: str, document: dict) -> None:
    """Write an mcpzip config: atomically, private (it may hold keys and tokens)."""
    write_atomic(path, dump(document), CONFIG_MODE)


def backup(path: str, raw: bytes, stamp: str) -> str:
    """Keep *raw* (the content of *path*) beside it under a timestamped name; returns that name."""
    target = backup_path(path, stamp)
    write_atomic(target, raw, CONFIG_MODE)  # the original may hold secrets
    return target


def backup_path(path: str, stamp: str) -> str:
    """A free ``PATH.mcpzip-backup-STAMP`` name (``-2``, ``-3``… within one second)."""
    target = f"{path}{BACKUP_SUFFIX}{stamp}"
    n = 1
    while os.path.exists(target):
        n += 1
        target = f"{path}{BACKUP_SUFFIX}{stamp}-{n}"
    return target


def valid_name(name: str) -> bool:
    """Letters, digits, ``-`` and ``_``, without ``__`` or ``_`` at an end (the rule of :mod:`mcpzip.config`)."""
    return bool(name) and mcpzip_name(name) == name


def mcpzip_name(name: str) -> str:
    """*name* made into a valid server name (it prefixes tool names: no ``__``)."""
    cleaned = _NAME_ALLOWED.sub("-", name)
    while "__" in cleaned:
        cleaned = cleaned.replace("__", "_")
    cleaned = cleaned.strip("_")  # "a_" + "__" would be ambiguous
    return cleaned if cleaned.strip("-") else "server"


class _EveryVariable(dict):
    """An environment in which every ``${VAR}`` is set.

    Checking an entry must not depend on the shell that runs the check: the
    values come from the client's environment when mcpzip runs.  The value
    looks like a URL so that a ``url`` made of one variable passes too.
    """

    def get(self, key: object, default: object = None) -> str:  # type: ignore[override]
        return "https://variable.invalid"


def entry_problem(name: str, entry: Any, where: str) -> str | None:
    """Why mcpzip could not load server *entry*, or None when it could."""
    if isinstance(entry, dict):
        # Keys mcpzip does not use are kept in the file; loading only warns.
        entry = {k: v for k, v in entry.items() if k in config.SERVER_KEYS}
    try:
        config.parse({"mcpServers": {name: entry}}, where, _EveryVariable())
    except config.ConfigError as e:
        message = str(e)
        prefix = f"config {where}: "
        return message[len(prefix):] if message.startswith(prefix) else message
    return None
