"""``mcpzip init``: write a config by answering questions, or from flags in a script.

Either way each server is started once and its tools listed (within the
timeout) as it is added, so the user learns at once whether it works.  An
existing config is never overwritten: init adds to it (after asking, or
with ``--merge``/``--yes``) or stops.  The file is written atomically with
mode 600.
"""

from __future__ import annotations

import os
import sys

from ..base import config as config_module
from . import CommandError
from ..base import log
from .configfile import DocumentError, entry_problem, read_document, servers_of, valid_name, write_config

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import IO, Callable

    from .probe import Probe


class Abort(Exception):
    """The user (or the end of the input) stopped the wizard; nothing is written."""


class UsageError(Exception):
    pass


def run(args: argparse.Namespace) -> int:
    if not args.timeout > 0:
        print("mcpzip init: error: --timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    if not os.environ.get("MCPZIP_LOG"):
        log.configure("error")  # the check's findings are reported, not logged
    path = config_module.resolve_path(args.config)
    try:
        document, _ = read_document(path, "mcpzip config")
        if document is not None:
            servers_of(document, path)
        if args.server or args.http or args.sse or args.gemini_key or args.yes:
            return from_flags(args, path, document)
        return Wizard(args, path, document, sys.stdin, sys.stdout).run()
    except UsageError as e:
        print(f"mcpzip init: error: {e}", file=sys.stderr)
        return 2
    except DocumentError as e:
        raise CommandError(str(e)) from None
    except Abort as e:
        print(f"\n{e}; nothing was written.", file=sys.stderr)
        return 1
    except OSError as e:
        raise CommandError(f"cannot write {e.filename or path}: {e.strerror or e}") from None


# -- shared by both ways ------------------------------------------------------------


def check(path: str, servers: dict, timeout: float) -> list[Probe]:
    """Start *servers* (raw entries) once, concurrently, and list their tools."""
    from .probe import probe_all

    config = config_module.parse({"mcpServers": servers}, path, os.environ)
    return probe_all(config, list(servers), timeout)


def verdict(p: Probe) -> str:
    if not p.ok:
        return log.shown(f"failed: {p.error}")  # a server's stderr may echo its secrets (or terminal codes)
    era = f"{p.era} {p.protocol_version}, " if p.era else ""
    return f"found {p.tools} tool{'s' if p.tools != 1 else ''} ({era}started in {p.start_seconds or 0:.2f} s)"


def save(path: str, document: dict | None, servers: dict, key: str | None, out: IO[str], shared: bool = False) -> None:
    document = dict(document or {})
    table = dict(document.get("mcpServers") or {})
    table.update(servers)
    document["mcpServers"] = table
    if key:
        document["gemini_api_key"] = key
    write_config(path, document)
    print(f"\nWrote {path} ({len(table)} server{'s' if len(table) != 1 else ''}, mode 600).", file=out)
    remote = [n for n, e in table.items() if isinstance(e, dict) and e.get("url") and not e.get("command")]
    next_steps(path, out, remote, shared)


def next_steps(path: str, out: IO[str], remote: list[str] | None = None, shared: bool = False) -> None:
    """What to do now; *remote* names the http/sse servers in the config (their packages are checked)."""
    import json

    from .migrate import client_entry, entry_python, remote_packages_note, user_command

    flag = "" if path == config_module.default_path() else f" --config {path}"
    entry = client_entry(path, shared)
    run = user_command()
    note = remote_packages_note(entry_python(entry), remote or [])
    if note:
        print(f"Note: {note}", file=out)
    print("Next:", file=out)
    print(f"  - check every server:            {run} doctor{flag}", file=out)
    print(f"  - move your client's servers:    {run} migrate{flag}  (--from claude-desktop, cursor, vscode, windsurf)", file=out)
    print(f"  - or add mcpzip to your client's MCP servers by hand:\n      "
          f"{json.dumps({'mcpzip': entry}, ensure_ascii=False)}", file=out)


def split_command(line: str) -> list[str]:
    """A command line split like a shell does (on Windows, backslashes stay as typed)."""
    import shlex

    if os.name != "nt":
        return shlex.split(line)
    return [w[1:-1] if len(w) > 1 and w[0] == w[-1] == '"' else w for w in shlex.split(line, posix=False)]


def _split_assignment(text: str, flag: str, shape: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise UsageError(f"{flag} {text!r} is not {shape}")
    return name.strip(), value.strip()


# -- flags -------------------------------------------------------------------------------


def from_flags(args: argparse.Namespace, path: str, document: dict | None) -> int:
    existing = servers_of(document, path) if document is not None else {}
    if document is not None and not (args.merge or args.yes):
        raise CommandError(
            f"{path} already exists with {len(existing)} server(s); pass --merge to add to it "
            "(init never overwrites a config), or choose another --config"
        )
    servers: dict = {}

    def add(name: str, entry: dict, flag: str) -> None:
        if not valid_name(name):
            raise UsageError(f"{flag}: server name {name!r} must be letters, digits, - and _ (no __)")
        if name in servers or name in existing:
            raise UsageError(f'{flag}: a server "{name}" is already ' + ("given" if name in servers else f"in {path}"))
        servers[name] = entry

    for text in args.server:
        name, line = _split_assignment(text, "--server", "NAME=COMMAND")
        try:
            words = split_command(line)
        except ValueError as e:
            raise UsageError(f"--server {name}: cannot split the command line ({e})") from None
        add(name, {"command": words[0], **({"args": words[1:]} if words[1:] else {})}, "--server")
    for kind in ("http", "sse"):
        for text in getattr(args, kind):
            name, url = _split_assignment(text, f"--{kind}", "NAME=URL")
            add(name, {"type": kind, "url": url}, f"--{kind}")
    for flag, given, field in (("--env", args.env, "env"), ("--header", args.header, "headers")):
        for text in given:
            server, sep, assignment = text.partition(":")
            if not sep or server not in servers:
                raise UsageError(f"{flag} {text!r}: start it with the name of a server given here, as in NAME:KEY=VALUE")
            key, value = _split_assignment(assignment, flag, "NAME:KEY=VALUE")
            servers[server].setdefault(field, {})[key] = value
    for name, entry in servers.items():
        problem = entry_problem(name, entry, path)
        if problem:
            raise UsageError(problem)
    if not servers and not args.gemini_key:
        raise UsageError("nothing to add: give --server NAME=COMMAND, --http NAME=URL, --sse NAME=URL or --gemini-key")

    failed = 0
    if servers and not args.no_check:
        print(f"Checking {len(servers)} server(s)…")
        for p in check(path, servers, args.timeout):
            failed += not p.ok
            print(f"  {p.name}: {verdict(p)}")
    save(path, document, servers, args.gemini_key, sys.stdout, args.shared)
    if failed:
        from .migrate import user_command

        print(f"\n{failed} server(s) failed the check; they were written anyway. Fix them, then run {user_command()} doctor.",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


# -- questions ---------------------------------------------------------------------------


class Wizard:
    """The questions, one at a time, with defaults in brackets."""

    def __init__(self, args: argparse.Namespace, path: str, document: dict | None, stdin: IO[str], out: IO[str]) -> None:
        self.args = args
        self.path = path
        self.document = document
        self.stdin = stdin
        self.out = out

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def ask(self, question: str, default: str | None = None, hidden: bool = False) -> str:
        """One answer; Enter gives *default*; the end of input gives it too, or stops.

        A *hidden* answer is typed without echo on a terminal (keys should not
        stay on screen).  Echo goes off before the question appears, so
        nothing typed after seeing it is echoed or lost.
        """
        restore = self._echo_off() if hidden else None
        try:
            self.out.write(f"{question} [{default}]: " if default else f"{question}: ")
            self.out.flush()
            line = self.stdin.readline()
        finally:
            if restore is not None:
                restore()
                self.say()  # the Enter that ended the line was not echoed either
        if not line:
            self.say()
            if default is None:
                raise Abort("the input ended before the answer")
            return default
        return line.strip() or (default or "")

    def confirm(self, question: str, default: bool) -> bool:
        while True:
            answer = self.ask(f"{question} [{'Y/n' if default else 'y/N'}]", "").lower()
            if not answer:
                return default
            if answer in ("y", "yes", "n", "no"):
                return answer.startswith("y")
            self.say("  Please answer y or n.")

    def _echo_off(self) -> Callable[[], None] | None:
        """Turn terminal echo off; returns how to turn it back on (None: not a terminal)."""
        try:
            import termios

            fd = self.stdin.fileno()
            if not os.isatty(fd):
                return None
            old = termios.tcgetattr(fd)
            quiet = termios.tcgetattr(fd)
            quiet[3] &= ~termios.ECHO
            # TCSADRAIN, not TCSAFLUSH: what was typed ahead is kept.
            termios.tcsetattr(fd, termios.TCSADRAIN, quiet)
        except (ImportError, OSError, ValueError, AttributeError):
            return None
        return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, old)

    # -- the conversation --------------------------------------------------------------

    def run(self) -> int:
        existing = servers_of(self.document, self.path) if self.document is not None else {}
        self.say(f"mcpzip init: this writes {self.path}")
        if self.document is not None:
            names = ", ".join(existing) or "none"
            self.say(f"That file already exists with {len(existing)} server(s): {names}.")
            if not self.confirm("Add to it? (no stops here and changes nothing)", True):
                self.say("Nothing was changed.")
                return 1
        current_key = self.document.get("gemini_api_key") if self.document else None
        self.say("")
        self.say("A Gemini API key lets search understand plain-language queries; keyword search works without one.")
        key = self.ask(
            "Gemini API key (optional; Enter to " + ("keep the current one)" if current_key else "skip)"), "", hidden=True
        )
        servers: dict = {}
        self.say("")
        self.say("Now the MCP servers, one at a time.")
        while True:
            name = self.ask("Server name (Enter when done)", "")
            if not name:
                break
            if not valid_name(name):
                self.say("  Use letters, digits, - and _ only (and no __): the name prefixes every tool name.")
                continue
            if name in existing or name in servers:
                self.say(f"  {name} is already in the config; choose another name.")
                continue
            entry = self.ask_server()
            problem = entry_problem(name, entry, self.path)
            if problem:
                self.say(f"  {problem}; this server was not added.")
                continue
            if not self.args.no_check:
                self.out.write(f"  Checking {name}… ")
                self.out.flush()
                result = check(self.path, {name: entry}, self.args.timeout)[0]
                self.say(verdict(result))
                if not result.ok and not self.confirm(f"  Keep {name} anyway?", False):
                    continue
            servers[name] = entry
            self.say(f"  Added {name}.")
        if not servers and not key:
            self.say("No servers added; nothing was written.")
            return 1 if self.document is None else 0
        total = len(existing) + len(servers)
        if not self.confirm(f"Write {self.path} with {total} server{'s' if total != 1 else ''}?", True):
            self.say("Nothing was written.")
            return 1
        save(self.path, self.document, servers, key or None, self.out, self.args.shared)
        return 0

    def ask_server(self) -> dict:
        while True:
            kind = self.ask("  Type: stdio (a local command), http or sse (remote)", "stdio").lower()
            if kind in config_module.TYPE_ALIASES:
                kind = config_module.TYPE_ALIASES[kind]
                break
            self.say("  Please answer stdio, http or sse.")
        if kind == "stdio":
            while True:
                line = self.ask("  Command line (e.g. npx -y @modelcontextprotocol/server-everything)")
                try:
                    words = split_command(line)
                except ValueError as e:
                    self.say(f"  Cannot split that command line ({e}).")
                    continue
                if words:
                    break
            entry: dict = {"command": words[0]}
            if words[1:]:
                entry["args"] = words[1:]
            env = self.ask_pairs("  Environment variable KEY=VALUE (Enter when done)")
            if env:
                entry["env"] = env
            return entry
        while True:
            url = self.ask("  URL")
            if url.lower().startswith(("https://", "http://")):
                break
            self.say("  The URL starts with https:// (or http:// for a server on this machine).")
        entry = {"type": kind, "url": url}
        headers = self.ask_pairs("  Header Name=Value, e.g. Authorization=Bearer … (Enter when done; none for OAuth)")
        if headers:
            entry["headers"] = headers
        return entry

    def ask_pairs(self, question: str) -> dict:
        pairs: dict = {}
        while True:
            answer = self.ask(question, "")
            if not answer:
                return pairs
            name, sep, value = answer.partition("=")
            if not sep or not name.strip():
                self.say("  Write it as KEY=VALUE.")
                continue
            pairs[name.strip()] = value.strip()
