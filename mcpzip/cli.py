"""The ``mcpzip`` command line.

Exit codes: 0 success, 1 error (bad config, server unreachable, failed call),
2 bad usage.  Errors are one sentence on stderr, never a traceback for a
user's mistake.
"""

from __future__ import annotations

import os
import sys

from . import __version__
from .base import config as config_module, files, log
from .base.config import ConfigError
from .commands import CommandError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Callable, Sequence

    from .downstream.metatools import MetaTools

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="mcpzip",
        description="One MCP server in front of all of yours: the model sees three tools "
        "(search_tools, describe_tool, execute_tool) instead of hundreds.",
        epilog="Logging: MCPZIP_LOG=debug|info|warning|error (default warning), always to stderr.",
    )
    parser.add_argument("--version", action="version", version=f"mcpzip {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--config", metavar="PATH", help="config file (default ~/.config/compressed-mcp-proxy/config.json)")
        return p

    p = command("serve", "run the proxy over stdio (for your AI client)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--http", metavar="[HOST:]PORT",
                     help="serve every client over Streamable HTTP on this loopback port (one mcpzip for all)")
    how.add_argument("--shared", action="store_true",
                     help="relay stdio to the shared mcpzip of this config, starting it when none runs")
    p = command("list", "list every server and its tools")
    p.add_argument("--cached", action="store_true", help="show the cache without starting servers")
    p = command("search", "search the tools like the model does")
    p.add_argument("query", nargs="+", help="what to look for")
    p.add_argument("--limit", type=int, default=None, help="how many results (default from config, max 50)")
    p.add_argument("--refresh", action="store_true", help="list the servers first instead of using the cache")
    p = command("stats", "what the tool definitions cost per server, and what mcpzip lists instead (from the cache)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p = command("describe", "show one tool's full definition")
    p.add_argument("name", help="prefixed tool name, e.g. github__create_issue")
    p.add_argument("--refresh", action="store_true", help="list the servers first instead of using the cache")
    p = command("call", "call one tool and print its result")
    p.add_argument("name", help="prefixed tool name, e.g. github__create_issue")
    p.add_argument("arguments", nargs="?", default="{}", help="the tool's arguments as a JSON object")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait")
    p.add_argument("--json", action="store_true", help="print the raw MCP result as JSON")
    p.add_argument("--max-bytes", type=int, default=0, metavar="N",
                   help="cut the result to N bytes as the model would see it (default: print everything)")
    p = command("refresh", "list servers' tools now and update the cache (serve lists only stale ones)")
    p.add_argument("server", nargs="?", help="the server to list (default: every server)")
    p = command("login", "sign in (OAuth) to remote servers that need it")
    p.add_argument("server", nargs="?", help="the server to sign in to (default: every http/sse server)")
    p = command("logout", "forget the stored OAuth tokens of one server")
    p.add_argument("server", help="the server to sign out of")
    p = command("migrate", "move the MCP servers of your AI client into mcpzip's config, and point the client at mcpzip")
    p.add_argument("--from", dest="source", metavar="CLIENT",
                   help="claude-code (default), claude-desktop, cursor, vscode, windsurf, or the path of a client's file")
    p.add_argument("--claude-config", metavar="PATH", help="Claude Code's file (default ~/.claude.json, else ~/.claude/config.json)")
    p.add_argument("--project", metavar="PATH", help="also migrate this Claude Code project's servers (for cursor/vscode: "
                   "the folder whose .cursor/mcp.json or .vscode/mcp.json to use)")
    p.add_argument("--all-projects", action="store_true", help="also migrate the servers of every Claude Code project")
    p.add_argument("--dry-run", action="store_true", help="print the plan and write nothing")
    p.add_argument("--shared", action="store_true", help="point the client at the shared mcpzip (serve --shared)")
    p = command("init", "create or extend the config: a wizard on a terminal, or flags for scripts")
    p.add_argument("--server", action="append", default=[], metavar="NAME=COMMAND",
                   help="add a stdio server (COMMAND is a command line, split like a shell does); repeatable")
    p.add_argument("--http", action="append", default=[], metavar="NAME=URL", help="add a Streamable HTTP server; repeatable")
    p.add_argument("--sse", action="append", default=[], metavar="NAME=URL", help="add a legacy SSE server; repeatable")
    p.add_argument("--env", action="append", default=[], metavar="NAME:KEY=VALUE", help="an environment variable of server NAME")
    p.add_argument("--header", action="append", default=[], metavar="NAME:KEY=VALUE", help="an HTTP header of server NAME")
    p.add_argument("--gemini-key", metavar="KEY", help="Gemini API key for natural-language search")
    p.add_argument("--merge", action="store_true", help="add to an existing config (init never overwrites one)")
    p.add_argument("-y", "--yes", action="store_true", help="ask nothing: use the flags, merge into an existing config")
    p.add_argument("--no-check", action="store_true", help="do not start the servers to check them")
    p.add_argument("--shared", action="store_true", help="show the client entry for the shared mcpzip (serve --shared)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long each server may take to start and list its tools (default 30)")
    p = sub.add_parser("pack", help="write mcpzip as one file (a zipapp) to copy anywhere",
                       description="write mcpzip as one file (a zipapp): python3 mcpzip.pyz serve")
    p.add_argument("--out", metavar="FILE", default="mcpzip.pyz", help="where to write it (default ./mcpzip.pyz)")
    p.add_argument("--with-remote", action="store_true",
                   help="also bundle requests and sseclient-py from this Python, for http/sse servers and OAuth")
    p = command("doctor", "check the config, file modes and every server; exit 1 if anything is broken")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long each server may take to start and list its tools (default 30)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    log.configure()
    if argv[:1] == ["serve"] and len(argv) <= 3:
        # The hot path: clients start ``serve`` on every session, and argparse
        # costs more than the rest of start-up together.
        config_path = _serve_args(argv[1:])
        if config_path is not False:
            return _run(lambda: serve(config_path))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
    return _run(lambda: handler(args))


def _serve_args(rest: list[str]) -> str | None | bool:
    """``--config PATH`` / ``--config=PATH`` / nothing; False for anything else."""
    if not rest:
        return None
    if rest[0] == "--config" and len(rest) == 2:
        return rest[1]
    if len(rest) == 1 and rest[0].startswith("--config="):
        return rest[0].partition("=")[2]
    return False


def _run(action: Callable[[], int]) -> int:
    try:
        return action()
    except (ConfigError, CommandError) as e:
        print(log.redact(f"mcpzip: error: {e}"), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


# -- serve ------------------------------------------------------------------


class _Stop(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT to leave the read loop."""


def serve(config_path: str | None) -> int:
    try:
        # The C module behind ``signal``: the same functions and constants,
        # without the enum classes whose creation costs start-up time.
        import _signal as signal
    except ImportError:
        import signal  # type: ignore[no-redef]

    from .downstream.wiring import build_server

    config = config_module.load(config_path)
    # A SIGKILL during a cache write leaves its temporary file behind.
    files.remove_stale_temporaries(os.path.dirname(config.cache_path))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # stdout carries only protocol messages: anything printed by accident
    # goes to stderr instead of corrupting the stream.
    sys.stdout = sys.stderr
    server = build_server(config, stdin, stdout)

    def stop(signum: int, frame: object) -> None:
        signal.signal(signum, signal.SIG_IGN)  # one stop is enough
        raise _Stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving %d servers over stdio (config %s)", len(config.servers), config.path)
    try:
        server.serve_forever()
    except _Stop:
        log.info("stopping on a signal")
        server.drain(0)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        server.metatools.close()
    return EXIT_OK


def serve_http(config_path: str | None, address: str) -> int:
    """The shared mcpzip: every client over Streamable HTTP on a loopback port (docs/sharing.md)."""
    import signal

    from .downstream.sharing import Place
    from .downstream.wiring import build_front

    host, port = _loopback_address(address)
    config = config_module.load(config_path)
    files.remove_stale_temporaries(os.path.dirname(config.cache_path))
    place = Place(config.path)
    try:
        front, tools = build_front(config, host, port, place.secret(), place)
    except OSError as e:
        raise CommandError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _n, _f: front.stop())
    try:
        front.serve_forever()
    finally:
        tools.close()
    return EXIT_OK


def _loopback_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host or "127.0.0.1"
    if host.strip("[]") not in ("127.0.0.1", "localhost", "::1"):
        # Other machines would reach every server of the user's with the user's
        # credentials; a bearer secret over plain HTTP is not enough for that.
        raise CommandError(f"serve --http listens on loopback only (127.0.0.1, localhost or [::1]), not {host}")
    try:
        number = int(port)
    except ValueError:
        raise CommandError(f"serve --http needs [HOST:]PORT, e.g. 127.0.0.1:8765, not {address!r}") from None
    if not 0 <= number <= 65535:
        raise CommandError(f"serve --http: port {number} is out of range")
    return host, number


def serve_shared(config_path: str | None) -> int:
    """What a client's config runs to use the shared mcpzip: stdio in, HTTP out."""
    from .downstream.sharing import Place, SharingError, StdioRelay

    config = config_module.load(config_path)  # a broken config is reported here, where the user looks
    stdout = sys.stdout.buffer
    sys.stdout = sys.stderr
    try:
        return StdioRelay(Place(config.path), sys.stdin.buffer, stdout, config.max_message_bytes).run()
    except SharingError as e:
        raise CommandError(str(e)) from e


# -- terminal commands ------------------------------------------------------


def _open(args: argparse.Namespace, refresh: bool, result_budget: int | None = 0) -> MetaTools:
    from .downstream.wiring import open_tools

    tools = open_tools(config_module.load(args.config), result_budget=result_budget)
    if refresh or not tools.catalog.tools():
        for t in tools.refresh():
            t.join()
    return tools


def cmd_list(args: argparse.Namespace) -> int:
    from .knowledge.catalog import FAILED
    from .downstream.metatools import first_sentence

    tools = _open(args, refresh=not args.cached)
    broken = 0
    try:
        catalog = tools.catalog
        for name in catalog.servers:
            server_tools = catalog.server_tools(name)
            error = catalog.error(name)
            state = f"{len(server_tools)} tool{'s' if len(server_tools) != 1 else ''}"
            if error:
                broken += 1
                error = log.shown(error)  # a server's stderr may echo its secrets
                state += f"; could not list: {error}" if catalog.state(name) != FAILED else f" — error: {error}"
            print(f"{name} ({tools.config.servers[name].type}, {state})")
            for t in server_tools:
                # Names and descriptions are the upstream's words: no terminal codes from them.
                description = first_sentence(t.definition.get("description") or "", 100)
                print(log.shown(f"  {t.prefixed}: {description}"))
        for name in tools.config.disabled:
            print(f"{name} (disabled)")
    finally:
        tools.close()
    return EXIT_ERROR if broken else EXIT_OK


def cmd_refresh(args: argparse.Namespace) -> int:
    from .downstream.listings import LIST_AT_ONCE
    from .downstream.wiring import open_tools

    config = config_module.load(args.config)
    if args.server is not None and args.server not in config.servers:
        known = ", ".join(sorted(config.servers)) or "none"
        raise CommandError(f"no server named {args.server!r} in {config.path} (servers: {known})")
    servers = [args.server] if args.server else list(config.servers)
    tools = open_tools(config)
    failed = 0
    try:
        for t in tools.catalog.refresh(tools.pool.list_tools, servers, at_once=LIST_AT_ONCE):
            t.join()
        for name in servers:
            error = tools.catalog.error(name)
            if error:
                failed += 1
                print(log.shown(f"{name}: could not list: {error}"))
            else:
                n = len(tools.catalog.server_tools(name))
                print(f"{name}: {n} tool{'s' if n != 1 else ''}")
    finally:
        tools.close()
    return EXIT_ERROR if failed else EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    tools = _open(args, refresh=args.refresh)
    try:
        arguments: dict = {"query": " ".join(args.query)}
        if args.limit is not None:
            arguments["limit"] = args.limit
        return _print_result(tools.search_tools(arguments))
    finally:
        tools.close()


def cmd_stats(args: argparse.Namespace) -> int:
    """Per server, the tools' count, bytes and estimated tokens; against them, what mcpzip lists. Starts nothing."""
    import json

    from .downstream.metatools import definition_bytes
    from .downstream.wiring import open_tools
    from .knowledge.catalog import PENDING

    tools = open_tools(config_module.load(args.config))
    try:
        catalog = tools.catalog
        servers = {}
        for name in catalog.servers:
            server_tools = catalog.server_tools(name)
            size = sum(map(definition_bytes, server_tools))
            servers[name] = {"tools": len(server_tools), "bytes": size, "tokens": _tokens(size)}
        listing = tools.listing()
        listed = sum(len(json.dumps(t, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")) for t in listing)
        mode = tools.mode()
    finally:
        tools.close()
    total = sum(s["bytes"] for s in servers.values())
    figures = {
        "servers": servers,
        "total": {"tools": sum(s["tools"] for s in servers.values()), "bytes": total, "tokens": _tokens(total)},
        "listed": {"mode": mode, "tools": len(listing), "bytes": listed, "tokens": _tokens(listed)},
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return EXIT_OK
    width = max([len(n) for n in servers] + [len("all servers")])
    print(f"{'server':<{width}} {'tools':>6} {'bytes':>10} {'~tokens':>8}")
    for name, s in [*servers.items(), ("all servers", figures["total"])]:
        print(f"{name:<{width}} {s['tools']:>6} {s['bytes']:>10,} {s['tokens']:>8,}")
    share = f", {listed / total:.0%} of listing every tool" if total else ""
    print(f"mcpzip lists {len(listing)} tool{'s' if len(listing) != 1 else ''} ({mode} mode, tools_mode "
          f"{tools.config.tools_mode}): {listed:,} bytes, ~{_tokens(listed):,} tokens{share}")
    if any(catalog.state(n) == PENDING for n in catalog.servers):
        print("Servers never listed have no cached tools: run mcpzip list to list them.")
    return EXIT_OK


def _tokens(size: int) -> int:
    """Tokens a model's tokenizer makes of *size* bytes of JSON, estimated at about four bytes a token."""
    return (size + 3) // 4


def cmd_describe(args: argparse.Namespace) -> int:
    tools = _open(args, refresh=args.refresh)
    try:
        return _print_result(tools.describe_tool({"name": args.name}))
    finally:
        tools.close()


def cmd_call(args: argparse.Namespace) -> int:
    import json

    try:
        arguments = json.loads(args.arguments)
    except ValueError as e:
        raise CommandError(f"the arguments are not valid JSON ({e}); pass an object like '{{\"q\": 1}}'") from None
    if not isinstance(arguments, dict):
        raise CommandError("the arguments must be a JSON object like '{\"q\": 1}'")
    if args.max_bytes < 0:
        raise CommandError("--max-bytes must be a positive number of bytes (or 0: print everything)")
    tools = _open(args, refresh=False, result_budget=args.max_bytes)
    try:
        call: dict = {"name": args.name, "arguments": arguments}
        if args.timeout is not None:
            call["timeout"] = args.timeout
        result = tools.execute_tool(call)
    finally:
        tools.close()
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return EXIT_ERROR if result.get("isError") else EXIT_OK
    return _print_result(result)


def _print_result(result: dict) -> int:
    """Print a CallToolResult for a person; exit 1 when it is an error.

    mcpzip's own errors (the meta-tools' ``Error: …``) are printed as every
    command's errors are, ``mcpzip: error: …``; any other error text is the
    tool's own and is printed as the tool wrote it.
    """
    import json

    stream = sys.stderr if result.get("isError") else sys.stdout
    for item in result.get("content") or []:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text":
            text = item.get("text", "")
            if result.get("isError") and text.startswith("Error: "):
                text = "mcpzip: error: " + text[len("Error: "):]
            print(text, file=stream)
        elif kind in ("image", "audio"):
            data = item.get("data", "")
            size = len(data) * 3 // 4 - data[-2:].count("=")  # decoded size, without decoding
            print(f"[{kind} {item.get('mimeType', '')}, {size} bytes]", file=stream)
        elif kind == "resource_link":
            print(f"[resource link {item.get('uri', '')}]", file=stream)
        elif kind == "resource":
            resource = item.get("resource") or {}
            print(resource.get("text") or f"[resource {resource.get('uri', '')}]", file=stream)
        else:
            print(json.dumps(item, ensure_ascii=False), file=stream)
    if "structuredContent" in result and not result.get("content"):
        print(json.dumps(result["structuredContent"], indent=2, ensure_ascii=False), file=stream)
    return EXIT_ERROR if result.get("isError") else EXIT_OK


def cmd_login(args: argparse.Namespace) -> int:
    from .upstream.auth import login

    return login.login(config_module.load(args.config), [args.server] if args.server else [])


def cmd_logout(args: argparse.Namespace) -> int:
    from .upstream.auth import login

    return login.logout(config_module.load(args.config), args.server)


def cmd_migrate(args: argparse.Namespace) -> int:
    from .commands.migrate import run

    return run(args)


def cmd_init(args: argparse.Namespace) -> int:
    from .commands.wizard import run

    return run(args)


def cmd_doctor(args: argparse.Namespace) -> int:
    from .commands.doctor import run

    return run(args)


def cmd_pack(args: argparse.Namespace) -> int:
    from .commands.pack import run

    return run(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": lambda args: serve_http(args.config, args.http) if args.http else (
        serve_shared(args.config) if args.shared else serve(args.config)),
    "list": cmd_list,
    "refresh": cmd_refresh,
    "search": cmd_search,
    "stats": cmd_stats,
    "describe": cmd_describe,
    "call": cmd_call,
    "login": cmd_login,
    "logout": cmd_logout,
    "migrate": cmd_migrate,
    "init": cmd_init,
    "doctor": cmd_doctor,
    "pack": cmd_pack,
}
