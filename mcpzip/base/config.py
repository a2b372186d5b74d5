"""The configuration file: where it lives, what it may say, and what it means.

The format is the reference mcpzip's, so a user can switch implementations
without touching the file.  Loading validates everything up front and fails
with one sentence naming the file, server and field at fault; unknown keys
are only warned about, because other tools write extra fields.
"""

from __future__ import annotations

import os
import stat

from . import jsontext, log
from .records import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PATH = os.path.join("~", ".config", "compressed-mcp-proxy", "config.json")
DEFAULT_MODEL = "gemini-2.0-flash"
DEFAULT_LIMIT = 5
MAX_LIMIT = 50
DEFAULT_IDLE_MINUTES = 5.0
DEFAULT_SHARED_IDLE_MINUTES = 30.0
# A server's cached listing is trusted this long unless the server gave its own ttlMs.
DEFAULT_REFRESH_HOURS = 24.0
DEFAULT_CALL_SECONDS = 120.0
MAX_CALL_SECONDS = 86400.0  # longer waits overflow the clock's timeouts
# The largest JSON-RPC message read from a client or an upstream (docs/configuration.md).
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# About 20,000 tokens: under what clients accept in one tool result (docs/results.md).
DEFAULT_RESULT_BYTES = 80_000

# Spellings other clients write for the same transport.
TYPE_ALIASES = {
    "stdio": "stdio",
    "local": "stdio",
    "http": "http",
    "streamable-http": "http",
    "streamable_http": "http",
    "streamablehttp": "http",
    "sse": "sse",
}

TOP_KEYS = {"mcpServers", "gemini_api_key", "search", "idle_timeout_minutes", "call_timeout_seconds", "$schema",
            "resources_and_prompts", "max_message_bytes",
            "max_result_bytes", "env_passthrough", "shared_idle_minutes", "tools_mode", "direct_budget_bytes",
            "pinned", "refresh_hours", "warm_up"}  # fmt: skip
TOOLS_MODES = ("auto", "meta", "direct")
# In auto mode, the upstream tools are listed directly while their definitions fit this.
DEFAULT_DIRECT_BUDGET = 8192
SEARCH_KEYS = {"model", "default_limit"}
SERVER_KEYS = {"type", "command", "args", "env", "cwd", "url", "headers", "disabled", "oauth", "max_result_bytes",
               "env_passthrough", "shared"}  # fmt: skip
# Server keys other clients write (Cline, Roo, VS Code, Gemini CLI, ...) that a
# migrated entry keeps: mcpzip has no use for them, but they are no mistake,
# so they are noted in the debug log rather than warned about at every start.
FOREIGN_SERVER_KEYS = {
    "alwaysAllow", "autoApprove", "timeout", "transportType", "description", "trust", "includeTools",
    "excludeTools", "disabledTools", "envFile", "dev", "gallery", "version", "name", "enabled", "networkTimeout",
}  # fmt: skip
OAUTH_KEYS = {"client_id", "client_secret", "scopes"}

# Variables every process sees anyway (stdio upstreams get them too): their
# ``${VAR}`` expansions are not secrets, and masking them would blank out
# every path in the log.  Every other expansion is registered as a secret.
PUBLIC_VARS = frozenset({"HOME", "USER", "LOGNAME", "PATH", "PWD", "SHELL", "TMPDIR", "TEMP", "TMP", "LANG",
                         "USERPROFILE", "APPDATA", "LOCALAPPDATA", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
                         "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"})  # fmt: skip

# Proxy settings, passed to stdio servers by default (transports/stdio.py);
# the password in a proxy URL is masked in every log line.
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy")
# mcpzip's own settings and secrets: never passed to a server, even when listed.
OWN_VARS = frozenset({"GEMINI_API_KEY"})
OWN_PREFIX = "MCPZIP_"

# Checked by hand rather than with ``re``, whose import costs start-up time.
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_VAR_CHARS = _LETTERS | frozenset("0123456789")  # [A-Za-z_][A-Za-z0-9_]*
_NAME_CHARS = _VAR_CHARS | {"-"}  # [A-Za-z0-9_-]+


class ConfigError(Exception):
    """A configuration mistake, phrased for the user in one sentence."""


