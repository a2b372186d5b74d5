"""Big tool results: the model sees a part within the budget and reads the rest on request.

:class:`Results` applies ``max_result_bytes`` to an ``execute_tool`` result.
A result within the budget passes unchanged.  Otherwise ``structuredContent``
is left out (it repeats the data), the text is cut at a line boundary and
followed by one line saying how much is shown and how to read on, and an
image, audio or blob that does not fit is replaced by a line naming it.
What is left out is kept in a :class:`~.resultstore.ResultStore`.

The built-in tool ``mcpzip__read_result`` reads it back: by ``offset`` and
``length`` (bytes of the UTF-8 text; reading every part in order gives back
the exact original), or with ``grep`` (a regular expression), which answers
the matching lines with their numbers and offsets.  docs/results.md shows
what the model sees.
"""

from __future__ import annotations

from ..base import jsontext
from .resultstore import ResultGone, ResultStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .resultstore import Piece

READ_RESULT_NAME = "mcpzip__read_result"
READ_RESULT = {
    "name": READ_RESULT_NAME,
    "description": "Read the rest of a tool result that was too big to show at once: pass the id from its "
    "closing line and an offset, or search it with grep (a regular expression) to get matching lines "
    "with their line numbers and offsets.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "The result id from the closing line of the cut result"},
            "offset": {"type": "integer", "description": "Byte offset to read from (default 0)"},
            "length": {"type": "integer", "description": "How many bytes to read (default and maximum: the budget)"},
            "grep": {"type": "string", "description": "A regular expression: answer the matching lines instead"},
            "context": {"type": "integer", "description": "With grep: lines shown before and after each match (0-10)"},
        },
        "required": ["id"],
    },
}
# With grep: at most this many matches are listed, each line at most LINE_SHOWN bytes.
MAX_MATCHES = 100
LINE_SHOWN = 400
MAX_CONTEXT = 10
MAX_PATTERN = 1000
# The regular expression runs in a child process stopped after this long,
# so a pattern that backtracks without end cannot stall mcpzip.
GREP_SECONDS = 10.0


