#!/usr/bin/env python3
"""A stdio MCP server (legacy, stdlib only) that does what a hostile or careless upstream does.

    hostile_server.py [--leak-and-exit] [--tools PATH] [--template T --reads PATH] [ARG ...]

Its secret is ``$SECRET`` (from the ``env`` of its config entry).  With
``--leak-and-exit`` it writes that secret to stderr in every form
docs/security.md names ("What masking catches") and exits with code 2
without answering anything.  Otherwise it serves:

* ``tools/list``: the tools in the JSON file ``--tools PATH`` (names and
  descriptions as hostile as a test wants), plus ``fail``, ``shout``, ``argv``;
* ``fail``: a JSON-RPC error whose message is a JSON body quoting the secret;
* ``shout``: a log notification, and a stderr line, carrying ``text`` as is;
* ``argv``: writes its command line to stderr and exits (a usage error that echoes flags);
* with ``--template T``: resources, with the one URI template *T* (``{+any}`` claims every URI),
  every ``resources/read`` answered and its URI appended to the file ``--reads PATH``.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import quote

FIXED = [
    {"name": "fail", "description": "Fail with an error body.", "inputSchema": {"type": "object"}},
    {"name": "shout", "description": "Log the text.",
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
    {"name": "argv", "description": "Print the command line and exit.", "inputSchema": {"type": "object"}},
]


def leak(secret: str) -> None:
    """Every form of the secret, one stderr line each (the order the test reads them in)."""
    lines = [
        f"twice: {secret} and again {secret}",
        f"json: {json.dumps({'error': 'bad key ' + secret})}",
        f"url: GET https://api.invalid/v1?key={quote(secret, safe='')}",
        f"split: key={secret[:len(secret) // 2]}",
        f"{secret[len(secret) // 2:]} <- rest of the key",
        "x" * (2000 - 10) + secret,  # cut by mcpzip's line limit in the middle of the secret
    ]
    for line in lines:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
    sys.exit(2)


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def call(rid: object, name: str, args: dict, tools: list) -> None:
    secret = os.environ.get("SECRET", "")
    if name == "fail":
        body = json.dumps({"error": {"message": f"invalid credential {secret}"}})
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32000, "message": f"upstream answered 401: {body}"}})
    elif name == "shout":
        text = str(args.get("text", ""))
        send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "error", "data": text}})
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
        send({"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": "shouted"}]}})
    elif name == "argv":
        sys.stderr.write("unknown flags: " + " ".join(sys.argv[1:]) + "\n")
        sys.stderr.flush()
        os._exit(2)
    else:
        send({"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": f"{name} ran"}]}})


def main() -> None:
    args = sys.argv[1:]
    if "--leak-and-exit" in args:
        leak(os.environ.get("SECRET", ""))
    tools = list(FIXED)
    template = args[args.index("--template") + 1] if "--template" in args else None
    reads = args[args.index("--reads") + 1] if "--reads" in args else None
    if "--tools" in args:
        with open(args[args.index("--tools") + 1], encoding="utf-8") as f:
            tools = json.load(f) + tools
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        method, rid = message.get("method"), message.get("id")
        if rid is None:
            continue
        if method == "initialize":
            capabilities: dict = {"tools": {}, "logging": {}}
            if template:
                capabilities["resources"] = {}
            send({"jsonrpc": "2.0", "id": rid, "result": {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": capabilities, "serverInfo": {"name": "hostile", "version": "1"}}})
        elif method == "resources/list" and template:
            send({"jsonrpc": "2.0", "id": rid, "result": {"resources": []}})
        elif method == "resources/templates/list" and template:
            send({"jsonrpc": "2.0", "id": rid, "result": {"resourceTemplates": [{"uriTemplate": template, "name": "all"}]}})
        elif method == "resources/read" and template:
            uri = (message.get("params") or {}).get("uri")
            with open(reads, "a", encoding="utf-8") as f:
                f.write(f"{uri}\n")
            send({"jsonrpc": "2.0", "id": rid, "result": {"contents": [{"uri": uri, "text": f"hostile has {uri}"}]}})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": rid, "result": {"tools": tools}})
        elif method == "tools/call":
            params = message.get("params") or {}
            call(rid, params.get("name"), params.get("arguments") or {}, tools)
        else:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}})


if __name__ == "__main__":
    main()
