"""The authorization-code flow with PKCE, and token refresh.

One :func:`authorize` call: discover the authorization server, pick or
register a client, open the browser on the authorization URL (printing it
too), wait for the loopback callback, check ``state`` and ``iss``, and trade
the code for tokens.  The PKCE verifier lives only in this function's frame.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import string
import sys
import threading
from urllib.parse import quote, urlencode

from ...base import log, web
from .base import AuthError
from .callback import CallbackServer
from .discovery import Challenge, Discovery, discover
from .store import Store, Token

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import requests

    from ...base.config import ServerConfig

# How long a browser sign-in may take (MCPZIP_LOGIN_TIMEOUT overrides).
LOGIN_TIMEOUT = 300.0
VERIFIER_LENGTH = 128
_VERIFIER_CHARS = string.ascii_letters + string.digits + "-._~"
CLIENT_NAME = "mcpzip"


def login_timeout() -> float:
    try:
        return max(1.0, float(os.environ.get("MCPZIP_LOGIN_TIMEOUT", "")))
    except ValueError:
        return LOGIN_TIMEOUT


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge): 128 unreserved characters and base64url(SHA-256)."""
    verifier = "".join(secrets.choice(_VERIFIER_CHARS) for _ in range(VERIFIER_LENGTH))
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def choose_scope(disc: Discovery, challenge: Challenge, server: ServerConfig, wanted: list[str] | None) -> str | None:
    """The MCP scope-selection order: a step-up set, the challenge, the config, the resource's list."""
    if wanted:
        scopes = list(wanted)
    elif challenge.scope:
        scopes = challenge.scope.split()
    elif server.oauth and server.oauth.scopes:
        scopes = list(server.oauth.scopes)
    else:
        scopes = list(disc.resource_scopes)
    if not scopes:
        return None
    offered = disc.metadata.get("scopes_supported")
    if isinstance(offered, list) and "offline_access" in offered and "offline_access" not in scopes:
        scopes.append("offline_access")  # ask for a refresh token where the server has that scope
    return " ".join(dict.fromkeys(scopes))


def authorize(http: requests.Session, server: ServerConfig, store: Store, challenge: Challenge,
              wanted_scopes: list[str] | None = None) -> Token:  # fmt: skip
    """Run the whole browser flow for *server* and store the tokens; raises :class:`AuthError`."""
    try:
        disc = discover(http, server.name, server.url, challenge)
        methods = disc.metadata.get("code_challenge_methods_supported")
        if not disc.legacy_fallback and (not isinstance(methods, list) or "S256" not in methods):
            raise AuthError(
                f"server {server.name}: its authorization server does not offer PKCE with S256; "
                "mcpzip will not authorize without it"
            )
        scope = choose_scope(disc, challenge, server, wanted_scopes)
        try:
            client, callback = _client(http, server, store, disc, scope)
        except CallbackPortBusy as e:
            raise AuthError(
                f"server {server.name}: port {e.port} on 127.0.0.1, where the sign-in's answer must arrive, is taken "
                f"by another program ({e.reason}); close it, or delete {store.registration_path(disc.issuer)} "
                "to register anew on another port"
            ) from e
        try:
            token = _browser_flow(http, server, disc, client, callback, scope)
        finally:
            callback.close()
    except web.InsecureURL as e:
        raise AuthError(str(e)) from None
    store.save_token(server.url, token)
    log.info("%s: authorized; tokens stored in %s", server.name, store.token_path(server.url))
    return token


def _browser_flow(http: requests.Session, server: ServerConfig, disc: Discovery, client: dict,
                  callback: CallbackServer, scope: str | None) -> Token:  # fmt: skip
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(32)
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": callback.redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": state,
        "resource": disc.resource,
    }
    if scope:
        params["scope"] = scope
    endpoint = disc.authorization_endpoint
    url = endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)
    open_browser(url, server.name)
    result = callback.wait(state, login_timeout(), server.name)
    iss = result.get("iss")
    if iss is not None and iss != disc.issuer:
        raise AuthError(
            f"server {server.name}: the sign-in answer came from issuer {iss!r}, not {disc.issuer!r}; "
            "refusing it (possible mix-up attack)"
        )
    if iss is None and disc.metadata.get("authorization_response_iss_parameter_supported") is True:
        raise AuthError(f"server {server.name}: the sign-in answer lacks the issuer its server promised; refusing it")
    code = result["code"]
    log.add_secret(code)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": callback.redirect_uri,
        "code_verifier": verifier,
        "resource": disc.resource,
    }
    data = token_request(http, server.name, disc.token_endpoint, form, client)
    token_client = {
        "issuer": disc.issuer,
        "token_endpoint": disc.token_endpoint,
        "resource": disc.resource,
        **{k: v for k, v in client.items() if k in ("client_id", "client_secret", "auth_method")},
    }
    return Token.from_response(data, token_client)