class Results:
    """Cuts results to their budget and answers ``mcpzip__read_result``.

    Threading: any worker thread may call any method; the store is thread-safe
    and nothing else here is shared.
    """

    def __init__(self, store: ResultStore | None, grep_seconds: float = GREP_SECONDS) -> None:
        """*store* None: nothing is kept (``mcpzip call --max-bytes``): notes say so."""
        self.store = store
        self.grep_seconds = grep_seconds

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    # -- cutting -------------------------------------------------------------

    def limit(self, result: dict, budget: int, owner: str = "") -> dict:
        """*result* as the model should see it under *budget* bytes (0: unchanged)."""
        content = result.get("content")
        if budget <= 0 or not isinstance(content, list):
            return result
        sizes = [_item_size(item) for item in content]
        structured = result.get("structuredContent")
        structured_text = None if structured is None else jsontext.dumps(structured)
        if sum(sizes) + _utf8_len(structured_text or "") <= budget:
            return result  # most results: no encoding beyond the sizes
        out = {k: v for k, v in result.items() if k not in ("content", "structuredContent")}
        out["content"] = self._cut_items(content, sizes, budget, owner)
        if structured_text is not None:
            out["content"].append(_text(self._structured_note(structured, budget, owner)))
        return out

    def _cut_items(self, content: list, sizes: list[int], budget: int, owner: str) -> list:
        left = budget
        out: list = []
        for item, size in zip(content, sizes):
            if size <= left:
                out.append(item)
                left -= size
                continue
            text = _text_of(item)
            if text is None:
                out.append(_text(self._left_out_note(item, size, budget, owner)))
                continue
            head, note = self._cut_text(text, left, budget, owner)
            if head:
                out.append(_with_text(item, head))
            out.append(_text(note))
            left = 0
        return out

    def _cut_text(self, text: str, room: int, budget: int, owner: str) -> tuple[str, str]:
        data = text.encode("utf-8", "surrogatepass")  # lone surrogates survive the round trip
        shown = _cut_point(data, 0, room)
        if shown > room:
            shown = 0  # room for less than one character
        head = data[:shown].decode("utf-8", "surrogatepass")
        key = self._keep(owner, "text", data, {"budget": budget})
        total_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        lines = head.count("\n") + (0 if head.endswith("\n") or not head else 1)
        where = f"Showing bytes 0-{shown:,} of {len(data):,} (lines 1-{lines:,} of {total_lines:,})."
        return head, f"[mcpzip: result cut to the {budget:,}-byte budget. {where} {self._how(key, shown)}]"

    def _left_out_note(self, item: dict, size: int, budget: int, owner: str) -> str:
        kind, mime = (str(item.get("type")), _mime_of(item)) if isinstance(item, dict) else (type(item).__name__, None)
        what = f"{kind} ({mime}, {size:,} bytes)" if mime else f"{kind} ({size:,} bytes)"
        key = self._keep(owner, "item", jsontext.dumps(item).encode("utf-8", "surrogatepass"), {"budget": budget})
        if key is None:
            return f"[mcpzip: {what} left out: over the {budget:,}-byte budget; it was not kept (run without a budget to see it)]"
        return (
            f"[mcpzip: {what} left out: over the {budget:,}-byte budget. Fetch it alone: "
            f"{_call(key)}]"
        )

    def _structured_note(self, structured: Any, budget: int, owner: str) -> str:
        import json  # for indent: lines make the JSON readable in parts and searchable

        data = json.dumps(structured, indent=1, ensure_ascii=False).encode("utf-8", "surrogatepass")
        key = self._keep(owner, "text", data, {"budget": budget})
        if key is None:
            return "[mcpzip: structuredContent left out (it repeats the data); it was not kept]"
        return (
            f"[mcpzip: structuredContent left out (it repeats the data); read it as JSON text "
            f"({len(data):,} bytes): {_call(key)}]"
        )

    def _keep(self, owner: str, kind: str, data: bytes, info: dict) -> str | None:
        if self.store is None:
            return None
        try:
            return self.store.put(owner, kind, data, info)
        except ValueError:
            return None  # larger than the whole store: the note says it was not kept

    def _how(self, key: str | None, offset: int) -> str:
        if key is None:
            return "The rest was not kept (run without a budget to see it all)."
        return f"Read on: {_call(key, offset)}, or search it: add \"grep\": \"<regex>\"."

    # -- reading -------------------------------------------------------------

    def read(self, args: dict, owner: str = "") -> dict:
        """Answer ``mcpzip__read_result`` *args*: a result dict, ``isError`` for mistakes."""
        key = args.get("id")
        if not isinstance(key, str) or not key:
            return _error("id is required: the result id from the closing line of a cut result")
        try:
            piece = self.store.get(owner, key) if self.store is not None else None
        except ResultGone as e:
            piece = None
            if e.expired:
                return _error(f"result {key!r} has expired (mcpzip keeps the most recent results); run the tool again")
        if piece is None:
            return _error(f"unknown result id {key!r}; use the id from the closing line of a cut result")
        if piece.kind == "item":
            return {"content": [jsontext.loads(piece.read().decode("utf-8", "surrogatepass"))]}
        grep = args.get("grep")
        if grep is not None:
            return self._grep(key, piece, grep, args.get("context"))
        return self._read_part(key, piece, args.get("offset"), args.get("length"))

    def _read_part(self, key: str, piece: Piece, offset: Any, length: Any) -> dict:
        budget = piece.info["budget"]
        offset = _whole(offset, 0)
        length = _whole(length, budget)
        if offset is None or length is None or length == 0:
            return _error("offset and length must be whole numbers of bytes (length at least 1)")
        if offset > piece.size:
            return _error(f"offset {offset:,} is past the end of result {key!r} ({piece.size:,} bytes)")
        length = min(length, budget)
        window = piece.read(offset, offset + length + 4)  # +4: room to skip a character cut at the offset
        start = _char_start(window, 0)  # an offset inside a character starts at the next one
        end = len(window) if offset + start + length >= piece.size else _cut_point(window, start, length)
        part = window[start:end].decode("utf-8", "surrogatepass")
        first, last = offset + start, offset + end
        if last >= piece.size:
            note = f"[mcpzip: bytes {first:,}-{last:,} of {piece.size:,}: the end of result {key}]"
        else:
            note = f"[mcpzip: bytes {first:,}-{last:,} of {piece.size:,}. Read on: {_call(key, last)}]"
        return {"content": [_text(part), _text(note)]} if part else {"content": [_text(note)]}

    def _grep(self, key: str, piece: Piece, pattern: Any, context: Any) -> dict:
        if not isinstance(pattern, str) or not pattern:
            return _error("grep must be a regular expression, e.g. \"timeout|refused\"")
        if len(pattern) > MAX_PATTERN:
            return _error(f"grep is longer than {MAX_PATTERN} characters; use a shorter pattern")
        context = _whole(context, 0)
        if context is None:
            return _error("context must be a whole number of lines")
        found = run_grep(piece, pattern, min(context, MAX_CONTEXT), self.grep_seconds)
        if isinstance(found, str):
            return _error(found)
        return {"content": [_text(_grep_text(key, piece, pattern, found))]}


