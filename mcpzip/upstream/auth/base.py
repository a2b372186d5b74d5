"""What every part of the OAuth code shares: the flow modes and the errors."""

# Flow modes: how an authorizer may get a new token when refresh fails.
FOREGROUND, BACKGROUND, NEVER = "foreground", "background", "never"


class AuthError(Exception):
    """Authorization failed; the message names the server and what to do."""


class AuthRequired(AuthError):
    """The server needs a sign-in that has not happened (yet)."""
