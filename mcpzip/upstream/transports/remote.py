"""What the two HTTP transports share: the URL check, the HTTP session, the authorizer, events.

Both :mod:`.http` (Streamable HTTP) and :mod:`.sse` (legacy HTTP+SSE) build
on :class:`RemoteTransport`; neither imports the other.
"""

from __future__ import annotations

import json

from .. import auth
from ...base import log, web
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


class RemoteTransport(Transport):
    """What the HTTP transports share: the URL check, the HTTP session, the authorizer."""

    def __init__(self, server: ServerConfig, auth_dir: str | None = None, auth_flow: str = auth.NEVER,
                 on_authorized: Any = None) -> None:  # fmt: skip
        self.server = server
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
                raise TransportClosed(f"cannot reach {url} ({web.describe_error(e)})") from None
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