def run_grep(piece: Piece, pattern: str, context: int, seconds: float = GREP_SECONDS) -> dict | str:
    """Matches of *pattern* in *piece*, found by a child process; a sentence when it fails."""
    import subprocess
    import sys

    source = piece.path if piece.path is not None else "-"
    # In hex: an argument cannot carry a lone surrogate, a pattern can.
    hexed = pattern.encode("utf-8", "surrogatepass").hex()
    argv = [sys.executable, "-I", "-S", "-c", _GREP_CHILD, hexed, str(context), str(MAX_MATCHES), str(LINE_SHOWN), source]
    try:
        done = subprocess.run(argv, input=piece.data if piece.path is None else b"", capture_output=True,
                              timeout=seconds)  # fmt: skip
    except subprocess.TimeoutExpired:
        return (
            f"grep {pattern!r} took longer than {seconds:g} seconds on {piece.size:,} bytes and was stopped "
            "(patterns like (a+)+ can backtrack without end); use a simpler pattern"
        )
    except OSError as e:
        return f"grep could not run ({e.strerror}); read the result by offset instead"
    answer = jsontext.loads(done.stdout.decode("utf-8", "surrogatepass") or "null")
    if not isinstance(answer, dict):
        return f"grep failed (exit status {done.returncode}); read the result by offset instead"
    if "error" in answer:
        return f"grep {pattern!r} is not a valid regular expression: {answer['error']}"
    return answer


# The child: reads the text (a file, or stdin), prints one JSON object.  It
# imports only re and json, so it starts fast; a line is cut to LINE_SHOWN
# bytes around its first match.
_GREP_CHILD = r"""
import json, re, sys
pattern = bytes.fromhex(sys.argv[1]).decode("utf-8", "surrogatepass")
context, most, shown, source = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
try:
    rx = re.compile(pattern)
except (re.error, OverflowError, RecursionError) as e:
    print(json.dumps({"error": str(e)})); sys.exit()
data = open(source, "rb").read() if source != "-" else sys.stdin.buffer.read()
text = data.decode("utf-8", "surrogatepass")
lines = text.split("\n")
if len(lines) > 1 and not lines[-1]: lines.pop()  # a final newline ends the last line
offsets, at = [], 0
for line in lines:
    offsets.append(at); at += len(line.encode("utf-8", "surrogatepass")) + 1
def cut(line, start):
    b = line.encode("utf-8", "surrogatepass")
    if len(b) <= shown: return line
    lo = max(0, len(line[:start].encode("utf-8", "surrogatepass")) - shown // 4)
    part = b[lo:lo + shown].decode("utf-8", "ignore")
    return ("..." if lo else "") + part + "..."
hits, total = [], 0
for i, line in enumerate(lines):
    m = rx.search(line)
    if m is None: continue
    total += 1
    if len(hits) < most: hits.append((i, m.start()))
rows, wanted = [], {}
for i, start in hits:
    for j in range(max(0, i - context), min(len(lines), i + context + 1)):
        if j == i: wanted[j] = start
        else: wanted.setdefault(j, None)
for j in sorted(wanted):
    s = wanted[j]
    rows.append([j + 1, offsets[j], s is not None, cut(lines[j], s or 0)])
print(json.dumps({"total": total, "lines": len(lines), "rows": rows}))  # ASCII: lone surrogates survive
"""


