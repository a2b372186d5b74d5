"""A small MCP server with its own OAuth authorization server, on 127.0.0.1, for the audit's tests.

Unlike the SDK's (tests/servers/http_server.py), every answer can be made
wrong the way an attacker or a broken server makes it, and every request is
recorded, so a test can say what mcpzip sent and to whom.  It runs in the test
process on a thread; :meth:`FakeServer.stop` ends it.
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit


class FakeServer:
    """One origin: an MCP endpoint at ``/mcp`` and, unless told otherwise, its authorization server.

    Settings (attributes, change them before mcpzip talks to it):

    * ``prm``: the protected-resource metadata document, or None for a 404
      (then mcpzip looks for authorization-server metadata on this origin);
    * ``as_metadata``: the authorization-server metadata, or None for a 404;
    * ``accept_tokens``: False makes the MCP endpoint refuse every token (401);
    * ``refuse_with``: (error, error_description) the authorization endpoint answers with, or None;
    * ``host``: the host name used in URLs (``127.0.0.1`` or ``localhost``: two origins);
    * ``callback_iss``: an ``iss`` to put on the authorization redirect (RFC 9207), or None for none.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[dict] = []  # what arrived: method, path, query, form, headers
        self.issued: list[str] = []
        self.accept_tokens = True
        self.refuse_with: tuple[str, str] | None = None
        self.callback_iss: str | None = None
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.host = host
        self.port = self._httpd.server_address[1]
        self.prm: dict | None = {"resource": self.url("/mcp"), "authorization_servers": [self.origin]}
        self.as_metadata: dict | None = self.metadata(self.origin)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def metadata(self, issuer: str) -> dict:
        """Authorization-server metadata naming *issuer*, with endpoints on this origin."""
        return {
            "issuer": issuer,
            "authorization_endpoint": self.url("/authorize"),
            "token_endpoint": self.url("/token"),
            "registration_endpoint": self.url("/register"),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
        }

    def seen(self, path: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- the server --------------------------------------------------------------

    def _handler(self) -> type:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _record(self) -> dict:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                entry = {"method": self.command, "path": parts.path, "query": parse_qs(parts.query),
                         "headers": dict(self.headers), "body": body,
                         "form": parse_qs(body) if "urlencoded" in (self.headers.get("Content-Type") or "") else {}}  # fmt: skip
                with owner._lock:
                    owner.requests.append(entry)
                return entry

            def _json(self, status: int, data: object, headers: dict | None = None) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                entry = self._record()
                path = entry["path"]
                if path.startswith("/.well-known/oauth-protected-resource") and owner.prm is not None:
                    self._json(200, owner.prm)
                elif path == "/.well-known/oauth-authorization-server" and owner.as_metadata is not None:
                    self._json(200, owner.as_metadata)
                elif path == "/authorize":
                    q = {k: v[0] for k, v in entry["query"].items()}
                    answer = {"code": "code-" + secrets.token_urlsafe(8)}
                    if owner.refuse_with is not None:
                        answer = {"error": owner.refuse_with[0], "error_description": owner.refuse_with[1]}
                    if owner.callback_iss is not None:
                        answer["iss"] = owner.callback_iss
                    target = q["redirect_uri"] + "?" + urlencode({**answer, "state": q.get("state", "")})
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._json(404, {"error": "not found"})

            def do_DELETE(self) -> None:  # noqa: N802
                self._record()
                self._json(200, {})

            def do_POST(self) -> None:  # noqa: N802
                entry = self._record()
                path = entry["path"]
                if path == "/register":
                    self._json(201, {"client_id": "client-" + secrets.token_urlsafe(6),
                                     "client_secret": "fresh-secret-" + secrets.token_urlsafe(12),
                                     "token_endpoint_auth_method": "client_secret_post"})  # fmt: skip
                elif path == "/token":
                    token = "at-" + secrets.token_urlsafe(16)
                    with owner._lock:
                        owner.issued.append(token)
                    self._json(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})
                elif path == "/mcp":
                    self._mcp(entry)
                else:
                    self._json(404, {"error": "not found"})

            def _mcp(self, entry: dict) -> None:
                sent = (entry["headers"].get("Authorization") or "").removeprefix("Bearer ")
                with owner._lock:
                    valid = owner.accept_tokens and sent in owner.issued
                if not valid:
                    challenge = f'Bearer resource_metadata="{owner.url("/.well-known/oauth-protected-resource/mcp")}"'
                    self._json(401, {"error": "invalid_token"}, {"WWW-Authenticate": challenge})
                    return
                message = json.loads(entry["body"] or "{}")
                method, rid = message.get("method"), message.get("id")
                if rid is None:
                    self.send_response(202)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif method == "initialize":
                    self._json(200, {"jsonrpc": "2.0", "id": rid, "result": {
                        "protocolVersion": message["params"]["protocolVersion"], "capabilities": {"tools": {}},
                        "serverInfo": {"name": "fake", "version": "1"}}})  # fmt: skip
                elif method == "tools/list":
                    self._json(200, {"jsonrpc": "2.0", "id": rid, "result": {"tools": [
                        {"name": "echo", "description": "Echo.", "inputSchema": {"type": "object"}}]}})  # fmt: skip
                elif method == "tools/call":
                    text = json.dumps((message.get("params") or {}).get("arguments"))
                    self._json(200, {"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": text}]}})
                else:
                    self._json(200, {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "not found"}})

        return Handler
