"""The three tools the model sees: ``search_tools``, ``describe_tool``, ``execute_tool``.

:class:`MetaTools` answers each with an MCP ``CallToolResult``.  Every failure
the model could do something about comes back as a result with
``isError: true`` and a sentence saying what to do, never as a protocol
error or a hang.  Upstream results are passed through unchanged.
"""

from __future__ import annotations

import threading
import time

# WeakSet's own module, which threading loads anyway: ``weakref`` would cost start-up a third of a millisecond.
from _weakrefset import WeakSet

from ..base import jsontext, log
from ..knowledge.catalog import PENDING, compact_params, split_name
from ..base.jsonrpc import RPCError
from ..upstream.pool import RETRY_FIRST
from ..upstream.session import UpstreamError
from .results import READ_RESULT, READ_RESULT_NAME

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..knowledge.catalog import Catalog, Tool
    from ..base.config import Config
    from ..upstream.pool import Pool
    from ..knowledge.search import Searcher
    from ..upstream.session import CallContext
    from .listings import Listings
    from .results import Results

MAX_LIMIT = 50
# A server whose sign-in is under way, in search's list of servers.
SIGNING_IN = "signing in (browser opened)"
DESCRIPTION_CHARS = 160
PARAMS_SHOWN = 8
# Rounds of ``input_required`` answered for the client before giving up.
MAX_INPUT_ROUNDS = 10
# How long a meta-tool waits for a first listing when there is no cache.
FIRST_LISTING_WAIT = 30.0
# Without a cache, search waits this long for every server, and after that
# only for servers that answered their handshake (they are listing now).
STARTING_GRACE = 3.0
# How long closing waits for listings received to be written to the cache.
CLOSE_WAIT = 5.0
# Free text mcpzip processes itself is bounded: a query is ranked against every
# tool and a name compared with every name, so their cost grows with length.
MAX_QUERY_CHARS = 2000
MAX_NAME_CHARS = 512
# execute_tool's timeout is clamped to this (one day): longer waits overflow the clock.
MAX_CALL_SECONDS = 86400.0

SEARCH_TOOLS = {
    "name": "search_tools",
    "description": "Find tools across all connected MCP servers by keywords or a plain-language "
    "description of the task. Returns one line per tool: name, summary, parameters (* = required). "
    "With server and no query, lists that server's tools.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What you want to do, e.g. 'send slack message'"},
            "server": {"type": "string", "description": "Only this server's tools; without a query, list them"},
            "limit": {"type": "integer", "description": "Maximum results (default 5, max 50; listing: 20)"},
            "offset": {"type": "integer", "description": "Listing a server: skip this many tools"},
        },
    },
}
BROWSE_LIMIT = 20
BROWSE_CHARS = 100
DESCRIBE_TOOL = {
    "name": "describe_tool",
    "description": "Get the full definition and input schema of one tool found by search_tools.",
    "inputSchema": {
        "type": "object",
        "properties": {"name": {"type": "string", "description": "Tool name, e.g. 'slack__send_message'"}},
        "required": ["name"],
    },
}
EXECUTE_TOOL = {
    "name": "execute_tool",
    "description": "Run a tool found by search_tools and return its result.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Tool name, e.g. 'slack__send_message'"},
            "arguments": {"type": "object", "description": "The tool's arguments"},
            "timeout": {"type": "integer", "description": "Seconds to wait (optional)"},
        },
        "required": ["name"],
    },
}
# DEL, C1 controls and the line separators as JSON escapes (they occur only inside strings).
_JSON_CONTROLS = {c: f"\\u{c:04x}" for c in (*range(0x7F, 0xA0), 0x2028, 0x2029)}
TOOLS = [SEARCH_TOOLS, DESCRIBE_TOOL, EXECUTE_TOOL]


def direct_definition(tool: Tool) -> dict:
    """*tool*'s definition as listed directly: its own, under its prefixed name."""
    definition = tool.definition  # a fresh copy
    definition["name"] = tool.prefixed
    return definition


def definition_bytes(tool: Tool) -> int:
    """The size of *tool*'s direct definition on the wire (compact JSON, UTF-8)."""
    # A lone surrogate goes out as U+FFFD: three bytes, as "surrogatepass" counts it.
    return len(jsontext.dumps(direct_definition(tool), separators=(",", ":")).encode("utf-8", "surrogatepass"))


