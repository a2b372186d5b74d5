#!/usr/bin/env python3
"""notes: short notes with tags, kept in one JSON file, as an MCP server.

    python notes.py --file PATH     (default: notes.json in the current directory)
"""

from __future__ import annotations

import argparse
import json
import os
import time

from tinymcp import Tool, ToolError, serve

path = "notes.json"


def _load() -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return []


def _save(notes: list[dict]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(notes, f, ensure_ascii=False, indent=1)
    os.replace(tmp, path)


def _find(notes: list[dict], title: str) -> dict:
    for note in notes:
        if note["title"].lower() == title.lower():
            return note
    titles = ", ".join(repr(n["title"]) for n in notes) or "none yet"
    raise ToolError(f"no note titled {title!r}; notes: {titles}")


def add_note(title: str, text: str, tags: list | None = None) -> str:
    notes = _load()
    if any(n["title"].lower() == title.lower() for n in notes):
        raise ToolError(f"a note titled {title!r} exists already; pick another title or delete it first")
    notes.append({"title": title, "text": text, "tags": list(tags or []), "created": time.strftime("%Y-%m-%d %H:%M")})
    _save(notes)
    return f"saved note {title!r} ({len(notes)} note{'s' if len(notes) != 1 else ''} in all)"


def list_notes(tag: str | None = None) -> str:
    notes = [n for n in _load() if tag is None or tag in n["tags"]]
    if not notes:
        return "no notes" + (f" tagged {tag!r}" if tag else "")
    return "\n".join(f"{n['title']} [{', '.join(n['tags'])}] {n['created']}" for n in notes)


def read_note(title: str) -> str:
    note = _find(_load(), title)
    return f"{note['title']}\n{note['text']}"


def search_notes(query: str) -> str:
    words = query.lower().split()
    hits = [n for n in _load() if all(w in f"{n['title']} {n['text']} {' '.join(n['tags'])}".lower() for w in words)]
    return "\n".join(f"{n['title']}: {n['text'][:80]}" for n in hits) or f"no note mentions {query!r}"


def delete_note(title: str) -> str:
    notes = _load()
    notes.remove(_find(notes, title))
    _save(notes)
    return f"deleted note {title!r}"


TITLE = {"type": "string", "description": "The note's title (unique, case-insensitive)"}
TOOLS = [
    Tool("add_note", "Save a new note (a reminder, an idea, meeting minutes) with a title, text and optional tags.",
         {"title": TITLE, "text": {"type": "string", "description": "The note's body"},
          "tags": {"type": "array", "items": {"type": "string"}, "description": "Labels such as 'work'"}},
         ["title", "text"], add_note),
    Tool("list_notes", "List saved notes with their tags and dates, optionally only those with one tag.",
         {"tag": {"type": "string", "description": "Only notes with this tag"}}, (), list_notes,
         annotations={"readOnlyHint": True}),
    Tool("read_note", "Show the full text of one note.", {"title": TITLE}, ["title"], read_note,
         annotations={"readOnlyHint": True}),
    Tool("search_notes", "Find notes whose title, text or tags contain all the given words.",
         {"query": {"type": "string", "description": "Words to look for"}}, ["query"], search_notes,
         annotations={"readOnlyHint": True}),
    Tool("delete_note", "Delete a note for good.", {"title": TITLE}, ["title"], delete_note,
         annotations={"destructiveHint": True}),
]  # fmt: skip

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="notes MCP server")
    parser.add_argument("--file", default=path, help="where the notes are kept (JSON)")
    path = parser.parse_args().file
    serve("notes", "1.0", TOOLS)
