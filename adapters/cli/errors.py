"""The one error type the command line reports as a single line."""

from __future__ import annotations


class CliError(Exception):
    """A problem the user can fix (bad flag value, unknown run, missing database).

    ``wfk`` prints its message on one line and exits with ``exit_code``.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
