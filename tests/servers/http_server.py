"""A real remote MCP server for tests: the official SDK over Streamable HTTP or HTTP+SSE.

    python http_server.py [--transport http|sse] [--json-response] [--oauth]
                          [--token-ttl SECONDS] [--resource-path PATH] [--scopes a,b] [--legacy-only]
                          [--port PORT] [--session-400] [--tls CERT KEY] [--trace-sessions]

It binds 127.0.0.1 on a free port and prints ``READY <port>`` on stdout once
it accepts connections.  With ``--oauth`` the same app is also the OAuth
authorization server (dynamic registration, PKCE, refresh), approving every
authorization at once, so a "browser" only has to follow the redirect.  Test
hooks: ``POST /test/drop-sessions`` (every session id answers 404 from now on),
``GET /test/stats`` (authorizations, refreshes, registrations, the
last authorization's scope and resource) and ``POST /test/expire`` (every
access token issued so far stops working).  ``--legacy-only`` answers
modern requests the way servers from before 2026 do (400, "Missing session ID").
``--session-400`` answers an unknown session id the way the TypeScript SDK
does (400, "No valid session ID provided") instead of the Python SDK's 404;
``--port`` binds a given port, so that a test can restart the server in place.
``--tls CERT KEY`` serves HTTPS with that certificate chain and key.
``--trace-sessions`` prints ``TRACE <method> <session id or ->`` on stderr as each request arrives.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import socket
import sys
import threading
import time
import warnings
from typing import Annotated

import uvicorn
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse

from mcp.server.auth.provider import AccessToken, AuthorizationCode, RefreshToken, construct_redirect_uri
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from mcp.types import CallToolResult, ImageContent, TextContent

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class Weather(BaseModel):
    city: str
    temp_c: float


class Provider:
    """An in-memory authorization server that approves every request at once."""

    def __init__(self, issuer: str, ttl: int) -> None:
        self.issuer = issuer
        self.ttl = ttl
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}
        self.stats = {"authorizations": 0, "refreshes": 0, "registrations": 0, "scope": None, "resource": None}

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.stats["registrations"] += 1
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client: OAuthClientInformationFull, params) -> str:  # noqa: ANN001
        code = secrets.token_urlsafe(16)
        self.codes[code] = AuthorizationCode(
            code=code, scopes=params.scopes or [], expires_at=time.time() + 300, client_id=client.client_id,
            code_challenge=params.code_challenge, redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly, resource=params.resource,
        )  # fmt: skip
        self.stats["scope"] = " ".join(params.scopes or [])
        self.stats["resource"] = params.resource
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state, iss=self.issuer)

    async def load_authorization_code(self, client, authorization_code: str):  # noqa: ANN001
        return self.codes.get(authorization_code)

    def _issue(self, client_id: str, scopes: list[str], resource: str | None) -> OAuthToken:
        access, refresh = "at-" + secrets.token_urlsafe(24), "rt-" + secrets.token_urlsafe(24)
        self.access[access] = AccessToken(token=access, client_id=client_id, scopes=scopes,
                                          expires_at=int(time.time()) + self.ttl, resource=resource)  # fmt: skip
        self.refresh[refresh] = RefreshToken(token=refresh, client_id=client_id, scopes=scopes, resource=resource)
        return OAuthToken(access_token=access, expires_in=self.ttl, refresh_token=refresh, scope=" ".join(scopes) or None)

    async def exchange_authorization_code(self, client, authorization_code) -> OAuthToken:  # noqa: ANN001
        self.codes.pop(authorization_code.code, None)
        self.stats["authorizations"] += 1
        return self._issue(client.client_id, authorization_code.scopes, authorization_code.resource)

    async def load_refresh_token(self, client, refresh_token: str):  # noqa: ANN001
        return self.refresh.get(refresh_token)

    async def exchange_refresh_token(self, client, refresh_token, scopes) -> OAuthToken:  # noqa: ANN001
        self.refresh.pop(refresh_token.token, None)
        self.stats["refreshes"] += 1
        return self._issue(client.client_id, scopes or refresh_token.scopes, refresh_token.resource)

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = self.access.get(token)
        if found is None or (found.expires_at and found.expires_at < time.time()):
            return None
        return found

    async def revoke_token(self, token) -> None:  # noqa: ANN001
        self.access.pop(token.token, None)
        self.refresh.pop(token.token, None)


def build(args: argparse.Namespace, port: int) -> MCPServer:
    base = f"http://127.0.0.1:{port}"
    mount = "/sse" if args.transport == "sse" else "/mcp"
    kwargs: dict = {}
    provider = None
    if args.oauth:
        provider = Provider(base, args.token_ttl)
        scopes = [s for s in args.scopes.split(",") if s]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kwargs["auth"] = AuthSettings(
                issuer_url=base, resource_server_url=base + (args.resource_path or mount),
                required_scopes=scopes or None, validate_token_resource=False,
                client_registration_options=ClientRegistrationOptions(enabled=True, valid_scopes=scopes or None),
            )  # fmt: skip
        kwargs["auth_server_provider"] = provider
    mcp = MCPServer("http-test-server", version="1.0.0", instructions="Remote test server.", **kwargs)

    @mcp.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @mcp.tool()
    def picture(caption: str) -> list:
        """A caption and a one-pixel PNG."""
        return [caption, Image(data=PNG, format="png")]

    @mcp.tool()
    def weather(city: str) -> Annotated[CallToolResult, Weather]:
        """Weather with structured content."""
        return CallToolResult(
            content=[TextContent(type="text", text=f"{city}: 21.5C"),
                     ImageContent(type="image", data=base64.b64encode(PNG).decode(), mime_type="image/png")],
            structured_content={"city": city, "temp_c": 21.5},
        )  # fmt: skip

    @mcp.tool()
    def big(size: int) -> str:
        """A text of *size* bytes (for message size limits)."""
        return "x" * size

    @mcp.tool()
    async def announce(text: str, ctx: Context) -> str:
        """Send a log message that belongs to no request (legacy: on the standalone stream)."""
        await ctx.session.send_log_message(level="info", data=text)
        return "announced"

    @mcp.custom_route("/test/drop-sessions", methods=["POST"])
    async def drop_sessions(request: Request) -> JSONResponse:
        mcp.session_manager._server_instances.clear()  # as if the server had restarted
        return JSONResponse({"ok": True})

    @mcp.custom_route("/test/stats", methods=["GET"])
    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(provider.stats if provider else {})

    @mcp.custom_route("/test/expire", methods=["POST"])
    async def expire(request: Request) -> JSONResponse:
        if provider:
            provider.access.clear()
        return JSONResponse({"ok": True})

    return mcp


def legacy_only(app):  # noqa: ANN001, ANN201
    """Refuse modern requests like a server that predates the 2026 revision."""
    import json

    async def wrapped(scope, receive, send):  # noqa: ANN001
        headers = dict(scope.get("headers") or []) if scope["type"] == "http" else {}
        if scope["type"] == "http" and headers.get(b"mcp-protocol-version", b"").startswith(b"2026"):
            body = json.dumps({"jsonrpc": "2.0", "id": None,
                               "error": {"code": -32600, "message": "Bad Request: Missing session ID"}}).encode()  # fmt: skip
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapped


def session_400(app):  # noqa: ANN001, ANN201
    """Answer an unknown session id like servers built on the TypeScript SDK: 400, not 404."""
    import json

    async def wrapped(scope, receive, send):  # noqa: ANN001
        rewrite = False

        async def send_rewritten(message):  # noqa: ANN001
            nonlocal rewrite
            if message["type"] == "http.response.start" and message["status"] == 404:
                rewrite = True
                body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {
                    "code": -32000, "message": "Bad Request: No valid session ID provided"}}).encode()  # fmt: skip
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json")]})  # fmt: skip
                await send({"type": "http.response.body", "body": body})
                return
            if not rewrite:
                await send(message)

        headers = dict(scope.get("headers") or []) if scope["type"] == "http" else {}
        await app(scope, receive, send_rewritten if b"mcp-session-id" in headers else send)

    return wrapped


def trace_sessions(app):  # noqa: ANN001, ANN201
    """Print each request's HTTP method and session id on arrival, in order."""

    async def wrapped(scope, receive, send):  # noqa: ANN001
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            sid = headers.get(b"mcp-session-id", b"-").decode()
            print(f"TRACE {scope['method']} {sid}", file=sys.stderr, flush=True)
        await app(scope, receive, send)

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["http", "sse"], default="http")
    parser.add_argument("--json-response", action="store_true")
    parser.add_argument("--oauth", action="store_true")
    parser.add_argument("--token-ttl", type=int, default=3600)
    parser.add_argument("--resource-path", default="")
    parser.add_argument("--scopes", default="")
    parser.add_argument("--legacy-only", action="store_true")
    parser.add_argument("--session-400", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--trace-sessions", action="store_true")
    args = parser.parse_args()

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart binds the same port
    # Accepted connections inherit this: without it, a response's body waits
    # for the ACK of its headers (Nagle against delayed ACK, 40 ms a request).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    mcp = build(args, port)
    app = mcp.sse_app() if args.transport == "sse" else mcp.streamable_http_app(json_response=args.json_response)
    if args.legacy_only:
        app = legacy_only(app)
    if args.session_400:
        app = session_400(app)
    if args.trace_sessions:
        app = trace_sessions(app)
    tls = {"ssl_certfile": args.tls[0], "ssl_keyfile": args.tls[1]} if args.tls else {}
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **tls))

    def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.01)
        print(f"READY {port}", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
