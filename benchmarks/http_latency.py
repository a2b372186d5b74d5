"""Added latency of execute_tool to a Streamable HTTP upstream, against calling it directly.

    /work/venv/bin/python benchmarks/http_latency.py [--calls 200]

Starts tests/servers/http_server.py (the official SDK) on 127.0.0.1 in the
modern (stateless) and legacy (session) eras, and times ``echo`` calls made
(a) directly with one keep-alive ``requests.Session`` and (b) through
``mcpzip serve`` over stdio.  Prints medians and the difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from remote_peer import Peer  # noqa: E402

MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def direct_modern(url: str, calls: int) -> list[float]:
    import requests

    http = requests.Session()
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"}  # fmt: skip
    times = []
    for i in range(calls):
        body = {"jsonrpc": "2.0", "id": i, "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": MODERN_META}}  # fmt: skip
        start = time.perf_counter()
        r = http.post(url, data=json.dumps(body), headers=headers)
        r.raise_for_status()
        assert "result" in r.text
        times.append(time.perf_counter() - start)
    return times


def through_mcpzip(url: str, calls: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"mcpServers": {"remote": {"type": "http", "url": url}}}))
        config.chmod(0o600)
        proc = subprocess.Popen([sys.executable, str(ROOT / "mcpzip.py"), "serve", "--config", str(config)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip

        def call(i: int, method: str, params: dict) -> dict:
            proc.stdin.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode())
            proc.stdin.flush()
            while True:
                message = json.loads(proc.stdout.readline())
                if message.get("id") == i:
                    return message

        call(0, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                               "clientInfo": {"name": "bench", "version": "0"}})  # fmt: skip
        args = {"name": "execute_tool", "arguments": {"name": "remote__echo", "arguments": {"text": "x"}}}
        call(1, "tools/call", args)  # connect and list first
        times = []
        for i in range(calls):
            start = time.perf_counter()
            result = call(i + 2, "tools/call", args)
            assert result["result"]["content"][0]["text"] == "x", result
            times.append(time.perf_counter() - start)
        proc.stdin.close()
        proc.wait(15)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    for label, server_args in (("modern (stateless)", ()), ("legacy (session, SSE answers)", ("--legacy-only",))):
        peer = Peer(*server_args)
        try:
            url = peer.url("/mcp")
            mcpzip = statistics.median(through_mcpzip(url, args.calls)) * 1000
            line = f"{label:32} through mcpzip {mcpzip:6.2f} ms median"
            if not server_args:
                direct = statistics.median(direct_modern(url, args.calls)) * 1000
                line += f" | direct {direct:6.2f} ms | added {mcpzip - direct:5.2f} ms"
            print(line, flush=True)
        finally:
            peer.stop()


if __name__ == "__main__":
    main()
