"""OAuth 2.1 for remote upstreams (SPEC §9).

:func:`for_server` hands a transport the one :class:`~.authorizer.Authorizer`
of a server: it supplies the ``Authorization`` header and is told about every
401 (and 403 ``insufficient_scope``), on any request.  It refreshes tokens,
and runs the browser flow — in the foreground for ``mcpzip login``, in the
background for ``serve``, or not at all for the terminal commands.

This module stays light (no ``requests``) so that importing the exceptions
costs nothing; the machinery lives in the submodules.
"""

from __future__ import annotations

import threading

from .base import BACKGROUND, FOREGROUND, NEVER, AuthError, AuthRequired

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from ...base.config import ServerConfig
    from .authorizer import Authorizer

__all__ = ["BACKGROUND", "FOREGROUND", "NEVER", "AuthError", "AuthRequired", "existing", "for_server"]

_lock = threading.Lock()
_authorizers: dict[tuple, Authorizer] = {}


def for_server(server: ServerConfig, auth_dir: str, mode: str = NEVER,
               on_authorized: Callable[[str], None] | None = None) -> Authorizer:  # fmt: skip
    """The shared authorizer of *server* (one per server and auth directory).

    Sharing it is what keeps a reconnecting transport from starting a second
    browser flow while the first is still waiting.
    """
    from .authorizer import Authorizer

    key = (auth_dir, server.name, server.url)
    with _lock:
        found = _authorizers.get(key)
        if found is None:
            found = _authorizers[key] = Authorizer(server, auth_dir, mode, on_authorized)
        return found


def existing(server: ServerConfig, auth_dir: str) -> Authorizer | None:
    """*server*'s authorizer if one was made (None: nothing has needed it yet)."""
    with _lock:
        return _authorizers.get((auth_dir, server.name, server.url))
