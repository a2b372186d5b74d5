"""One server's credentials: the header to send, and what to do when it is refused.

Threading contract: every method may be called from any thread.  A lock
serialises refreshes and the start of a browser flow, so concurrent 401s
cause one refresh and at most one flow; the flow itself additionally holds a
file lock, so two mcpzip processes never run it for the same server at
once — the second waits and then uses the first one's tokens.
"""

from __future__ import annotations

import threading
import time

from ...base import log, web
from .base import BACKGROUND, FOREGROUND, AuthError, AuthRequired
from .discovery import Challenge
from .store import Store, Token, mcp_remote_token

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from ...base.config import ServerConfig

# Re-authorizations a 403 insufficient_scope may cause for one required
# scope set before mcpzip gives up (the server keeps refusing).
MAX_STEP_UPS = 2
# Sign-ins ``serve`` starts by itself for one server before it leaves the
# next to the user (`mcpzip login NAME`): a server that refuses every token
# must not open browser window after browser window.
MAX_BACKGROUND_FLOWS = 3
# The least time between two background sign-ins, doubled after each one.
BACKGROUND_BACKOFF = 30.0
# A token a sign-in gave this recently that is refused again means the
# server refuses what its own sign-in gives: another sign-in will not help.
FRESH_TOKEN_SECONDS = 300.0


