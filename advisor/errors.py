"""Errors the user can fix. The CLI prints them as one line and exits 2; anything else is a bug."""


class UserError(Exception):
    """A mistake in the user's input (file, field, flag): reported without a traceback, exit 2."""


EXIT_INTERNAL = 1
EXIT_USER = 2
