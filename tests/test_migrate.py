"""``mcpzip migrate``: every client's file format, backups, rollback, dry runs, merging, idempotence."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from conftest import ENTRY, PYTHON, fixture_server
from setup_helpers import DATA, default_config, home_env, mcpzip_entry, mode, read_json, run_in, snapshot


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "home"
    path.mkdir()
    return path


def place(home, source: str, relative: str, file_mode: int = 0o644):
    """Copy fixture file *source* to HOME/*relative*; return its path and original bytes."""
    target = home / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / source, target)
    target.chmod(file_mode)
    return target, target.read_bytes()


def backups_of(path):
    return sorted(path.parent.glob(path.name + ".mcpzip-backup-*"))


def undo_command(stdout: str) -> str:
    found = re.search(r"^To undo: (.+)$", stdout, re.M)
    assert found, stdout
    return found.group(1)


# -- Claude Code ------------------------------------------------------------------------


def test_claude_code_top_level_servers_move_with_every_field(home):
    original = read_json(DATA / "claude_code.json")
    client, raw = place(home, "claude_code.json", ".claude.json", 0o600)

    result = run_in(home, "migrate")

    assert result.returncode == 0, result.stderr
    config = default_config(home)
    assert mode(config) == 0o600
    # Every server, every field (env, headers, cwd, unknown extras) kept as it was.
    assert read_json(config)["mcpServers"] == original["mcpServers"]
    rewritten = read_json(client)
    assert rewritten["mcpServers"] == {"mcpzip": mcpzip_entry()}
    # The rest of the client's file is untouched, projects included (not asked for).
    assert {k: v for k, v in rewritten.items() if k != "mcpServers"} == {
        k: v for k, v in original.items() if k != "mcpServers"
    }
    assert mode(client) == 0o600
    [backup] = backups_of(client)
    assert backup.read_bytes() == raw
    assert mode(backup) == 0o600
    for name in original["mcpServers"]:
        assert name in result.stdout
    # Remote without headers: Claude Code's login does not carry over; the command is one the user can run.
    assert f"`{PYTHON} {ENTRY} login linear` once" in result.stdout
    # Secrets from env and headers are not shown.
    assert "ghp_example" not in result.stdout + result.stderr
    assert "hunter22" not in result.stdout + result.stderr


def test_claude_code_one_project(home):
    original = read_json(DATA / "claude_code.json")
    client, _ = place(home, "claude_code.json", ".claude.json")

    result = run_in(home, "migrate", "--project", "/home/dev/shop")

    assert result.returncode == 0, result.stdout + result.stderr
    servers = read_json(default_config(home))["mcpServers"]
    assert list(servers) == [*original["mcpServers"], "shop-db"]
    assert servers["shop-db"] == original["projects"]["/home/dev/shop"]["mcpServers"]["shop-db"]
    rewritten = read_json(client)
    assert rewritten["mcpServers"] == {"mcpzip": mcpzip_entry()}
    shop = rewritten["projects"]["/home/dev/shop"]
    assert shop["mcpServers"] == {"mcpzip": mcpzip_entry()}
    assert shop["history"] == original["projects"]["/home/dev/shop"]["history"]
    # Other projects are not touched.
    assert rewritten["projects"]["/home/dev/blog"] == original["projects"]["/home/dev/blog"]
    # The project's github is the same server as the top-level one: merged, not a clash.
    assert re.search(r"= github .*already in the mcpzip config", result.stdout)


def test_claude_code_all_projects_keeps_a_clashing_server_in_its_project(home):
    original = read_json(DATA / "claude_code.json")
    client, _ = place(home, "claude_code.json", ".claude.json")

    result = run_in(home, "migrate", "--all-projects")

    # blog's postgres differs from the top-level postgres: reported, left where it is, exit 1.
    assert result.returncode == 1
    assert re.search(r'! postgres .*a different server "postgres" is already migrated from the top level', result.stdout)
    assert "1 server(s) were not migrated" in result.stderr
    servers = read_json(default_config(home))["mcpServers"]
    assert servers["postgres"] == original["mcpServers"]["postgres"]
    assert servers["playwright"] == original["projects"]["/home/dev/blog"]["mcpServers"]["playwright"]
    assert "shop-db" in servers
    blog = read_json(client)["projects"]["/home/dev/blog"]
    assert blog["mcpServers"] == {
        "mcpzip": mcpzip_entry(),
        "postgres": original["projects"]["/home/dev/blog"]["mcpServers"]["postgres"],
    }
    # A project without servers gets no mcpzip entry.
    assert read_json(client)["projects"]["/home/dev/empty"] == {"allowedTools": [], "mcpServers": {}}


def test_unknown_project_is_an_error_naming_the_known_ones(home):
    client, raw = place(home, "claude_code.json", ".claude.json")
    result = run_in(home, "migrate", "--project", "/home/dev/nowhere")
    assert result.returncode == 1
    assert "has no project /home/dev/nowhere" in result.stderr and "/home/dev/shop" in result.stderr
    assert "Traceback" not in result.stderr
    assert client.read_bytes() == raw


def test_falls_back_to_claude_config_json(home):
    client, _ = place(home, "claude_desktop.json", ".claude/config.json")
    result = run_in(home, "migrate")
    assert result.returncode == 0, result.stderr
    assert "From Claude Code: " + str(client) in result.stdout
    assert set(read_json(default_config(home))["mcpServers"]) == {"filesystem", "brave-search", "notion"}


def test_no_client_config_found(home):
    result = run_in(home, "migrate")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "mcpzip: error: no Claude Code config found (checked ~/.claude.json and ~/.claude/config.json)"
    )
    assert list(home.iterdir()) == []


def test_a_symlinked_client_file_stays_a_symlink(home):
    dotfiles = home / "dotfiles"
    target, raw = place(home, "claude_code.json", "dotfiles/claude.json", 0o600)
    (home / ".claude.json").symlink_to(target)

    result = run_in(home, "migrate")

    assert result.returncode == 0, result.stderr
    assert (home / ".claude.json").is_symlink()
    assert read_json(target)["mcpServers"] == {"mcpzip": mcpzip_entry()}
    assert mode(target) == 0o600
    [backup] = backups_of(home / ".claude.json")
    assert backup.read_bytes() == raw
    assert list(dotfiles.iterdir()) == [target]


# -- the other clients ------------------------------------------------------------------


def test_claude_desktop(home):
    original = read_json(DATA / "claude_desktop.json")
    client, raw = place(home, "claude_desktop.json", ".config/Claude/claude_desktop_config.json")

    result = run_in(home, "migrate", "--from", "claude-desktop")

    assert result.returncode == 0, result.stderr
    assert read_json(default_config(home))["mcpServers"] == original["mcpServers"]
    rewritten = read_json(client)
    assert rewritten == {**original, "mcpServers": {"mcpzip": mcpzip_entry()}}
    assert backups_of(client)[0].read_bytes() == raw
    assert "Restart Claude Desktop" in result.stdout


def test_cursor_translates_env_variables_and_replaces_its_mcpzip_entry(home):
    client, _ = place(home, "cursor.json", ".cursor/mcp.json")

    result = run_in(home, "migrate", "--from", "cursor")

    assert result.returncode == 0, result.stderr
    servers = read_json(default_config(home))["mcpServers"]
    assert set(servers) == {"context7", "figma", "memory"}  # never the mcpzip entry itself
    assert servers["context7"] == {"url": "https://mcp.context7.com/mcp", "headers": {"CONTEXT7_API_KEY": "${CONTEXT7_API_KEY}"}}
    assert servers["figma"] == {"url": "http://127.0.0.1:3845/sse", "type": "sse"}
    assert servers["memory"]["env"] == {"MEMORY_FILE_PATH": f"{home}/.cursor/memory.json"}
    assert read_json(client) == {"mcpServers": {"mcpzip": mcpzip_entry()}}
    assert "${env:NAME} variables are written as ${NAME}" in result.stdout


def test_vscode_workspace_file_with_comments_and_inputs(home):
    workspace = home / "code" / "app"
    client, raw = place(home, "vscode.json", "code/app/.vscode/mcp.json")

    result = run_in(home, "migrate", "--from", "vscode", cwd=workspace)

    # perplexity needs a VS Code input prompt mcpzip cannot show: it stays in VS Code.
    assert result.returncode == 1
    assert "${input:perplexity-key}" in result.stdout
    servers = read_json(default_config(home))["mcpServers"]
    assert set(servers) == {"fetch", "repo-files", "github"}
    assert servers["repo-files"] == {
        "type": "stdio",
        "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-filesystem", str(workspace)],
        "envFile": f"{workspace}/.env",
        "dev": {"watch": "src/**/*.ts"},
    }
    assert servers["github"] == {"type": "http", "url": "https://api.githubcopilot.com/mcp/"}
    rewritten = read_json(client)
    assert list(rewritten["servers"]) == ["mcpzip", "perplexity"]
    assert rewritten["servers"]["mcpzip"] == mcpzip_entry()
    assert rewritten["inputs"][0]["id"] == "perplexity-key"
    assert "has comments" in result.stdout
    assert backups_of(client)[0].read_bytes() == raw  # the comments are in the backup


