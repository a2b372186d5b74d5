"""HTTP client hygiene shared by the remote transports and OAuth.

Every URL mcpzip talks to over HTTP passes :func:`check_url`: TLS for
everything except loopback hosts, where plain ``http://`` is how local
servers and OAuth callbacks work.  A URL that one server's answer names
(metadata, a redirect) also passes :func:`check_referred`: a remote
server may not send mcpzip to this machine.  :func:`session` makes the one
``requests.Session`` a transport or an authorization keeps for connection
reuse, with certificate verification that nothing can turn off (the
system's certificate store and the bundled one, TLS 1.2 or newer) and no
redirect to another origin.

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
_tls_context = None  # built on first use: loading the certificates takes a few ms


# Characters no authority (user@host:port) may hold: parsers disagree about
# where it ends around them (``http://evil.test\@localhost/``).
_AUTHORITY_FORBIDDEN = frozenset("\\ \x7f") | frozenset(map(chr, range(32)))


class InsecureURL(ValueError):
    """A URL mcpzip refuses: plain http to a host that is not this machine, or one parsers may read two ways."""


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
    if _AUTHORITY_FORBIDDEN.intersection(_raw_authority(url)):
        # urllib.parse and urllib3 would each find a different host in it.
        raise InsecureURL(f"{what}: the host part of the URL holds a backslash, a space or a control character")
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


def _raw_authority(url: str) -> str:
    """The text between ``scheme://`` and the first ``/``, ``?`` or ``#``, unparsed."""
    start = url.find("://")
    rest = url[start + 3 :] if start >= 0 else url
    end = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)])
    return rest[:end]


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of *url*, with the scheme's default port filled in."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def check_referred(url: str, referrer: str, what: str) -> str:
    """Return *url*, named in an answer from *referrer*, when mcpzip may follow it.

    Besides :func:`check_url`: a server that is not on this machine may not
    send mcpzip to one that is (metadata or a redirect pointing at a service
    on 127.0.0.1 would be request forgery against this machine).
    """
    check_url(url, what)
    _, target_host, _ = origin(url)
    _, referrer_host, _ = origin(referrer)
    if is_loopback(target_host) and not is_loopback(referrer_host):
        raise InsecureURL(f"{what}: {referrer_host} may not send mcpzip to this machine ({target_host})")
    return url


def session(pool_size: int = 16) -> requests.Session:
    """A ``requests.Session`` that always verifies certificates and reuses connections."""
    global _session_cls
    if _session_cls is None:
        _session_cls = _session_class()
    s = _session_cls()
    s.headers["User-Agent"] = USER_AGENT
    adapter = _session_cls.adapter(pool_connections=4, pool_maxsize=pool_size)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    return s


def _session_class():  # type: ignore[no-untyped-def]
    import requests
    from requests.adapters import HTTPAdapter

    class TrustingAdapter(HTTPAdapter):
        """Connects with :func:`tls_context`, directly or through a proxy."""

        def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            kwargs["ssl_context"] = tls_context()
            super().init_poolmanager(*args, **kwargs)

        def proxy_manager_for(self, proxy, **kwargs):  # type: ignore[no-untyped-def]
            kwargs["ssl_context"] = tls_context()
            return super().proxy_manager_for(proxy, **kwargs)

    class VerifiedSession(requests.Session):
        """Refuses ``verify=False``, redirects to another origin, and URLs :func:`check_url` refuses."""

        adapter = TrustingAdapter

        def request(self, method, url, **kwargs):  # type: ignore[no-untyped-def,override]
            check_url(url, "request")
            # A path (REQUESTS_CA_BUNDLE, say) adds to the trusted certificates; False is ignored.
            kwargs["verify"] = kwargs.get("verify") if isinstance(kwargs.get("verify"), str) else True
            kwargs.setdefault("timeout", SHORT_TIMEOUT)
            return super().request(method, url, **kwargs)

        def get_redirect_target(self, resp):  # type: ignore[no-untyped-def]
            target = super().get_redirect_target(resp)
            if target:
                from urllib.parse import urljoin

                # requests would carry config headers, the session id and the
                # body to any host (it strips only Authorization): MCP needs
                # no redirect beyond its own origin (``/mcp`` -> ``/mcp/``).
                absolute = urljoin(resp.url, target)
                check_url(absolute, "redirect")
                if origin(absolute) != origin(resp.url):
                    raise InsecureURL(f"refusing a redirect from {_origin_text(resp.url)} to another origin "
                                      f"({_origin_text(absolute)})")  # fmt: skip
            return target

    return VerifiedSession


def _origin_text(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}"


def tls_context():  # type: ignore[no-untyped-def]
    """The one TLS client context: the system's certificate store and the bundled one, TLS 1.2 or newer.

    The system store is OpenSSL's default paths (which ``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` move), or the operating system's own verifier when the
    optional ``truststore`` package is installed (macOS, Windows).  The
    bundled store is certifi's, the one ``requests`` ships.  A
    ``REQUESTS_CA_BUNDLE`` is added per connection by ``requests``.
    """
    global _tls_context
    if _tls_context is None:
        import ssl

        try:
            import truststore

            context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        except ImportError:
            context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        bundled = _bundled_cas()
        if bundled:
            context.load_verify_locations(cafile=bundled)
        _tls_context = context  # a race builds two equal contexts; either will do
    return _tls_context