@dataclass
class OAuthSettings:
    """A client registered by the user in advance (SPEC §9 step 2)."""

    client_id: str | None = None
    client_secret: str | None = None
    scopes: list[str] = field(default_factory=list)


@dataclass
class ServerConfig:
    """One upstream MCP server, with ``${VAR}`` references already expanded."""

    name: str
    type: str = "stdio"
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    oauth: OAuthSettings | None = None
    disabled: bool = False
    # The result budget for this server's tools; None: the top-level one.
    max_result_bytes: int | None = None
    # More variables of mcpzip's environment for this server (stdio), the
    # top-level list included.
    env_passthrough: list[str] = field(default_factory=list)
    # False: a shared mcpzip (serve --http) runs one instance per client (per-session state).
    shared: bool = True

    def describe(self) -> str:
        """A short, secret-free account of how the server is reached."""
        if self.type == "stdio":
            return f"stdio: {self.command}"
        return f"{self.type}: {public_url(self.url)}"


@dataclass
class SearchConfig:
    model: str = DEFAULT_MODEL
    default_limit: int = DEFAULT_LIMIT


@dataclass
class Config:
    path: str
    servers: dict[str, ServerConfig]
    disabled: list[str] = field(default_factory=list)
    gemini_api_key: str | None = None
    search: SearchConfig = field(default_factory=SearchConfig)
    idle_timeout_minutes: float = DEFAULT_IDLE_MINUTES
    call_timeout_seconds: float = DEFAULT_CALL_SECONDS
    # Pass the upstreams' resources, prompts and completions through (docs/protocol.md).
    resources_and_prompts: bool = True
    # Longer messages are refused, not buffered whole (docs/configuration.md).
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    # Results larger than this reach the model cut, the rest readable on request; 0: off.
    max_result_bytes: int = DEFAULT_RESULT_BYTES
    # A shared mcpzip (serve --http) with no client for this long stops.
    shared_idle_minutes: float = DEFAULT_SHARED_IDLE_MINUTES
    # What tools/list offers: the meta-tools, the upstream tools themselves, or (auto) whichever costs less.
    tools_mode: str = "auto"
    direct_budget_bytes: int = DEFAULT_DIRECT_BUDGET
    # Patterns of prefixed tool names (``*`` wildcards) listed directly in every mode.
    pinned: list[str] = field(default_factory=list)
    # How long a server's listing stays fresh when it gave no ttlMs (docs/configuration.md).
    refresh_hours: float = DEFAULT_REFRESH_HOURS
    # Start the servers of search_tools' top results before the model calls one.
    warm_up: bool = True

    def result_budget(self, server: str) -> int:
        """The result budget for *server*'s tools."""
        own = self.servers[server].max_result_bytes if server in self.servers else None
        return self.max_result_bytes if own is None else own

    @property
    def directory(self) -> str:
        return os.path.dirname(self.path)

    @property
    def cache_path(self) -> str:
        return os.path.join(self.directory, "cache", "tools.json")

    @property
    def servers_cache_path(self) -> str:
        return os.path.join(self.directory, "cache", "servers.json")

    @property
    def auth_dir(self) -> str:
        return os.path.join(self.directory, "auth")


def default_path() -> str:
    return os.path.expanduser(DEFAULT_PATH)


def resolve_path(path: str | None) -> str:
    return os.path.abspath(os.path.expanduser(path)) if path else default_path()


