"""A Python with requests but without sseclient-py (the common system Python): one clear message, early."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ENTRY, clean_env, write_config
from setup_helpers import home_env

pytest.importorskip("requests")
# What requests needs at import; linked into the bare venv beside it.
REQUESTS_AND_ITS_NEEDS = ("requests", "urllib3", "idna", "certifi", "charset_normalizer")


@pytest.fixture(scope="module")
def python_without_sseclient(tmp_path_factory):
    """A real virtual environment whose Python imports requests but not sseclient."""
    root = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=60)
    python = str(root / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    for name in REQUESTS_AND_ITS_NEEDS:
        module = importlib.import_module(name)
        os.symlink(os.path.dirname(module.__file__), os.path.join(site, name))
    assert subprocess.run([python, "-c", "import requests"]).returncode == 0
    assert subprocess.run([python, "-c", "import sseclient"], stderr=subprocess.DEVNULL).returncode != 0
    return python


def run(python: str, *args: str, env: dict | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([python, ENTRY, *args], capture_output=True, text=True, timeout=60,
                          env=env or clean_env(), cwd=cwd)  # fmt: skip


def test_an_http_server_says_which_package_is_missing_and_how_to_install_it(python_without_sseclient, tmp_path):
    # Nothing listens there: the message must come before any attempt to connect.
    config = str(write_config(tmp_path, {"remote": {"type": "http", "url": "http://127.0.0.1:9/mcp"},
                                         "old": {"type": "sse", "url": "http://127.0.0.1:9/sse"}}))
    expected = ("the Python package sseclient-py is missing (http and sse servers need requests and sseclient-py); "
                f"install with: {python_without_sseclient} -m pip install sseclient-py")
    started = time.monotonic()
    doctor = run(python_without_sseclient, "doctor", "--config", config, "--timeout", "20")
    assert time.monotonic() - started < 15
    assert doctor.returncode == 1
    assert f"cannot start server remote: {expected}" in doctor.stdout, doctor.stdout
    assert f"cannot start server old: {expected}" in doctor.stdout, doctor.stdout
    # What the model sees in serve (and call) says the same.
    call = run(python_without_sseclient, "call", "remote__fetch", "--config", config)
    assert call.returncode == 1
    assert f"\nmcpzip: error: server 'remote' is unavailable (cannot start server remote: {expected})" in call.stderr


def test_migrate_and_init_check_the_python_they_write_into_the_client(python_without_sseclient, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".claude.json").write_text(json.dumps({"mcpServers": {
        "linear": {"type": "http", "url": "https://mcp.linear.app/mcp"},
        "notes": {"command": "notes-mcp"}}}))
    env = home_env(home)
    planned = run(python_without_sseclient, "migrate", "--dry-run", env=env, cwd=str(home))
    assert planned.returncode == 0, planned.stderr
    assert ("linear will not start: for the Python your client starts mcpzip with, the Python package sseclient-py "
            f"is missing (http and sse servers need requests and sseclient-py); install with: "
            f"{python_without_sseclient} -m pip install sseclient-py") in planned.stdout, planned.stdout
    done = run(python_without_sseclient, "migrate", env=env, cwd=str(home))
    assert done.returncode == 0, done.stderr
    # The closing hint is a command the user can run: this interpreter and this script.
    assert f"check the servers with: {python_without_sseclient} {ENTRY} doctor" in done.stdout, done.stdout
    made = run(python_without_sseclient, "init", "--config", str(tmp_path / "new.json"), "--http", "docs=https://example.com/mcp",
               "--no-check", env=env, cwd=str(home))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "Note: docs will not start: for the Python your client starts mcpzip with, the Python package sseclient-py" in made.stdout
    assert f"check every server:            {python_without_sseclient} {ENTRY} doctor --config" in made.stdout


def test_a_complete_python_gets_no_note(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".claude.json").write_text(json.dumps({"mcpServers": {"linear": {"type": "http", "url": "https://mcp.linear.app/mcp"}}}))
    planned = run(sys.executable, "migrate", "--dry-run", env=home_env(home), cwd=str(home))
    assert planned.returncode == 0 and "will not start" not in planned.stdout
