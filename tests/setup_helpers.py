"""Helpers for the setup commands' tests: a fake home directory, and what changed in it."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from pathlib import Path

from conftest import ENTRY, FIXTURE, PYTHON, clean_env

DATA = Path(__file__).resolve().parent / "data" / "clients"


def _fixture_tool_count() -> int:
    import importlib.util

    spec = importlib.util.spec_from_file_location("fixture_server_tools", FIXTURE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return len(module.TOOLS)


# How many tools the stdlib fixture server lists (without --extra-tools).
FIXTURE_TOOLS = _fixture_tool_count()


def home_env(home: Path, **extra: str) -> dict:
    """mcpzip's environment with *home* as the user's home: nothing of the real user is read or written."""
    env = clean_env(HOME=str(home), **extra)
    for name in ("XDG_CONFIG_HOME", "APPDATA", "USERPROFILE"):
        env.pop(name, None)
    return env


def run_in(home: Path, *args: str, cwd: Path | None = None, input: str | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess:  # fmt: skip
    """``python mcpzip.py ARGS`` with HOME=*home*, in *cwd* (default: *home*)."""
    return subprocess.run(
        [PYTHON, ENTRY, *args],
        capture_output=True,
        text=True,
        env=home_env(home),
        cwd=str(cwd or home),
        input=input,
        timeout=timeout,
    )


def snapshot(root: Path) -> dict:
    """Every file and directory under *root*: content hash, mtime and mode."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
            found[str(path.relative_to(root))] = (digest, st.st_mtime_ns, st.st_mode)
    return found


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def default_config(home: Path) -> Path:
    return home / ".config" / "compressed-mcp-proxy" / "config.json"


def mcpzip_entry(config: Path | None = None) -> dict:
    """The client entry migrate writes when run from this checkout."""
    args = [ENTRY, "serve"] + (["--config", str(config)] if config else [])
    return {"type": "stdio", "command": PYTHON, "args": args}


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
