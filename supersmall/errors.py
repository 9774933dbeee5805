"""Errors a user can fix. The CLI prints them as one line, without a traceback, and exits 2."""


class UserError(Exception):
    """A mistake the user can fix; its message is one sentence that says how."""
