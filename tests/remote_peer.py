"""Helpers for tests against real remote servers on 127.0.0.1 (the official SDK, in a subprocess)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from conftest import HAVE_SDK, PYTHON, SERVERS

HTTP_SERVER = str(SERVERS / "http_server.py")
BROWSER = str(SERVERS / "browser.py")


class Peer:
    """``tests/servers/http_server.py`` running until :meth:`stop`."""

    def __init__(self, *args: str) -> None:
        if not HAVE_SDK:  # the test that starts one is skipped, not its module
            pytest.skip("the official MCP SDK (test extra, Python >= 3.10) serves the HTTP peer")
        self.args = args
        self.proc = subprocess.Popen([PYTHON, HTTP_SERVER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr_lines: list[str] = []
        ready: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_out, args=(ready,), daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        try:
            line = ready.get(timeout=30)
        except queue.Empty:
            self.stop()
            raise AssertionError(f"test server did not start: {self.stderr}") from None
        if not line.startswith("READY "):
            self.stop()
            raise AssertionError(f"test server failed: {line} {self.stderr}")
        self.port = int(line.split()[1])
        self.base = f"{'https' if '--tls' in args else 'http'}://127.0.0.1:{self.port}"

    def _read_out(self, ready: queue.Queue) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            ready.put(raw.decode().strip())
        ready.put("EXITED")

    def _read_err(self) -> None:
        for raw in iter(self.proc.stderr.readline, b""):
            self.stderr_lines.append(raw.decode("utf-8", "replace"))

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def url(self, path: str) -> str:
        return self.base + path

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url("/test/stats"), timeout=10) as r:
            return json.loads(r.read())

    def post(self, path: str) -> None:
        urllib.request.urlopen(urllib.request.Request(self.url(path), method="POST"), timeout=10).read()

    def expire_tokens(self) -> None:
        self.post("/test/expire")

    def restarted(self) -> Peer:
        """Stop this server and start the same one on the same port: every session it knew is gone."""
        self.stop()
        return Peer(*self.args, "--port", str(self.port))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()


def make_ca(directory: Path) -> dict[str, str] | None:
    """A certificate authority made here, and a certificate it signed for 127.0.0.1 and localhost.

    Returns the paths (``ca``, ``cert`` — the chain a server presents — and
    ``key``), or None where the ``openssl`` command is missing.
    """
    import shutil

    if shutil.which("openssl") is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    p = {name: str(directory / name) for name in ("ca.pem", "ca.key", "server.key", "server.csr", "server.pem", "ext")}
    Path(p["ext"]).write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p["ca.key"], "-out", p["ca.pem"], "-days", "2",
        "-subj", "/CN=mcpzip test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p["server.key"], "-out", p["server.csr"],
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    run("x509", "-req", "-in", p["server.csr"], "-CA", p["ca.pem"], "-CAkey", p["ca.key"], "-CAcreateserial",
        "-out", p["server.pem"], "-days", "2", "-extfile", p["ext"])  # fmt: skip
    return {"ca": p["ca.pem"], "cert": p["server.pem"], "key": p["server.key"]}


def browser_env(tmp_path: Path, mode: str = "", **extra: str) -> dict:
    """Environment entries that make ``webbrowser`` run tests/servers/browser.py."""
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\nexec "{PYTHON}" "{BROWSER}" "$@"\n')
    script.chmod(0o755)
    env = {"BROWSER": str(script), "TEST_BROWSER_LOG": str(tmp_path / "browser.log"), "HOME": str(tmp_path / "home")}
    if mode:
        env["TEST_BROWSER_MODE"] = mode
    env.update(extra)
    return env


def browser_visits(tmp_path: Path) -> list[str]:
    path = tmp_path / "browser.log"
    return path.read_text().splitlines() if path.exists() else []


def secrets_of(token_file: Path) -> list[str]:
    data = json.loads(token_file.read_text())
    values = [data.get("access_token"), data.get("refresh_token"), (data.get("client") or {}).get("client_secret")]
    return [v for v in values if v]


def mode_of(path: Path) -> int:
    return os.stat(path).st_mode & 0o777