def test_vscode_folder_given_with_project(home):
    place(home, "vscode.json", "code/app/.vscode/mcp.json")
    result = run_in(home, "migrate", "--from", "vscode", "--project", str(home / "code" / "app"), "--dry-run")
    assert "fetch" in result.stdout and str(home / "code" / "app" / ".vscode" / "mcp.json") in result.stdout


def test_windsurf_server_url_disabled_and_renamed_servers(home):
    original = read_json(DATA / "windsurf.json")["mcpServers"]
    client, _ = place(home, "windsurf.json", ".codeium/windsurf/mcp_config.json")

    result = run_in(home, "migrate", "--from", "windsurf")

    assert result.returncode == 0, result.stderr
    servers = read_json(default_config(home))["mcpServers"]
    assert servers["git"] == original["git"]  # disabledTools kept
    assert servers["deepwiki"] == {"url": "https://mcp.deepwiki.com/sse"}
    assert servers["stripe"] == {"url": "https://mcp.stripe.com", "headers": {"Authorization": "Bearer ${STRIPE_SECRET_KEY}"}}
    assert servers["puppeteer"] == original["puppeteer"]  # still disabled
    assert servers["time-zone"] == original["time.zone"]
    assert 'renamed from "time.zone"' in result.stdout
    assert "puppeteer (stdio: npx, disabled)" in result.stdout
    assert read_json(client) == {"mcpServers": {"mcpzip": mcpzip_entry()}}
    # mcpzip can load the result.
    listed = run_in(home, "list", "--cached")
    assert "puppeteer (disabled)" in listed.stdout, listed.stderr


