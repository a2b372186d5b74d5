"""The one-shot local page the authorization server sends the browser back to.

It listens on 127.0.0.1 only, accepts exactly one callback whose ``state``
matches, shows the user a short page and stops.  A callback with a missing
or wrong ``state`` gets an error page and is never exchanged; the server
keeps waiting for the right one until the timeout.

Threading contract: :meth:`CallbackServer.wait` is called by the thread
running the flow; each connection is served on a thread of its own (with
its own timeout), so a connection that never sends a request — a browser's
speculative preconnect — delays neither the real callback nor the deadline,
which the waiting thread keeps by itself.
"""

from __future__ import annotations

import hmac
import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ...base import log
from .base import AuthError

CALLBACK_PATH = "/callback"
# How long one connection may take to send its request.
CONNECTION_TIMEOUT = 10.0
# How often the serving thread looks whether it should stop.
POLL_INTERVAL = 0.2


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck connection never keeps mcpzip alive
    block_on_close = False  # nor delays the end of the sign-in


class CallbackServer:
    """Bound at construction (``OSError`` when the port is busy); :meth:`wait` serves."""

    def __init__(self, port: int = 0) -> None:
        self._result: dict | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()  # guards _result and setting _done: one callback wins
        self._expected_state = b""
        self._httpd = _Server(("127.0.0.1", port), self._handler_class())

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"

    def close(self) -> None:
        self._httpd.server_close()

    def wait(self, state: str, timeout: float, server_name: str) -> dict:
        """Serve until the callback for *state* arrives; return its query parameters.

        Raises :class:`AuthError` on timeout, or when the authorization server
        reports an error for this ``state``.
        """
        self._expected_state = state.encode("utf-8")
        serving = threading.Thread(target=self._httpd.serve_forever, args=(POLL_INTERVAL,),
                                   name=f"mcpzip-callback-{server_name}", daemon=True)  # fmt: skip
        serving.start()
        try:
            if not self._done.wait(timeout):
                raise AuthError(
                    f"server {server_name}: no answer from the browser within {timeout:.0f}s; "
                    f"run `mcpzip login {server_name}` to try again"
                )
        finally:
            self._httpd.shutdown()  # returns once serve_forever has stopped
            serving.join()
            self.close()
        result = self._result or {}
        if "error" in result:
            detail = log.escape(result.get("error_description") or result["error"])  # its words: no terminal codes
            raise AuthError(f"server {server_name}: the authorization server refused: {detail}")
        return result

    def _handler_class(self) -> type:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            timeout = CONNECTION_TIMEOUT

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                if parts.path != CALLBACK_PATH:
                    self._page(404, "Not found", "This address only receives mcpzip's sign-in callback.")
                    return
                query = {k: v[0] for k, v in parse_qs(parts.query).items() if v}
                # Compared as bytes: compare_digest refuses str that is not ASCII.
                state = query.get("state", "").encode("utf-8", "surrogateescape")
                with owner._lock:
                    ours = bool(state) and hmac.compare_digest(state, owner._expected_state) and not owner._done.is_set()
                    complete = "error" in query or bool(query.get("code"))
                    if ours and complete:
                        owner._result = query
                        owner._done.set()
                if not ours:
                    self._page(
                        400,
                        "Sign-in link not recognised",
                        "This callback does not belong to the sign-in mcpzip is waiting for. "
                        "Start again from the link mcpzip printed.",
                    )
                    return
                if not complete:
                    self._page(400, "Sign-in incomplete", "The callback carried no authorization code.")
                    return
                if "error" in query:
                    self._page(400, "Sign-in refused", "The authorization server refused: "
                               + (query.get("error_description") or query["error"]))  # fmt: skip
                else:
                    self._page(200, "Signed in", "mcpzip is authorized. You can close this tab.")

            def _page(self, status: int, title: str, text: str) -> None:
                body = (
                    f"<!doctype html><meta charset=utf-8><title>mcpzip: {html.escape(title)}</title>"
                    f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
                ).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the query holds the authorization code: never log it

        return Handler
