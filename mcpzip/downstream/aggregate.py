"""Resources, resource templates, prompts and completions aggregated across upstreams.

The client sees one server.  Its lists are the upstreams' lists merged in
config order; prompts are renamed ``server__prompt`` (like tools) and
resource URIs are kept as the upstream gave them, so reads are routed
through a URI -> server table built from the listings.  When two servers
claim the same URI (or URI template), the first in config order wins and the
clash is logged once; of several matching templates, the most specific wins,
and a URI nothing claims is never sent around to every server.  The rules are stated for users in docs/protocol.md.

Only upstreams that declare a capability are asked for it.  A failing or
silent upstream is left out of a list (with a log line) within a bounded
time; the other servers still answer.

Threading contract: every public method may be called from any thread; the
routing tables are guarded by one lock that is never held across I/O.
"""

from __future__ import annotations

import threading
import time

from ..base import jsonrpc, listing, log, protocol
from ..knowledge.catalog import SEPARATOR, split_name
from ..base.jsonrpc import RPCError
from ..upstream.session import NotSent, UpstreamError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..base.config import Config
    from ..upstream.pool import Pool
    from ..upstream.session import CallContext, Upstream

# How long one list request may take across all upstreams (and connecting them).
LIST_TIMEOUT = 30.0
# A page of a merged list holds at least this many items (unless it is the
# last); it ends only between two upstream pages, never inside one.
PAGE_SIZE = 100
# A read of an unknown URI lists again the servers not yet fully listed, but
# not one whose listing failed this recently (it would only wait again).
RELIST_AFTER_FAILURE = 60.0
# Renewing subscriptions delays a reconnection by at most this, per URI.
RENEW_TIMEOUT = 5.0
CONNECT_TIMEOUT = 30.0
# Resource not found: legacy revisions have a code of their own; the modern
# one retired it for Invalid params.
LEGACY_RESOURCE_NOT_FOUND = -32002
# A URI is matched against every server's templates (regular expressions), so its length is bounded.
MAX_URI_CHARS = 8192

RESOURCES, TEMPLATES, PROMPTS = "resources", "resourceTemplates", "prompts"


class _Kind:
    """One listable kind: the method, the capability it needs, its result key and identity field."""

    __slots__ = ("method", "capability", "key", "id_field")

    def __init__(self, method: str, capability: str, key: str, id_field: str | None) -> None:
        self.method, self.capability, self.key, self.id_field = method, capability, key, id_field


KINDS = {
    "resources/list": _Kind("resources/list", "resources", RESOURCES, "uri"),
    "resources/templates/list": _Kind("resources/templates/list", "resources", TEMPLATES, "uriTemplate"),
    "prompts/list": _Kind("prompts/list", "prompts", PROMPTS, None),
}
METHODS = frozenset(KINDS) | {
    "resources/read", "prompts/get", "completion/complete", "resources/subscribe", "resources/unsubscribe",
}  # fmt: skip

_NOT_OFFERED = object()


class _Page:
    __slots__ = ("items", "next", "ttl", "scope")

    def __init__(self, items: list[dict], next_cursor: str | None, ttl: int, scope: str) -> None:
        self.items, self.next, self.ttl, self.scope = items, next_cursor, ttl, scope


class _Walk:
    """Consecutive pages of one upstream's list, and how the walk ended."""

    __slots__ = ("pages", "failed", "offered", "done")

    def __init__(self) -> None:
        self.pages: list[_Page] = []
        self.failed = False
        self.offered = True
        self.done = False


def offers(capabilities: dict | None, capability: str) -> bool:
    return isinstance(capabilities, dict) and isinstance(capabilities.get(capability), dict)