def refresh(http: requests.Session, server_name: str, token: Token) -> Token:
    """A fresh token from *token*'s refresh token; raises :class:`AuthError`."""
    client = token.client
    endpoint = client.get("token_endpoint")
    if not token.refresh_token or not endpoint or not client.get("client_id"):
        raise AuthError(f"server {server_name}: the stored token cannot be refreshed")
    form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
    if client.get("resource"):
        form["resource"] = client["resource"]
    try:
        data = token_request(http, server_name, endpoint, form, client)
    except web.InsecureURL as e:
        raise AuthError(str(e)) from None
    return Token.from_response(data, client, previous=token)


def token_request(http: requests.Session, server_name: str, endpoint: str, form: dict, client: dict) -> dict:
    """POST to the token endpoint with the client's authentication method."""
    web.check_url(endpoint, f"server {server_name}: token endpoint")
    # client_id goes in the body with every method: servers differ on needing
    # it beside Basic authentication, and it is not a secret.
    form = dict(form, client_id=client["client_id"])
    headers = {"Accept": "application/json"}
    method = client.get("auth_method") or "none"
    secret = client.get("client_secret")
    if method == "client_secret_basic" and secret:
        pair = f"{quote(client['client_id'], safe='')}:{quote(secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    elif method == "client_secret_post" and secret:
        form["client_secret"] = secret
    status, data = _post(http, server_name, endpoint, "the token endpoint", data=form, headers=headers)
    if status != 200 or not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        detail = ""
        if isinstance(data, dict) and data.get("error"):
            detail = f": {data.get('error')}" + (f" ({data['error_description']})" if data.get("error_description") else "")
            detail = log.escape(detail)  # the authorization server's words: no terminal codes
        raise AuthError(f"server {server_name}: the token endpoint answered HTTP {status}{detail}")
    token_type = str(data.get("token_type") or "Bearer")
    if token_type.lower() != "bearer":
        raise AuthError(f"server {server_name}: the token endpoint issued a {token_type!r} token, not a Bearer token")
    log.add_secret(data.get("access_token"))
    log.add_secret(data.get("refresh_token"))
    return data


def _post(http: requests.Session, server_name: str, endpoint: str, what: str, **kwargs: Any) -> tuple[int, Any]:
    """POST to an authorization-server endpoint: (status, decoded JSON or None)."""
    import requests  # lazily: a third-party package, loaded only by a sign-in or refresh

    try:
        response = http.post(endpoint, timeout=web.SHORT_TIMEOUT, allow_redirects=False, **kwargs)
    except requests.RequestException as e:
        raise AuthError(f"server {server_name}: cannot reach {what} ({web.describe_error(e)})") from None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def open_browser(url: str, server_name: str) -> None:
    """Print the URL on stderr and open it with ``webbrowser`` (which honours ``$BROWSER``).

    Opening happens on a thread of its own: some browsers (and ``$BROWSER``
    scripts) return only when done, and the callback must be served meanwhile.
    """
    print(f"mcpzip: to authorize {server_name}, open this URL (trying your browser now):\n  {url}",
          file=sys.stderr, flush=True)  # fmt: skip

    def run() -> None:
        import webbrowser  # lazily: it loads subprocess and shlex, needed only to sign in

        try:
            if not webbrowser.open(url):
                log.info("%s: no browser could be opened; use the URL printed above", server_name)
        except Exception as e:  # a broken $BROWSER must not break the flow
            log.info("%s: opening the browser failed (%s); use the URL printed above", server_name, e)

    t = threading.Thread(target=run, name=f"mcpzip-browser-{server_name}", daemon=True)
    t.start()


# -- clients ------------------------------------------------------------------


class CallbackPortBusy(Exception):
    """The callback port a registration needs is taken (an ``OSError`` when binding it)."""

    def __init__(self, port: int, error: OSError) -> None:
        super().__init__(port)
        self.port = port
        self.reason = error.strerror or str(error)


def _listen(port: int) -> CallbackServer:
    """A callback server on *port*, which must be that one; raises :class:`CallbackPortBusy`."""
    try:
        return CallbackServer(port)
    except OSError as e:
        raise CallbackPortBusy(port, e) from e


