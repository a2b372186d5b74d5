"""Ranked keyword search over the catalog, offline.

:class:`Index` is built once per catalog version; :class:`Searcher` keeps it
in step with the catalog and remembers answers per normalised query.  The
ranking is BM25 over fields weighted by how much they say about a tool: its
name most, then its server, its description and its parameters.
"""

from __future__ import annotations

import math
import re
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .catalog import Catalog, Tool

# BM25 constants (the usual ones) and field weights.
K1 = 1.2
B = 0.75
WEIGHTS = {"name": 3.0, "server": 2.0, "description": 1.0, "params": 0.5}
QUERY_CACHE_SIZE = 512

_WORD = re.compile(r"[A-Za-z]+|[0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
STOPWORDS = frozenset(
    "a an the and or of to in on for from with by at as is are be this that these those it its "
    "i me my we our you your can could would should please want need some any all do does".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-case words of *text*, identifiers split on ``_ - .`` and camelCase."""
    out = []
    for chunk in _WORD.findall(text):
        for part in _CAMEL.findall(chunk) if not chunk.islower() else (chunk,):
            part = part.lower()
            if part not in STOPWORDS:
                out.append(part)
    return out


def normalise(query: str) -> str:
    """The cache key of a query: its tokens, de-duplicated and sorted."""
    return " ".join(sorted(set(tokenize(query))))


class Index:
    """An immutable BM25 index over a list of tools."""

    def __init__(self, tools: list[Tool]) -> None:
        self.tools = tools
        self._postings: dict[str, list[tuple[int, float]]] = {}
        lengths = []
        fields: list[dict[str, float]] = []
        for tool in tools:
            d = tool.definition
            weighted: dict[str, float] = {}
            length = 0.0
            for field, text in (
                ("name", tool.name),
                ("server", tool.server),
                ("description", d.get("description") or ""),
                ("params", _params_text(d.get("inputSchema"))),
            ):
                w = WEIGHTS[field]
                for term in tokenize(text):
                    weighted[term] = weighted.get(term, 0.0) + w
                    length += w
            fields.append(weighted)
            lengths.append(length)
        self._avg = (sum(lengths) / len(lengths)) if lengths else 1.0
        for doc, weighted in enumerate(fields):
            norm = K1 * (1 - B + B * lengths[doc] / self._avg)
            for term, tf in weighted.items():
                self._postings.setdefault(term, []).append((doc, tf * (K1 + 1) / (tf + norm)))
        n = len(tools)
        self._idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self._postings.items()}

    def search(self, query: str, limit: int) -> tuple[list[Tool], int]:
        """The best *limit* tools for *query*, and how many matched at all."""
        scores: dict[int, float] = {}
        for term in set(tokenize(query)):
            postings = self._postings.get(term)
            if not postings:
                continue
            idf = self._idf[term]
            for doc, weight in postings:
                scores[doc] = scores.get(doc, 0.0) + idf * weight
        ranked = sorted(scores, key=lambda doc: (-scores[doc], self.tools[doc].prefixed))
        return [self.tools[doc] for doc in ranked[:limit]], len(ranked)


def _params_text(schema: object) -> str:
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return ""
    parts = []
    for name, prop in schema["properties"].items():
        parts.append(str(name))
        if isinstance(prop, dict) and isinstance(prop.get("description"), str):
            parts.append(prop["description"])
    return " ".join(parts)


class Searcher:
    """Searches a catalog, rebuilding the index only when the catalog changed.

    Threading contract: :meth:`search` may be called from any thread; the
    index is built by one thread while the others wait for it.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._index: Index | None = None
        self._version = -1
        self._cache: dict[tuple[str, int], tuple[list[Tool], int]] = {}

    def index(self) -> Index:
        with self._lock:
            if self._index is None or self._version != self.catalog.version:
                self._version = self.catalog.version
                self._index = Index(self.catalog.tools())
                self._cache.clear()
            return self._index

    def search(self, query: str, limit: int) -> tuple[list[Tool], int]:
        index = self.index()
        key = (normalise(query), limit)
        found = self._cache.get(key)
        if found is None:
            found = index.search(query, limit)
            with self._lock:
                if len(self._cache) >= QUERY_CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = found
        return found
