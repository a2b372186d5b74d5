"""Finding who authorizes a server: RFC 9728 resource metadata, RFC 8414 server metadata.

The order follows the MCP authorization specification: the
``resource_metadata`` URL from the server's ``WWW-Authenticate`` challenge,
else the path-aware then the root ``/.well-known/oauth-protected-resource``;
then the authorization server's ``oauth-authorization-server`` and
``openid-configuration`` documents, path-aware variants first.  Servers that
publish neither (the 2025-03-26 revision) get their own origin as issuer and
the conventional ``/authorize``, ``/token`` and ``/register`` endpoints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from ...base import log, web
from ...base.config import public_url
from .base import AuthError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import requests

_PARAM = re.compile(r'([A-Za-z0-9_\-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass
class Challenge:
    """The parameters of a ``Bearer`` challenge in ``WWW-Authenticate``."""

    resource_metadata: str | None = None
    scope: str | None = None
    error: str | None = None

    @classmethod
    def parse(cls, header: str | None) -> Challenge:
        if not header:
            return cls()
        # Several schemes may share the header; keep what follows "Bearer".
        m = re.search(r"(?i)\bbearer\b", header)
        text = header[m.end():] if m else header
        params: dict[str, str] = {}
        for pm in _PARAM.finditer(text):
            key = pm.group(1).lower()
            if key in params:
                continue
            value = pm.group(2) if pm.group(2) is not None else pm.group(3)
            params[key] = re.sub(r"\\(.)", r"\1", value)
        return cls(params.get("resource_metadata"), params.get("scope"), params.get("error"))


@dataclass
class Discovery:
    """Everything a flow needs to know about where to authorize."""

    resource: str  # sent as the RFC 8707 ``resource`` parameter
    issuer: str
    metadata: dict = field(default_factory=dict)
    resource_scopes: list[str] = field(default_factory=list)
    legacy_fallback: bool = False  # no metadata at all: guessed endpoints

    @property
    def authorization_endpoint(self) -> str:
        return str(self.metadata["authorization_endpoint"])

    @property
    def token_endpoint(self) -> str:
        return str(self.metadata["token_endpoint"])

    @property
    def registration_endpoint(self) -> str | None:
        value = self.metadata.get("registration_endpoint")
        return value if isinstance(value, str) and value else None


def canonical_resource(url: str) -> str:
    """The server URL as a resource indicator: lower-case scheme and host; no user, password, query or fragment.

    The indicator travels to the authorization server and into its logs: an
    API key in the URL's query or user part stays with the MCP server.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, "", ""))


def resource_covers(resource: str, server_url: str) -> bool:
    """True when the metadata's *resource* is the server URL or a parent of it."""
    r, s = urlsplit(canonical_resource(resource)), urlsplit(canonical_resource(server_url))
    if (r.scheme, r.netloc) != (s.scheme, s.netloc):
        return False
    rpath = r.path.rstrip("/")
    spath = s.path.rstrip("/")
    return spath == rpath or spath.startswith(rpath + "/")


def _origin(url: str) -> str:
    """``scheme://host:port`` of *url*, without a user or password (they are the MCP server's alone)."""
    parts = urlsplit(canonical_resource(url))
    return f"{parts.scheme}://{parts.netloc}"


def _path(url: str) -> str:
    path = urlsplit(url).path
    return "" if path in ("", "/") else path.rstrip("/")


def _get_json(http: requests.Session, url: str, what: str) -> dict | None:
    import requests

    web.check_url(url, what)
    try:
        response = http.get(url, headers={"Accept": "application/json"}, timeout=web.SHORT_TIMEOUT)
    except requests.RequestException as e:
        log.debug("GET %s failed: %s", url, type(e).__name__)
        return None
    log.debug("GET %s -> %s", url, response.status_code)
    if response.status_code != 200:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def protected_resource(http: requests.Session, server_url: str, challenge: Challenge) -> dict | None:
    """The server's RFC 9728 metadata, or None when it publishes none."""
    origin, path = _origin(server_url), _path(server_url)
    candidates = []
    if challenge.resource_metadata:
        # Named by the server: it may not point mcpzip at a service on this machine.
        candidates.append(web.check_referred(challenge.resource_metadata, server_url, "resource metadata"))
    if path:
        candidates.append(f"{origin}/.well-known/oauth-protected-resource{path}")
    candidates.append(f"{origin}/.well-known/oauth-protected-resource")
    for url in candidates:
        data = _get_json(http, url, "protected-resource metadata")
        if data is not None:
            return data
    return None


