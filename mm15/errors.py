"""Errors a user can fix: the CLI prints them as one line, without a traceback."""


class UserError(Exception):
    """A mistake in the user's input, configuration or environment, with a message that says what to do."""