class Authorizer:
    def __init__(self, server: ServerConfig, auth_dir: str, mode: str,
                 on_authorized: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.server = server
        self.name = server.name
        self.store = Store(auth_dir)
        self.mode = mode
        self.on_authorized = on_authorized
        self._lock = threading.RLock()
        self._token: Token | None = None
        self._loaded = False
        self._flow: threading.Thread | None = None
        self._flow_error: str | None = None
        self._step_ups: dict[str, int] = {}
        # Background sign-ins so far, when the last started, and the header its token makes (guarded by _lock).
        self._background_flows = 0
        self._last_flow_start = 0.0
        self._flow_header: tuple[str, float] | None = None
        self._http = None

    @property
    def http(self):  # type: ignore[no-untyped-def]
        if self._http is None:
            self._http = web.session(pool_size=4)
        return self._http

    # -- what transports call ---------------------------------------------------

    def header(self) -> str | None:
        """The ``Authorization`` value to send now (refreshing an expired token first)."""
        with self._lock:
            token = self._current()
            if token is not None and token.expired() and token.refresh_token:
                token = self._refresh_shared(token) or token
            return f"Bearer {token.access_token}" if token is not None else None

    def refused(self, sent: str | None, status: int, www_authenticate: str | None) -> None:
        """A request carrying *sent* got *status* (401, or 403 insufficient_scope).

        Returns when a retry may succeed (a newer or refreshed token, or a
        foreground flow that completed); raises :class:`AuthError` (or
        :class:`AuthRequired`) otherwise.
        """
        challenge = Challenge.parse(www_authenticate)
        with self._lock:
            current = self._current(reload=True)
            if current is not None and f"Bearer {current.access_token}" != sent:
                return  # another thread or process already has a newer token
            if status == 401:
                self._check_fresh_token_refused(sent)
            if self._flow is not None and self._flow.is_alive():
                raise AuthRequired(self._pending_message())
            wanted: list[str] | None = None
            if status == 401:
                if current is not None and current.refresh_token and self._refresh_shared(current):
                    return
            else:
                required = (challenge.scope or "").split()
                key = " ".join(sorted(required))
                count = self._step_ups.get(key, 0)
                if count >= MAX_STEP_UPS:
                    raise AuthError(
                        f"server {self.name} still refuses access after {count} sign-ins asking for the scopes "
                        f"it named ({challenge.scope or 'none named'}); check your account's permissions"
                    )
                self._step_ups[key] = count + 1
                held = current.scopes() if current is not None else []
                wanted = list(dict.fromkeys(held + required)) or None
            self._new_flow(challenge, wanted, sent)

    # -- tokens ------------------------------------------------------------------

    def _current(self, reload: bool = False) -> Token | None:
        if reload or not self._loaded:
            token = self.store.load_token(self.server.url)
            if token is None and not self._loaded and not self.store.has_token_file(self.server.url):
                token = self._import_mcp_remote()
            self._token, self._loaded = token, True
        return self._token

    def _import_mcp_remote(self) -> Token | None:
        found = mcp_remote_token(self.server.url)
        if found is None:
            return None
        token, client = found
        token.client = dict(client, **token.client)
        log.info("%s: using the token mcp-remote stored for %s", self.name, self.server.url)
        self.store.save_token(self.server.url, token)
        return token

    def _refresh_shared(self, token: Token) -> Token | None:
        """Refresh *token* unless another process already did; the token to use, or None.

        Servers that rotate refresh tokens accept each one once, so processes
        sharing the token file take turns: the second finds the first's result.
        """
        try:
            with self.store.lock("refresh " + self.server.url, timeout=30.0):
                latest = self._current(reload=True)
                if latest is not None and latest.access_token != token.access_token and not latest.expired():
                    return latest
                return self._try_refresh(token)
        except TimeoutError:
            return None

    def _try_refresh(self, token: Token) -> Token | None:
        from .flow import refresh

        try:
            fresh = refresh(self.http, self.name, token)
        except AuthError as e:
            log.info("%s: refresh failed: %s", self.name, e)
            return None
        self.store.save_token(self.server.url, fresh)
        self._token = fresh
        log.info("%s: token refreshed", self.name)
        return fresh

    # -- browser flows -----------------------------------------------------------

    def _new_flow(self, challenge: Challenge, wanted: list[str] | None, sent: str | None) -> None:
        if self.mode == FOREGROUND:
            self.authorize(challenge, wanted)
            return
        login = f"run `mcpzip login {self.name}`"
        if self.mode != BACKGROUND:
            raise AuthRequired(f"server {self.name} needs authorization; {login}")
        if self._flow is None or not self._flow.is_alive():
            self._check_background_allowed(sent, login)
            self._background_flows += 1
            self._last_flow_start = time.monotonic()
            self._flow_error = None
            self._flow = threading.Thread(target=self._background, args=(challenge, wanted),
                                          name=f"mcpzip-login-{self.name}", daemon=True)  # fmt: skip
            self._flow.start()
        raise AuthRequired(self._pending_message())

    def _check_fresh_token_refused(self, sent: str | None) -> None:
        """Raise :class:`AuthError` when *sent* is what a background sign-in gave moments ago."""
        if self._flow_header is None or sent != self._flow_header[0]:
            return
        age = time.monotonic() - self._flow_header[1]
        if age < FRESH_TOKEN_SECONDS:
            raise AuthError(
                f"server {self.name} refuses the token its sign-in gave {age:.0f} s ago; mcpzip will not sign "
                f"in again by itself: run `mcpzip login {self.name}` (and check the account's access)"
            )

    def _check_background_allowed(self, sent: str | None, login: str) -> None:
        """Raise :class:`AuthError` when another background sign-in would not help or comes too soon."""
        now = time.monotonic()
        self._check_fresh_token_refused(sent)
        if self._background_flows >= MAX_BACKGROUND_FLOWS:
            raise AuthError(
                f"server {self.name} needs authorization again after {self._background_flows} sign-ins; "
                f"mcpzip will not sign in again by itself: {login}"
            )
        if self._background_flows:
            wait = BACKGROUND_BACKOFF * 2 ** (self._background_flows - 1) - (now - self._last_flow_start)
            if wait > 0:
                raise AuthRequired(f"server {self.name} needs authorization again; mcpzip signs in by itself "
                                   f"in {wait:.0f} s at the earliest, or {login} now")  # fmt: skip

    def signing_in(self) -> bool:
        """Whether a background sign-in (a browser window) is under way."""
        flow = self._flow
        return flow is not None and flow.is_alive()

    def wait_for_sign_in(self, timeout: float | None, since: float) -> bool:
        """Wait up to *timeout* for a sign-in under way; True when one succeeded after *since* (monotonic)."""
        flow = self._flow
        if flow is not None and flow.is_alive():
            flow.join(timeout)
        with self._lock:
            done = self._flow_header
        return done is not None and done[1] >= since

    def _pending_message(self) -> str:
        return (
            f"server {self.name} needs authorization: mcpzip opened a browser window to sign in "
            f"(the link is also in mcpzip's log); try again once signed in, or run `mcpzip login {self.name}`"
        )

    def _background(self, challenge: Challenge, wanted: list[str] | None) -> None:
        try:
            token = self.authorize(challenge, wanted)
            with self._lock:
                self._flow_header = (f"Bearer {token.access_token}", time.monotonic())
        except AuthError as e:
            self._flow_error = str(e)
            log.warning("%s", e)
            return
        except Exception as e:  # a bug must not die silently on a daemon thread
            log.error("%s: authorization failed: %r", self.name, e)
            return
        if self.on_authorized is not None:
            self.on_authorized(self.name)

    def authorize(self, challenge: Challenge | None = None, wanted: list[str] | None = None) -> Token:
        """Run the browser flow now (unless another process just did); raises :class:`AuthError`."""
        from .flow import authorize, login_timeout

        before = self.store.load_token(self.server.url)
        try:
            with self.store.lock(self.server.url, timeout=login_timeout() + 30):
                after = self.store.load_token(self.server.url)
                if after is not None and (before is None or after.access_token != before.access_token):
                    token = after  # another mcpzip signed in while we waited
                else:
                    token = authorize(self.http, self.server, self.store, challenge or Challenge(), wanted)
        except TimeoutError:
            raise AuthError(f"server {self.name}: another mcpzip is signing in to it; try again when it is done") from None
        with self._lock:
            self._token, self._loaded = token, True
        return token
