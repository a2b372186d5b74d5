#!/usr/bin/env python3
"""A legacy-only MCP server (stdlib only) with tools that behave well and badly.

It refuses ``server/discover`` the way pre-2026 servers do, answers each
``tools/call`` on its own thread (so calls overlap), and records what it
received so tests can look.  Options:

  --name NAME          serverInfo name (default "fixture")
  --instructions TEXT  the instructions initialize answers with
  --page-size N        split tools/list (and resources/list) into pages of N (nextCursor)
  --extra-tools N      add N generated tools named tool_0 ... tool_{N-1}
  --only NAMES         list only these tools (comma-separated)
  --ask-roots          ask the client roots/list as soon as it is initialized (as server-filesystem
                       does); the tool roots_seen returns the answer
  --sampling-tool      list the tool "sample" (asks the client for sampling/createMessage) only to a
                       client that declared sampling in initialize, as server-everything does
  --banner             print a non-JSON line on stdout before anything else
  --modern-ttl MS      speak the modern era (answer server/discover) and give ttlMs MS with tools/list
  --start-delay SEC    sleep before reading stdin (a slow starter)
  --record PATH        append every received message as a JSON line to PATH
  --resources N        also offer resources (fixture://NAME/about and N named fixture://NAME/item/I),
                       the template fixture://NAME/notes/{topic}, subscriptions, the prompt
                       "greet", completions, and the tools touch (send resources/updated)
                       and change (add a resource, send the list_changed notifications)
  --shared-resources   name the N items fixture://shared/I (the same in every copy)
  --no-templates       with --resources: answer resources/templates/list with -32601, as sqlite does
  --broken-lists HOW   with --resources: answer every resource/prompt list with an error
                       (HOW = error) or never (HOW = silent)
  --discover HOW       answer server/discover otherwise: never (silent), with a DiscoverResult
                       listing versions (result:V1,V2), or with an error (error:CODE, error:CODE:V1,V2
                       puts the versions in data.supported, error:-32021:CAP names a required capability)
  --initialize-version V   answer initialize with protocol version V instead of the client's
  --odd-listings       also list entries with fields of the wrong type, entries that are not
                       objects, and a description with a lone surrogate (tools, and resources
                       and prompts with --resources)
  --stubborn           ignore SIGTERM and keep running after stdin closes (children inherit
                       the ignored SIGTERM)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time

PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6300010000050001a5f645400000000049454e44ae426082"
    )
).decode()

TOOLS = [
    {"name": "echo", "description": "Echo the given text back unchanged.",
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
    {"name": "add", "description": "Add two numbers and return the sum.",
     "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                     "required": ["a", "b"]},
     "outputSchema": {"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]},
     "annotations": {"readOnlyHint": True}, "title": "Adder"},
    {"name": "sleep", "description": "Wait for some milliseconds, then answer.",
     "inputSchema": {"type": "object", "properties": {"ms": {"type": "integer"}}, "required": ["ms"]}},
    {"name": "crash", "description": "Exit the server process in the middle of the call.",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "hang", "description": "Never answer.", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "image", "description": "Return a tiny PNG image with a caption.",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "big", "description": "Return a text of the given number of bytes.",
     "inputSchema": {"type": "object", "properties": {"bytes": {"type": "integer"}}, "required": ["bytes"]}},
    # Optional arguments of big (not in its schema, so listings stay as they were):
    # lines: numbered lines with non-ASCII text instead of one long line;
    # image: add an image of that many base64 bytes; structured: add the text
    # as structuredContent too; error: mark the result isError.
    {"name": "environment", "description": "Return this server's environment variables as JSON.",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "spawn_child", "description": "Start a long-lived child process and return its pid.",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "noisy", "description": "Print lines that are not JSON on stdout, then answer.",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "stderr_flood", "description": "Write many bytes to stderr, then answer.",
     "inputSchema": {"type": "object", "properties": {"bytes": {"type": "integer"}}, "required": ["bytes"]}},
    {"name": "fail", "description": "Return a tool error result.", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "received", "description": "Return the notifications (and setLevel requests) this server has received.",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "pid", "description": "Return this server's process id.", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "progress", "description": "Report progress in steps (one every few ms), then answer.",
     "inputSchema": {"type": "object", "properties": {"steps": {"type": "integer"}, "ms": {"type": "integer"}},
                     "required": ["steps"]}},
    {"name": "log", "description": "Send a log message notification, then answer.",
     "inputSchema": {"type": "object", "properties": {"level": {"type": "string"}, "text": {"type": "string"}},
                     "required": ["text"]}},
    {"name": "grow", "description": "Add a new tool to this server and announce the changed list (times times).",
     "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}, "times": {"type": "integer"}},
                     "required": ["name"]}},
    {"name": "emit", "description": "Write raw bytes (hex, or text repeated) on stdout, then answer.",
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}, "hex": {"type": "string"},
                     "repeat": {"type": "integer"}, "newline": {"type": "boolean"}}}},
    {"name": "nest", "description": "Answer with structured content nested the given number of levels deep.",
     "inputSchema": {"type": "object", "properties": {"depth": {"type": "integer"}}, "required": ["depth"]}},
    {"name": "close_stdout", "description": "Close stdout and keep running (never answers).",
     "inputSchema": {"type": "object", "properties": {}}},
    {"name": "ask", "description": "Ask the client something (a server-to-client request) and return the answer.",
     "inputSchema": {"type": "object", "properties": {"method": {"type": "string"}, "params": {"type": "object"}},
                     "required": ["method"]}},
    {"name": "nested", "description": "Return structuredContent nested depth levels deep.",
     "inputSchema": {"type": "object", "properties": {"depth": {"type": "integer"}}, "required": ["depth"]}},
    {"name": "flood", "description": "Send the client count requests at once; answer when expect of them are answered.",
     "inputSchema": {"type": "object", "properties": {"method": {"type": "string"}, "count": {"type": "integer"},
                                                      "expect": {"type": "integer"}}, "required": ["method", "count"]}},
]

SAMPLE_TOOL = {"name": "sample", "description": "Ask the client's model for a completion (sampling).",
               "inputSchema": {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]}}

ROOTS_TOOL = {"name": "roots_seen", "description": "Return the client's answer to the roots/list asked at connect.",
              "inputSchema": {"type": "object", "properties": {}}}
roots_answer: dict = {}  # {"answer": the client's response}, once it came

write_lock = threading.Lock()
client_capabilities: dict = {}  # what the client declared in initialize
notifications: list[dict] = []
grown: list[dict] = []
answers: dict[object, dict] = {}  # responses to our own requests, by id
answered = threading.Condition()
own_ids = iter(range(1, 1_000_000))
options = argparse.Namespace()


def send(message: dict) -> None:
    data = json.dumps(message) + "\n"
    with write_lock:
        sys.stdout.write(data)
        sys.stdout.flush()


def text(value: str) -> dict:
    return {"content": [{"type": "text", "text": value}]}


def ask_client(method: str, params: dict | None) -> dict:
    """Send the client a request and wait for its response."""
    rid = f"fixture-{next(own_ids)}"
    send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})
    with answered:
        answered.wait_for(lambda: rid in answers, timeout=30)
        return answers.pop(rid, {"error": {"code": -1, "message": "no answer"}})


def big_text(n: int, lines: bool = False) -> str:
    """*n* bytes of text: one long line, or numbered lines with characters of 2 to 4 UTF-8 bytes."""
    if not lines:
        return ("0123456789abcdef" * (n // 16 + 1))[:n]
    out, size, i = [], 0, 0
    while size < n:
        line = f"line {i:07d} caf\u00e9 \u20ac{i % 7} \U0001f600 {'x' * (i % 40)}\n"
        out.append(line)
        size += len(line.encode())
        i += 1
    return "".join(out).encode()[:n].decode("utf-8", "ignore")


def big_result(args: dict) -> dict:
    body = big_text(args["bytes"], bool(args.get("lines")))
    result: dict = {"content": [{"type": "text", "text": body}]}
    if args.get("image"):
        data = ("iVBORw0K" * args["image"])[: args["image"]]
        result["content"].append({"type": "image", "data": data, "mimeType": "image/png"})
    if args.get("structured"):
        result["structuredContent"] = {"text": body, "bytes": len(body.encode())}
    if args.get("error"):
        result["isError"] = True
    return result


def ask_roots() -> None:
    answer = ask_client("roots/list", {})
    with answered:
        roots_answer["answer"] = answer
        answered.notify_all()


def call(name: str, args: dict, meta: dict) -> dict | None:
    if name == "progress":
        token = meta.get("progressToken")
        for i in range(args["steps"]):
            if args.get("ms"):
                time.sleep(args["ms"] / 1000)
            if token is not None:
                send({"jsonrpc": "2.0", "method": "notifications/progress",
                      "params": {"progressToken": token, "progress": i + 1, "total": args["steps"], "message": f"step {i + 1}"}})
        return text(f"{args['steps']} steps, token {'seen' if token is not None else 'absent'}")
    if name == "log":
        send({"jsonrpc": "2.0", "method": "notifications/message",
              "params": {"level": args.get("level", "info"), "logger": "fixture-logger", "data": args["text"]}})
        return text("logged")
    if name == "grow":
        grown.append({"name": args["name"], "description": f"A tool grown at run time: {args['name']}.",
                      "inputSchema": {"type": "object"}})
        for _ in range(args.get("times", 1)):
            send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        return text("grown")
    if name == "ask":
        return text(json.dumps(ask_client(args["method"], args.get("params"))))
    if name == "roots_seen" and options.ask_roots:
        with answered:
            answered.wait_for(lambda: "answer" in roots_answer, timeout=30)
        response = roots_answer.get("answer", {"error": "no answer yet"})
        return text(json.dumps(response.get("result", response)))
    if name == "sample" and options.sampling_tool and "sampling" in client_capabilities:
        answer = ask_client("sampling/createMessage", {
            "messages": [{"role": "user", "content": {"type": "text", "text": args["prompt"]}}], "maxTokens": 20})
        return text(answer["result"]["content"]["text"] if "result" in answer else json.dumps(answer))
    if name == "nested":
        value: list = []
        for _ in range(args["depth"] - 1):
            value = [value]
        return {"content": [{"type": "text", "text": "nested"}], "structuredContent": {"v": value}}
    if name == "flood":
        ids = [f"fixture-{next(own_ids)}" for _ in range(args["count"])]
        for rid in ids:
            send({"jsonrpc": "2.0", "id": rid, "method": args["method"], "params": {"message": "flood", "requestedSchema": {"type": "object", "properties": {}}}})
        with answered:
            answered.wait_for(lambda: sum(rid in answers for rid in ids) >= args.get("expect", args["count"]), timeout=30)
            got = [answers.pop(rid) for rid in ids if rid in answers]
        errors = sorted({r["error"]["message"] for r in got if "error" in r})
        return text(json.dumps({"answered": len(got), "errors": sum("error" in r for r in got), "messages": errors}))
    if any(t["name"] == name for t in grown):
        return text(f"{name} ran")
    if name == "echo":
        return text(args["text"])
    if name == "add":
        total = args["a"] + args["b"]
        return {"content": [{"type": "text", "text": str(total)}], "structuredContent": {"sum": total}}
    if name == "sleep":
        time.sleep(args["ms"] / 1000)
        return text(f"slept {args['ms']} ms")
    if name == "crash":
        os._exit(3)
    if name == "hang":
        return None
    if name == "image":
        return {"content": [{"type": "text", "text": "a red dot"}, {"type": "image", "data": PNG, "mimeType": "image/png"}]}
    if name == "big":
        return big_result(args)
    if name == "environment":
        return text(json.dumps(dict(os.environ)))
    if name == "spawn_child":
        # With setsid the child leaves the server's session and process group,
        # still holding the server's stdin, stdout and stderr.
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                 start_new_session=bool(args.get("setsid")))
        return text(str(child.pid))
    if name == "emit":
        data = bytes.fromhex(args["hex"]) if "hex" in args else args.get("text", "").encode()
        with write_lock:
            for _ in range(args.get("repeat", 1)):
                sys.stdout.buffer.write(data)
            if args.get("newline", True):
                sys.stdout.buffer.write(b"\n")
            sys.stdout.flush()
        return text("emitted")
    if name == "close_stdout":
        with write_lock:
            sys.stdout.flush()
            os.close(1)
        return None
    if name == "noisy":
        with write_lock:
            sys.stdout.write("this is not json\n{broken json\n\n")
            sys.stdout.flush()
        return text("noisy done")
    if name == "stderr_flood":
        chunk = "x" * 1023 + "\n"
        for _ in range(args["bytes"] // 1024):
            sys.stderr.write(chunk)
        sys.stderr.flush()
        return text("flooded")
    if name == "fail":
        return {"content": [{"type": "text", "text": "it went wrong"}], "isError": True}
    if name == "received":
        return text(json.dumps(notifications))
    if name == "pid":
        return text(str(os.getpid()))
    if name.startswith(("tool_", "odd_")):
        return text(f"{name} ran")
    if name in ("touch", "change") and options.resources is not None:
        return resource_tool(name, args)
    raise KeyError(name)


def handle_call(request: dict) -> None:
    params = request.get("params") or {}
    if params.get("name") == "nest":  # json.dumps cannot nest this deep: written by hand
        depth = (params.get("arguments") or {}).get("depth", 1)
        with write_lock:
            sys.stdout.write('{"jsonrpc":"2.0","id":%s,"result":{"content":[],"structuredContent":{"x":%s%s}}}\n'
                             % (json.dumps(request["id"]), "[" * depth, "]" * depth))
            sys.stdout.flush()
        return
    try:
        result = call(params.get("name"), params.get("arguments") or {}, params.get("_meta") or {})
    except KeyError:
        send({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32602, "message": "Unknown tool"}})
        return
    if result is not None:
        send({"jsonrpc": "2.0", "id": request["id"], "result": result})


ODD_TOOLS = [
    {"name": "odd_types", "description": 42, "title": ["not", "text"], "inputSchema": "not a schema",
     "annotations": 5, "outputSchema": [1]},
    {"name": "odd_surrogate", "description": "Half \ud800 of a pair, found by the word zebra.",
     "inputSchema": {"type": "object", "properties": {"\udc00": {"type": "string", "description": "\ud800"}}}},
    "not an object", {"name": 7}, {"description": "no name"},
]
ODD_RESOURCES = [{"uri": ["not", "text"], "name": "listy"}, {"uri": "fixture://odd/number", "name": 5, "mimeType": {}},
                 "not an object"]
ODD_PROMPTS = [{"name": {"not": "text"}}, {"name": "odd_prompt", "description": 3.5, "arguments": "none"}]


def replayed_tools() -> list[dict]:
    """The tools of one real server's catalog (--tools-from FILE:SERVER), listed beside the fixture's own."""
    if not options.tools_from:
        return []
    path, _, server = options.tools_from.rpartition(":")
    with open(path, encoding="utf-8") as f:
        return json.load(f)[server]


def all_tools() -> list[dict]:
    extra = [
        {"name": f"tool_{i}", "description": f"Generated tool number {i}.", "inputSchema": {"type": "object"}}
        for i in range(options.extra_tools)
    ]
    if options.odd_listings:
        extra += ODD_TOOLS
    if options.resources is not None:
        extra += RESOURCE_TOOLS
    if options.sampling_tool and "sampling" in client_capabilities:
        extra.append(SAMPLE_TOOL)
    if options.ask_roots:
        extra.append(ROOTS_TOOL)
    tools = TOOLS + extra + grown + replayed_tools()
    if options.only:
        tools = [t for t in tools if t["name"] in options.only.split(",")]
    return tools


# -- resources, prompts and completions (--resources) ------------------------

RESOURCE_TOOLS = [
    {"name": "touch", "description": "Send notifications/resources/updated for a uri.",
     "inputSchema": {"type": "object", "properties": {"uri": {"type": "string"}}, "required": ["uri"]}},
    {"name": "change", "description": "Add fixture://NAME/added and send the list_changed notifications.",
     "inputSchema": {"type": "object", "properties": {}}},
]
RESOURCE_METHODS = {"resources/list", "resources/templates/list", "resources/read", "resources/subscribe",
                    "resources/unsubscribe", "prompts/list", "prompts/get", "completion/complete"}
added_resources: list[dict] = []
SILENT: dict = {}  # handle_resources' answer for "send nothing"


def all_resources() -> list[dict]:
    own = [{"uri": f"fixture://{options.name}/about", "name": "about", "mimeType": "text/plain"}]
    prefix = "fixture://shared/" if options.shared_resources else f"fixture://{options.name}/item/"
    items = [{"uri": f"{prefix}{i}", "name": f"item {i}"} for i in range(options.resources)]
    return own + items + added_resources + (ODD_RESOURCES if options.odd_listings else [])


def page_of(items: list[dict], key: str, request: dict) -> dict:
    start = int((request.get("params") or {}).get("cursor") or 0)
    size = options.page_size or len(items) or 1
    result: dict = {key: items[start:start + size]}
    if start + size < len(items):
        result["nextCursor"] = str(start + size)
    return result


def complete(params: dict) -> list[str]:
    ref, argument = params.get("ref") or {}, params.get("argument") or {}
    if ref == {"type": "ref/prompt", "name": "greet"} and argument.get("name") == "who":
        words = ["alice", "albert", "bob"]
    elif ref.get("uri") == f"fixture://{options.name}/notes/{{topic}}" and argument.get("name") == "topic":
        words = ["news", "notes", "todo"]
    else:
        words = []
    return [w for w in words if w.startswith(argument.get("value", ""))]


def handle_resources(request: dict) -> dict | None:
    """The result for a resource/prompt/completion request (None: not one)."""
    method, params = request["method"], request.get("params") or {}
    if method in ("resources/list", "resources/templates/list", "prompts/list") and options.broken_lists:
        if options.broken_lists == "silent":
            return SILENT
        raise LookupError("lists are broken on purpose")
    if method == "resources/list":
        return page_of(all_resources(), "resources", request)
    if method == "resources/templates/list" and options.no_templates:
        return None
    if method == "resources/templates/list":
        template = {"uriTemplate": f"fixture://{options.name}/notes/{{topic}}", "name": "notes"}
        return {"resourceTemplates": [template]}
    if method == "resources/read":
        uri = params.get("uri", "")
        known = {r["uri"] for r in all_resources() if isinstance(r, dict) and isinstance(r.get("uri"), str)}
        if uri not in known and not uri.startswith(f"fixture://{options.name}/notes/"):
            raise KeyError(uri)
        return {"contents": [{"uri": uri, "mimeType": "text/plain", "text": f"{uri} from {options.name}"}]}
    if method in ("resources/subscribe", "resources/unsubscribe"):
        notifications.append({"method": method, "params": params})
        return {}
    if method == "prompts/list":
        return {"prompts": [{"name": "greet", "description": "Greet someone.",
                             "arguments": [{"name": "who", "required": True}]}]
                + (ODD_PROMPTS if options.odd_listings else [])}
    if method == "prompts/get":
        if params.get("name") != "greet":
            raise LookupError(f"no prompt {params.get('name')}")
        who = (params.get("arguments") or {}).get("who", "nobody")
        text = f"Hello {who} from {options.name}"
        return {"messages": [{"role": "user", "content": {"type": "text", "text": text}}]}
    if method == "completion/complete":
        values = complete(params)
        return {"completion": {"values": values, "total": len(values), "hasMore": False}}
    return None


def resource_tool(name: str, args: dict) -> dict:
    if name == "touch":
        send({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": args["uri"]}})
        return text("touched")
    added_resources.append({"uri": f"fixture://{options.name}/added", "name": "added"})
    send({"jsonrpc": "2.0", "method": "notifications/resources/list_changed"})
    send({"jsonrpc": "2.0", "method": "notifications/prompts/list_changed"})
    return text("changed")


def answer_discover(rid: object) -> None:
    how, _, rest = options.discover.partition(":")
    if how == "silent":
        return
    if how == "result":
        send({"jsonrpc": "2.0", "id": rid, "result": {
            "supportedVersions": rest.split(","), "capabilities": {"tools": {}}, "resultType": "complete",
            "ttlMs": 0, "cacheScope": "public"}})  # fmt: skip
        return
    code, _, detail = rest.partition(":")
    error: dict = {"code": int(code), "message": "refused by the fixture"}
    if detail and int(code) == -32021:
        error["data"] = {"requiredCapabilities": {detail: {}}}
    elif detail:
        error["data"] = {"supported": detail.split(","), "requested": "2026-07-28"}
    send({"jsonrpc": "2.0", "id": rid, "error": error})


def handle(request: dict) -> None:
    method = request["method"]
    rid = request["id"]
    if method == "server/discover" and options.discover:
        answer_discover(rid)
    elif method == "initialize":
        client_capabilities.update(request["params"].get("capabilities") or {})
        capabilities: dict = {"tools": {"listChanged": True}, "logging": {}}
        if options.resources is not None:
            capabilities.update(resources={"subscribe": True, "listChanged": True}, prompts={"listChanged": True},
                                completions={})
        send({"jsonrpc": "2.0", "id": rid, "result": {
            "protocolVersion": options.initialize_version or request["params"]["protocolVersion"],
            "capabilities": capabilities,
            "serverInfo": {"name": options.name, "version": "1.0"},
            **({"instructions": options.instructions} if options.instructions else {}),
        }})
    elif options.resources is not None and method in RESOURCE_METHODS:
        try:
            result = handle_resources(request)
        except KeyError as e:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32002, "message": "Resource not found",
                                                        "data": {"uri": e.args[0]}}})
            return
        except LookupError as e:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32603, "message": str(e)}})
            return
        if result is None:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}})
        elif result is not SILENT:
            send({"jsonrpc": "2.0", "id": rid, "result": result})
    elif method == "server/discover" and options.modern_ttl is not None:
        send({"jsonrpc": "2.0", "id": rid, "result": {
            "supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}},
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": options.name, "version": "1.0"}}}})
    elif method == "tools/list":
        tools = all_tools()
        start = int((request.get("params") or {}).get("cursor") or 0)
        size = options.page_size or len(tools)
        result: dict = {"tools": tools[start:start + size]}
        if options.modern_ttl is not None:
            result.update(resultType="complete", ttlMs=options.modern_ttl)
        if start + size < len(tools):
            result["nextCursor"] = str(start + size)
        send({"jsonrpc": "2.0", "id": rid, "result": result})
    elif method == "tools/call":
        threading.Thread(target=handle_call, args=(request,), daemon=True).start()
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": rid, "result": {}})
    elif method == "logging/setLevel":
        notifications.append(request)
        send({"jsonrpc": "2.0", "id": rid, "result": {}})
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}})


def main() -> None:
    global options
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="fixture")
    parser.add_argument("--instructions")
    parser.add_argument("--page-size", type=int, default=0)
    parser.add_argument("--extra-tools", type=int, default=0)
    parser.add_argument("--tools-from", metavar="FILE:SERVER", help="also list SERVER's tools from a catalog file")
    parser.add_argument("--only")
    parser.add_argument("--sampling-tool", action="store_true")
    parser.add_argument("--ask-roots", action="store_true")
    parser.add_argument("--banner", action="store_true")
    parser.add_argument("--modern-ttl", type=int, default=None)
    parser.add_argument("--start-delay", type=float, default=0)
    parser.add_argument("--record")
    parser.add_argument("--resources", type=int, default=None)
    parser.add_argument("--shared-resources", action="store_true")
    parser.add_argument("--no-templates", action="store_true")
    parser.add_argument("--broken-lists", choices=["error", "silent"])
    parser.add_argument("--odd-listings", action="store_true")
    parser.add_argument("--stubborn", action="store_true")
    parser.add_argument("--discover")
    parser.add_argument("--initialize-version")
    options = parser.parse_args()
    sys.setrecursionlimit(20_000)  # the nested tool writes lines deeper than a default parser reads
    if options.stubborn:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if options.banner:
        print("fixture server starting (not JSON)", flush=True)
    if options.start_delay:
        time.sleep(options.start_delay)
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        if options.record:
            with open(options.record, "a") as f:
                f.write(json.dumps(message) + "\n")
        if "method" in message and "id" in message:
            handle(message)
        elif "method" in message:
            notifications.append(message)
            if message["method"] == "notifications/initialized" and options.ask_roots:
                threading.Thread(target=ask_roots, daemon=True).start()
        else:
            with answered:
                answers[message.get("id")] = message
                answered.notify_all()
    while options.stubborn:
        time.sleep(60)


if __name__ == "__main__":
    main()
