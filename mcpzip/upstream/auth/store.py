"""What OAuth leaves on disk: tokens per server URL, registrations per issuer.

Layout (under the ``auth/`` directory beside the config, mode 0700):

* ``{sha256(url)[:32]}.json`` — the tokens of one server URL, in the
  reference's format (``access_token``, ``token_type``, ``refresh_token``,
  ``expiry`` as RFC 3339) plus a ``client`` object with what a refresh needs.
* ``client-{sha256(issuer)[:32]}.json`` — the client registered with one
  authorization server, with the callback port it was registered for.
* ``*.lock`` — empty files whose advisory locks keep two mcpzip processes
  from running the same flow or registration at once.

Every file holding a secret is created 0600 and replaced atomically.  The
PKCE verifier is never written anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from ...base import log
from ...base.files import ForeignDirectory, ensure_dir, write_atomic
from .base import AuthError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator

SECRET_MODE = 0o600
DIR_MODE = 0o700
# A token this close to its expiry is refreshed before use.
EXPIRY_MARGIN = 60.0


def url_hash(url: str) -> str:
    """The reference's token file stem: the first 16 bytes of SHA-256 of the exact URL, in hex."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


@dataclass
class Token:
    access_token: str
    token_type: str = "Bearer"
    refresh_token: str | None = None
    expiry: float | None = None  # epoch seconds
    scope: str | None = None
    # issuer, token_endpoint, client_id, client_secret, auth_method, resource
    client: dict = field(default_factory=dict)

    def expired(self, margin: float = EXPIRY_MARGIN) -> bool:
        return self.expiry is not None and time.time() + margin >= self.expiry

    def scopes(self) -> list[str]:
        return (self.scope or "").split()

    def register_secrets(self) -> None:
        for value in (self.access_token, self.refresh_token, self.client.get("client_secret")):
            log.add_secret(value)

    def to_json(self) -> dict:
        data: dict = {"access_token": self.access_token, "token_type": self.token_type or "Bearer"}
        if self.refresh_token:
            data["refresh_token"] = self.refresh_token
        if self.expiry is not None:
            data["expiry"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expiry))
        if self.scope:
            data["scope"] = self.scope
        if self.client:
            data["client"] = self.client
        return data

    @classmethod
    def from_json(cls, data: object) -> Token | None:
        if not isinstance(data, dict):
            return None
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            return None
        refresh = data.get("refresh_token")
        client = data.get("client")
        token = cls(
            access_token=access,
            token_type=str(data.get("token_type") or "Bearer"),
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            expiry=_parse_expiry(data),
            scope=data.get("scope") if isinstance(data.get("scope"), str) else None,
            client=client if isinstance(client, dict) else {},
        )
        token.register_secrets()
        return token

    @classmethod
    def from_response(cls, data: dict, client: dict, previous: Token | None = None) -> Token:
        """A token from a token endpoint's answer (RFC 6749 §5.1)."""
        expires_in = data.get("expires_in")
        expiry = None
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
            expiry = time.time() + float(expires_in)
        elif isinstance(expires_in, str) and expires_in.isdigit():
            expiry = time.time() + float(expires_in)
        refresh = data.get("refresh_token") or (previous.refresh_token if previous else None)
        scope = data.get("scope") if isinstance(data.get("scope"), str) else (previous.scope if previous else None)
        token = cls(
            access_token=str(data["access_token"]),
            token_type=str(data.get("token_type") or "Bearer"),
            refresh_token=refresh,
            expiry=expiry,
            scope=scope,
            client=dict(client),
        )
        token.register_secrets()
        return token


