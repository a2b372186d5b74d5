"""Optional LLM ranking of search results with Gemini (used only when a key is configured).

:class:`LlmSearcher` wraps the keyword :class:`~mcpzip.search.Searcher`: it
takes the keyword search's best candidates, asks Gemini's ``generateContent``
endpoint which of them fit the query, and puts Gemini's picks first.  The
keyword result is always computed first and is the answer whenever Gemini is
slow (past :data:`DEADLINE`), fails, or answers with anything unusable.

What is sent: the query and, for each candidate, its prefixed name, the first
sentence of its description and its parameter names and types (the compact
line ``search_tools`` shows).  Nothing else: no arguments, no results, no
configuration.  The key travels in the ``x-goog-api-key`` header, never in the
URL, and is registered with :func:`mcpzip.log.add_secret`.

Threading contract: :meth:`LlmSearcher.search` may be called from any thread.
Each Gemini call runs on its own daemon thread, at most :data:`WORKERS` at a
time; a call that outlives its deadline finishes in the background and its
answer is cached for next time.
"""

from __future__ import annotations

import os
import threading
import time

from ..base import log, web

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from .catalog import Tool
    from .search import Searcher

DEFAULT_URL = "https://generativelanguage.googleapis.com"
URL_ENV = "MCPZIP_GEMINI_URL"  # another base URL, e.g. a local test server
DEADLINE = 2.0  # seconds a search waits for Gemini before answering without it
CANDIDATES = 30  # keyword results Gemini chooses from
HTTP_TIMEOUT = 20.0  # for the request itself, which may finish after the deadline
# An answer holds at most 1,024 tokens of names: anything near this is not one (read no further).
MAX_ANSWER_BYTES = 1024 * 1024
CACHE_SIZE = 256
WORKERS = 2  # Gemini requests in flight at once; beyond that, keywords only
# After a failure Gemini is left alone for a while, so a broken network or
# key does not cost every search the whole deadline.
BACKOFF_FIRST = 30.0
BACKOFF_MAX = 600.0

PROMPT = """You choose tools for an AI assistant. The user needs: {query}

Candidate tools, one per line as "name: summary [parameters]":
{tools}

Answer with JSON {{"tools": [...]}}: the names of the candidates that can do what the user needs, best first, \
at most {limit}. Use only names from the list. If none fits, answer {{"tools": []}}."""


class LlmError(Exception):
    """Gemini could not be used for this query (the reason, never the key)."""