def _grep_text(key: str, piece: Piece, pattern: str, found: dict) -> str:
    total, rows = found["total"], found["rows"]
    budget = piece.info["budget"]
    head = f"[mcpzip: {total:,} matching line{'s' if total != 1 else ''} for {pattern!r} in result {key} ({found['lines']:,} lines)"
    if not rows:
        return head + "]"
    out = [head + "; each line shows its number and byte offset: read around one with \"offset\"]"]
    size, previous, listed = len(out[0]), None, 0
    for number, offset, match, line in rows:
        row = f"{number}{':' if match else '-'} @{offset} {line}"
        if size + _utf8_len(row) + 4 > budget:
            break
        if previous is not None and number != previous + 1:
            out.append("--")
        out.append(row)
        size += _utf8_len(row) + 4  # + the newline and a possible "--" line
        previous = number
        listed += match
    if listed < total:
        out.append(f"[mcpzip: {total - listed:,} more matching lines not shown; narrow the pattern]")
    return "\n".join(out)


# -- helpers -------------------------------------------------------------------


def _item_size(item: Any) -> int:
    """What a content item costs: text in UTF-8 bytes, binary by its encoded (base64) size."""
    if not isinstance(item, dict):
        return len(jsontext.dumps(item))
    kind = item.get("type")
    if kind == "text" and isinstance(item.get("text"), str):
        return _utf8_len(item["text"])
    if kind in ("image", "audio") and isinstance(item.get("data"), str):
        return len(item["data"])
    resource = item.get("resource")
    if kind == "resource" and isinstance(resource, dict):
        if isinstance(resource.get("text"), str):
            return _utf8_len(resource["text"])
        if isinstance(resource.get("blob"), str):
            return len(resource["blob"])
    return len(jsontext.dumps(item))


def _utf8_len(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _text_of(item: Any) -> str | None:
    """The text of a text item or a text resource, which are cut; None for what is left out whole."""
    if not isinstance(item, dict):
        return None
    if item.get("type") == "text" and isinstance(item.get("text"), str):
        return item["text"]
    resource = item.get("resource")
    if item.get("type") == "resource" and isinstance(resource, dict) and isinstance(resource.get("text"), str):
        return resource["text"]
    return None


def _mime_of(item: dict) -> str | None:
    resource = item.get("resource")
    mime = item.get("mimeType") or (resource.get("mimeType") if isinstance(resource, dict) else None)
    return mime if isinstance(mime, str) else None


def _with_text(item: dict, text: str) -> dict:
    if item.get("type") == "resource":
        return {**item, "resource": {**item["resource"], "text": text}}
    return {**item, "text": text}


def _cut_point(data: bytes, start: int, room: int) -> int:
    """Where a part of *data* from *start* within *room* bytes ends.

    After the last line that fits, when that keeps at least half the room;
    else (a long line) between two characters.  A part of at least one byte
    always holds at least one character, so reading on always advances.
    """
    end = start + room
    if end >= len(data):
        return len(data)
    if room <= 0:
        return start
    newline = data.rfind(b"\n", start + room // 2, end)
    if newline >= 0:
        return newline + 1
    at = end
    while at > start and data[at] & 0xC0 == 0x80:  # back to where the cut character starts
        at -= 1
    return at if at > start else _char_start(data, start + 1)


def _char_start(data: bytes, at: int) -> int:
    """*at*, moved forward past UTF-8 continuation bytes to where a character starts."""
    while at < len(data) and data[at] & 0xC0 == 0x80:
        at += 1
    return at


def _whole(value: Any, default: int) -> int | None:
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _call(key: str, offset: int | None = None) -> str:
    arguments: dict = {"id": key}
    if offset is not None:
        arguments["offset"] = offset
    return "execute_tool " + jsontext.dumps({"name": READ_RESULT_NAME, "arguments": arguments})


def _text(text: str) -> dict:
    return {"type": "text", "text": text}


def _error(text: str) -> dict:
    return {"content": [_text(f"Error: {text}")], "isError": True}
