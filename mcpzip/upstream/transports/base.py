"""The transport contract: what every way of reaching an upstream server provides.

A transport moves whole messages and reports what arrives; it knows nothing
of MCP methods, eras or meta-tools.  Its contract:

* ``start(on_message, on_close)`` connects.  Afterwards *on_message* is called
  with each decoded message from the server, from a thread of the
  transport's, and *on_close* exactly once with a reason when the connection
  ends for any cause other than :meth:`close`.
* ``send(message)`` hands one message to the server and may be called from
  any thread; it raises :class:`TransportClosed` when the connection is gone.
* ``close()`` ends the connection and releases every resource (processes,
  threads, sockets); it is idempotent.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    OnMessage = Callable[[dict], None]
    OnClose = Callable[[str], None]


class TransportClosed(Exception):
    """The connection to the upstream is gone; the message was not sent."""


class Transport:
    """Base class: see the module docstring for the contract."""

    def start(self, on_message: OnMessage, on_close: OnClose) -> None:
        raise NotImplementedError

    def send(self, message: dict) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def stall_hint(self) -> str:
        """Why a start that timed out may have stalled, for the error (``"; …"``), or ``""``."""
        return ""