def _parse_expiry(data: dict) -> float | None:
    value = data.get("expiry", data.get("expires_at"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # mcp-remote-style milliseconds, or seconds
        return float(value) / 1000 if value > 10**11 else float(value)
    if isinstance(value, str) and value:
        import calendar
        import re

        # RFC 3339 as Go writes it, with optional fraction and offset.
        m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?$", value)
        if not m:
            return None
        fields = tuple(int(m.group(i)) for i in range(1, 7))
        seconds = float(calendar.timegm(fields + (0, 0, 0)))
        offset = m.group(7)
        if offset and offset != "Z":
            sign = 1 if offset[0] == "+" else -1
            seconds -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
        return seconds
    return None


class Store:
    """The ``auth/`` directory of one config."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _ensure(self) -> None:
        """Make the directory, or check it on every use: ours alone (else :class:`AuthError`), mode 0700."""
        try:
            ensure_dir(self.directory, DIR_MODE, ours=True)
        except ForeignDirectory as e:
            raise AuthError(f"refusing to use the sign-in directory: {e}") from e

    def _check(self) -> None:
        """Before reading: an existing directory must pass :meth:`_ensure`; a missing one is made when written."""
        if os.path.isdir(self.directory):
            self._ensure()

    def _read(self, path: str) -> object:
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("ignoring unreadable %s: %s", path, getattr(e, "strerror", None) or e)
            return None

    def _write(self, path: str, data: dict) -> None:
        self._ensure()
        payload = json.dumps(data, separators=(",", ":")).encode("utf-8")
        write_atomic(path, payload, SECRET_MODE)

    # -- tokens --------------------------------------------------------------

    def token_path(self, url: str) -> str:
        return os.path.join(self.directory, url_hash(url) + ".json")

    def load_token(self, url: str) -> Token | None:
        self._check()  # another user's directory could hold tokens of their choosing
        return Token.from_json(self._read(self.token_path(url)))

    def save_token(self, url: str, token: Token) -> None:
        self._write(self.token_path(url), token.to_json())

    def has_token_file(self, url: str) -> bool:
        return os.path.exists(self.token_path(url))

    def forget_token(self, url: str) -> bool:
        """Drop the tokens of *url*; True when there were any.

        A signed-out marker stays in the file's place, so that mcp-remote's
        tokens for the same URL are not imported again behind the user's back.
        """
        had = self.load_token(url) is not None
        if had or not self.has_token_file(url):
            self._write(self.token_path(url), {"signed_out": True})
        return had

    # -- registrations ---------------------------------------------------------

    def registration_path(self, issuer: str) -> str:
        return os.path.join(self.directory, "client-" + url_hash(issuer) + ".json")

    def load_registration(self, issuer: str) -> dict | None:
        self._check()
        data = self._read(self.registration_path(issuer))
        if not isinstance(data, dict) or data.get("issuer") != issuer or not isinstance(data.get("client_id"), str):
            return None
        expires = data.get("client_secret_expires_at")
        if isinstance(expires, (int, float)) and expires and expires <= time.time():
            return None
        log.add_secret(data.get("client_secret"))
        return data

    def save_registration(self, issuer: str, registration: dict) -> None:
        self._write(self.registration_path(issuer), dict(registration, issuer=issuer))

    # -- locks -------------------------------------------------------------------

    @contextmanager
    def lock(self, key: str, timeout: float) -> Iterator[None]:
        """Hold an advisory lock on ``{hash(key)}.lock`` across processes.

        Raises ``TimeoutError`` when another process holds it for longer
        than *timeout* seconds (e.g. a login waiting in a browser).
        """
        self._ensure()
        path = os.path.join(self.directory, url_hash(key) + ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, SECRET_MODE)
        try:
            deadline = time.monotonic() + timeout
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    raise TimeoutError(path)
                time.sleep(0.05)  # flock has no timed wait; poll
            try:
                yield
            finally:
                _unlock(fd)
        finally:
            os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        try:
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _unlock(fd: int) -> None:
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
    except ImportError:
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            pass


# -- mcp-remote ---------------------------------------------------------------


def mcp_remote_token(url: str, environ: dict | None = None) -> tuple[Token, dict] | None:
    """The token mcp-remote stored for exactly this server URL, with its client.

    mcp-remote names its files by the MD5 of the server URL (plus headers and
    an authorize resource, neither of which an OAuth server of ours has), in
    ``$MCP_REMOTE_CONFIG_DIR`` or ``~/.mcp-auth``, one directory per version.
    Only that one file is read: other servers' tokens are never tried here.
    """
    environ = os.environ if environ is None else environ
    base = environ.get("MCP_REMOTE_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".mcp-auth")
    stem = hashlib.md5(url.encode("utf-8")).hexdigest()  # noqa: S324 - a file name, not security
    try:
        versions = [os.path.join(base, d) for d in os.listdir(base) if d.startswith("mcp-remote")]
    except OSError:
        return None
    candidates = [d for d in versions if os.path.isfile(os.path.join(d, f"{stem}_tokens.json"))]
    if not candidates:
        return None
    newest = max(candidates, key=lambda d: os.path.getmtime(os.path.join(d, f"{stem}_tokens.json")))
    store = Store(newest)
    data = store._read(os.path.join(newest, f"{stem}_tokens.json"))
    token = Token.from_json(data)
    if token is None:
        return None
    if token.expiry is None and isinstance(data, dict) and isinstance(data.get("expires_in"), (int, float)):
        # mcp-remote keeps only the relative lifetime; count it from the file's age.
        mtime = os.path.getmtime(os.path.join(newest, f"{stem}_tokens.json"))
        token.expiry = mtime + float(data["expires_in"])
    client_info = store._read(os.path.join(newest, f"{stem}_client_info.json"))
    client: dict = {}
    if isinstance(client_info, dict) and isinstance(client_info.get("client_id"), str):
        client = {"client_id": client_info["client_id"]}
        if isinstance(client_info.get("client_secret"), str):
            client["client_secret"] = client_info["client_secret"]
            log.add_secret(client_info["client_secret"])
        if isinstance(client_info.get("token_endpoint_auth_method"), str):
            client["auth_method"] = client_info["token_endpoint_auth_method"]
    return token, client