def test_any_file_by_path(home, tmp_path):
    client, _ = place(home, "claude_desktop.json", "somewhere/mcp.json")
    result = run_in(home, "migrate", "--from", str(client))
    assert result.returncode == 0, result.stderr
    assert "From your client: " + str(client) in result.stdout
    assert read_json(client)["mcpServers"] == {"mcpzip": mcpzip_entry()}


def test_unknown_source_name(home):
    result = run_in(home, "migrate", "--from", "cursr")
    assert result.returncode == 1
    assert "--from takes claude-code, claude-desktop, cursor, vscode, windsurf or a path" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--from", "windsurf", "--project", "x"],
        ["--from", "cursor", "--claude-config", "x.json"],
        ["--from", "vscode", "--all-projects"],
    ],
)
def test_contradictory_flags_are_usage_errors(home, args):
    result = run_in(home, "migrate", *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.startswith("mcpzip migrate: error:")


# -- safety ---------------------------------------------------------------------------------


def existing_config(home, servers: dict, **extra) -> tuple:
    config = default_config(home)
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"mcpServers": servers, **extra}, indent=2))
    config.chmod(0o600)
    return config, config.read_bytes()


def test_dry_run_writes_nothing_and_prints_the_whole_plan(home):
    place(home, "claude_code.json", ".claude.json", 0o600)
    existing_config(home, {"notes": {"command": "notes-mcp"}})
    before = snapshot(home)

    result = run_in(home, "migrate", "--all-projects", "--dry-run")

    assert snapshot(home) == before
    out = result.stdout
    assert out.startswith("Dry run: nothing will be written.")
    for name in ("github", "linear", "sentry", "legacy-events", "postgres", "shop-db", "playwright"):
        assert name in out
    assert f"Back up {home}/.claude.json to {home}/.claude.json.mcpzip-backup-" in out
    assert f"Write {default_config(home)} (mode 600): add 7 server(s) to the 1 already there" in out
    assert "top level and project /home/dev/shop and project /home/dev/blog" in out
    assert json.dumps(mcpzip_entry()) in out
    assert result.returncode == 1  # blog's postgres would clash


