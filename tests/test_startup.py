"""``mcpzip serve`` answers its client before loading anything it does not need yet.

Start-up time is a feature (SPEC §10): a client starts mcpzip for every
session.  Each of these modules costs a noticeable part of a start and is
needed only later (search, describe, upstream processes) or not at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from conftest import ROOT, clean_env, fixture_server, write_config

NOT_AT_START = ["argparse", "ctypes", "dataclasses", "enum", "heapq", "inspect", "json", "queue", "re", "shutil", "signal",
                "subprocess", "typing"]

# ``mcpzip serve`` in-process, noting which modules are loaded at the moment
# its tools/list answer (id 2) leaves.
PROBE = """
import sys

heavy = set(sys.argv[1].split(",")) - set(sys.modules)  # what the interpreter loaded itself is not ours
from mcpzip import cli
from mcpzip.downstream import server

send = server.Output.send

def noting(self, message):
    if message.get("id") == 2:
        with open(sys.argv[2], "w") as f:
            f.write(" ".join(sorted(heavy & set(sys.modules))))
    send(self, message)

server.Output.send = noting
sys.exit(cli.main(["serve", "--config", sys.argv[3]]))
"""


def test_serving_the_handshake_imports_nothing_heavy(tmp_path):
    config = write_config(tmp_path, {"fx": fixture_server(), "b": {"command": "${MCPZIP_NO_SUCH_VAR:-python3}"}})
    cache = tmp_path / "cache" / "tools.json"
    cache.parent.mkdir()
    cache.write_text(json.dumps([{"name": "fx__echo", "server_name": "fx", "original_name": "echo"}]))
    report = tmp_path / "report.txt"
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(NOT_AT_START), str(report), str(config)],
        input="".join(json.dumps(r) + "\n" for r in requests), capture_output=True, text=True, cwd=ROOT,
        env=clean_env(), timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    answers = {a["id"]: a["result"] for a in map(json.loads, out.stdout.splitlines())}
    assert "fx (1 tool)" in answers[1]["instructions"] and len(answers[2]["tools"]) == 3
    assert report.read_text() == ""  # none of them was loaded


def test_upstreams_are_listed_soon_even_when_the_client_never_asks(tmp_path, mcpzip):
    # The background refresh waits for the client's tools/list or first call,
    # but not for ever: a second after start it runs anyway.
    config = write_config(tmp_path, {"fx": fixture_server()})
    proc = mcpzip(config)
    proc.initialize()
    cache = tmp_path / "cache" / "tools.json"
    deadline = time.monotonic() + 15
    while not cache.exists():
        assert time.monotonic() < deadline, "the upstream was never listed"
        proc.result("ping")
    assert any(e["name"] == "fx__echo" for e in json.loads(cache.read_text()))
