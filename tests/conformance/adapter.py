"""Conformance-suite client adapter: mcpzip serve in front of the scenario's server.

The MCP conformance suite starts a test server per client scenario and runs
``adapter.py SERVER_URL`` with ``MCP_CONFORMANCE_SCENARIO`` (and, for some,
``MCP_CONFORMANCE_CONTEXT``) set.  This writes a mcpzip config with that URL
as an ``http`` upstream, starts ``mcpzip serve`` over stdio, and drives it as
an AI client would: initialize, wait for the tools to be listed (signing in
through tests/servers/browser.py as ``$BROWSER`` when the server asks for
OAuth), then call every tool through ``execute_tool``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROWSER = ROOT / "tests" / "servers" / "browser.py"
CIMD_CLIENT_ID = "https://conformance-test.local/client-metadata.json"
ARGUMENTS = {"add_numbers": {"a": 2, "b": 3}}


class Client:
    def __init__(self, config: Path, env: dict) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "mcpzip.py"), "serve", "--config", str(config)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)  # fmt: skip
        self.ids = 0

    def request(self, method: str, params: dict) -> dict:
        self.ids += 1
        line = json.dumps({"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params}) + "\n"
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()
        while True:
            raw = self.proc.stdout.readline()
            if not raw:
                raise SystemExit("mcpzip exited")
            message = json.loads(raw)
            if "method" in message and "id" in message:
                self.answer(message)  # a server's request, relayed by mcpzip
            elif message.get("id") == self.ids and "method" not in message:
                return message.get("result") or {}

    def answer(self, request: dict) -> None:
        """Answer a request from mcpzip as a user who accepts every default would."""
        if request["method"] == "elicitation/create":
            schema = (request.get("params") or {}).get("requestedSchema") or {}
            content = {k: p["default"] for k, p in (schema.get("properties") or {}).items() if "default" in p}
            reply: dict = {"result": {"action": "accept", "content": content}}
        else:
            reply = {"error": {"code": -32601, "message": f"not supported: {request['method']}"}}
        line = json.dumps({"jsonrpc": "2.0", "id": request["id"], **reply}) + "\n"
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()

    def tool(self, name: str, arguments: dict) -> dict:
        return self.request("tools/call", {"name": name, "arguments": arguments})


def text(result: dict) -> str:
    return "\n".join(c.get("text", "") for c in result.get("content") or [] if c.get("type") == "text")


def main() -> int:
    url = sys.argv[-1]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    work = Path(tempfile.mkdtemp(prefix="mcpzip-conformance-"))
    try:
        server: dict = {"type": "http", "url": url}
        if context.get("client_id"):
            server["oauth"] = {"client_id": context["client_id"], "client_secret": context.get("client_secret")}
        elif scenario == "auth/basic-cimd":
            server["oauth"] = {"client_id": CIMD_CLIENT_ID}
        config = work / "config.json"
        config.write_text(json.dumps({"mcpServers": {"srv": server}}))
        config.chmod(0o600)
        browser = work / "browser.sh"
        browser.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{BROWSER}" "$@"\n')
        browser.chmod(0o755)
        env = dict(os.environ, BROWSER=str(browser), HOME=str(work), MCPZIP_LOGIN_TIMEOUT="15")
        env.setdefault("MCPZIP_LOG", "info")
        client = Client(config, env)
        try:
            drive(client, scenario)
        finally:
            client.proc.stdin.close()
            try:
                client.proc.wait(15)
            except subprocess.TimeoutExpired:
                client.proc.kill()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def drive(client: Client, scenario: str) -> None:
    client.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {"form": {}}},
                                  "clientInfo": {"name": "conformance-adapter", "version": "0"}})  # fmt: skip
    client.proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    client.proc.stdin.flush()
    # Wait for the server's tools (a sign-in may have to finish first).
    deadline = time.monotonic() + (20 if scenario.startswith("auth/") else 6)
    names: list[str] = []
    while time.monotonic() < deadline:
        listing = text(client.tool("search_tools", {"query": "srv", "limit": 50}))
        names = [line.split(":", 1)[0] for line in listing.splitlines() if line.startswith("srv__")]
        if names:
            break
        time.sleep(0.3)
    for name in names:
        bare = name.split("__", 1)[1]
        deadline = time.monotonic() + 20
        while True:
            result = client.tool("execute_tool", {"name": name, "arguments": ARGUMENTS.get(bare, {})})
            pending = result.get("isError") and "needs authorization" in text(result)
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.3)  # a step-up sign-in is running in the background
        print(f"{name}: {'error: ' if result.get('isError') else ''}{text(result)[:200]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