class UnknownMetaTool(LookupError):
    """A ``tools/call`` for a name that is none of the three meta-tools."""


class ToolUnavailable(Exception):
    """A tool name the model gave that cannot be served; the message says what to do instead."""


def text_result(text: str, is_error: bool = False) -> dict:
    result: dict = {"content": [{"type": "text", "text": text}]}
    if is_error:
        result["isError"] = True
    return result


def error_result(text: str) -> dict:
    # Upstream error text can quote anything, secrets included.
    return text_result(log.redact(f"Error: {text}"), is_error=True)


def first_sentence(text: str, limit: int = DESCRIPTION_CHARS) -> str:
    """The first sentence or line of *text*, at most about *limit* characters.

    A line break ends the first sentence when a blank line or a new capitalised
    line follows (a heading, a list), not when a sentence is merely wrapped.
    """
    line_break, sentence_end = _patterns()
    text = text.strip()
    m = line_break.search(text, 15)  # not after a one-word heading
    if m is not None:
        text = text[: m.start()]
    text = " ".join(text.split())
    m = sentence_end.search(text)
    if m is not None and m.start() < limit:
        text = text[: m.start() + 1]
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return text


_compiled: tuple = ()


def _patterns() -> tuple:
    """The line break and the sentence end that end a first sentence (compiled on first use: ``re`` costs start-up)."""
    global _compiled
    if not _compiled:
        import re

        _compiled = (
            re.compile(r"\n\s*\n|\n(?=\s*[A-Z0-9#*>|-])"),
            # ". " ends a sentence, except after e.g. / i.e. / etc. / vs.
            re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)[.!?](?=\s)"),
        )
    return _compiled


def search_line(tool: Tool, copies: list[Tool] | None = None) -> str:
    """``slack__send_message: Send a message [channel:string*, text:string*]``

    *copies*: the same tool on other servers, named on the same line.
    """
    d = tool.definition
    also = f" (also {', '.join(c.prefixed for c in copies)})" if copies else ""
    line = f"{tool.prefixed}{also}: {first_sentence(d.get('description') or d.get('title') or '')}".rstrip()
    params = compact_params(d.get("inputSchema"), PARAMS_SHOWN)
    # One tool, one line: a control character in an upstream's words never starts another.
    return log.strip_controls(f"{line} [{params}]" if params else line)


