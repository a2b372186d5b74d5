"""``mcpzip pack``: one file that runs with nothing else on disk."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import zipfile

import pytest

from conftest import PYTHON, clean_env, fixture_server, run_cli, write_config

# -I: no user site, no PYTHON* variables; -S: no site-packages either, so
# nothing but the archive and the standard library can be imported.
ISOLATED = (PYTHON, "-I", "-S")


def pack(directory, *flags: str):
    directory.mkdir()
    out = directory / "mcpzip.pyz"
    r = run_cli("pack", "--out", str(out), *flags)
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stdout
    # Alone in its folder: the checkout is not beside it.
    assert sorted(p.name for p in directory.iterdir()) == ["mcpzip.pyz"]
    return out


def test_the_archive_serves_stdio_servers_alone(tmp_path, mcpzip):
    archive = pack(tmp_path / "empty")
    names = zipfile.ZipFile(archive).namelist()
    assert "__main__.py" in names and "mcpzip/downstream/server.py" in names
    assert not any(n.endswith((".pyc", ".so")) or "__pycache__" in n for n in names)
    assert not any(n.startswith(("requests/", "sseclient")) for n in names)
    config = write_config(tmp_path / "cfg", {"one": fixture_server("one"), "two": fixture_server("two")})

    proc = mcpzip(config, clean_env(), command=(*ISOLATED, str(archive)))
    assert proc.initialize()["serverInfo"]["name"] == "mcpzip"
    # Each server's tools are searchable once it is listed; the first answer may come before both are.
    assert "__echo" in proc.text("search_tools", {"query": "echo text back"})
    for server in ("one", "two"):
        echoed = proc.text("execute_tool", {"name": f"{server}__echo", "arguments": {"text": "from a pyz"}})
        assert echoed == "from a pyz"
    assert "two__echo" in proc.text("search_tools", {"query": "echo text back", "server": "two"})
    assert proc.close() == 0


def test_version_and_help_from_the_archive(tmp_path):
    archive = pack(tmp_path / "empty")
    r = subprocess.run([*ISOLATED, str(archive), "--version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("mcpzip ")


def test_packing_from_the_archive_itself(tmp_path):
    # A user with only the pyz can make another one (e.g. after editing nothing but config).
    archive = pack(tmp_path / "first")
    renamed = archive.rename(tmp_path / "first" / "tool")  # not named .pyz
    again = tmp_path / "second.pyz"
    r = subprocess.run([*ISOLATED, str(renamed), "pack", "--out", str(again)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(zipfile.ZipFile(again).namelist()) == sorted(zipfile.ZipFile(renamed).namelist())


@pytest.mark.skipif(importlib.util.find_spec("mcp") is None, reason="the MCP SDK (Python >= 3.10) serves the HTTP peer")
def test_with_remote_the_archive_reaches_streamable_http(tmp_path, mcpzip):
    from remote_peer import Peer

    archive = pack(tmp_path / "empty", "--with-remote")
    names = zipfile.ZipFile(archive).namelist()
    for package in ("requests/", "sseclient/", "urllib3/", "idna/", "certifi/", "charset_normalizer/"):
        assert any(n.startswith(package) for n in names), package
    server = Peer()
    try:
        config = write_config(tmp_path / "cfg", {"remote": {"type": "http", "url": server.url("/mcp")}})
        proc = mcpzip(config, clean_env(), command=(*ISOLATED, str(archive)))
        proc.initialize()
        assert "remote__echo" in proc.text("search_tools", {"query": "echo"})
        assert proc.text("execute_tool", {"name": "remote__echo", "arguments": {"text": "hi"}}) == "hi"
        assert proc.close() == 0
    finally:
        server.stop()


def test_without_remote_an_http_server_says_what_is_missing(tmp_path):
    archive = pack(tmp_path / "empty")
    config = write_config(tmp_path / "cfg", {"remote": {"type": "http", "url": "http://127.0.0.1:9/mcp"}})
    r = subprocess.run([*ISOLATED, str(archive), "call", "remote__echo", json.dumps({"text": "x"}), "--config", str(config)],
                       capture_output=True, text=True, timeout=60, env=clean_env())
    assert r.returncode == 1
    assert "requests" in r.stderr and "Traceback" not in r.stderr
