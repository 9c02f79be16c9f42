"""The one exception type for mistakes a person can fix: its message is one line that says what to do."""


class KitError(Exception):
    """A user-facing error; the CLI prints its message and exits with code 2."""
