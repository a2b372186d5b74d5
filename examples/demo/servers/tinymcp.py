"""The smallest useful MCP server loop, shared by the demo servers (stdlib only).

It speaks the legacy era of MCP over stdio: one JSON-RPC message per line on
stdin, answers on stdout, an ``initialize`` handshake first.  A server is a
name and a list of :class:`Tool`; each tool's handler gets the call's
arguments and returns text (or a whole ``CallToolResult`` dict), or raises
:class:`ToolError` with a sentence for the model.
"""

from __future__ import annotations

import json
import sys

PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")


class ToolError(Exception):
    """A failure the model can act on; becomes a result with ``isError``."""


class Tool:
    def __init__(self, name, description, properties, required=(), handler=None, **extra):
        self.handler = handler
        self.definition = {
            "name": name,
            "description": description,
            "inputSchema": {"type": "object", "properties": properties, "required": list(required)},
            **extra,
        }


def serve(name: str, version: str, tools: list[Tool], instructions: str = "") -> None:
    by_name = {t.definition["name"]: t for t in tools}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except ValueError:
            _send({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}})
            continue
        if "id" not in message or "method" not in message:
            continue  # a notification (initialized, cancelled) or a stray response
        method, params = message["method"], message.get("params") or {}
        if method == "initialize":
            asked = params.get("protocolVersion")
            result = {
                "protocolVersion": asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[-1],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": name, "version": version},
            }
            if instructions:
                result["instructions"] = instructions
        elif method == "ping":
            result = {}
        elif method == "tools/list":
            result = {"tools": [t.definition for t in tools]}
        elif method == "tools/call" and params.get("name") in by_name:
            result = _call(by_name[params["name"]], params.get("arguments") or {})
        else:
            what = f"Unknown tool: {params.get('name')}" if method == "tools/call" else f"Method not found: {method}"
            code = -32602 if method == "tools/call" else -32601
            _send({"jsonrpc": "2.0", "id": message["id"], "error": {"code": code, "message": what}})
            continue
        _send({"jsonrpc": "2.0", "id": message["id"], "result": result})


def _call(tool: Tool, arguments: dict) -> dict:
    try:
        out = tool.handler(**arguments)
    except ToolError as e:
        return {"content": [{"type": "text", "text": str(e)}], "isError": True}
    except TypeError as e:  # missing or unexpected arguments
        return {"content": [{"type": "text", "text": f"Bad arguments: {e}"}], "isError": True}
    if isinstance(out, dict):
        return out
    return {"content": [{"type": "text", "text": str(out)}]}


def _send(message: dict) -> None:
    sys.stdout.write(json.dumps(message, ensure_ascii=False) + "\n")
    sys.stdout.flush()