class Aggregator:
    """Answers the resource, prompt and completion methods from the upstreams in *pool*."""

    def __init__(self, config: Config, pool: Pool) -> None:
        self.pool = pool
        self.enabled = config.resources_and_prompts
        self.servers = list(config.servers)
        self._order = {name: i for i, name in enumerate(self.servers)}
        self.call_timeout = config.call_timeout_seconds or None
        self.list_timeout = min(LIST_TIMEOUT, self.call_timeout or LIST_TIMEOUT)
        self._lock = threading.Lock()
        self._routes: dict[str, dict[str, str]] = {RESOURCES: {}, TEMPLATES: {}}
        # Servers whose whole list is in the table since it last changed.
        self._complete: dict[str, set[str]] = {RESOURCES: set(), TEMPLATES: set()}
        self._clashes: set[tuple[str, str, str]] = set()
        self._failed: dict[tuple[str, str], float] = {}  # (list key, server) -> when its listing failed
        self._subscriptions: dict[str, str] = {}  # uri -> the server it was subscribed on
        # (server, method) of lists a server refused as unknown although it
        # declares the capability (sqlite: resources without templates):
        # not asked again, so the refusal is logged once.
        self._unsupported: set[tuple[str, str]] = set()

    # -- what mcpzip declares ---------------------------------------------------

    def handles(self, method: str) -> bool:
        return self.enabled and method in METHODS

    def capabilities(self, modern: bool = False) -> dict:
        """The resources/prompts/completions part of mcpzip's own capabilities.

        Each is declared when an upstream offers it.  A server never seen
        (first run, nothing remembered) might offer anything, so it counts as
        offering all three; its lists are simply empty if it does not.
        """
        if not self.enabled:
            return {}
        declared = {name: self.pool.declared(name) for name in self.servers}
        unknown = any(d is None for d in declared.values())
        known = [d for d in declared.values() if d is not None]
        caps: dict = {}
        for capability in ("resources", "prompts"):
            offered = [d[capability] for d in known if offers(d, capability)]
            if not offered and not unknown:
                continue
            entry: dict = {}
            if not modern:
                # Change notifications reach only legacy sessions (modern
                # clients would need a subscriptions/listen stream).
                entry["listChanged"] = unknown or any(o.get("listChanged") for o in offered)
                if capability == "resources" and any(self._can_subscribe(n) for n in self.servers):
                    entry["subscribe"] = True
            caps[capability] = entry
        if unknown or any(offers(d, "completions") for d in known):
            caps["completions"] = {}
        return caps

    # -- requests -----------------------------------------------------------------

    def request(self, method: str, params: dict, modern: bool, context: CallContext | None = None) -> dict:
        """Answer one of :data:`METHODS`; raises :class:`RPCError` for the client."""
        if method in KINDS:
            return self._list(KINDS[method], params.get("cursor"), modern)
        if method == "resources/read":
            return self._read(params, modern, context)
        if method == "prompts/get":
            return self._get_prompt(params, context)
        if method == "completion/complete":
            return self._complete_argument(params, context)
        if modern:
            # Modern clients follow resources through subscriptions/listen.
            raise RPCError(jsonrpc.METHOD_NOT_FOUND, f"Method not found: {method}", method)
        if method == "resources/subscribe":
            return self._subscribe(_uri_param(params))
        return self._unsubscribe(_uri_param(params))

    # -- lists ----------------------------------------------------------------------

    def _list(self, kind: _Kind, token: Any, modern: bool) -> dict:
        start, cursor = self._decode_cursor(kind, token)
        remaining = self.servers[self._order[start]:] if start else self.servers
        names = [n for n in remaining if self._may_offer(n, kind.capability)]
        walks = self._walk_all(kind, names, PAGE_SIZE, {start: cursor} if cursor and start in names else {})
        items: list[dict] = []
        ttls: list[int] = []
        scopes: list[str] = []
        next_token = None
        for i, name in enumerate(names):
            walk = walks[name]
            stop = False
            for j, page in enumerate(walk.pages):
                items.extend(self._admit(kind, name, page.items))
                ttls.append(page.ttl)
                scopes.append(page.scope)
                last = j == len(walk.pages) - 1
                if page.next and not (last and walk.failed) and (len(items) >= PAGE_SIZE or last):
                    next_token = _encode_cursor(kind, name, page.next)
                    stop = True
                    break
            if stop:
                break
            if len(items) >= PAGE_SIZE and i + 1 < len(names):
                next_token = _encode_cursor(kind, names[i + 1], None)
                break
        result: dict = {kind.key: items}
        if next_token:
            result["nextCursor"] = next_token
        if modern:
            # All pages of one list must share a scope: only a list that fits
            # one page, from upstreams that all say public, is public.
            whole = token is None and next_token is None
            public = whole and bool(scopes) and all(s == "public" for s in scopes)
            result.update(ttlMs=min(ttls) if ttls else 0, cacheScope="public" if public else "private")
        return result

    def _walk_all(self, kind: _Kind, names: list[str], limit: int, cursors: dict[str, str | None]) -> dict[str, _Walk]:
        """Walk each server's list concurrently, all within one deadline; routes are recorded."""
        deadline = time.monotonic() + self.list_timeout
        walks = {name: _Walk() for name in names}
        if len(names) == 1:
            self._walk(kind, names[0], cursors.get(names[0]), deadline, limit, walks[names[0]])
        else:
            threads = []
            for name in names:
                args = (kind, name, cursors.get(name), deadline, limit, walks[name])
                t = threading.Thread(target=self._walk, args=args, name=f"mcpzip-{kind.key}-{name}")
                t.daemon = True
                t.start()
                threads.append(t)
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()) + 1.0)
        for name in names:
            walk = walks[name]
            if not walk.done:
                log.warning("%s: %s did not answer in time; listed without it", name, kind.method)
                walks[name] = walk = _Walk()
                walk.failed = True
            if kind.id_field and walk.offered:
                full = not walk.failed and name not in cursors and not (walk.pages and walk.pages[-1].next)
                self._register(kind, name, walk, full)
                with self._lock:
                    if walk.failed:
                        self._failed[(kind.key, name)] = time.monotonic()
                    else:
                        self._failed.pop((kind.key, name), None)
        return walks

    def _walk(self, kind: _Kind, name: str, cursor: str | None, deadline: float, limit: int, walk: _Walk) -> None:
        """Follow *name*'s ``nextCursor`` from *cursor* until *limit* items (0: all) or the end."""
        seen = {cursor} if cursor else set()
        count = 0
        try:
            while True:
                params = {"cursor": cursor} if cursor else {}
                result = self._ask_list(name, kind, params, deadline)
                if result is _NOT_OFFERED:
                    walk.offered = False
                    return
                page = result.get(kind.key) if isinstance(result, dict) else None
                if not isinstance(page, list):
                    raise UpstreamError(f"the answer has no {kind.key} list")
                cursor = result.get("nextCursor")
                if not isinstance(cursor, str) or not cursor or cursor in seen:
                    cursor = None
                ttl = result.get("ttlMs")
                ttl = max(0, int(ttl)) if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) else 0
                scope = "public" if result.get("cacheScope") == "public" else "private"
                items, problems = listing.normalise(kind.key, page)
                if problems:
                    log.warning("%s: its %s list has fields of the wrong type (%s); they were dropped or made text",
                                name, kind.key, listing.summary(problems))  # fmt: skip
                walk.pages.append(_Page(items, cursor, ttl, scope))
                count += len(page)
                if cursor is None or (limit and count >= limit):
                    return
                seen.add(cursor)
        except Exception as e:  # one broken server must not break the list
            walk.failed = True
            log.warning("%s: %s failed: %s", name, kind.method, e)
        finally:
            walk.done = True

    def _ask_list(self, name: str, kind: _Kind, params: dict, deadline: float) -> Any:
        """One page of *name*'s list, or ``_NOT_OFFERED`` when it does not know the method."""
        with self._lock:
            if (name, kind.method) in self._unsupported:
                return _NOT_OFFERED
        try:
            return self._ask(name, kind.capability, kind.method, params, max(0.001, deadline - time.monotonic()))
        except RPCError as e:
            if e.code != jsonrpc.METHOD_NOT_FOUND:
                raise
        with self._lock:
            self._unsupported.add((name, kind.method))
        log.debug("%s: does not support %s; not asked again", name, kind.method)
        return _NOT_OFFERED

    def _admit(self, kind: _Kind, server: str, items: list[dict]) -> list[dict]:
        """The items of *server*'s page as the client sees them."""
        if kind.id_field is None:
            return [dict(p, name=f"{server}{SEPARATOR}{p['name']}") for p in items if isinstance(p.get("name"), str)]
        with self._lock:
            routes = self._routes[kind.key]
            return [i for i in items if routes.get(i.get(kind.id_field)) == server]  # type: ignore[arg-type]

    def _register(self, kind: _Kind, server: str, walk: _Walk, full: bool) -> None:
        keys = [i.get(kind.id_field) for p in walk.pages for i in p.items]
        keys = [k for k in keys if isinstance(k, str)]
        clashes = []
        with self._lock:
            routes = self._routes[kind.key]
            if full:
                present = set(keys)
                for key in [k for k, s in routes.items() if s == server and k not in present]:
                    del routes[key]
                self._complete[kind.key].add(server)
            for key in keys:
                owner = routes.get(key)
                if owner is None or owner == server:
                    routes[key] = server
                    continue
                winner, loser = (server, owner) if self._order[server] < self._order[owner] else (owner, server)
                routes[key] = winner
                if (kind.key, key, loser) not in self._clashes:
                    self._clashes.add((kind.key, key, loser))
                    clashes.append((key, winner, loser))
        what = "resource" if kind.key == RESOURCES else "resource template"
        for key, winner, loser in clashes:
            log.warning("%s %s is offered by %s and %s; %s's is used (the first in the config wins)",
                        what, key, winner, loser, winner)  # fmt: skip

    def _fill_tables(self) -> bool:
        """List every server whose resources are not all in the table yet; False if none."""
        walked = False
        for key, method in ((RESOURCES, "resources/list"), (TEMPLATES, "resources/templates/list")):
            now = time.monotonic()
            with self._lock:
                done = set(self._complete[key])
                done.update(n for (k, n), t in self._failed.items() if k == key and now - t < RELIST_AFTER_FAILURE)
            names = [n for n in self.servers if n not in done and self._may_offer(n, "resources")]
            if names:
                self._walk_all(KINDS[method], names, 0, {})
                walked = True
        return walked

    # -- routing by URI ---------------------------------------------------------------

    def _route(self, uri: str, template_ref: bool = False) -> str | None:
        """The server for *uri*: listed URIs, then (for completions) template strings, then template matches."""
        for refill in (False, True):
            if refill and not self._fill_tables():
                return None
            with self._lock:
                owner = self._routes[RESOURCES].get(uri)
                if owner is None and template_ref:
                    owner = self._routes[TEMPLATES].get(uri)
                templates = list(self._routes[TEMPLATES].items())
            if owner is None:
                owner = _most_specific([(t, s) for t, s in templates if template_matches(t, uri)], self._order)
            if owner is not None:
                return owner
        return None

    # -- reading, prompts, completions ----------------------------------------------------

    def _read(self, params: dict, modern: bool, context: CallContext | None) -> dict:
        uri = _uri_param(params)
        owner = self._route(uri)
        if owner is None:
            # Unlisted and unmatched: never asked around (the URI may carry what
            # one server's resources hold); only a sole server with resources
            # can be the one meant.
            offering = [n for n in self.servers if self._may_offer(n, "resources")]
            owner = offering[0] if len(offering) == 1 else None
        if owner is None:
            raise _not_found(uri, modern)
        result = self._forward(owner, "resources", "resources/read", _without_meta(params), context, modern)
        if result is _NOT_OFFERED:
            raise _not_found(uri, modern)
        if modern and result.get("resultType", "complete") == "complete":
            result = dict(result)
            result.setdefault("ttlMs", 0)
            if result.get("cacheScope") not in ("public", "private"):
                result["cacheScope"] = "private"
        return result

    def _get_prompt(self, params: dict, context: CallContext | None) -> dict:
        name = params.get("name")
        parts = split_name(name) if isinstance(name, str) else None
        if parts is None or parts[0] not in self._order:
            raise RPCError(jsonrpc.INVALID_PARAMS,
                           f"Invalid params: unknown prompt {name!r} (prompt names are server__prompt)")  # fmt: skip
        forward = dict(_without_meta(params), name=parts[1])
        result = self._forward(parts[0], "prompts", "prompts/get", forward, context)
        if result is _NOT_OFFERED:
            raise RPCError(jsonrpc.INVALID_PARAMS, f"Invalid params: unknown prompt {name!r} ({parts[0]} has none)")
        return result

    def _complete_argument(self, params: dict, context: CallContext | None) -> dict:
        ref = params.get("ref") if isinstance(params.get("ref"), dict) else {}
        kind, name, uri = ref.get("type"), ref.get("name"), ref.get("uri")
        if kind == "ref/prompt" and isinstance(name, str):
            parts = split_name(name)
            server = parts[0] if parts is not None and parts[0] in self._order else None
            if parts is not None:
                ref = dict(ref, name=parts[1])
            what = name
        elif kind == "ref/resource" and isinstance(uri, str):
            _check_length(uri)
            server, what = self._route(uri, template_ref=True), uri
        else:
            raise RPCError(jsonrpc.INVALID_PARAMS, "Invalid params: the ref must be a ref/prompt or a ref/resource")
        if server is None:
            raise RPCError(jsonrpc.INVALID_PARAMS, f"Invalid params: no server offers {what!r}")
        forward = dict(_without_meta(params), ref=ref)
        result = self._forward(server, "completions", "completion/complete", forward, context)
        if result is _NOT_OFFERED:
            return {"completion": {"values": [], "hasMore": False}}  # a server without completions suggests nothing
        return result

    def _forward(self, name: str, capability: str, method: str, params: dict, context: CallContext | None,
                 modern: bool = False) -> Any:  # fmt: skip
        """One request to *name*; upstream trouble becomes an error for the client."""
        try:
            result = self._ask(name, capability, method, params, self.call_timeout, context)
        except RPCError as e:
            if modern and e.code == LEGACY_RESOURCE_NOT_FOUND:
                raise RPCError(jsonrpc.INVALID_PARAMS, e.message, e.data) from e
            raise
        except UpstreamError as e:
            raise RPCError(jsonrpc.INTERNAL_ERROR, log.redact(f"{name}: {e}")) from e
        if result is not _NOT_OFFERED and not isinstance(result, dict):
            raise RPCError(jsonrpc.INTERNAL_ERROR, f"{name}: {method} answered with something other than an object")
        return result

    def _ask(self, name: str, capability: str, method: str, params: dict, timeout: float | None,
             context: CallContext | None = None) -> Any:  # fmt: skip
        """Send *method* to *name* if it offers *capability* (connecting if needed), else ``_NOT_OFFERED``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for attempt in (1, 2):
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            conn = self.pool.get(name, min(left or CONNECT_TIMEOUT, CONNECT_TIMEOUT))
            if not offers(conn.capabilities, capability):
                return _NOT_OFFERED
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            try:
                return conn.request(method, params, left, context)
            except NotSent:
                if attempt == 2:  # closed under us twice: give up
                    raise
        return None  # not reached

    def _can_subscribe(self, name: str) -> bool:
        # A modern server's "subscribe" means subscriptions/listen, which
        # resources/subscribe cannot reach.
        declared = self.pool.declared(name)
        if declared is None:
            # Never seen (the first run): it may, and initialize cannot wait
            # to find out; a subscription is refused once it says it cannot.
            return self.pool.era(name) != protocol.MODERN
        resources = declared.get("resources")
        legacy = self.pool.era(name) == protocol.LEGACY
        return legacy and isinstance(resources, dict) and bool(resources.get("subscribe"))

    def _may_offer(self, name: str, capability: str) -> bool:
        declared = self.pool.declared(name)
        return declared is None or offers(declared, capability)

    # -- subscriptions (legacy clients) ---------------------------------------------------

    def _subscribe(self, uri: str) -> dict:
        owner = self._route(uri)
        if owner is None:
            raise _not_found(uri, modern=False)
        if not self._can_subscribe(owner):
            raise RPCError(jsonrpc.INVALID_PARAMS, f"Invalid params: {owner}, which serves {uri}, has no subscriptions")
        self._forward(owner, "resources", "resources/subscribe", {"uri": uri}, None)
        with self._lock:
            self._subscriptions[uri] = owner
        self.pool.pin(owner)  # an idle reap would silently end the subscription
        return {}

    def _unsubscribe(self, uri: str) -> dict:
        with self._lock:
            owner = self._subscriptions.pop(uri, None)
            still = owner in self._subscriptions.values()
        if owner is None:
            return {}
        if not still:
            self.pool.pin(owner, False)
        self._forward(owner, "resources", "resources/unsubscribe", {"uri": uri}, None)
        return {}

    def connected(self, conn: Upstream) -> None:
        """A restarted upstream has forgotten the client's subscriptions: renew them before it is used."""
        with self._lock:
            uris = [u for u, s in self._subscriptions.items() if s == conn.name]
        for uri in uris:
            try:
                conn.request("resources/subscribe", {"uri": uri}, RENEW_TIMEOUT)
            except Exception as e:
                log.warning("%s: could not renew the subscription to %s: %s", conn.name, uri, e)

    # -- what upstreams say on their own ----------------------------------------------------

    def on_upstream_notification(self, server: str, message: dict) -> dict | None:
        """Take note of an upstream notification; returns the one the client should get, if any.

        Called for every notification an upstream sends.  The answer is meant
        for a legacy session (modern clients hear of changes only through a
        ``subscriptions/listen`` stream): ``notifications/resources/updated``
        for a URI the client subscribed to through mcpzip, and the
        resources/prompts ``list_changed`` notifications.
        """
        if not self.enabled or not isinstance(message, dict):
            return None
        method = message.get("method")
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        if method == "notifications/resources/updated":
            uri = params.get("uri")
            with self._lock:
                subscribed = isinstance(uri, str) and self._subscriptions.get(uri) == server
            return jsonrpc.notification(method, _without_meta(params)) if subscribed else None
        if method == "notifications/resources/list_changed":
            with self._lock:
                for key in (RESOURCES, TEMPLATES):
                    routes = self._routes[key]
                    for k in [k for k, s in routes.items() if s == server]:
                        del routes[k]
                    self._complete[key].discard(server)
            return jsonrpc.notification(method)
        if method == "notifications/prompts/list_changed":
            return jsonrpc.notification(method)
        return None

    # -- cursors ------------------------------------------------------------------------------

    def _decode_cursor(self, kind: _Kind, token: Any) -> tuple[str | None, str | None]:
        """mcpzip's cursor: which server to continue with, and that server's own cursor."""
        if token is None:
            return None, None
        import base64
        import json  # only paging needs it: not imported at start-up

        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
            server, cursor = data["s"], data.get("c")
            if data["k"] != kind.key or server not in self._order or not isinstance(cursor, (str, type(None))):
                raise ValueError
        except (AttributeError, ValueError, KeyError, TypeError, UnicodeError) as e:
            raise RPCError(jsonrpc.INVALID_PARAMS, "Invalid params: unknown cursor") from e
        return server, cursor


