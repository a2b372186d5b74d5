#!/usr/bin/env python3
"""mcpzip in action: three small MCP servers behind one mcpzip, driven by a real client.

    python examples/demo.py

Starts ``mcpzip serve`` the way an AI client does (over stdio) on the demo
config in examples/demo/ (servers notes, calc and scratch), and shows each
exchange: the handshake, the three meta-tools, then a search, a describe
and a call.  It runs the installed mcpzip (``python -m mcpzip``) when there
is one, else the checkout's ``mcpzip.py``.  Everything happens in a
temporary copy of examples/demo/ (mcpzip's cache and the servers' data),
removed at the end along with every process the demo started.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO = HERE / "demo"
CHECKOUT_ENTRY = HERE.parent / "mcpzip.py"
TIMEOUT = 60.0

QUERY = "convert 26.2 miles to kilometers"
TOOL = "calc__convert_units"
ARGUMENTS = {"value": 26.2, "from_unit": "mi", "to_unit": "km"}


class Client:
    """A minimal MCP client on a child's stdin/stdout, printing what it sees."""

    def __init__(self, argv: list[str], env: dict, cwd: str) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd
        )
        self.answers: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        self.next_id = 0
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            message = json.loads(line)
            if "id" in message and "method" not in message:
                self.answers.put((message, len(line.rstrip(b"\n"))))
        self.answers.put((None, 0))

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line.decode("utf-8", "replace"))

    def send(self, message: dict) -> None:
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict | None = None) -> tuple[dict, int, float]:
        """The result, the answer's size in bytes and the milliseconds it took."""
        self.next_id += 1
        started = time.perf_counter()
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}})
        try:
            message, size = self.answers.get(timeout=TIMEOUT)
        except queue.Empty:
            raise SystemExit(f"demo: mcpzip did not answer {method} within {TIMEOUT:g}s{self._stderr_tail()}")
        if message is None:
            raise SystemExit(f"demo: mcpzip exited unexpectedly{self._stderr_tail()}")
        if "error" in message:
            raise SystemExit(f"demo: {method} failed: {message['error']}{self._stderr_tail()}")
        return message["result"], size, (time.perf_counter() - started) * 1000

    def _stderr_tail(self) -> str:
        tail = "".join(self.stderr[-20:])
        return f"; its log:\n{tail}" if tail else ""

    def close(self) -> int:
        """Close stdin, as a client does when it goes away, and wait for mcpzip to exit."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            code = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        for t in self._threads:
            t.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code


def mcpzip_command() -> list[str]:
    if importlib.util.find_spec("mcpzip") is not None:
        return [sys.executable, "-m", "mcpzip"]
    return [sys.executable, str(CHECKOUT_ENTRY)]


def show(title: str) -> None:
    print(f"\n== {title}")


def indent(text: str, prefix: str = "     ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def text_of(result: dict) -> str:
    return "\n".join(c["text"] for c in result.get("content", []) if c.get("type") == "text")


def call_tool(client: Client, name: str, arguments: dict) -> str:
    print(f"  -> tools/call {name} {json.dumps(arguments)}")
    result, _, ms = client.request("tools/call", {"name": name, "arguments": arguments})
    flag = " (isError)" if result.get("isError") else ""
    print(f"  <- result{flag}, {ms:.0f} ms:")
    print(indent(text_of(result)))
    return text_of(result)


def run(workdir: str) -> int:
    shutil.copytree(DEMO, workdir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "cache", "data"))
    os.makedirs(os.path.join(workdir, "data"), exist_ok=True)
    config = os.path.join(workdir, "config.json")
    os.chmod(config, 0o600)  # mcpzip warns about configs others can read
    env = dict(os.environ, MCPZIP_DEMO_DIR=workdir, MCPZIP_DEMO_PYTHON=sys.executable)
    argv = [*mcpzip_command(), "serve", "--config", config]

    print("mcpzip demo: three small MCP servers (notes, calc, scratch) behind one mcpzip.")
    print(f"The client starts: {' '.join(argv[:-1])} <temporary copy of examples/demo>/config.json")
    client = Client(argv, env, workdir)
    try:
        show("1. initialize: the client's handshake")
        result, _, ms = client.request("initialize", {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "mcpzip-demo", "version": "1"},
        })  # fmt: skip
        client.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        info = result["serverInfo"]
        print(f"  <- {info['name']} {info['version']}, protocol {result['protocolVersion']}, {ms:.0f} ms")
        print("     instructions for the model:")
        print(indent(result.get("instructions", ""), "       "))

        show("2. tools/list: all the model ever sees, whatever the number of servers")
        result, size, ms = client.request("tools/list")
        print(f"  <- {len(result['tools'])} tools, {size:,} bytes, {ms:.0f} ms")
        for tool in result["tools"]:
            print(f"     {tool['name']:<14} {tool['description'].split('. ')[0]}")

        show("3. search_tools: the model looks for a tool in plain words")
        call_tool(client, "search_tools", {"query": QUERY})

        show("4. describe_tool: the full schema of the tool it picked")
        call_tool(client, "describe_tool", {"name": TOOL})

        show("5. execute_tool: the call goes to the calc server, the result comes back unchanged")
        call_tool(client, "execute_tool", {"name": TOOL, "arguments": ARGUMENTS})
    finally:
        code = client.close()
    print(f"\nThe client closed mcpzip's stdin: mcpzip stopped the three servers and exited with code {code}.")
    return 0 if code == 0 else 1


def main() -> int:
    workdir = tempfile.mkdtemp(prefix="mcpzip-demo-")
    try:
        return run(workdir)
    except KeyboardInterrupt:
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