def _client(http: requests.Session, server: ServerConfig, store: Store, disc: Discovery,
            scope: str | None) -> tuple[dict, CallbackServer]:  # fmt: skip
    """The client to authorize as, and a callback server bound for its redirect URI.

    The specification's order: the user's configured client, a stored
    registration for this issuer, a new dynamic registration.
    """
    configured = server.oauth.client_id if server.oauth else None
    if configured:
        if configured.startswith("https://") and disc.metadata.get("client_id_metadata_document_supported") is True:
            # A Client ID Metadata Document client: its URL is its identity.
            return {"client_id": configured, "auth_method": "none"}, CallbackServer(0)
        return _configured_client(server, store, disc)
    with store.lock("client " + disc.issuer, timeout=30.0):
        registration = store.load_registration(disc.issuer)
        if registration is not None and registration.get("source") == "dynamic":
            try:
                return registration, CallbackServer(int(registration.get("port") or 0))
            except OSError:
                log.info("%s: callback port %s is busy; registering a new client", server.name, registration.get("port"))
        registration = _register(http, server, disc, scope)
        callback = _listen(registration["port"])
        store.save_registration(disc.issuer, registration)
        return registration, callback


def _configured_client(server: ServerConfig, store: Store, disc: Discovery) -> tuple[dict, CallbackServer]:
    assert server.oauth is not None and server.oauth.client_id
    secret = server.oauth.client_secret
    offered = disc.metadata.get("token_endpoint_auth_methods_supported")
    offered = offered if isinstance(offered, list) else ["client_secret_basic"]
    if not secret:
        method = "none"
    elif "client_secret_basic" in offered or "client_secret_post" not in offered:
        method = "client_secret_basic"
    else:
        method = "client_secret_post"
    client = {"client_id": server.oauth.client_id, "auth_method": method, "source": "config"}
    if secret:
        client["client_secret"] = secret
    # Pre-registered redirect URIs are matched exactly: keep the port stable.
    with store.lock("client " + disc.issuer, timeout=30.0):
        stored = store.load_registration(disc.issuer)
        port = 0
        if stored and stored.get("source") == "config" and stored.get("client_id") == client["client_id"]:
            port = int(stored.get("port") or 0)
        try:
            callback = CallbackServer(port)
        except OSError:
            log.info("%s: callback port %s is busy; using another (a redirect URI registered for it no longer matches)",
                     server.name, port)  # fmt: skip
            callback = _listen(0)
        if callback.port != port:
            store.save_registration(disc.issuer, {"client_id": client["client_id"], "source": "config", "port": callback.port})
    return client, callback


def _register(http: requests.Session, server: ServerConfig, disc: Discovery, scope: str | None) -> dict:
    """RFC 7591 dynamic registration of a native client with a loopback redirect URI."""
    endpoint = disc.registration_endpoint
    if not endpoint:
        raise AuthError(
            f"server {server.name}: its authorization server does not register clients automatically; "
            'add "oauth": {"client_id": …} to this server in the config'
        )
    web.check_url(endpoint, f"server {server.name}: registration endpoint")
    probe = CallbackServer(0)  # pick a free port now; it is bound again for each flow
    port = probe.port
    probe.close()
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    offered = disc.metadata.get("token_endpoint_auth_methods_supported")
    if not isinstance(offered, list) or "none" in offered:
        method = "none"
    elif "client_secret_basic" in offered:
        method = "client_secret_basic"
    else:
        method = "client_secret_post"
    body: dict = {
        "client_name": CLIENT_NAME,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        "application_type": "native",
    }
    if scope:
        body["scope"] = scope
    status, data = _post(http, server.name, endpoint, "the registration endpoint", json=body,
                         headers={"Accept": "application/json"})  # fmt: skip
    if status not in (200, 201) or not isinstance(data, dict) or not isinstance(data.get("client_id"), str):
        raise AuthError(f"server {server.name}: client registration failed (HTTP {status})")
    registration = {
        "client_id": data["client_id"],
        "auth_method": data.get("token_endpoint_auth_method") or method,
        "redirect_uri": redirect_uri,
        "port": port,
        "source": "dynamic",
    }
    if isinstance(data.get("client_secret"), str):
        registration["client_secret"] = data["client_secret"]
        log.add_secret(data["client_secret"])
        if registration["auth_method"] == "none":
            registration["auth_method"] = "client_secret_basic" if method != "client_secret_post" else method
    if isinstance(data.get("client_secret_expires_at"), (int, float)):
        registration["client_secret_expires_at"] = data["client_secret_expires_at"]
    log.info("%s: registered client with %s", server.name, disc.issuer)
    return registration