def authorization_server_urls(issuer: str) -> list[str]:
    """Where RFC 8414 and OpenID Connect put metadata for *issuer*, in the MCP order."""
    origin, path = _origin(issuer), _path(issuer)
    if path:
        return [
            f"{origin}/.well-known/oauth-authorization-server{path}",
            f"{origin}/.well-known/openid-configuration{path}",
            f"{origin}{path}/.well-known/openid-configuration",
        ]
    return [f"{origin}/.well-known/oauth-authorization-server", f"{origin}/.well-known/openid-configuration"]


def discover(http: requests.Session, server_name: str, server_url: str, challenge: Challenge) -> Discovery:
    """Find the authorization server of *server_url*; raises :class:`AuthError`."""
    prm = protected_resource(http, server_url, challenge)
    resource = canonical_resource(server_url)
    resource_scopes: list[str] = []
    if prm is not None:
        named = prm.get("resource")
        if not isinstance(named, str) or not named:
            # RFC 9728 §3.3: without it, nothing says the document is about this server.
            raise AuthError(f"server {server_name}: its protected-resource metadata names no resource; refusing to authorize")
        if not resource_covers(named, server_url):
            raise AuthError(
                f"server {server_name}: its protected-resource metadata names another resource "
                f"({named}), not {public_url(server_url)}; refusing to authorize"
            )
        resource = canonical_resource(named)
        servers = prm.get("authorization_servers")
        issuer = servers[0] if isinstance(servers, list) and servers and isinstance(servers[0], str) else None
        scopes = prm.get("scopes_supported")
        if isinstance(scopes, list):
            resource_scopes = [s for s in scopes if isinstance(s, str)]
        if issuer is None:
            raise AuthError(f"server {server_name}: its protected-resource metadata lists no authorization server")
        strict_issuer = True
    else:
        # 2025-03-26: no resource metadata; the server's origin is the issuer.
        issuer = _origin(server_url)
        strict_issuer = False
    web.check_referred(issuer, server_url, f"server {server_name}: authorization server")
    for url in authorization_server_urls(issuer):
        metadata = _get_json(http, url, "authorization server metadata")
        if metadata is None or not metadata.get("authorization_endpoint") or not metadata.get("token_endpoint"):
            continue
        found = _verified_issuer(server_name, metadata, url, issuer, strict_issuer)
        _check_endpoints(server_name, metadata, url)
        return Discovery(resource, found, metadata, resource_scopes)
    if strict_issuer:
        raise AuthError(f"server {server_name}: could not find the metadata of its authorization server {issuer}")
    origin = _origin(server_url)
    metadata = {
        "issuer": origin,
        "authorization_endpoint": f"{origin}/authorize",
        "token_endpoint": f"{origin}/token",
        "registration_endpoint": f"{origin}/register",
    }
    log.debug("%s: no OAuth metadata; using the default endpoints of %s", server_name, origin)
    return Discovery(resource, origin, metadata, resource_scopes, legacy_fallback=True)


def _verified_issuer(server_name: str, metadata: dict, url: str, issuer: str, strict: bool) -> str:
    """The issuer that *metadata*, fetched from *url*, may speak for; raises :class:`AuthError`.

    RFC 8414 §3.3: the ``issuer`` it names must be the one whose metadata URL
    was fetched — exactly the one the resource metadata named (*strict*), or,
    when mcpzip guessed from the server's origin, one whose metadata lives at
    *url*.  A document claiming another issuer could otherwise borrow that
    issuer's stored registration (its client secret included).
    """
    found = metadata.get("issuer")
    if found is None and not strict:
        return issuer  # nothing claimed: the issuer is where it was found
    if isinstance(found, str) and (found == issuer if strict else url in authorization_server_urls(found)):
        return found
    raise AuthError(
        f"server {server_name}: the authorization server metadata at {url} names issuer {found!r}, "
        f"not {issuer}; refusing to authorize"
    )


def _check_endpoints(server_name: str, metadata: dict, metadata_url: str) -> None:
    for key in ("authorization_endpoint", "token_endpoint", "registration_endpoint"):
        value = metadata.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise AuthError(f"server {server_name}: {key} in the authorization server metadata is not a URL")
            web.check_referred(value, metadata_url, f"server {server_name}: {key.replace('_', ' ')}")