class Gemini:
    """One ``generateContent`` endpoint and model, spoken to with ``requests``."""

    def __init__(self, api_key: str, model: str, base_url: str | None = None) -> None:
        log.add_secret(api_key)
        self.api_key = api_key
        self.model = model[len("models/") :] if model.startswith("models/") else model
        base = base_url or os.environ.get(URL_ENV) or DEFAULT_URL
        self.url = f"{base.rstrip('/')}/v1beta/models/{self.model}:generateContent"
        self._local = threading.local()

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            # Verified TLS, no redirects elsewhere, like every other HTTP client of mcpzip's.
            session = self._local.session = web.session(pool_size=2)
        return session

    def rank(self, query: str, lines: list[str], limit: int) -> list[str]:
        """The names Gemini picks for *query* among the compact *lines*, best first."""
        import json

        body = {
            "contents": [{"role": "user", "parts": [{"text": PROMPT.format(query=query, tools="\n".join(lines), limit=limit)}]}],
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseSchema": {
                    "type": "OBJECT",
                    "properties": {"tools": {"type": "ARRAY", "items": {"type": "STRING"}}},
                    "required": ["tools"],
                },
                "temperature": 0,
                "maxOutputTokens": 1024,
            },
        }
        headers = {"x-goog-api-key": self.api_key, "Content-Type": "application/json"}
        try:
            session = self._session()
        except ImportError:
            raise LlmError("the requests package is not installed (pip install requests)") from None
        try:
            response = session.post(self.url, json=body, headers=headers, timeout=HTTP_TIMEOUT, allow_redirects=False,
                                    stream=True)  # fmt: skip
            answer = web.read_body(response, MAX_ANSWER_BYTES)
        except web.InsecureURL as e:
            raise LlmError(str(e)) from None
        except web.MessageTooLarge:
            raise LlmError(f"the answer is larger than {MAX_ANSWER_BYTES} bytes") from None
        except Exception as e:  # requests' own exceptions, and anything under them
            raise LlmError(f"request failed: {type(e).__name__}") from None
        if response.status_code != 200:
            raise LlmError(f"HTTP {response.status_code} {_error_message(answer)}".rstrip())
        try:
            text = json.loads(answer)["candidates"][0]["content"]["parts"][0]["text"]
            names = json.loads(text)["tools"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LlmError("the answer was not the JSON asked for") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise LlmError("the answer was not a list of tool names")
        return names


def _error_message(answer: bytes) -> str:
    """Gemini's own one-line reason, when it gave one."""
    import json

    try:
        message = json.loads(answer)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return ""
    return f"({str(message).splitlines()[0][:200]})" if message else ""


class LlmSearcher:
    """Keyword search with Gemini's judgement on top, within a deadline.

    Same interface as :class:`~mcpzip.search.Searcher`: ``search(query,
    limit) -> (tools, total)``.  *describe* turns a tool into the compact line
    that is sent.
    """

    def __init__(
        self,
        keyword: Searcher,
        gemini: Gemini,
        describe: Callable[[Tool], str],
        deadline: float = DEADLINE,
    ) -> None:
        self.keyword = keyword
        self.gemini = gemini
        self.describe = describe
        self.deadline = deadline
        self._lock = threading.Lock()
        self._cache: dict[str, list[str]] = {}
        self._version = -1
        self._slots = threading.BoundedSemaphore(WORKERS)
        self._quiet_until = 0.0
        self._backoff = BACKOFF_FIRST

    def search(self, query: str, limit: int) -> tuple[list[Tool], int]:
        """The keyword result reordered by Gemini's picks, or as it is when Gemini cannot help in time."""
        from .search import normalise

        candidates, total = self.keyword.search(query, max(limit, CANDIDATES))
        shown = candidates[:limit]
        if len(candidates) < 2:
            return shown, total
        key = f"{normalise(query)} #{limit}"
        with self._lock:
            if self._version != self.keyword.catalog.version:
                self._version = self.keyword.catalog.version
                self._cache.clear()
            picked = self._cache.get(key)
            if picked is None and time.monotonic() < self._quiet_until:
                return shown, total
        if picked is None:
            picked = self._ask(key, query, candidates, limit)
            if picked is None:
                return shown, total
        return merge(picked, candidates, limit), total

    def _ask(self, key: str, query: str, candidates: list[Tool], limit: int) -> list[str] | None:
        """Gemini's picks, or None when they did not come in time."""
        if not self._slots.acquire(blocking=False):
            log.debug("gemini ranking: %d requests already in flight; using the keyword ranking", WORKERS)
            return None
        lines = [self.describe(t) for t in candidates]
        names = {t.prefixed for t in candidates}
        answer: list[list[str]] = []
        done = threading.Event()

        def run() -> None:
            try:
                answer.append(self._call(key, query, lines, names, limit))
            except LlmError:
                pass  # already logged
            except Exception as e:  # a bug must not print a traceback into the client's log
                log.warning("gemini ranking failed unexpectedly (%s); using the keyword ranking", type(e).__name__)
            finally:
                self._slots.release()
                done.set()

        started = time.monotonic()
        # A daemon thread: a hung request never holds up mcpzip's exit.
        threading.Thread(target=run, name="mcpzip-gemini", daemon=True).start()
        if not done.wait(self.deadline):
            log.info("gemini ranking: no answer within %.1f s; using the keyword ranking", self.deadline)
            self._failed()
            return None
        log.debug("gemini ranking of %d candidates took %.0f ms", len(lines), (time.monotonic() - started) * 1000)
        return answer[0] if answer else None

    def _call(self, key: str, query: str, lines: list[str], names: set[str], limit: int) -> list[str]:
        try:
            picked = self.gemini.rank(query, lines, limit)
        except LlmError as e:
            log.warning("gemini ranking failed (%s); using the keyword ranking", e)
            self._failed()
            raise
        picked = [n for n in dict.fromkeys(picked) if n in names]
        with self._lock:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = picked
            self._backoff = BACKOFF_FIRST
            self._quiet_until = 0.0
        return picked

    def _failed(self) -> None:
        with self._lock:
            self._quiet_until = time.monotonic() + self._backoff
            self._backoff = min(BACKOFF_MAX, self._backoff * 2)


def merge(picked: list[str], candidates: list[Tool], limit: int) -> list[Tool]:
    """Gemini's picks first, in its order, then the keyword results it did not pick."""
    by_name = {t.prefixed: t for t in candidates}
    first = [by_name[n] for n in picked if n in by_name]
    chosen = set(picked)
    return (first + [t for t in candidates if t.prefixed not in chosen])[:limit]