def test_dry_run_names_the_project_servers_it_leaves_out(home):
    place(home, "claude_code.json", ".claude.json", 0o600)
    result = run_in(home, "migrate", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert ("4 project-scoped server(s) are not migrated (/home/dev/shop: shop-db, github; "
            "/home/dev/blog: postgres, playwright); add --project PATH for one project or --all-projects "
            "for all of them") in result.stdout
    result = run_in(home, "migrate", "--all-projects", "--dry-run")
    assert "project-scoped server(s) are not migrated" not in result.stdout


def test_only_project_servers_is_an_error_that_names_the_flags(home):
    (home / ".claude.json").write_text(json.dumps({"mcpServers": {}, "projects": {
        "/home/dev/shop": {"mcpServers": {"fx": fixture_server("fx")}}}}))
    result = run_in(home, "migrate")
    assert result.returncode == 1
    assert (f"no MCP servers found at the top level of {home}/.claude.json; 1 project-scoped server(s) are not "
            "migrated (/home/dev/shop: fx); add --project PATH") in result.stderr


def test_dry_run_on_a_new_config_writes_nothing(home):
    place(home, "windsurf.json", ".codeium/windsurf/mcp_config.json")
    before = snapshot(home)
    result = run_in(home, "migrate", "--from", "windsurf", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert snapshot(home) == before
    assert "with 5 server(s)" in result.stdout


def test_running_twice_changes_nothing_the_second_time(home):
    place(home, "claude_code.json", ".claude.json")
    first = run_in(home, "migrate", "--project", "/home/dev/shop")
    assert first.returncode == 0, first.stderr
    after_first = snapshot(home)

    second = run_in(home, "migrate", "--project", "/home/dev/shop")

    assert second.returncode == 0, second.stderr
    assert "Nothing to migrate" in second.stdout
    assert snapshot(home) == after_first  # no new backup, no rewrite


def test_merge_keeps_existing_servers_and_settings_and_reports_clashes(home):
    original = read_json(DATA / "claude_code.json")["mcpServers"]
    config, config_raw = existing_config(
        home,
        {"notes": {"command": "notes-mcp"}, "github": original["github"], "linear": {"type": "http", "url": "https://other/mcp"}},
        gemini_api_key="AIzaExample",
        search={"default_limit": 7},
    )
    client, _ = place(home, "claude_code.json", ".claude.json")

    result = run_in(home, "migrate")

    assert result.returncode == 1
    assert re.search(r'! linear .*a different server "linear" is already in the mcpzip config', result.stdout)
    merged = read_json(config)
    assert merged["gemini_api_key"] == "AIzaExample" and merged["search"] == {"default_limit": 7}
    assert merged["mcpServers"]["notes"] == {"command": "notes-mcp"}
    assert merged["mcpServers"]["linear"] == {"type": "http", "url": "https://other/mcp"}  # theirs wins
    assert merged["mcpServers"]["github"] == original["github"]
    assert list(merged["mcpServers"]) == ["notes", "github", "linear", "sentry", "legacy-events", "postgres"]
    assert mode(config) == 0o600
    # The clashing server stays in Claude Code, beside the mcpzip entry.
    assert read_json(client)["mcpServers"] == {"mcpzip": mcpzip_entry(), "linear": original["linear"]}
    assert backups_of(config)[0].read_bytes() == config_raw


def test_rollback_restores_the_client_and_the_config(home):
    client, raw = place(home, "claude_code.json", ".claude.json")
    config, config_raw = existing_config(home, {"notes": {"command": "notes-mcp"}})

    result = run_in(home, "migrate")
    assert result.returncode == 0, result.stderr
    assert client.read_bytes() != raw

    subprocess.run(undo_command(result.stdout), shell=True, check=True)

    assert client.read_bytes() == raw
    assert config.read_bytes() == config_raw


def test_rollback_of_a_new_config_removes_it(home):
    client, raw = place(home, "cursor.json", ".cursor/mcp.json")
    result = run_in(home, "migrate", "--from", "cursor")
    assert result.returncode == 0, result.stderr
    subprocess.run(undo_command(result.stdout), shell=True, check=True)
    assert client.read_bytes() == raw
    assert not default_config(home).exists()


def test_mcpzip_is_never_migrated_into_itself_however_it_is_spelled(home, tmp_path):
    spellings = {
        "zip": {"command": "/usr/local/bin/mcpzip", "args": ["serve"]},
        "proxy": {"command": "python3", "args": ["/opt/tools/mcpzip.py", "serve"]},
        "via-uvx": {"command": "uvx", "args": ["mcpzip@0.1.0", "serve"]},
        "module": {"command": "C:\\Python312\\python.exe", "args": ["-m", "mcpzip", "serve"]},
        "reference": {"type": "stdio", "command": "/home/dev/.cargo/bin/mcpzip.exe", "args": ["serve"]},
        "MCPZIP": {"command": "anything"},
    }
    # A real server whose arguments merely mention a folder called mcpzip.
    files = {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/dev/src/mcpzip"]}
    client = home / ".claude.json"
    client.write_text(json.dumps({"mcpServers": {**spellings, "files": files}}))

    result = run_in(home, "migrate")

    assert result.returncode == 0, result.stderr
    assert read_json(default_config(home))["mcpServers"] == {"files": files}
    assert read_json(client)["mcpServers"] == {"mcpzip": mcpzip_entry()}


def test_the_config_named_by_an_existing_mcpzip_entry_is_used(home, tmp_path):
    other = tmp_path / "elsewhere" / "config.json"
    client = home / ".claude.json"
    entry = {"command": "mcpzip", "args": ["serve", "--config", str(other)]}
    client.write_text(json.dumps({"mcpServers": {"mcpzip": entry, "fx": {"command": "fx-mcp"}}}))

    result = run_in(home, "migrate")

    assert result.returncode == 0, result.stderr
    assert read_json(other)["mcpServers"] == {"fx": {"command": "fx-mcp"}}
    assert not default_config(home).exists()
    assert read_json(client)["mcpServers"] == {"mcpzip": mcpzip_entry(other)}


def test_invalid_entries_stay_in_the_client(home):
    client = home / ".claude.json"
    servers = {"ok": {"command": "ok-mcp"}, "no-command": {"type": "stdio", "args": ["x"]}, "weird": {"type": "grpc", "url": "x"}}
    client.write_text(json.dumps({"mcpServers": servers}))

    result = run_in(home, "migrate")

    assert result.returncode == 1
    assert "stdio server must have a command" in result.stdout
    assert "type 'grpc' is not one of" in result.stdout
    assert read_json(default_config(home))["mcpServers"] == {"ok": {"command": "ok-mcp"}}
    assert read_json(client)["mcpServers"] == {
        "mcpzip": mcpzip_entry(),
        "no-command": servers["no-command"],
        "weird": servers["weird"],
    }


def test_broken_json_in_the_mcpzip_config_is_never_overwritten(home):
    place(home, "claude_code.json", ".claude.json")
    config = default_config(home)
    config.parent.mkdir(parents=True)
    config.write_text('{"mcpServers": {"a": ')
    result = run_in(home, "migrate")
    assert result.returncode == 1
    assert f"mcpzip config {config} is not valid JSON" in result.stderr
    assert config.read_text() == '{"mcpServers": {"a": '
    assert not backups_of(home / ".claude.json")


def test_no_servers_in_the_client(home):
    (home / ".claude.json").write_text('{"numStartups": 1}')
    result = run_in(home, "migrate")
    assert result.returncode == 1
    assert f"no MCP servers found in {home}/.claude.json" in result.stderr


# -- the result works ---------------------------------------------------------------------


def test_the_client_entry_starts_mcpzip_with_the_migrated_servers(home, tmp_path):
    """What the client will run after migrating: start it like a client and call a tool."""
    config = tmp_path / "cfg" / "config.json"
    client = home / ".claude.json"
    client.write_text(json.dumps({"mcpServers": {"fx": fixture_server("fx")}}))
    result = run_in(home, "migrate", "--config", str(config))
    assert result.returncode == 0, result.stderr
    entry = read_json(client)["mcpServers"]["mcpzip"]
    assert entry == mcpzip_entry(config)

    proc = subprocess.Popen(
        [entry["command"], *entry["args"]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=home_env(home),
        cwd="/",
    )
    try:
        def ask(message: dict) -> dict:
            proc.stdin.write((json.dumps(message) + "\n").encode())
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())

        init = ask({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
        assert init["result"]["serverInfo"]["name"] == "mcpzip"
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        call = ask({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "execute_tool", "arguments": {"name": "fx__echo", "arguments": {"text": "migrated"}}}})
        assert call["result"] == {"content": [{"type": "text", "text": "migrated"}]}
    finally:
        proc.stdin.close()
        assert proc.wait(15) == 0
        proc.stdout.close()



def test_migrate_shared_points_the_client_at_the_shared_mcpzip(home):
    client, _ = place(home, "claude_code.json", ".claude.json", 0o600)
    result = run_in(home, "migrate", "--shared")
    assert result.returncode == 0, result.stderr
    entry = mcpzip_entry()
    assert read_json(client)["mcpServers"] == {"mcpzip": {**entry, "args": [*entry["args"], "--shared"]}}


def test_init_shared_shows_the_shared_entry(home):
    result = run_in(home, "init", "--server", "fx=" + " ".join(fixture_server()["args"]).join(["python3 ", ""]),
                    "--yes", "--no-check", "--shared")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"serve", "--shared"' in result.stdout
