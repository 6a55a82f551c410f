"""Errors a user can act on: the CLI prints their message, without a traceback, and exits 2."""


class UserError(RuntimeError):
    """Something the user can fix; the message says what to do."""
