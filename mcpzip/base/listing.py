"""What upstreams list (tools, resources, templates, prompts), made safe to use.

An upstream may send any JSON where the specification says "string" or
"object".  Every item is normalised once, where it enters mcpzip, so the
code that ranks, prints and caches items can rely on the types: a text field
that is a number becomes its text, any other wrong type is dropped.  The
fields each kind has are data, kept apart in :data:`FIELDS`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Fields:
    """The typed fields of one kind of item: text, objects, lists, and the one that identifies it."""

    __slots__ = ("identity", "text", "objects", "lists")

    def __init__(self, identity: str, text: tuple[str, ...], objects: tuple[str, ...] = (),
                 lists: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.identity, self.text, self.objects, self.lists = identity, text, objects, lists


FIELDS = {
    "tools": Fields("name", ("title", "description"), ("inputSchema", "outputSchema", "annotations", "_meta"), ("icons",)),
    "resources": Fields("uri", ("name", "title", "description", "mimeType"), ("annotations", "_meta"), ("icons",)),
    "resourceTemplates": Fields("uriTemplate", ("name", "title", "description", "mimeType"), ("annotations", "_meta"),
                                ("icons",)),  # fmt: skip
    "prompts": Fields("name", ("title", "description"), ("_meta",), ("arguments", "icons")),
}


def normalise(kind: str, items: list[Any]) -> tuple[list[dict], list[str]]:
    """*items* of *kind* with every field of the right type, and what was wrong (empty: nothing).

    Items that are not objects or lack a string identity are left out; a text
    field that is a number becomes its text; any other field of the wrong type
    is dropped.  Items already right are returned as they are, not copied.
    """
    fields = FIELDS[kind]
    out: list[dict] = []
    problems: list[str] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get(fields.identity), str):
            problems.append(f"an entry without a {fields.identity} string")
            continue
        out.append(_fix(item, fields, problems))
    return out, problems


def _fix(item: dict, fields: Fields, problems: list[str]) -> dict:
    fixed: dict | None = None
    for keys, wanted in ((fields.text, str), (fields.objects, dict), (fields.lists, list)):
        for key in keys:
            value = item.get(key)
            if value is None or isinstance(value, wanted):
                continue
            if fixed is None:
                fixed = dict(item)
            if wanted is str and isinstance(value, (int, float)) and not isinstance(value, bool):
                fixed[key] = str(value)
            else:
                del fixed[key]
            problems.append(f"{key} of {item[fields.identity]!r}")
    return item if fixed is None else fixed


def summary(problems: list[str], limit: int = 3) -> str:
    """The first few *problems*, and how many more there were."""
    shown = ", ".join(problems[:limit])
    more = len(problems) - limit
    return f"{shown} and {more} more" if more > 0 else shown