def load(path: str | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read, expand and validate the config file; raises :class:`ConfigError`."""
    path = resolve_path(path)
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")  # decoded whole: an error's offset is then the file's
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist (create it, or pass --config PATH; see docs/configuration.md)"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {path}: not valid UTF-8 (byte {e.object[e.start]:#04x} at offset {e.start})") from None
    try:
        data = jsontext.loads(text)
    except ValueError as e:
        raise ConfigError(f"config {path}: not valid JSON: {e}") from None
    if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("config %s is readable by other users and may hold secrets; run: chmod 600 %s", path, path)
    return parse(data, path, os.environ if environ is None else environ)


def parse(data: Any, path: str, environ: dict[str, str]) -> Config:
    """Validate decoded JSON *data* as the config at *path*."""
    where = f"config {path}"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the top level must be a JSON object")
    _warn_unknown(data, TOP_KEYS, where)
    servers_raw = data.get("mcpServers")
    if servers_raw is None:
        servers_raw = {}
    if not isinstance(servers_raw, dict):
        raise ConfigError(f"{where}: mcpServers must be an object mapping names to servers")

    servers: dict[str, ServerConfig] = {}
    disabled: list[str] = []
    references: dict[str, set[str]] = {}  # server -> the variables its ${VAR}s name
    for name, raw in servers_raw.items():
        references[name] = set()
        server = _parse_server(name, raw, where, environ, references[name])
        if server.disabled:
            disabled.append(name)
        else:
            servers[name] = server
    if not servers_raw:
        raise ConfigError(f"{where}: at least one MCP server must be defined")
    _passthrough(data, servers_raw, servers, references, where)
    _register_proxy_credentials(environ)

    search = SearchConfig()
    search_raw = data.get("search")
    if search_raw is not None:
        if not isinstance(search_raw, dict):
            raise ConfigError(f"{where}: search must be an object")
        _warn_unknown(search_raw, SEARCH_KEYS, f"{where}: search")
        model = search_raw.get("model", DEFAULT_MODEL)
        if not isinstance(model, str) or not model:
            raise ConfigError(f"{where}: search.model must be a non-empty string")
        search.model = model
        search.default_limit = _number(search_raw, "default_limit", DEFAULT_LIMIT, f"{where}: search", integer=True)
        if not 1 <= search.default_limit <= MAX_LIMIT:
            raise ConfigError(f"{where}: search.default_limit must be between 1 and {MAX_LIMIT}")

    key = environ.get("GEMINI_API_KEY") or data.get("gemini_api_key") or None
    if key is not None and not isinstance(key, str):
        raise ConfigError(f"{where}: gemini_api_key must be a string")
    log.add_secret(key)

    resources_and_prompts = data.get("resources_and_prompts", True)
    if not isinstance(resources_and_prompts, bool):
        raise ConfigError(f"{where}: resources_and_prompts must be true or false")

    call_timeout = _number(data, "call_timeout_seconds", DEFAULT_CALL_SECONDS, where)
    if call_timeout > MAX_CALL_SECONDS:
        raise ConfigError(f"{where}: call_timeout_seconds must be at most {MAX_CALL_SECONDS:.0f} (one day); 0 means no limit")
    max_message_bytes = _number(data, "max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES, where, integer=True)
    warm_up = data.get("warm_up", True)
    if not isinstance(warm_up, bool):
        raise ConfigError(f"{where}: warm_up must be true or false")
    if max_message_bytes < 1024:
        raise ConfigError(f"{where}: max_message_bytes must be at least 1024")

    tools_mode = data.get("tools_mode", "auto")
    if tools_mode not in TOOLS_MODES:
        raise ConfigError(f"{where}: tools_mode must be one of {', '.join(TOOLS_MODES)}")
    pinned = data.get("pinned", [])
    if not isinstance(pinned, list) or not all(isinstance(p, str) and p for p in pinned):
        raise ConfigError(f"{where}: pinned must be a list of tool names or patterns, e.g. [\"github__create_issue\", \"slack__*\"]")

    return Config(
        path=path,
        servers=servers,
        disabled=disabled,
        gemini_api_key=key,
        search=search,
        idle_timeout_minutes=_number(data, "idle_timeout_minutes", DEFAULT_IDLE_MINUTES, where),
        call_timeout_seconds=call_timeout,
        resources_and_prompts=resources_and_prompts,
        max_message_bytes=max_message_bytes,
        max_result_bytes=_number(data, "max_result_bytes", DEFAULT_RESULT_BYTES, where, integer=True),
        shared_idle_minutes=_number(data, "shared_idle_minutes", DEFAULT_SHARED_IDLE_MINUTES, where),
        tools_mode=tools_mode,
        direct_budget_bytes=_number(data, "direct_budget_bytes", DEFAULT_DIRECT_BUDGET, where, integer=True),
        pinned=pinned,
        refresh_hours=_number(data, "refresh_hours", DEFAULT_REFRESH_HOURS, where),
        warm_up=warm_up,
    )


def _parse_server(name: Any, raw: Any, where: str, environ: dict[str, str],
                  references: set[str] | None = None) -> ServerConfig:  # fmt: skip
    if (not isinstance(name, str) or not name or not _NAME_CHARS.issuperset(name) or "__" in name
            or name.startswith("_") or name.endswith("_")):  # fmt: skip
        # "a_" + "__" + "b" would read as "a" + "__" + "_b": one name, two tools.
        raise ConfigError(
            f"{where}: server name {name!r} must be letters, digits, '-' and '_' without '__' "
            "and without '_' at either end (it prefixes every tool name)"
        )
    here = f'{where}: server "{name}"'
    if not isinstance(raw, dict):
        raise ConfigError(f"{here} must be an object")
    _warn_unknown(raw, SERVER_KEYS, here, FOREIGN_SERVER_KEYS)

    disabled = raw.get("disabled", False)
    if not isinstance(disabled, bool):
        raise ConfigError(f"{here}: disabled must be true or false")

    kind = raw.get("type")
    if kind is None:
        # Cursor and others leave the type out and let the url imply it.
        kind = "http" if "url" in raw and "command" not in raw else "stdio"
    if not isinstance(kind, str) or kind.lower() not in TYPE_ALIASES:
        raise ConfigError(f"{here}: type {kind!r} is not one of stdio, http (streamable-http), sse")
    kind = TYPE_ALIASES[kind.lower()]

    def expand(value: str, field_name: str) -> str:
        return expand_vars(value, environ, f"{here}: {field_name}", references)

    server = ServerConfig(name=name, type=kind, disabled=disabled)
    shared = raw.get("shared", True)
    if not isinstance(shared, bool):
        raise ConfigError(f"{here}: shared must be true or false")
    server.shared = shared
    if "max_result_bytes" in raw:
        server.max_result_bytes = _number(raw, "max_result_bytes", 0, here, integer=True)
    if kind == "stdio":
        command = raw.get("command")
        if not isinstance(command, str) or not command.strip():
            if disabled:
                return server
            raise ConfigError(f"{here}: stdio server must have a command")
        server.command = expand(command, "command")
        args = raw.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, (str, int, float)) for a in args):
            raise ConfigError(f"{here}: args must be a list of strings")
        server.args = [expand(str(a), "args") for a in args]
        server.env = _string_map(raw, "env", here, expand)
        for value in server.env.values():
            log.add_secret(value)
        cwd = raw.get("cwd")
        if cwd is not None:
            if not isinstance(cwd, str):
                raise ConfigError(f"{here}: cwd must be a string")
            server.cwd = os.path.expanduser(cwd)
    else:
        url = raw.get("url")
        if not isinstance(url, str) or not url.strip():
            if disabled:
                return server
            raise ConfigError(f"{here}: {kind} server must have a url")
        server.url = expand(url.strip(), "url")
        if not server.url.lower().startswith(("http://", "https://")):
            raise ConfigError(f"{here}: url must start with https:// (or http:// for a local server)")
        _register_url_secrets(server.url)
        server.headers = _string_map(raw, "headers", here, expand)
        for value in server.headers.values():
            log.add_secret(value)
        server.oauth = _parse_oauth(raw.get("oauth"), here)
    return server


def _register_url_secrets(url: str) -> None:
    """The password, user and query values of *url* are secrets (API keys often ride there)."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(url)
    if parts.username:
        log.add_secret(unquote(parts.username))
        log.add_secret(parts.username)
    if parts.password:
        log.add_secret(unquote(parts.password))
        log.add_secret(parts.password)
    for _key, value in parse_qsl(parts.query, keep_blank_values=False):
        log.add_secret(value)


def public_url(url: str) -> str:
    """*url* as printed: ``scheme://host:port/path``, without user, password, query or fragment."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # an unparseable port: show nothing after the scheme rather than guess
        return url.partition("://")[0] + "://…"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _parse_oauth(raw: Any, here: str) -> OAuthSettings | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{here}: oauth must be an object")
    _warn_unknown(raw, OAUTH_KEYS, f"{here}: oauth")
    settings = OAuthSettings()
    for key in ("client_id", "client_secret"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{here}: oauth.{key} must be a string")
        setattr(settings, key, value or None)
    log.add_secret(settings.client_secret)
    scopes = raw.get("scopes", [])
    if isinstance(scopes, str):
        scopes = scopes.split()
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ConfigError(f"{here}: oauth.scopes must be a list of strings")
    settings.scopes = scopes
    return settings


def _string_map(raw: dict, key: str, here: str, expand: Any) -> dict[str, str]:
    value = raw.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{here}: {key} must be an object of strings")
    out: dict[str, str] = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ConfigError(f"{here}: {key}.{k} must be a string")
        out[str(k)] = expand(str(v), f"{key}.{k}")
    return out


def _number(raw: dict, key: str, default: float, where: str, integer: bool = False) -> Any:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:  # NaN too
        raise ConfigError(f"{where}: {key} must be a non-negative number")
    if value > 1e15:  # Infinity, or so large a number no clock can wait for it
        raise ConfigError(f"{where}: {key} is too large")
    if integer:
        if value != int(value):
            raise ConfigError(f"{where}: {key} must be a whole number")
        return int(value)
    return float(value)


def expand_vars(value: str, environ: dict[str, str], where: str = "config", seen: set[str] | None = None) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}`` from *environ* (adding each name to *seen*).

    An unset variable without a default becomes empty, with a warning that
    names the variable (never a value).
    """
    out = []
    done = 0  # value[:done] is in out
    start = value.find("${")
    while start >= 0:
        end = value.find("}", start + 2)
        if end < 0:
            break
        name, sep, default = value[start + 2 : end].partition(":-")
        if name and name[0] in _LETTERS and _VAR_CHARS.issuperset(name):
            out.append(value[done:start])
            out.append(_lookup(name, default if sep else None, environ, where))
            if seen is not None:
                seen.add(name)
            done = end + 1
            start = value.find("${", done)
        else:  # not a reference: keep it as written and look further on
            start = value.find("${", start + 1)
    out.append(value[done:])
    return "".join(out)


def _passthrough(data: dict, servers_raw: dict, servers: dict[str, ServerConfig], references: dict[str, set[str]],
                 where: str) -> None:  # fmt: skip
    """Give each server the top-level ``env_passthrough`` and its own, checked.

    A listed name must not be one of mcpzip's own settings, nor a variable
    another server's entry uses (``${NAME}``): that would hand one server's
    secret to another.
    """
    top = _names(data, "env_passthrough", where)
    for name, server in servers.items():
        here = f'{where}: server "{name}"'
        listed = top + [n for n in _names(servers_raw[name], "env_passthrough", here) if n not in top]
        for var in listed:
            others = sorted(other for other, names in references.items() if other != name and var in names)
            if others:
                raise ConfigError(
                    f'{here}: env_passthrough names {var}, which server "{others[0]}" uses in its entry; '
                    f'give it to the servers that need it in their "env" instead'
                )
        server.env_passthrough = listed


def _names(raw: dict, key: str, where: str) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v and v[0] in _LETTERS
                                              and _VAR_CHARS.issuperset(v) for v in value):  # fmt: skip
        raise ConfigError(f"{where}: {key} must be a list of environment variable names")
    for var in value:
        if var in OWN_VARS or var.startswith(OWN_PREFIX):
            raise ConfigError(f"{where}: {key} names {var}, which is mcpzip's own and never passed on")
    return list(value)


def _register_proxy_credentials(environ: dict[str, str]) -> None:
    """Mask the user name and password of a proxy URL (``http://user:pass@host``) in every log line."""
    for var in PROXY_VARS:
        userinfo = environ.get(var, "").partition("://")[2].partition("/")[0].rpartition("@")[0]
        if userinfo:
            log.add_secret(userinfo)
            log.add_secret(userinfo.partition(":")[2])


def _lookup(name: str, default: str | None, environ: dict[str, str], where: str) -> str:
    found = environ.get(name)
    if found:
        if name not in PUBLIC_VARS:
            # A value kept out of the file is kept out of every log and error too.
            log.add_secret(found)
        return found
    if default is not None:
        return default
    if found is None:
        log.warning("%s: environment variable %s is not set; using an empty value", where, name)
    return ""


def _warn_unknown(raw: dict, known: set[str], where: str, foreign: frozenset | set = frozenset()) -> None:
    for key in raw:
        if key in foreign:
            log.debug("%s: key %r (another client's) ignored", where, key)
        elif key not in known:
            log.warning("%s: unknown key %r ignored", where, key)
