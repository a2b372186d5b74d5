#!/usr/bin/env python3
"""scratch: a small file store confined to one directory, as an MCP server.

    python scratch.py --root DIR     (default: ./scratch)

Every path is relative to DIR; a path that would leave it is refused.
"""

from __future__ import annotations

import argparse
import os

from tinymcp import Tool, ToolError, serve

MAX_READ = 100_000
root = os.path.abspath("scratch")


def _resolve(path: str) -> str:
    full = os.path.realpath(os.path.join(root, path))
    if full != root and not full.startswith(root + os.sep):
        raise ToolError(f"{path!r} is outside the scratch area; use a relative path like 'notes/todo.txt'")
    return full


def write_file(path: str, content: str, append: bool = False) -> str:
    full = _resolve(path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "a" if append else "w", encoding="utf-8") as f:
        f.write(content)
    return f"{'appended' if append else 'wrote'} {len(content.encode())} bytes to {path}"


def read_file(path: str) -> str:
    full = _resolve(path)
    if not os.path.isfile(full):
        raise ToolError(f"no file {path!r}; list_files shows what exists")
    with open(full, encoding="utf-8", errors="replace") as f:
        text = f.read(MAX_READ + 1)
    return text if len(text) <= MAX_READ else text[:MAX_READ] + f"\n[cut at {MAX_READ} characters]"


def list_files(directory: str = ".") -> str:
    top = _resolve(directory)
    lines = []
    for here, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(here, name)
            lines.append(f"{os.path.relpath(full, root)} ({os.path.getsize(full)} bytes)")
    return "\n".join(lines) or "the scratch area is empty"


def delete_file(path: str) -> str:
    full = _resolve(path)
    if not os.path.isfile(full):
        raise ToolError(f"no file {path!r}")
    os.remove(full)
    return f"deleted {path}"


PATH = {"type": "string", "description": "Relative path inside the scratch area, e.g. 'drafts/plan.md'"}
TOOLS = [
    Tool("write_file", "Write (or append) text to a file in the scratch area, creating folders as needed.",
         {"path": PATH, "content": {"type": "string", "description": "The text to write"},
          "append": {"type": "boolean", "description": "Add to the end instead of replacing (default false)"}},
         ["path", "content"], write_file),
    Tool("read_file", "Read a text file from the scratch area.", {"path": PATH}, ["path"], read_file,
         annotations={"readOnlyHint": True}),
    Tool("list_files", "List the files in the scratch area (or one folder of it) with their sizes.",
         {"directory": {"type": "string", "description": "Folder to list (default: everything)"}}, (), list_files,
         annotations={"readOnlyHint": True}),
    Tool("delete_file", "Delete a file from the scratch area.", {"path": PATH}, ["path"], delete_file,
         annotations={"destructiveHint": True}),
]  # fmt: skip

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="scratch file store MCP server")
    parser.add_argument("--root", default=root, help="the directory the files live in")
    root = os.path.realpath(parser.parse_args().root)
    os.makedirs(root, exist_ok=True)
    serve("scratch", "1.0", TOOLS)
