"""``mcpzip migrate``: move an AI client's MCP servers behind mcpzip.

The servers of the client's file are added to mcpzip's config (merged with
what is already there, every field kept), and the client's server table is
replaced by one ``mcpzip`` entry that starts this mcpzip.  Everything else
in the client's file is left as it was.

Safety rules: nothing is written with ``--dry-run``; the client's file is
backed up (timestamped, beside it) before anything is written; mcpzip's
config is written before the client's file is changed, so no step can lose
a server; a server that cannot be moved (a name clash, an entry mcpzip
cannot load) stays in the client's file; an entry that starts mcpzip itself
is never migrated; and a second run finds nothing to do.

Claude Code's project-scoped servers (``projects.<path>.mcpServers`` in
``~/.claude.json``, with ``--project``/``--all-projects``) become servers of
the same mcpzip config, and each migrated project's table gets the same
single ``mcpzip`` entry (Claude Code lets a project's entry shadow the
user-level one of the same name, so the client still starts one mcpzip).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field

import mcpzip

from ..base import config as config_module
from ..base import log
from . import CommandError
from .configfile import (
    DocumentError,
    backup,
    backup_path,
    dump,
    entry_problem,
    is_strict_json,
    mcpzip_name,
    read_document,
    servers_of,
    write_config,
)
from ..base.files import write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

ENTRY_NAME = "mcpzip"

# --from NAME: what the client is called, and where its file is.
CLIENTS = {
    "claude-code": "Claude Code",
    "claude-desktop": "Claude Desktop",
    "cursor": "Cursor",
    "vscode": "VS Code",
    "windsurf": "Windsurf",
}

# What happens to one server entry of the client.
ADD = "add"  # copied into mcpzip's config, removed from the client
SAME = "same"  # already in mcpzip's config as it is: removed from the client
CLASH = "clash"  # another server has that name in mcpzip's config: stays in the client
INVALID = "invalid"  # mcpzip could not load it: stays in the client
SELF = "self"  # an entry that starts mcpzip: replaced, never migrated

# Commands that run a package by name (``uvx mcpzip serve``).
_RUNNERS = {"uvx", "uv", "pipx", "npx", "bunx", "pnpx"}
_RUNNER_VERBS = {"run", "tool", "x", "exec", "dlx"}
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_MCPZIP_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(:-.*)?$", re.S)
# Server fields whose strings clients expand variables in.
_STRING_FIELDS = ("command", "url", "cwd", "envFile")
_LIST_FIELDS = ("args",)
_MAP_FIELDS = ("env", "headers")


class MigrateError(Exception):
    """Migration cannot go ahead; the message says why in one sentence."""


class UsageError(MigrateError):
    """The flags contradict each other."""


@dataclass(eq=False)
class Scope:
    """One server table in the client's file (the top level, or one project's)."""

    label: str
    holder: dict
    key: str

    @property
    def table(self) -> dict:
        table = self.holder.get(self.key)
        return table if isinstance(table, dict) else {}


@dataclass
class Move:
    scope: Scope
    name: str  # in the client
    target: str  # in mcpzip
    raw: Any  # the client's entry, untouched
    entry: Any  # what mcpzip's config gets
    action: str
    reason: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    client: str
    source: str
    document: dict
    raw: bytes
    key: str
    scopes: list[Scope]
    config_path: str
    config_document: dict
    config_raw: bytes
    config_exists: bool
    entry: dict
    moves: list[Move] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Servers from a project's file: whoever controls the repository wrote them.
    untrusted: bool = False

    def of(self, *actions: str) -> list[Move]:
        return [m for m in self.moves if m.action in actions]

    @property
    def changed_scopes(self) -> list[Scope]:
        moved = {id(m.scope) for m in self.of(ADD, SAME)}
        return [s for s in self.scopes if id(s) in moved]

    @property
    def writes_config(self) -> bool:
        return bool(self.of(ADD))


# -- the mcpzip entry a client starts -------------------------------------------


def launcher() -> list[str]:
    """A command line that starts this mcpzip on this machine, absolute paths first.

    From a checkout or a vendored copy: this interpreter and ``mcpzip.py``.
    Installed: the ``mcpzip`` script beside this interpreter, else
    ``python -m mcpzip`` (never a ``mcpzip`` found elsewhere on PATH, which
    could be another installation or the reference implementation).
    """
    python = os.path.abspath(sys.executable) if sys.executable else "python3"
    package = os.path.dirname(os.path.abspath(mcpzip.__file__))
    script = os.path.join(os.path.dirname(package), "mcpzip.py")
    if os.path.isfile(script):
        return [python, script]
    bin_dir = os.path.dirname(python)
    for name in ("mcpzip.exe", "mcpzip") if os.name == "nt" else ("mcpzip",):
        candidate = os.path.join(bin_dir, name)
        if os.path.isfile(candidate):
            return [candidate]
    return [python, "-m", "mcpzip"]


def user_command() -> str:
    """This mcpzip's command line as the user can type it, for the hints printed at the end.

    From a checkout ``python3 mcpzip.py`` (the script as it was named, and
    ``python3`` when that is this interpreter); ``python3 -m mcpzip``; or the
    installed ``mcpzip`` script (by its path when another one comes first on PATH).
    """
    import shutil

    argv0 = sys.argv[0] if sys.argv else ""
    found = shutil.which("python3")
    same = found is not None and os.path.normcase(os.path.abspath(found)) == os.path.normcase(sys.executable or "")
    python = "python3" if same else _quote(sys.executable or "python3")
    name = os.path.basename(argv0)
    if name == "mcpzip.py":
        return f"{python} {_quote(argv0)}"
    if name == "__main__.py" or not argv0:
        return f"{python} -m mcpzip"
    script = shutil.which("mcpzip")
    if script is not None and os.path.abspath(script) == os.path.abspath(argv0):
        return "mcpzip"
    return _quote(os.path.abspath(argv0))


def entry_python(entry: dict) -> str:
    """The interpreter a client entry of :func:`client_entry` runs mcpzip with."""
    command, args = entry.get("command", ""), entry.get("args") or []
    if args and (args[0] == "-m" or str(args[0]).endswith("mcpzip.py")):
        return command
    return sys.executable or "python3"  # the installed script beside this interpreter


def missing_remote_packages(python: str) -> list[str]:
    """The packages http/sse servers need that *python* cannot import."""
    from ..upstream.transports.remote import PACKAGES, missing_packages

    if os.path.normcase(os.path.abspath(python)) == os.path.normcase(os.path.abspath(sys.executable or "")):
        return missing_packages()
    import subprocess

    code = ("import importlib.util as u, sys; "
            f"print(' '.join(p for m, p in {PACKAGES!r} if u.find_spec(m) is None))")
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return [p for _m, p in PACKAGES]
    return done.stdout.split() if done.returncode == 0 else [p for _m, p in PACKAGES]


def remote_packages_note(python: str, remote: list[str]) -> str | None:
    """What to do when *python* cannot run the *remote* servers (None when it can)."""
    if not remote:
        return None
    missing = missing_remote_packages(python)
    if not missing:
        return None
    from ..upstream.transports.remote import missing_message

    return f"{', '.join(remote)} will not start: for the Python your client starts mcpzip with, " + missing_message(
        missing, _quote(python))


def client_entry(config_path: str, shared: bool = False) -> dict:
    """The server entry that makes a client start mcpzip with *config_path* (*shared*: the shared one)."""
    command, *args = launcher()
    args.append("serve")
    if shared:
        args.append("--shared")
    if os.path.abspath(config_path) != config_module.default_path():
        args += ["--config", os.path.abspath(config_path)]
    return {"type": "stdio", "command": command, "args": args}


def launches_mcpzip(command: object, args: object) -> bool:
    """Whether ``command args`` starts mcpzip (this one, an installed one, the reference)."""
    if not isinstance(command, str):
        return False
    words = [a for a in args if isinstance(a, str)] if isinstance(args, list) else []
    if _program(command) == "mcpzip":
        return True
    if any(_program(a) == "mcpzip" and a.lower().endswith(".py") for a in words):
        return True
    if any(a == "-m" and b == "mcpzip" for a, b in zip(words, words[1:])):
        return True
    if _program(command) in _RUNNERS:
        # ``uvx mcpzip``, ``pipx run mcpzip``, ``npx -y mcpzip@1``: the first
        # word that is neither an option nor the runner's verb is the package.
        package = next((a for a in words if not a.startswith("-") and a not in _RUNNER_VERBS), "")
        return re.split(r"@|==|\[", package.lower(), maxsplit=1)[0] == "mcpzip"
    return False


def _program(word: str) -> str:
    """The program a path names, without directory and Windows or Python suffix."""
    base = word.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()
    for suffix in (".exe", ".cmd", ".bat", ".py"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def runs_mcpzip(name: object, entry: object) -> bool:
    """Whether client entry *name* is mcpzip, however it is spelled."""
    if isinstance(name, str) and name.lower() == ENTRY_NAME:
        return True
    return isinstance(entry, dict) and launches_mcpzip(entry.get("command"), entry.get("args"))


def config_named_by(entry: object) -> str | None:
    """The ``--config`` an mcpzip entry passes, if any."""
    args = entry.get("args") if isinstance(entry, dict) else None
    if not isinstance(args, list):
        return None
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args) and isinstance(args[i + 1], str):
            return args[i + 1]
        if isinstance(arg, str) and arg.startswith("--config="):
            return arg.partition("=")[2]
    return None


# -- finding the client's file ---------------------------------------------------


def claude_desktop_path() -> str:
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    elif os.name == "nt":
        base = os.environ.get("APPDATA") or os.path.join(home, "AppData", "Roaming")
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return os.path.join(base, "Claude", "claude_desktop_config.json")


def locate(args: argparse.Namespace) -> tuple[str, str, str | None]:
    """(client label, file, server-table key or None to detect) for the flags given."""
    source = args.source or "claude-code"
    if args.claude_config and source != "claude-code":
        raise UsageError("--claude-config names a Claude Code file; it cannot be combined with --from")
    if (args.project or args.all_projects) and source in ("claude-desktop", "windsurf"):
        raise UsageError(f"--project and --all-projects do not apply to {CLIENTS[source]}")
    if args.all_projects and source in ("cursor", "vscode"):
        raise UsageError(f"--all-projects does not apply to {CLIENTS[source]}; name one with --project PATH")
    home = os.path.expanduser("~")
    if source == "claude-code":
        if args.claude_config:
            return CLIENTS[source], _absolute(args.claude_config), "mcpServers"
        candidates = [os.path.join(home, ".claude.json"), os.path.join(home, ".claude", "config.json")]
        for path in candidates:
            if os.path.isfile(path):
                return CLIENTS[source], path, "mcpServers"
        raise MigrateError("no Claude Code config found (checked ~/.claude.json and ~/.claude/config.json)")
    if source == "claude-desktop":
        return CLIENTS[source], claude_desktop_path(), "mcpServers"
    if source == "windsurf":
        return CLIENTS[source], os.path.join(home, ".codeium", "windsurf", "mcp_config.json"), "mcpServers"
    if source in ("cursor", "vscode"):
        folder = _absolute(args.project) if args.project else None
        if source == "cursor":
            path = os.path.join(folder or home, ".cursor", "mcp.json")
            return CLIENTS[source], path, "mcpServers"
        return CLIENTS[source], os.path.join(folder or os.getcwd(), ".vscode", "mcp.json"), "servers"
    path = _absolute(source)
    if not os.path.isfile(path):
        raise MigrateError(
            f"no such file {path} (--from takes claude-code, claude-desktop, cursor, vscode, windsurf or a path)"
        )
    return "your client", path, None


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def select_scopes(document: dict, path: str, key: str, args: argparse.Namespace) -> list[Scope]:
    scopes = [Scope("top level", document, key)]
    if not (args.project or args.all_projects) or args.source in ("cursor", "vscode"):
        return scopes  # there, --project named the folder the file is in
    projects = document.get("projects")
    if not isinstance(projects, dict):
        raise MigrateError(f"{path} has no projects section, so there are no project servers to migrate")
    if args.all_projects:
        for name, project in projects.items():
            if isinstance(project, dict) and isinstance(project.get(key), dict) and project[key]:
                scopes.append(Scope(f"project {name}", project, key))
        return scopes
    wanted = _same_path_key(args.project)
    for name, project in projects.items():
        if isinstance(project, dict) and _same_path_key(name) == wanted:
            scopes.append(Scope(f"project {name}", project, key))
            return scopes
    known = ", ".join(sorted(projects)[:5]) + (", …" if len(projects) > 5 else "")
    raise MigrateError(f"{path} has no project {_absolute(args.project)} (it has: {known})")


def skipped_projects(document: dict, key: str, args: argparse.Namespace) -> dict[str, list[str]]:
    """Claude Code projects with servers of their own that these flags leave out: path -> server names."""
    if (args.source or "claude-code") != "claude-code" or args.project or args.all_projects:
        return {}
    projects = document.get("projects")
    skipped = {}
    for path, project in (projects.items() if isinstance(projects, dict) else ()):
        table = project.get(key) if isinstance(project, dict) else None
        names = [n for n, e in table.items() if not runs_mcpzip(n, e)] if isinstance(table, dict) else []
        if names:
            skipped[path] = names
    return skipped


def _skipped_text(skipped: dict[str, list[str]]) -> str:
    count = sum(len(names) for names in skipped.values())
    where = "; ".join(f"{path}: {', '.join(names)}" for path, names in skipped.items())
    return (
        f"{count} project-scoped server(s) are not migrated ({where}); add --project PATH for one project "
        "or --all-projects for all of them"
    )


def _same_path_key(path: str) -> str:
    return os.path.normcase(os.path.normpath(_absolute(path))).replace("\\", "/")


# -- turning a client's entry into mcpzip's --------------------------------------


def convert(raw: Any, workspace: str | None) -> tuple[Any, list[str], str | None]:
    """(mcpzip entry, notes, problem) for one client entry; every field is kept."""
    if not isinstance(raw, dict):
        return raw, [], "the entry is not a JSON object"
    entry = json.loads(json.dumps(raw))
    notes: list[str] = []
    for spelling in ("serverUrl", "httpUrl"):
        # Windsurf and Gemini CLI name the URL of a remote server differently.
        if spelling in entry and "url" not in entry:
            entry["url"] = entry.pop(spelling)
            notes.append(f"{spelling} is written as url")
    problems: list[str] = []

    def rewrite(value: Any) -> Any:
        if not isinstance(value, str) or "${" not in value:
            return value
        return _VARIABLE.sub(lambda m: _variable(m, workspace, notes, problems), value)

    for name in _STRING_FIELDS:
        if name in entry:
            entry[name] = rewrite(entry[name])
    for name in _LIST_FIELDS:
        if isinstance(entry.get(name), list):
            entry[name] = [rewrite(v) for v in entry[name]]
    for name in _MAP_FIELDS:
        if isinstance(entry.get(name), dict):
            entry[name] = {k: rewrite(v) for k, v in entry[name].items()}
    return entry, notes, problems[0] if problems else None


def _variable(m: re.Match, workspace: str | None, notes: list[str], problems: list[str]) -> str:
    inner = m.group(1)
    # The editors' own variables first: they look like mcpzip's ${VAR}.
    if inner == "userHome":
        return os.path.expanduser("~")
    if inner in ("pathSeparator", "/"):
        return os.sep
    if inner in ("workspaceFolder", "workspaceFolderBasename") and workspace:
        value = workspace if inner == "workspaceFolder" else os.path.basename(workspace)
        _note(notes, f"${{{inner}}} is written as {value}")
        return value
    if inner.startswith("env:") and _MCPZIP_VARIABLE.match(inner[4:]):
        _note(notes, "${env:NAME} variables are written as ${NAME}")
        return "${" + inner[4:] + "}"
    if _MCPZIP_VARIABLE.match(inner) and not inner.startswith("workspaceFolder"):
        return m.group(0)
    if inner.startswith("input:"):
        problems.append(
            f"it uses the client's prompt variable ${{{inner}}}, which mcpzip cannot ask for; "
            "put the value (or ${VAR}) in its place and run migrate again"
        )
    else:
        problems.append(f"it uses ${{{inner}}}, which mcpzip cannot expand (it knows ${{VAR}} and ${{VAR:-default}})")
    return m.group(0)


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


# -- planning ------------------------------------------------------------------------


def make_plan(args: argparse.Namespace) -> Plan:
    client, path, key = locate(args)
    try:
        document, raw = read_document(path, f"{client} config", lenient=True)
    except DocumentError as e:
        raise MigrateError(str(e)) from None
    if document is None:
        raise MigrateError(f"{client} config {path} does not exist")
    if key is None:
        key = "servers" if "servers" in document and "mcpServers" not in document else "mcpServers"
    scopes = select_scopes(document, path, key, args)
    for scope in scopes:
        if key in scope.holder and not isinstance(scope.holder[key], dict):
            raise MigrateError(f"{key} of the {scope.label} in {path} is not an object; fix it first")
    skipped = skipped_projects(document, key, args)
    if not any(s.table for s in scopes):
        if skipped:
            raise MigrateError(f"no MCP servers found at the top level of {path}; {_skipped_text(skipped)}")
        raise MigrateError(f"no MCP servers found in {path}")

    config_path = _absolute(args.config) if args.config else None
    if config_path is None:
        named = next((config_named_by(e) for s in scopes for n, e in s.table.items() if runs_mcpzip(n, e)), None)
        config_path = _absolute(named) if named else config_module.default_path()
    try:
        config_document, config_raw = read_document(config_path, "mcpzip config")
        config_exists = config_document is not None
        config_document = config_document if config_document is not None else {}
        servers_of(config_document, config_path)
    except DocumentError as e:
        raise MigrateError(str(e)) from None

    plan = Plan(client, path, document, raw, key, scopes, config_path, config_document, config_raw,
                config_exists, client_entry(config_path, args.shared))  # fmt: skip
    plan.untrusted = bool(args.project or args.all_projects)
    if skipped:
        plan.notes.append(_skipped_text(skipped))
    if not is_strict_json(raw):
        plan.notes.append(f"{path} has comments; they are not kept in the rewritten file (the backup has them)")
    workspace = os.path.dirname(os.path.dirname(path)) if os.path.basename(os.path.dirname(path)) == ".vscode" else None
    _plan_moves(plan, workspace)
    for name, entry in servers_of(config_document, config_path).items():
        if runs_mcpzip(name, entry):
            plan.notes.append(
                f'the mcpzip config already has a server "{name}" that starts mcpzip itself; remove it '
                "(mcpzip would start itself in a loop)"
            )
    return plan


def _plan_moves(plan: Plan, workspace: str | None) -> None:
    servers = dict(servers_of(plan.config_document, plan.config_path))
    origin: dict[str, str] = {}
    for scope in plan.scopes:
        for name, raw in scope.table.items():
            if runs_mcpzip(name, raw):
                plan.moves.append(Move(scope, name, name, raw, raw, SELF))
                continue
            entry, notes, problem = convert(raw, workspace)
            target = mcpzip_name(name)
            if target != name:
                notes.insert(0, f'renamed from "{name}" (server names are letters, digits, - and _)')
            problem = problem or entry_problem(target, entry, plan.source)
            move = Move(scope, name, target, raw, entry, ADD, notes=notes)
            if problem:
                move.action, move.reason = INVALID, problem
            elif target in servers:
                if servers[target] == entry:
                    move.action = SAME
                else:
                    move.action = CLASH
                    where = f"migrated from the {origin[target]}" if target in origin else "in the mcpzip config"
                    move.reason = f'a different server "{target}" is already {where}; rename one and run migrate again'
            else:
                servers[target] = entry
                origin[target] = scope.label
            plan.moves.append(move)
    plan.config_document = dict(plan.config_document)
    plan.config_document["mcpServers"] = servers


# -- showing ---------------------------------------------------------------------------


def show(plan: Plan, dry_run: bool, stamp: str, out: Any = None) -> None:
    out = out or sys.stdout

    def say(text: str = "") -> None:
        print(text, file=out)

    say("Dry run: nothing will be written." if dry_run else "Migrating MCP servers to mcpzip.")
    say(f"From {plan.client}: {plan.source}")
    if plan.untrusted:
        say(UNTRUSTED_WARNING)
    marks = {ADD: "+", SAME: "=", CLASH: "!", INVALID: "!", SELF: "-"}
    for scope in plan.scopes:
        moves = [m for m in plan.moves if m.scope is scope]
        if not moves:
            continue
        say(f"  {scope.label}:")
        for m in moves:
            line = f"    {marks[m.action]} {m.target if m.action in (ADD, SAME) else m.name} ({_describe_move(m)})"
            if m.action == SAME:
                line += ": already in the mcpzip config"
            elif m.action in (CLASH, INVALID):
                line += f": stays in {plan.client}'s file: {m.reason}"
            elif m.action == SELF:
                line += ": the existing mcpzip entry" + (", replaced" if scope in plan.changed_scopes else "")
            say(line)
            if plan.untrusted and m.action == ADD:
                say(f"        runs: {shown_command(m.raw)}")
            for note in m.notes:
                say(f"        ({note})")

    changed = plan.changed_scopes
    if not changed:
        say("")
        if plan.of(SELF) and not plan.of(CLASH, INVALID):
            say(f"Nothing to migrate: {plan.source} already starts mcpzip.")
        else:
            say("Nothing can be migrated.")
        return
    steps = [f"Back up {plan.source} to {backup_path(plan.source, stamp)}"]
    servers = plan.config_document["mcpServers"]
    added = len(plan.of(ADD))
    if plan.writes_config:
        if plan.config_exists:
            before = len(servers) - added
            steps.append(f"Back up {plan.config_path} to {backup_path(plan.config_path, stamp)}")
            steps.append(f"Write {plan.config_path} (mode 600): add {added} server(s) to the {before} already there")
        else:
            steps.append(f"Write {plan.config_path} (mode 600) with {added} server(s)")
    where = " and ".join(s.label for s in changed)
    steps.append(
        f"In {plan.source}, replace the servers of the {where} by one \"{ENTRY_NAME}\" entry:\n"
        f"       {json.dumps(plan.entry, ensure_ascii=False)}"
    )
    say("")
    say("Plan:" if dry_run else "Steps:")
    for i, step in enumerate(steps, 1):
        say(f"  {i}. {step}")
    notes = list(plan.notes) + _package_notes(plan) + _login_notes(plan) + _ignored_key_notes(plan)
    if notes:
        say("")
        say("Notes:")
        for note in notes:
            say(f"  - {note}")


UNTRUSTED_WARNING = (
    "Warning: these servers come from a project's file, which whoever can change the project wrote; "
    "mcpzip will run each command below with your rights. Read every \"runs:\" line before you use them."
)
# Options whose value is a credential: shown as *** by shown_command.
SECRET_OPTION_WORDS = ("token", "key", "secret", "password", "passwd", "auth", "credential", "bearer")


def shown_command(entry: Any) -> str:
    """The command line (or URL) an entry runs, with what looks like a credential masked.

    Masked: the entry's ``env`` and ``headers`` values, URL user, password and
    query, and the value of an option named like a credential (``--api-key X``,
    ``--token=X``).  ``${VAR}`` references stay as written: they name, not hold.
    """
    if not isinstance(entry, dict):
        return "?"
    for table in ("env", "headers"):
        values = entry.get(table)
        for value in (values.values() if isinstance(values, dict) else ()):
            if isinstance(value, str) and "${" not in value:
                log.add_secret(value)
    url = entry.get("url") or entry.get("serverUrl") or entry.get("httpUrl")
    if isinstance(url, str) and url and not entry.get("command"):
        return log.shown(config_module.public_url(url))
    command = entry.get("command") if isinstance(entry.get("command"), str) else "?"
    args = entry.get("args") if isinstance(entry.get("args"), list) else []
    words, hide_next = [command], False
    for arg in map(str, args):
        name, eq, value = arg.partition("=")
        secretish = arg.startswith("-") and any(w in name.lower() for w in SECRET_OPTION_WORDS)
        if hide_next and "${" not in arg:
            arg = "***"
        elif secretish and eq and "${" not in value:
            arg = f"{name}=***"
        hide_next = secretish and not eq
        words.append(shlex.quote(arg) if arg != "***" and not arg.endswith("=***") else arg)
    return log.shown(" ".join(words))


def describe(entry: Any) -> str:
    """Type and program or URL of an entry: never args, env or headers (they hold secrets)."""
    if not isinstance(entry, dict):
        return "not an object"
    url = entry.get("url") or entry.get("serverUrl") or entry.get("httpUrl")
    kind = entry.get("type") or ("http" if url and not entry.get("command") else "stdio")
    if isinstance(url, str) and url and not entry.get("command"):
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
            url = f"{parts.scheme}://{parts.hostname or ''}{':%d' % parts.port if parts.port else ''}{parts.path}"
        except ValueError:
            url = "?"
        return f"{kind}: {url}"
    command = entry.get("command")
    return f"{kind}: {command}" if isinstance(command, str) and command else str(kind)


def _describe_move(m: Move) -> str:
    text = describe(m.raw)
    return text + ", disabled" if isinstance(m.raw, dict) and m.raw.get("disabled") is True else text


def _package_notes(plan: Plan) -> list[str]:
    remote = [m.target for m in plan.of(ADD, SAME) if isinstance(m.entry, dict) and m.entry.get("url")
              and not m.entry.get("command")]  # fmt: skip
    note = remote_packages_note(entry_python(plan.entry), remote)
    return [note] if note else []


def _login_notes(plan: Plan) -> list[str]:
    notes = []
    for m in plan.of(ADD):
        entry = m.entry
        if entry.get("url") and not entry.get("command") and not entry.get("headers"):
            notes.append(
                f"{m.target} is a remote server without headers: if it asks for OAuth, run "
                f"`{user_command()} login {m.target}` once ({plan.client}'s stored login does not carry over)"
            )
    return notes


def _ignored_key_notes(plan: Plan) -> list[str]:
    notes = []
    for m in plan.of(ADD):
        unused = [k for k in m.entry if k not in config_module.SERVER_KEYS]
        if unused:
            notes.append(f"{m.target}: kept {', '.join(unused)}, which mcpzip does not use (it will warn at start-up)")
    return notes


# -- doing -------------------------------------------------------------------------------


def apply(plan: Plan, stamp: str) -> list[str]:
    """Write what the plan says, in the safe order; returns the undo commands."""
    changed = plan.changed_scopes
    if not changed:
        return []
    _check_unchanged(plan, plan.source, "")
    client_backup = backup(plan.source, plan.raw, stamp)
    undo = [f"cp {_quote(client_backup)} {_quote(plan.source)}"]
    if plan.writes_config:
        if plan.config_exists:
            config_backup = backup(plan.config_path, plan.config_raw, stamp)
            undo.append(f"cp {_quote(config_backup)} {_quote(plan.config_path)}")
        else:
            undo.append(f"rm {_quote(plan.config_path)}")
        write_config(plan.config_path, plan.config_document)
    for scope in changed:
        kept = {m.name: m.raw for m in plan.moves if m.scope is scope and m.action in (CLASH, INVALID)}
        scope.holder[plan.key] = {ENTRY_NAME: plan.entry, **kept}
    target = os.path.realpath(plan.source)  # a symlinked dotfile stays a symlink
    _check_unchanged(plan, target, "mcpzip's config was written but ")
    mode = os.stat(target).st_mode & 0o777
    write_atomic(target, dump(plan.document), mode)
    return undo


def _check_unchanged(plan: Plan, path: str, done: str) -> None:
    """Refuse to overwrite what the client wrote after we read the file."""
    with open(path, "rb") as f:
        if f.read() == plan.raw:
            return
    raise MigrateError(
        f"{plan.source} changed while mcpzip was migrating it (is {plan.client} running?); {done}that file was "
        "not modified. Quit the client and run migrate again"
    )


def _quote(path: str) -> str:
    import shlex

    return path if os.name == "nt" else shlex.quote(path)


def run(args: argparse.Namespace) -> int:
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        plan = make_plan(args)
        show(plan, args.dry_run, stamp)
        if args.dry_run:
            return _exit_code(plan)
        undo = apply(plan, stamp)
    except UsageError as e:
        print(f"mcpzip migrate: error: {e}", file=sys.stderr)
        return 2
    except (MigrateError, DocumentError) as e:
        raise CommandError(str(e)) from None
    except OSError as e:
        raise CommandError(f"cannot write {e.filename or 'a file'}: {e.strerror or e}") from None
    if undo:
        config_flag = f" --config {_quote(plan.config_path)}" if "--config" in plan.entry["args"] else ""
        print("")
        print(f"Done. Restart {plan.client} so that it starts mcpzip; check the servers with: "
              f"{user_command()} doctor{config_flag}")
        print("To undo: " + " && ".join(undo))
    return _exit_code(plan)


def _exit_code(plan: Plan) -> int:
    stuck = plan.of(CLASH, INVALID)
    if stuck:
        print(
            f"\n{len(stuck)} server(s) were not migrated and stay in {plan.source}; see the reasons above.",
            file=sys.stderr,
        )
        return 1
    return 0
