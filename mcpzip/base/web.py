"""HTTP client hygiene shared by the remote transports and OAuth.

Every URL mcpzip talks to over HTTP passes :func:`check_url`: TLS for
everything except loopback hosts, where plain ``http://`` is how local
servers and OAuth callbacks work.  :func:`session` makes the one
``requests.Session`` a transport or an authorization keeps for connection
reuse, with certificate verification that nothing can turn off.

``requests`` is imported here lazily, so stdio-only users never load it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import requests

# (connect, read) seconds for short exchanges: metadata, registration, tokens.
SHORT_TIMEOUT = (10.0, 30.0)
USER_AGENT = "mcpzip"
_session_cls = None  # built on first use: it subclasses requests.Session


class InsecureURL(ValueError):
    """A plain-http URL for a host that is not this machine."""


def is_loopback(host: str | None) -> bool:
    """``localhost``, 127.0.0.0/8 and ``::1`` — never anything a DNS answer could move."""
    import ipaddress

    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str) -> str:
    """Return *url* when it may be used; raise :class:`InsecureURL` otherwise.

    *what* names the URL for the error ("server linear", "token endpoint").
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        raise InsecureURL(f"{what}: {url!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname:
        return url
    if scheme == "http" and parts.hostname:
        if is_loopback(parts.hostname):
            return url
        raise InsecureURL(
            f"{what}: refusing plain http:// to {parts.hostname}; use https:// "
            "(plain http is allowed only for localhost, 127.0.0.0/8 and ::1)"
        )
    raise InsecureURL(f"{what}: {url!r} is not an http(s) URL")


def session(pool_size: int = 16) -> requests.Session:
    """A ``requests.Session`` that always verifies certificates and reuses connections."""
    from requests.adapters import HTTPAdapter

    global _session_cls
    if _session_cls is None:
        _session_cls = _session_class()
    s = _session_cls()
    s.headers["User-Agent"] = USER_AGENT
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    return s


def _session_class():  # type: ignore[no-untyped-def]
    import requests

    class VerifiedSession(requests.Session):
        """Refuses ``verify=False`` and redirects to plain-http hosts that are not loopback."""

        def request(self, method, url, **kwargs):  # type: ignore[no-untyped-def,override]
            kwargs["verify"] = kwargs.get("verify") if isinstance(kwargs.get("verify"), str) else True
            kwargs.setdefault("timeout", SHORT_TIMEOUT)
            return super().request(method, url, **kwargs)

        def get_redirect_target(self, resp):  # type: ignore[no-untyped-def]
            target = super().get_redirect_target(resp)
            if target:
                from urllib.parse import urljoin

                check_url(urljoin(resp.url, target), "redirect")
            return target

    return VerifiedSession



def describe_error(error: BaseException) -> str:
    """A short, secret-free reason for a failed HTTP exchange."""
    import requests

    if isinstance(error, requests.exceptions.SSLError):
        return "TLS certificate verification failed"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(error, requests.exceptions.Timeout):
        return "no answer in time"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "connection refused or lost"
    if isinstance(error, InsecureURL):
        return str(error)
    return type(error).__name__


def abort(response: requests.Response | None) -> None:
    """Close a streaming *response* now, waking a thread blocked reading it.

    Closing the file object alone does not interrupt a ``recv`` in progress
    on another thread; shutting the socket down does.
    """
    import socket

    if response is None:
        return
    try:
        sock = response.raw._fp.fp.raw._sock  # http.client response -> socket
        sock.shutdown(socket.SHUT_RDWR)
    except Exception:  # already closed, or a different stack underneath
        pass
    try:
        response.close()
    except Exception:
        pass


def sse_events(response: requests.Response):  # type: ignore[no-untyped-def]
    """The server-sent events of a streaming *response* (``sseclient`` events)."""
    import sseclient

    return sseclient.SSEClient(_chunks(response)).events()


def _chunks(response: requests.Response):  # type: ignore[no-untyped-def]
    # Whatever has arrived, as soon as it has: an event must not wait for
    # a buffer to fill (``iter_content`` may read to the end of an unchunked body).
    raw = response.raw
    if hasattr(raw, "read1"):
        while True:
            data = raw.read1(65536)
            if not data:
                return
            yield data
    else:  # urllib3 1.x
        yield from response.iter_content(chunk_size=None)
