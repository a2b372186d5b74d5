"""``mcpzip doctor``: is this setup going to work, and if not, what to do about it.

It checks the config, the modes of the files that hold secrets, the cache,
and then starts every enabled server at the same time (each within the
timeout) and reports, per server: transport, protocol era, tool count,
auth state and start-up time.  Exit code 1 when anything is broken;
warnings alone leave it 0.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time

from .. import __version__
from ..base import log
from ..base import config as config_module

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from ..base.config import Config, ServerConfig
    from .probe import Probe

OK, WARN, FAIL, INFO = "ok", "warn", "FAIL", "-"
# Words in a failure that mean the server wants a sign-in (a 401, or the
# auth module telling the user to run ``mcpzip login``).
_AUTH_WORDS = ("401", "unauthorized", "unauthorised", "mcpzip login", "oauth", "insufficient_scope")


class Report:
    """Lines of findings on stdout; counts the failures."""

    def __init__(self, out: Any = None) -> None:
        self.out = out or sys.stdout
        self.failures = 0
        self.warnings = 0

    def line(self, text: str = "") -> None:
        # Errors quote what servers wrote on stderr, which may echo a secret.
        print(log.redact(text), file=self.out, flush=True)

    def finding(self, status: str, text: str, detail: str | None = None) -> None:
        if status == FAIL:
            self.failures += 1
        elif status == WARN:
            self.warnings += 1
        self.line(f"  {status:<5} {text}")
        if detail:
            self.line(f"        {detail}")


def run(args: argparse.Namespace) -> int:
    if not args.timeout > 0:
        print("mcpzip doctor: error: --timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    if not os.environ.get("MCPZIP_LOG"):
        log.configure("error")  # what the servers say is reported below, not logged
    report = Report()
    path = config_module.resolve_path(args.config)
    report.line(f"mcpzip {__version__}, Python {sys.version.split()[0]} ({sys.executable})")
    report.line(f"Config: {path}")
    try:
        config = config_module.load(path)
    except config_module.ConfigError as e:
        hint = " Create one with `mcpzip init` or `mcpzip migrate`." if not os.path.exists(path) else ""
        text = str(e) if str(e).endswith(".") else f"{e}."
        report.finding(FAIL, text + hint)
        return _summary(report)
    enabled = len(config.servers)
    disabled = f", {len(config.disabled)} disabled ({', '.join(config.disabled)})" if config.disabled else ""
    report.finding(OK, f"config is valid: {enabled} server(s){disabled}")
    check_files(config, report)
    check_search(config, report)
    check_sharing(config, report)
    check_servers(config, report, args.timeout)
    return _summary(report)


def _summary(report: Report) -> int:
    report.line("")
    if report.failures:
        report.line(f"{report.failures} problem(s) found" + (f", {report.warnings} warning(s)." if report.warnings else "."))
        return 1
    report.line("Everything works" + (f" ({report.warnings} warning(s))." if report.warnings else "."))
    return 0


# -- files ------------------------------------------------------------------------


def _mode(path: str) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def check_files(config: Config, report: Report) -> None:
    posix = os.name == "posix"  # modes mean little on Windows
    mode = _mode(config.path)
    if posix and mode is not None:
        if mode & 0o077 and _holds_secrets(config.path):
            report.finding(FAIL, f"config holds secrets and is readable by other users (mode {mode:o}): chmod 600 {config.path}")
        elif mode & 0o077:
            report.finding(WARN, f"config is readable by other users (mode {mode:o}); if you add secrets: chmod 600 {config.path}")
        else:
            report.finding(OK, f"config file mode {mode:o}")

    auth_dir = config.auth_dir
    if os.path.isdir(auth_dir):
        bad = []
        dir_mode = _mode(auth_dir)
        if posix and dir_mode is not None and dir_mode & 0o077:
            bad.append(f"the directory {auth_dir} is open to other users (mode {dir_mode:o}): chmod 700 {auth_dir}")
        files = sorted(f for f in os.listdir(auth_dir) if os.path.isfile(os.path.join(auth_dir, f)))
        for name in files:
            file_mode = _mode(os.path.join(auth_dir, name))
            if posix and file_mode is not None and file_mode & 0o077:
                bad.append(f"{os.path.join(auth_dir, name)} is readable by other users (mode {file_mode:o}): chmod 600 it")
        for text in bad:
            report.finding(FAIL, f"stored logins: {text}")
        if not bad:
            report.finding(OK, f"stored logins: {len(files)} file(s) in {auth_dir}, private")

    cache = config.cache_path
    cache_mode = _mode(cache)
    if cache_mode is None:
        report.finding(INFO, "no tool cache yet (it is written when the servers are first listed)")
        return
    if posix and cache_mode & 0o022:
        report.finding(
            FAIL,
            f"the tool cache is writable by other users (mode {cache_mode:o}); what it says reaches the model: "
            f"chmod 644 {cache}",
        )
    try:
        with open(cache, encoding="utf-8") as f:
            entries = json.load(f)
        if not isinstance(entries, list):
            raise ValueError("not a list")
    except (OSError, ValueError):
        report.finding(WARN, f"the tool cache {cache} is unreadable; mcpzip will rebuild it")
        return
    report.finding(OK, f"tool cache: {len(entries)} tool(s) (mode {cache_mode:o})")


def _holds_secrets(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    if data.get("gemini_api_key"):
        return True
    servers = data.get("mcpServers")
    for entry in servers.values() if isinstance(servers, dict) else ():
        if isinstance(entry, dict):
            oauth = entry.get("oauth")
            if entry.get("env") or entry.get("headers") or (isinstance(oauth, dict) and oauth.get("client_secret")):
                return True
    return False


def check_search(config: Config, report: Report) -> None:
    if config.gemini_api_key:
        source = "GEMINI_API_KEY" if os.environ.get("GEMINI_API_KEY") else "the config"
        report.finding(INFO, f"search: keywords, plus Gemini ({config.search.model}, key from {source})")
    else:
        report.finding(INFO, "search: keywords (no Gemini key; optional)")


def check_sharing(config: Config, report: Report) -> None:
    """Whether a shared mcpzip (serve --shared / --http) runs for this config, and for whom."""
    from ..downstream.sharing import Place, running

    place = Place(config.path)
    secret = place.existing_secret()
    if secret is not None and (_mode(place.secret_path) or 0) & 0o077:
        report.finding(FAIL, f"{place.secret_path} is readable by other users; run: chmod 600 {place.secret_path}")
    state = running(place, secret) if secret is not None else None
    if state is None:
        report.finding(INFO, "shared mcpzip: not running (`serve --shared` starts one when a client needs it)")
        return
    clients = state.get("clients", 0)
    servers = ", ".join(state.get("servers") or []) or "none yet"
    report.finding(INFO, f"shared mcpzip: running (pid {state['pid']}, port {state['port']}), "
                         f"{clients} client{'s' if clients != 1 else ''}; servers running: {servers}")  # fmt: skip


# -- servers ------------------------------------------------------------------------


def check_servers(config: Config, report: Report, timeout: float) -> None:
    from .migrate import launches_mcpzip
    from .probe import probe_all

    report.line("")
    report.line(f"Servers (each may take {timeout:g} s to start and list its tools):")
    loops = [s.name for s in config.servers.values() if s.type == "stdio" and launches_mcpzip(s.command, s.args)]
    names = [n for n in config.servers if n not in loops]
    results = {p.name: p for p in probe_all(config, names, timeout)} if names else {}
    width = max([len(n) for n in list(config.servers) + config.disabled] + [4])
    now = time.time()
    for name, server in config.servers.items():
        if name in loops:
            report.finding(FAIL, f"{name:<{width}}  starts mcpzip itself; remove it from the config "
                           "(mcpzip would start itself in a loop)")  # fmt: skip
            continue
        _server_line(report, server, results[name], width, timeout, config.auth_dir, now)
    for name in config.disabled:
        report.finding(INFO, f"{name:<{width}}  disabled, not started")


def _server_line(report: Report, server: ServerConfig, p: Probe, width: int, timeout: float,
                 auth_dir: str, now: float) -> None:  # fmt: skip
    auth, needs_login = auth_state(server, auth_dir, now)
    era = f"{p.era} {p.protocol_version}" if p.era and p.protocol_version else "-"
    tools = f"{p.tools} tool{'s' if p.tools != 1 else ''}" if p.tools is not None else "-"
    started = f"started in {p.start_seconds:.2f} s" if p.start_seconds is not None else ""
    detail = None
    if p.ok:
        status = OK
        if auth == "no stored login":
            auth = "no auth"  # it answered without one
        if p.start_seconds is not None and p.start_seconds > timeout / 2:
            status = WARN
            detail = f"slow to start: {p.start_seconds:.1f} s of the {timeout:g} s timeout (clients may give up)"
    else:
        status = FAIL
        detail = log.shown(p.error) if p.error else "failed"  # a server's words: masked, no terminal codes
        if server.type != "stdio" and not server.headers and (
            needs_login or any(w in detail.lower() for w in _AUTH_WORDS)
        ):
            auth = f"needs `mcpzip login {server.name}`"
        if "TLS certificate verification failed" in detail:
            detail += _tls_advice()
    report.finding(status, f"{server.name:<{width}}  {server.type:<5}  {era:<17}  {tools:<10}  {auth:<24}  {started}".rstrip(), detail)


def _tls_advice() -> str:
    from ..base import web

    stores = "\n          ".join(web.trust_stores())
    return f"\n        certificates tried:\n          {stores}\n        {web.CA_HINT}"


def auth_state(server: ServerConfig, auth_dir: str, now: float) -> tuple[str, bool]:
    """(what to show, whether a browser sign-in is needed) for *server*'s stored login."""
    if server.type == "stdio":
        return "no auth", False
    if server.headers:
        return "headers (no OAuth)", False
    from ..upstream.auth.base import AuthError
    from ..upstream.auth.store import Store, mcp_remote_token

    store = Store(auth_dir)
    try:
        token = store.load_token(server.url)
    except AuthError:  # auth/ belongs to another user: its tokens are not to be trusted
        return "auth/ not yours: refused", True
    if token is None:
        if not store.has_token_file(server.url) and mcp_remote_token(server.url) is not None:
            return "mcp-remote's login (reused)", False
        return "no stored login", False
    if token.expiry is None:
        return "token stored (no expiry)", False
    if token.expiry > now:
        return f"token valid for {int((token.expiry - now) // 60)} min", False
    if token.refresh_token:
        return "token expired; refreshes on use", False
    return "token expired", True
