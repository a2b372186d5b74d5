"""The set-up commands (migrate, init, doctor, pack) and what they share."""


class CommandError(Exception):
    """A user mistake or failure a command reports as one sentence (exit 1)."""