class MetaTools:
    """The meta-tools over one catalog, search and pool.

    Threading contract: :meth:`call` (and the three tools behind it) runs on
    worker threads and blocks: ``execute_tool`` on the upstream for as long
    as the call takes, every tool up to :data:`FIRST_LISTING_WAIT` on a first
    listing.  :meth:`instructions` runs on the reading thread and never waits
    on an upstream.  :meth:`refresh` runs on the settle thread, :meth:`relist`
    on upstream reader threads (a changed tool list) and sign-in threads; both
    only start listing threads.  :meth:`close` runs once, on the main thread,
    after the client is gone.  ``_lazy_lock`` guards ``_searcher`` and
    ``_ranking``, made on first use.
    """

    def __init__(self, config: Config, catalog: Catalog, searcher: Searcher | None, pool: Pool,
                 ranking: Any = None, results: Results | None = None,
                 result_budget: int | None = None, listings: Listings | None = None) -> None:  # fmt: skip
        """*searcher* None: made on first use (see :attr:`searcher`); *ranking* None: see :attr:`ranking`.

        *results* cuts big results to their budget (None: results pass whole),
        which is each server's ``max_result_bytes``, or *result_budget* for all.
        """
        self.config = config
        self.results = results
        self.result_budget = result_budget
        self.listings = listings  # warm-up after search_tools (None: none)
        self.catalog = catalog
        self._searcher = searcher
        self.pool = pool
        self._ranking = ranking
        self._lazy_lock = threading.Lock()
        # Each client session's server, told when what tools/list offers may have changed (a listing
        # arrived); held weakly, so a finished session drops out by itself.
        self._retry_lock = threading.Lock()  # guards _retried
        self._retried: dict[str, float] = {}  # server -> when a search last started it again
        self._watch_lock = threading.Lock()  # guards _watchers
        self._watchers: WeakSet = WeakSet()

    # Search is made on first use: its module (``re``, the vocabulary) is not
    # needed to answer a client's handshake, so ``serve`` does not pay for it
    # at start-up.

    @property
    def searcher(self) -> Searcher:
        """The keyword search over the catalog."""
        if self._searcher is None:
            from ..knowledge.search import Searcher

            with self._lazy_lock:
                if self._searcher is None:
                    self._searcher = Searcher(self.catalog)
        return self._searcher

    @property
    def ranking(self) -> Any:
        """What search_tools asks: the keyword searcher, or Gemini on top of it when there is a key."""
        if self._ranking is None:
            searcher = self.searcher
            with self._lazy_lock:
                if self._ranking is None:
                    ranking: Any = searcher
                    if self.config.gemini_api_key:
                        from ..knowledge.llm import Gemini, LlmSearcher  # lazily: only with a key

                        gemini = Gemini(self.config.gemini_api_key, self.config.search.model)
                        ranking = LlmSearcher(searcher, gemini, search_line)
                    self._ranking = ranking
        return self._ranking

    def refresh(self) -> list:
        """List every server in the background; returns the threads doing it."""
        return self.catalog.refresh(self.pool.list_tools)

    def relist(self, server: str) -> list:
        """List one server again in the background (its tools changed); returns the thread doing it."""
        return self.catalog.refresh(self.pool.list_tools, [server])

    def close(self) -> None:
        """Close every connection, then let listings already received reach the cache file.

        A listing that has its answer may be writing the cache; leaving then
        would lose the write (or leave its temporary file).  Listings still
        waiting on a server are not waited for.
        """
        self.catalog.begin_closing()
        self.pool.close()
        if self.results is not None:
            self.results.close()
        self.catalog.flush(CLOSE_WAIT)

    def listed(self, server: str, count: int) -> None:
        """A server was listed: remember its tool count, what its tools are about and their size, for the next start."""
        from ..knowledge.search import topics

        tools = self.catalog.server_tools(server)
        self.pool.known.record_tools(server, count, topics(tools), sum(map(definition_bytes, tools)))
        with self._watch_lock:
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher.listing_changed()

    def watch_listing(self, watcher: Any) -> None:
        """Call ``watcher.listing_changed()`` whenever a server has been listed (until *watcher* is gone)."""
        with self._watch_lock:
            self._watchers.add(watcher)

    # -- tools/list: the meta-tools, or the upstream tools themselves ---------

    def mode(self) -> str:
        """``"direct"`` or ``"meta"``: what tools/list offers now (``tools_mode`` auto decides by size)."""
        mode = self.config.tools_mode
        if mode != "auto":
            return mode
        size = self.catalog_bytes()
        return "direct" if size is not None and size <= self.config.direct_budget_bytes else "meta"

    def catalog_bytes(self) -> int | None:
        """The bytes of every upstream tool's definition as listed directly; None while not known.

        From the server cache when it knows every server (nothing parsed at
        start-up), else from the catalog once it has been read.
        """
        sizes = self.pool.known.definition_bytes()
        if all(name in sizes for name in self.catalog.servers):
            return sum(sizes[name] for name in self.catalog.servers)
        if self.catalog.loaded and PENDING not in map(self.catalog.state, self.catalog.servers):
            return sum(map(definition_bytes, self.catalog.tools()))
        return None  # a server not yet listed nor cached: its size is unknown

    def listing(self) -> list[dict]:
        """The tools tools/list offers: the meta-tools and the pinned tools, or every upstream tool."""
        if self.mode() == "direct":
            tools = [direct_definition(t) for t in self.catalog.tools()]
            return tools + [READ_RESULT] if self.results is not None else tools
        return TOOLS + [direct_definition(t) for t in self.pinned()]

    def pinned(self) -> list[Tool]:
        """The upstream tools the ``pinned`` patterns name (``*`` matches any run of characters)."""
        if not self.config.pinned:
            return []
        from fnmatch import fnmatchcase  # lazily: only pinned tools need it, and it loads ``re``

        return [t for t in self.catalog.tools() if any(fnmatchcase(t.prefixed, p) for p in self.config.pinned)]

    def listed_directly(self, name: str) -> bool:
        """Whether tools/list offers upstream tool *name* (or the built-in read_result) under its own name."""
        if name == READ_RESULT_NAME:
            return self.results is not None and self.mode() == "direct"
        if split_name(name) is None or self.catalog.get(name) is None:
            return False
        return self.mode() == "direct" or any(t.prefixed == name for t in self.pinned())

    def instructions(self) -> str:
        """The servers, each with its tool count and one line about it (from the server cache: nothing parsed)."""
        counts = self.catalog.counts()
        lines = ["mcpzip gives access to the tools of these MCP servers:"]
        for name in sorted(counts):
            n = counts[name]
            about = self.pool.known.about(name) or ", ".join(self.pool.known.topics(name))
            line = f"- {name} ({n} tool{'s' if n != 1 else ''})" if n else f"- {name}"
            lines.append(log.strip_controls(f"{line}: {about}") if about else line)
        lines.append(
            "Call search_tools to find a tool (with server, to search or list one server's tools), "
            "describe_tool to see its full schema, then execute_tool with its name and arguments."
        )
        return "\n".join(lines)

    def server_summary(self, name: str) -> str:
        """``github (26 tools): issues, pull requests, …``: what the server says of itself, else what its tools are about."""
        from ..knowledge.search import topics

        tools = self.catalog.server_tools(name)
        signing_in = self.pool.signing_in(name)
        if not tools and (signing_in or self.catalog.error(name)):
            return f"{name} ({SIGNING_IN if signing_in else 'unavailable'})"
        about = self.pool.known.about(name) or ", ".join(topics(tools)) or ", ".join(t.name for t in tools[:5])
        n = len(tools)
        head = f"{name} ({n} tool{'s' if n != 1 else ''}{'; ' + SIGNING_IN if signing_in else ''})"
        return log.strip_controls(f"{head}: {about}") if about else head

    def call(self, name: str, arguments: Any, context: CallContext | None = None) -> dict:
        """Run meta-tool *name*; unknown names are the caller's protocol error."""
        if not isinstance(arguments, dict):
            arguments = {} if arguments is None else arguments
        if not isinstance(arguments, dict):
            return error_result("arguments must be a JSON object")
        if name == "search_tools":
            return self.search_tools(arguments)
        if name == "describe_tool":
            return self.describe_tool(arguments)
        if name == "execute_tool":
            return self.execute_tool(arguments, context)
        if self.listed_directly(name):
            # A tool listed under its own name takes execute_tool's path: argument check, timeout, budget.
            return self.execute_tool({"name": name, "arguments": arguments}, context)
        raise UnknownMetaTool(name)

    # -- search_tools -------------------------------------------------------

    def search_tools(self, args: dict) -> dict:
        query, server = args.get("query"), args.get("server")
        if query is None or isinstance(query, str) and not query.strip():
            query = None
        elif not isinstance(query, str):
            return error_result("query must be a string: describe the tool you need, e.g. 'create github issue'")
        elif len(query) > MAX_QUERY_CHARS:
            return error_result(f"query is too long ({len(query)} characters, at most {MAX_QUERY_CHARS}): "
                                "describe the tool you need in a few words")  # fmt: skip
        if server is None or server == "":
            server = None
        elif not isinstance(server, str) or server not in self.catalog.servers:
            shown = repr(server[:80] if isinstance(server, str) else server)[:80]  # not all of a huge one
            return error_result(f"unknown server {shown}; the servers are: {', '.join(sorted(self.catalog.servers))}")
        if query is None and server is None:
            return error_result("query is required: describe the tool you need, e.g. 'create github issue' "
                                "(or give server to list one server's tools)")  # fmt: skip
        limit = _int_arg(args.get("limit"), self.config.search.default_limit if query else BROWSE_LIMIT)
        if limit is None:
            return error_result("limit must be a whole number between 1 and 50")
        limit = max(1, min(MAX_LIMIT, limit))
        if server is None:
            starting = self._wait_for_search()
        else:
            self._wait_for_listing(server)
            starting = []
        note = f"(still starting, not searched yet: {', '.join(starting)}; search again in a moment)" if starting else ""
        if query is None:
            offset = _int_arg(args.get("offset"), 0)
            if offset is None:
                return error_result("offset must be a whole number, 0 or more")
            return self._browse(server, offset, limit)
        if server is None:
            tools, total = self.ranking.search(query, limit)
            weak = self.searcher.match(query, limit)[2]
        else:
            tools, total, weak = self.searcher.match(query, limit, server)
        if not tools:
            where = f" on {server}" if server else ""
            return text_result(f"No tools found for {query!r}{where}.\n{self._servers_help(server)}"
                               + (f"\n{note}" if note else ""))  # fmt: skip
        if self.listings is not None:
            # The model's next step is usually execute_tool on one of these.
            self.listings.warm_up(tools)
        lines = [search_line(t, self.searcher.copies(t)) for t in tools]
        if total > len(tools):
            lines.append(f"({total - len(tools)} more matches; raise limit or refine the query to see them)")
        if weak:
            lines.append(f"(These matches are weak: none fits the whole query.)\n{self._servers_help(server)}")
        if note:
            lines.append(note)
        return text_result("\n".join(lines))

    def _wait_for_search(self) -> list[str]:
        """Wait for first listings as far as a search needs them; returns the servers still starting.

        The cache answers at once.  Without one, every server gets
        :data:`STARTING_GRACE`; after that only servers whose handshake is
        done (they are listing now) are waited for, up to
        :data:`FIRST_LISTING_WAIT` — a server hanging at start-up costs a
        search a few seconds, not thirty.
        """
        self._retry_failed_in_background()
        if self.catalog.had_cache():
            return self.catalog.pending()
        deadline = time.monotonic() + FIRST_LISTING_WAIT
        self.catalog.wait_for(None, STARTING_GRACE)
        while True:
            listing = [s for s in self.catalog.pending() if self.pool.connected(s)]
            left = deadline - time.monotonic()
            if not listing or left <= 0:
                break
            self.catalog.wait_for(listing, left)
        starting = self.catalog.pending()
        if starting:
            log.info("answering before %s %s listed", ", ".join(starting), "is" if len(starting) == 1 else "are")
        return starting

    def _servers_help(self, server: str | None) -> str:
        """What each server offers, so the model can pick one from what it knows and list its tools."""
        if server is not None:
            return (f"{self.server_summary(server)}\nList its tools with search_tools "
                    f"{{\"server\": \"{server}\"}}, or search every server without server.")  # fmt: skip
        if not self.catalog.servers:
            return "No servers are configured."
        lines = ['Servers (list one\'s tools with search_tools {"server": "<name>"}):']
        lines += [f"- {self.server_summary(name)}" for name in sorted(self.catalog.servers)]
        return "\n".join(lines)

    def _browse(self, server: str, offset: int, limit: int) -> dict:
        """One page of *server*'s tools, one short line each, in name order."""
        tools = sorted(self.catalog.server_tools(server), key=lambda t: t.name)
        if not tools:
            try:
                self._retry_failed(server, None)
            except ToolUnavailable as e:
                return error_result(str(e))
            tools = sorted(self.catalog.server_tools(server), key=lambda t: t.name)
        if not tools:
            return error_result(f"server {server!r} has no tools")
        page = tools[offset : offset + limit]
        lines = [self.server_summary(server)]
        for t in page:
            d = t.definition
            summary = first_sentence(d.get("description") or d.get("title") or "", BROWSE_CHARS)
            lines.append(log.strip_controls(f"{t.prefixed}: {summary}" if summary else t.prefixed))
        shown = f"tools {offset + 1}-{offset + len(page)} of {len(tools)}" if page else f"no tools past {len(tools)}"
        if offset + limit < len(tools):
            shown += f"; more with search_tools {{\"server\": \"{server}\", \"offset\": {offset + limit}}}"
        lines.append(f"({shown}; describe_tool gives a tool's parameters)")
        return text_result("\n".join(lines))

    # -- describe_tool ------------------------------------------------------

    def describe_tool(self, args: dict) -> dict:
        name = args.get("name")
        if not isinstance(name, str) or not name:
            return error_result("name is required, e.g. describe_tool {\"name\": \"slack__send_message\"}")
        if len(name) > MAX_NAME_CHARS:
            return error_result(_name_too_long(name))
        if name == READ_RESULT_NAME:  # built in: described, never listed by search
            return text_result(jsontext.dumps(READ_RESULT, indent=2, separators=(",", ": ")))
        try:
            found = self._find(name)
        except ToolUnavailable as e:
            return error_result(str(e))
        definition = direct_definition(found)
        # json escapes C0 controls itself; C1 and the line separators it leaves raw.
        return text_result(jsontext.dumps(definition, indent=2, separators=(",", ": ")).translate(_JSON_CONTROLS))

    # -- execute_tool -------------------------------------------------------

    def execute_tool(self, args: dict, context: CallContext | None = None) -> dict:
        name = args.get("name")
        if not isinstance(name, str) or not name:
            return error_result("name is required: the tool name from search_tools, e.g. 'slack__send_message'")
        if len(name) > MAX_NAME_CHARS:
            return error_result(_name_too_long(name))
        arguments = args.get("arguments")
        if isinstance(arguments, str):
            # Models often send the arguments object JSON-encoded as a string.
            try:
                arguments = jsontext.loads(arguments) if arguments.strip() else {}
            except ValueError as e:
                if "nested too deeply" in str(e):
                    return error_result("arguments is a JSON string nested too deeply; pass a JSON object")
                return error_result("arguments is a string that is not valid JSON; pass a JSON object")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            return error_result("arguments must be a JSON object of the tool's parameters")
        timeout = _number_arg(args.get("timeout"))
        if timeout is False:
            return error_result("timeout must be a positive number of seconds")

        if name in ("proxy_status", "proxy_refresh"):
            return self._admin(name)
        if name == READ_RESULT_NAME:
            return self._read_result(arguments, context)
        try:
            found = self._find(name, for_call=True)
        except ToolUnavailable as e:
            return error_result(str(e))
        missing = _missing_required(found.definition.get("inputSchema"), arguments)
        if missing:
            return error_result(
                f"missing required argument{'s' if len(missing) > 1 else ''} for {found.prefixed}: "
                + ", ".join(missing)
                + ". Call describe_tool for the full schema."
            )
        seconds = timeout or self.config.call_timeout_seconds or None

        def call(ctx: CallContext | None) -> dict:
            return self.pool.call_tool(found.server, found.name, arguments, seconds, ctx)

        return self._within_budget(found.server, self._run(found, call, context), context)

    def _run(self, found: Tool, call: Any, context: CallContext | None) -> dict:
        try:
            if context is not None and context.run_held is not None:
                return context.run_held(found.server, call, context)
            result = call(context)
            rounds = 0
            # A modern upstream asks for input with an ``input_required``
            # result.  A client that can be asked (legacy session) is asked
            # here and the call retried; otherwise the result goes back as is
            # and the client retries through execute_tool itself.
            while result.get("resultType") == "input_required" and context is not None and context.ask is not None:
                rounds += 1
                if rounds > MAX_INPUT_ROUNDS:
                    return error_result(f"{found.prefixed} kept asking for input; gave up after {MAX_INPUT_ROUNDS} rounds")
                requests = result.get("inputRequests") if isinstance(result.get("inputRequests"), dict) else {}
                try:
                    context.input_responses = {
                        key: context.ask(str(req.get("method")), req.get("params") or {})
                        for key, req in requests.items()
                        if isinstance(req, dict)
                    }
                except RPCError as e:
                    return error_result(f"{found.prefixed} needs input the client could not give: {e.message}")
                context.request_state = result.get("requestState")
                result = call(context)
            return result
        except RPCError as e:
            return error_result(f"{found.prefixed}: the server refused the call ({e.code}: {e.message})")
        except UpstreamError as e:
            return error_result(f"{found.prefixed}: {e}")

    def _within_budget(self, server: str, result: dict, context: CallContext | None) -> dict:
        """*result* cut to *server*'s result budget (results.py); a result still in progress passes."""
        if self.results is None or result.get("resultType", "complete") != "complete":
            return result
        budget = self.config.result_budget(server) if self.result_budget is None else self.result_budget
        try:
            return self.results.limit(result, budget, context.client if context is not None else "")
        except ValueError as e:  # measuring it means serialising it (jsontext)
            if "nested too deeply" not in str(e):
                raise
            return error_result(f"{server}: its result is nested too deeply to pass on")

    def _read_result(self, arguments: dict, context: CallContext | None) -> dict:
        if self.results is None:
            return error_result(f"{READ_RESULT_NAME}: no results are kept here")
        return self.results.read(arguments, context.client if context is not None else "")

    def _admin(self, name: str) -> dict:
        """The reference's hidden status/refresh tools, kept for users who script them."""
        if name == "proxy_refresh":
            for t in self.refresh():
                t.join()
        counts = self.catalog.counts()
        status: dict = {"tool_count": sum(counts.values()), "server_names": sorted(n for n in counts if counts[n])}
        if name == "proxy_refresh":
            status = {"status": "refreshed", "tool_count": status["tool_count"]}
        return text_result(jsontext.dumps(status, separators=(", ", ": ")))

    # -- shared -------------------------------------------------------------

    def _wait_for_listing(self, server: str | None) -> None:
        servers = None if server is None else [server]
        if not self.catalog.wait_for(servers, FIRST_LISTING_WAIT):
            log.info("answering before every server has been listed")

    def _find(self, name: str, for_call: bool = False) -> Tool:
        """The tool called *name*; raises ToolUnavailable with a message that suggests names.

        *for_call*: the tool is about to be called, so a connection that lists
        its server meanwhile stays open for the call.
        """
        parts = split_name(name)
        if parts is not None and parts[0] in self.catalog.servers:
            if self.catalog.state(parts[0]) == PENDING:
                if for_call:
                    self.pool.expect_call(parts[0])
                self._wait_for_listing(parts[0])
        tool = self.catalog.get(name)
        if tool is not None:
            return tool
        if parts is not None and parts[0] in self.catalog.servers and not self.catalog.server_tools(parts[0]):
            tool = self._retry_failed(parts[0], name)
            if tool is not None:
                return tool
        hint = self._suggest(name)
        raise ToolUnavailable(f"unknown tool {name!r}. {hint}")

    def _retry_failed_in_background(self) -> None:
        """List again the servers without tools whose failed start may now be retried.

        A search cannot name a tool of a server that never listed, so without
        this a server whose first start failed would stay out of every
        answer; the next search sees what the retry found.  At most one retry
        per server is started per :data:`RETRY_FIRST` seconds.
        """
        due = []
        now = time.monotonic()
        for server in self.catalog.servers:
            failure = self.pool.last_failure(server)
            if failure is None or failure[1] > 0 or self.catalog.server_tools(server):
                continue
            with self._retry_lock:
                if now - self._retried.get(server, -RETRY_FIRST) < RETRY_FIRST:
                    continue
                self._retried[server] = now
            due.append(server)
        for server in due:
            self.relist(server)

    def _retry_failed(self, server: str, name: str | None) -> Tool | None:
        """Tool *name* (if any) after listing *server* again if its last start failed and a new one is due.

        Raises ToolUnavailable with the reason and the time of the next attempt
        while the server is backing off (pool.py); None when it was not a failure.
        """
        if not self.catalog.error(server):
            return None
        failure = self.pool.last_failure(server)
        if failure is None or failure[1] <= 0:
            for t in self.relist(server):
                t.join(FIRST_LISTING_WAIT)
            tool = self.catalog.get(name) if name else None
            if tool is not None:
                return tool
            if self.catalog.server_tools(server):
                return None  # listed now, but without that tool: suggest names
            failure = self.pool.last_failure(server)
        if failure is None:
            reason = self.catalog.error(server)
            raise ToolUnavailable(f"server {server!r} is unavailable ({reason}); try again later")
        reason, left = failure
        raise ToolUnavailable(f"server {server!r} is unavailable ({reason}); mcpzip starts it again in {max(1, round(left))} s")

    def _suggest(self, name: str) -> str:
        import difflib  # lazily: only a mistyped name needs it, and it costs start-up time

        names = [t.prefixed for t in self.catalog.tools()]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        bare = name.partition("__")[2] or name
        close += [n for n in names if n.partition("__")[2] == bare and n not in close][:3]
        if len(close) < 3:
            hits, _ = self.searcher.search(name.replace("__", " "), 3)
            close += [t.prefixed for t in hits if t.prefixed not in close][: 3 - len(close)]
        if close:
            return "Did you mean: " + ", ".join(close) + "?"
        return "Use search_tools to find tool names."


def _missing_required(schema: object, arguments: dict) -> list[str]:
    if not isinstance(schema, dict):
        return []
    required = schema.get("required")
    if not isinstance(required, list):
        return []
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    missing = []
    for name in required:
        if isinstance(name, str) and name not in arguments:
            kind = compact_params({"properties": {name: props.get(name, {})}}).partition(":")[2]
            missing.append(f"{name} ({kind})")
    return missing


def _int_arg(value: object, default: int) -> int | None:
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value > 0 else default


def _number_arg(value: object) -> float | None | bool:
    """A positive number of seconds, None when absent, False when unusable."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:  # NaN too
        return False
    return MAX_CALL_SECONDS if value > MAX_CALL_SECONDS else float(value)


def _name_too_long(name: str) -> str:
    return f"name is too long ({len(name)} characters, at most {MAX_NAME_CHARS}): use a tool name from search_tools"
