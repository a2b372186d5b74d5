"""A remote upstream over the legacy HTTP+SSE transport (protocol 2024-11-05).

The client opens one long GET event stream; the server's first event,
``endpoint``, names the URL to POST messages to; every answer comes back on
the stream.  The endpoint must be on the same origin as the stream.

Threading contract: one thread reads the stream (an
:class:`~.remote.EventStream`) and delivers messages; ``send`` and ``close``
may be called from any thread; ``send`` returns once the server accepted
the POST.
"""

from __future__ import annotations

import threading
from urllib.parse import urljoin, urlsplit

from .. import auth
from ...base import jsonrpc, log, web
from ...base.config import DEFAULT_MAX_MESSAGE_BYTES
from .base import TransportClosed
from .remote import STREAM_TIMEOUT, EventStream, RemoteTransport, too_large_answer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import requests

    from ...base.config import ServerConfig
    from .base import OnClose, OnMessage

# How long the server may take to name its message endpoint.
ENDPOINT_WAIT = 15.0
# The most of a POST's answer that is read (servers say "Accepted").
ACCEPTED_BODY_BYTES = 65536


class SseTransport(RemoteTransport):
    def __init__(self, server: ServerConfig, auth_dir: str | None = None, auth_flow: str = auth.NEVER,
                 on_authorized: Any = None, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:  # fmt: skip
        super().__init__(server, auth_dir, auth_flow, on_authorized, max_message_bytes)
        self._endpoint: str | None = None  # written once by the reader, before _endpoint_known is set
        self._endpoint_known = threading.Event()
        self._stream = EventStream(max_message_bytes)
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closing = False  # guarded by _lock

    def start(self, on_message: OnMessage, on_close: OnClose) -> None:
        self._open(pool_size=8)
        headers = {"Accept": "text/event-stream", **self.server.headers}
        response = self._send_authorized("GET", self.url, headers, stream=True, timeout=STREAM_TIMEOUT)
        kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if response.status_code != 200 or kind != "text/event-stream":
            response.close()
            raise TransportClosed(f"the server answered HTTP {response.status_code} to the event stream request")
        if not self._stream.attach(response):
            raise TransportClosed("the connection is closed")
        self._reader = threading.Thread(target=self._read, args=(response, on_message, on_close),
                                        name=f"mcpzip-{self.name}-sse", daemon=True)  # fmt: skip
        self._reader.start()
        if not self._endpoint_known.wait(ENDPOINT_WAIT) or self._endpoint is None:
            self.close()
            raise TransportClosed(f"the server sent no endpoint event within {ENDPOINT_WAIT:.0f}s")

    def _read(self, response: requests.Response, on_message: OnMessage, on_close: OnClose) -> None:
        reason = "the event stream ended"
        try:
            for event in self._stream.events(response):
                if isinstance(event, web.MessageTooLarge):
                    self._dropped(event, on_message)
                    continue
                if event.event == "endpoint":
                    self._set_endpoint(event.data.strip())
                    continue
                for item in self._event_messages(event):
                    try:
                        on_message(item)
                    except Exception as e:  # a handler bug must not kill the reader
                        log.error("%s: failed to handle a message: %r", self.name, e)
        except Exception as e:
            reason = f"the event stream broke ({web.describe_error(e)})"
        finally:
            self._endpoint_known.set()
        with self._lock:
            closing = self._closing
        if not closing:
            on_close(reason)

    def _dropped(self, error: web.MessageTooLarge, on_message: OnMessage) -> None:
        """A message over the limit: an error for its call when its id can be read; the stream goes on."""
        answer = too_large_answer(error, "answer")
        if answer is not None:
            on_message(answer)
        else:
            log.warning("%s: dropped a message from the server larger than max_message_bytes (%d bytes)",
                        self.name, error.size)  # fmt: skip

    def _set_endpoint(self, value: str) -> None:
        endpoint = urljoin(self.url, value)
        a, b = urlsplit(endpoint), urlsplit(self.url)
        if (a.scheme, a.netloc) != (b.scheme, b.netloc):
            log.warning("%s: ignoring an endpoint on another origin (%s)", self.name, a.netloc)
        else:
            self._endpoint = endpoint
        self._endpoint_known.set()

    def send(self, message: dict) -> None:
        endpoint = self._endpoint
        with self._lock:
            closing = self._closing
        if endpoint is None or closing:
            raise TransportClosed("not connected")
        headers = {"Content-Type": "application/json", **self.server.headers}
        response = self._send_authorized("POST", endpoint, headers, data=jsonrpc.encode(message),
                                         timeout=web.SHORT_TIMEOUT, stream=True)  # fmt: skip
        status = response.status_code
        try:
            web.read_body(response, ACCEPTED_BODY_BYTES)  # read (never much) so that the connection is reused
        except Exception:  # too large or broken: the status is what counts
            pass
        if status == 404:
            raise TransportClosed("the server no longer knows this connection (HTTP 404)")
        if status >= 400:
            raise TransportClosed(f"the server refused the message (HTTP {status})")

    def close(self) -> None:
        """Stop the stream, wait for its reader (bounded), release the connections; safe to call twice."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._stream.stop()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2.0)
        if self._http is not None:
            self._http.close()
