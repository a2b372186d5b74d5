"""What the two HTTP transports share: the URL check, the HTTP session, the authorizer, events.

Both :mod:`.http` (Streamable HTTP) and :mod:`.sse` (legacy HTTP+SSE) build
on :class:`RemoteTransport`, and read server-sent events through
:class:`EventStream`; neither imports the other.
"""

from __future__ import annotations

import json
import re
import threading

from .. import auth
from ...base import jsonrpc, log, web
from ...base.config import DEFAULT_MAX_MESSAGE_BYTES, public_url
from .base import Transport, TransportClosed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import requests

    from ..auth.authorizer import Authorizer
    from ...base.config import ServerConfig

# (connect, read) for requests that stream: the read timeout bounds the
# silence between bytes; the call's own deadline is the upstream session's.
STREAM_TIMEOUT = (10.0, 600.0)
# Retries after a 401/403 per exchange: refresh, new token, step-up.
MAX_AUTH_RETRIES = 3
# What the HTTP transports import: (module, the package that installs it).
PACKAGES = (("requests", "requests"), ("sseclient", "sseclient-py"))


def missing_packages() -> list[str]:
    """The packages of :data:`PACKAGES` this interpreter cannot import (found without importing them)."""
    import importlib.util

    return [package for module, package in PACKAGES if importlib.util.find_spec(module) is None]


def missing_message(missing: list[str], python: str) -> str:
    """One sentence naming the *missing* packages and the command that installs them for *python*."""
    names = " and ".join(missing)
    what = f"the Python package {names} is" if len(missing) == 1 else f"the Python packages {names} are"
    return (f"{what} missing (http and sse servers need requests and sseclient-py); "
            f"install with: {python} -m pip install {' '.join(missing)}")
# The reconnection delay when the server names none (SSE ``retry``), and the most it may ask for.
DEFAULT_RETRY = 1.0
MAX_RETRY = 30.0
# The id of a response too large to read, from its first bytes: only where
# the id comes just before "result" or "error" (the Python SDK's order), so
# that an id nested in a result is never mistaken for it.
_RESPONSE_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,200}")\s*,\s*"(?:result|error)"\s*:')


class EventStream:
    """One logical stream of server-sent events, across the connections that carry it.

    It remembers the last event id (for ``Last-Event-ID`` when resuming) and
    the server's ``retry`` delay, caps every event at the transport's
    message limit (:func:`web.sse_events`), and can be stopped from any
    thread — also while its reader is opening a new connection: a response
    attached after :meth:`stop` is closed at once, so no reader is left
    blocked on it.  Used for each Streamable HTTP response stream, the
    standing GET stream, and the legacy HTTP+SSE stream.

    Threading contract: one thread reads (:meth:`attach`, :meth:`events`,
    :meth:`wait_retry`, and the fields ``last_id`` and ``retry``, which only
    it touches); :meth:`stop` may be called from any thread.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.last_id: str | None = None
        self.retry = DEFAULT_RETRY
        self._stopped = threading.Event()  # set once, by stop(); wakes wait_retry
        self._lock = threading.Lock()
        self._response: requests.Response | None = None  # guarded by _lock: the connection being read

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def attach(self, response: requests.Response) -> bool:
        """Make *response* the connection to read; False (and it is closed) when stopped."""
        with self._lock:
            if not self._stopped.is_set():
                self._response = response
                return True
        web.abort(response)
        return False

    def stop(self) -> None:
        """End the stream: the connection being read is aborted, any later one closed on arrival."""
        with self._lock:
            self._stopped.set()
            response, self._response = self._response, None
        web.abort(response)

    def wait_retry(self, factor: float = 1.0) -> bool:
        """Wait the server's ``retry`` delay (times *factor*); True when stopped meanwhile."""
        return self._stopped.wait(min(self.retry * factor, MAX_RETRY))

    def events(self, response: requests.Response):  # type: ignore[no-untyped-def]
        """The events of the attached *response* until it ends; a too-large one as :class:`web.MessageTooLarge`."""
        too_large: list[web.MessageTooLarge] = []
        try:
            for event in web.sse_events(response, self.limit, too_large):
                if event.id:
                    self.last_id = event.id
                if event.retry and str(event.retry).isdigit():
                    self.retry = min(int(event.retry) / 1000.0, MAX_RETRY)
                yield too_large[int(event.data)] if event.event == web.TOO_LARGE_EVENT else event
        finally:
            with self._lock:
                if self._response is response:
                    self._response = None
            response.close()