def _bundled_cas() -> str | None:
    try:
        from requests.certs import where
    except ImportError:
        return None
    path = where()
    import os

    return path if os.path.isfile(path) else None


def trust_stores() -> list[str]:
    """What mcpzip trusts, in words for the user (``doctor`` on a certificate failure)."""
    import os
    import ssl

    paths = ssl.get_default_verify_paths()
    system = " and ".join(p for p in (paths.cafile, paths.capath) if p) or "none found"
    try:
        import truststore  # noqa: F401

        stores = ["the operating system's certificate store (through truststore)"]
    except ImportError:
        stores = [f"the system certificate store ({system}; SSL_CERT_FILE / SSL_CERT_DIR move it)"]
    stores.append(f"the bundle that ships with requests ({_bundled_cas() or 'not found'})")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if os.environ.get(name):
            stores.append(f"{name}={os.environ[name]}")
    return stores


CA_HINT = ("to trust your company's certificate authority, set SSL_CERT_FILE or REQUESTS_CA_BUNDLE "
           "to a PEM file that holds it (with the usual CAs), or add it to the system's certificate store")



def describe_error(error: BaseException) -> str:
    """A short, secret-free reason for a failed HTTP exchange."""
    import requests

    if isinstance(error, requests.exceptions.SSLError):
        return _tls_failure(str(error))
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(error, requests.exceptions.Timeout):
        return "no answer in time"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "connection refused or lost"
    if isinstance(error, InsecureURL):
        return str(error)
    return type(error).__name__


def _tls_failure(text: str) -> str:
    # The reason OpenSSL gives, without the host names around it.
    if "CERTIFICATE_VERIFY_FAILED" in text:
        reason = text.split("certificate verify failed:", 1)[-1].split("(_ssl", 1)[0].strip(" ')\"")
        return f"TLS certificate verification failed: {reason}" if reason and len(reason) < 80 else (
            "TLS certificate verification failed")
    if any(w in text for w in ("PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE")):
        return "TLS handshake failed: the server offers only TLS older than 1.2"
    return "TLS handshake failed"


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


class MessageTooLarge(Exception):
    """A body or event over the size limit: dropped unread.  *head* is its first bytes, for its id."""

    def __init__(self, size: int, head: bytes = b"") -> None:
        super().__init__(f"larger than {size} bytes")
        self.size = size
        self.head = head


# sseclient's event type for one that was over the limit (dropped; its head kept).
TOO_LARGE_EVENT = "mcpzip-too-large"
_HEAD_BYTES = 512
# What ends a server-sent event (sseclient splits at the same places).
_EVENT_ENDS = (b"\r\r", b"\n\n", b"\r\n\r\n")


def read_body(response: requests.Response, limit: int) -> bytes:
    """The whole body of a streamed *response*, or :class:`MessageTooLarge` past *limit* bytes."""
    parts: list[bytes] = []
    total = 0
    try:
        for chunk in response.iter_content(65536):
            total += len(chunk)
            if total > limit:
                raise MessageTooLarge(limit, b"".join(parts)[:_HEAD_BYTES] or chunk[:_HEAD_BYTES])
            parts.append(chunk)
    finally:
        response.close()
    return b"".join(parts)


def sse_events(response: requests.Response, limit: int, too_large: list):  # type: ignore[no-untyped-def]
    """The server-sent events of a streaming *response* (``sseclient`` events).

    An event over *limit* bytes is never held whole: it is skipped, its
    :class:`MessageTooLarge` appended to *too_large*, and an event of type
    :data:`TOO_LARGE_EVENT` (data: its index there) stands in its place.
    The stream goes on.
    """
    import sseclient

    return sseclient.SSEClient(_bounded_events(_chunks(response), limit, too_large)).events()


def _bounded_events(chunks, limit: int, too_large: list):  # type: ignore[no-untyped-def]
    # Whole events only, each at most *limit* bytes: memory stays below
    # *limit* plus one chunk whatever the server sends.
    pending = bytearray()
    skipping: MessageTooLarge | None = None
    for chunk in chunks:
        scan = max(0, len(pending) - 3)
        pending += chunk
        start = 0
        for end in _event_ends(pending, scan):
            if skipping is not None:
                too_large.append(skipping)
                skipping = None
                yield f"event: {TOO_LARGE_EVENT}\ndata: {len(too_large) - 1}\n\n".encode()
            elif end - start > limit:
                too_large.append(MessageTooLarge(limit, bytes(pending[start : start + _HEAD_BYTES])))
                yield f"event: {TOO_LARGE_EVENT}\ndata: {len(too_large) - 1}\n\n".encode()
            else:
                yield bytes(pending[start:end])
            start = end
        del pending[:start]
        if len(pending) > limit:
            if skipping is None:
                skipping = MessageTooLarge(limit, bytes(pending[:_HEAD_BYTES]))
            del pending[:-3]  # kept: an end may begin in them


def _event_ends(data: bytearray, start: int):  # type: ignore[no-untyped-def]
    """Where each event that ends at or after *start* ends, in order (one pass per kind of end)."""
    found = {end: data.find(end, start) for end in _EVENT_ENDS}
    pos = start
    while True:
        for end, i in found.items():
            if 0 <= i < pos:
                found[end] = data.find(end, pos)
        ends = [i + len(end) for end, i in found.items() if i >= 0]
        if not ends:
            return
        pos = min(ends)
        yield pos


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