def _encode_cursor(kind: _Kind, server: str, cursor: str | None) -> str:
    import base64
    import json

    data = json.dumps({"k": kind.key, "s": server, "c": cursor}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode("ascii")


def _uri_param(params: dict) -> str:
    uri = params.get("uri")
    if not isinstance(uri, str) or not uri:
        raise RPCError(jsonrpc.INVALID_PARAMS, "Invalid params: a uri string is required")
    _check_length(uri)
    return uri


def _check_length(uri: str) -> None:
    if len(uri) > MAX_URI_CHARS:
        raise RPCError(jsonrpc.INVALID_PARAMS, f"Invalid params: uri is too long ({len(uri)} characters, at most {MAX_URI_CHARS})")


def _without_meta(params: dict) -> dict:
    # The client's _meta (envelope, progress token) is the client's; each
    # upstream gets mcpzip's own.
    return {k: v for k, v in params.items() if k != "_meta"}


def _not_found(uri: str, modern: bool) -> RPCError:
    code = jsonrpc.INVALID_PARAMS if modern else LEGACY_RESOURCE_NOT_FOUND
    return RPCError(code, f"Resource not found: {uri}", {"uri": uri})


# -- URI templates (RFC 6570), matched leniently ---------------------------------------


def _most_specific(matches: list[tuple[str, str]], order: dict[str, int]) -> str | None:
    """The server of the template with the most literal characters (then the first in config order).

    ``{+any}`` matches everything, so the template that spells out most of
    the URI is the one meant — however early a broad one comes in the config.
    """
    if not matches:
        return None
    template, server = min(matches, key=lambda m: (-_literal_length(m[0]), order[m[1]]))
    return server


def _literal_length(template: str) -> int:
    """How many characters of *template* are outside its ``{…}`` expressions."""
    total, depth = 0, 0
    for ch in template:
        if ch == "{":
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
        elif not depth:
            total += 1
    return total

_TEMPLATE_PATTERNS: dict[str, Any] = {}
# What each expression operator can expand to; a plain {var} stays within a path segment.
_EXPANSIONS = {
    "": "[^/?#]*",
    "+": ".*",
    "#": "(?:#.*)?",
    "/": "(?:/[^?#]*)?",
    ".": r"(?:\.[^/?#]*)?",
    ";": "(?:;[^/?#]*)?",
    "?": r"(?:\?[^#]*)?",
    "&": "(?:&[^#]*)?",
}


def template_matches(template: str, uri: str) -> bool:
    """Whether *uri* could be an expansion of *template*."""
    pattern = _TEMPLATE_PATTERNS.get(template)
    if pattern is None:
        import re

        parts, pos = [], 0
        for m in re.finditer(r"\{([^}]*)\}", template):
            parts.append(re.escape(template[pos : m.start()]))
            operator = m.group(1)[:1]
            parts.append(_EXPANSIONS.get(operator, _EXPANSIONS[""]))
            pos = m.end()
        parts.append(re.escape(template[pos:]))
        pattern = _TEMPLATE_PATTERNS[template] = re.compile("".join(parts))
    return pattern.fullmatch(uri) is not None