def too_large_answer(error: web.MessageTooLarge, what: str) -> dict | None:
    """An error response standing in for a too-large message that was a response; None otherwise."""
    found = _RESPONSE_ID.search(error.head)
    if found is None or _depth(error.head[: found.start()]) != 1:
        return None
    try:
        request_id = json.loads(found.group(1))
    except ValueError:
        return None
    return jsonrpc.error(request_id, jsonrpc.INTERNAL_ERROR, too_large_text(error, what))


def _depth(text: bytes) -> int:
    """How deep in JSON objects and arrays the end of *text* is (strings skipped)."""
    depth, in_string, escaped = 0, False, False
    for byte in text:
        if in_string:
            escaped, in_string = (not escaped and byte == 0x5C), in_string and (escaped or byte != 0x22)
        elif byte == 0x22:
            in_string = True
        elif byte in b"{[":
            depth += 1
        elif byte in b"}]":
            depth -= 1
    return depth


def too_large_text(error: web.MessageTooLarge, what: str) -> str:
    return (f"the server's {what} is larger than max_message_bytes ({error.size} bytes) and was dropped; "
            "raise max_message_bytes in the config if it is expected")  # fmt: skip


class RemoteTransport(Transport):
    """What the HTTP transports share: the URL check, the HTTP session, the authorizer."""

    def __init__(self, server: ServerConfig, auth_dir: str | None = None, auth_flow: str = auth.NEVER,
                 on_authorized: Any = None, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:  # fmt: skip
        self.server = server
        self.max_message_bytes = max_message_bytes
        self.name = server.name
        self.url = server.url
        self._auth_dir = auth_dir
        self._auth_flow = auth_flow
        self._on_authorized = on_authorized
        self._http: Any = None
        self._auth: Authorizer | None = None

    def _open(self, pool_size: int = 16) -> None:
        """Check the packages and the URL, make the HTTP session, and find the authorizer (none with ``headers``)."""
        missing = missing_packages()
        if missing:
            # Found now, not as a stream that ends without a word later on.
            import sys

            raise TransportClosed(missing_message(missing, sys.executable or "python3"))
        try:
            web.check_url(self.url, f"server {self.name}")
        except web.InsecureURL as e:
            raise TransportClosed(str(e)) from None
        self._http = web.session(pool_size)
        if not self.server.headers and self._auth_dir:
            self._auth = auth.for_server(self.server, self._auth_dir, self._auth_flow, self._on_authorized)

    def _headers_auth(self) -> dict:
        try:
            value = self._auth.header() if self._auth is not None else None
        except auth.AuthError as e:  # e.g. the sign-in directory is not the user's own
            raise TransportClosed(str(e)) from None
        return {"Authorization": value} if value else {}

    def _send_authorized(self, method: str, url: str, headers: dict, **kwargs: Any) -> requests.Response:
        """One HTTP exchange, retried after the authorizer deals with a 401 or 403.

        Raises :class:`TransportClosed` with a sentence for the user when the
        server cannot be reached or keeps refusing.
        """
        import requests

        for _attempt in range(MAX_AUTH_RETRIES + 1):
            sent = dict(headers)
            sent.update(self._headers_auth())
            try:
                response = self._http.request(method, url, headers=sent, **kwargs)
            except requests.RequestException as e:
                raise TransportClosed(f"cannot reach {public_url(url)} ({web.describe_error(e)})") from None
            except web.InsecureURL as e:
                raise TransportClosed(str(e)) from None
            status = response.status_code
            challenge = response.headers.get("WWW-Authenticate")
            scope_refused = status == 403 and "insufficient_scope" in (challenge or "")
            if status != 401 and not scope_refused:
                return response
            response.close()
            if self._auth is None:
                how = "with the headers in the config" if self.server.headers else "without credentials"
                raise TransportClosed(f"server {self.name} refused the request {how} (HTTP {status})")
            try:
                self._auth.refused(sent.get("Authorization"), status, challenge)
            except auth.AuthError as e:
                raise TransportClosed(str(e)) from None
        raise TransportClosed(f"server {self.name} keeps refusing its credentials (HTTP {status})")

    def _event_messages(self, event: Any) -> list:
        """The JSON-RPC messages of a ``message`` event; none for priming and other events."""
        if event.event != "message" or not event.data.strip():
            return []
        try:
            message = json.loads(event.data)
        except ValueError:
            log.debug("%s: skipped an event that is not JSON", self.name)
            return []
        return message if isinstance(message, list) else [message]
