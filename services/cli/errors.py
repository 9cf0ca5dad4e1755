"""Errors a command reports to the user, and the exit codes scripts can rely on:
0 success, 1 a request or the input failed (kubectl's `error: ...` and
`Error from server (Reason): ...`), 2 the command line itself is wrong (argparse's code)."""

from __future__ import annotations

from services.client.errors import APIStatusError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CLIError(Exception):
    """A failure with a message meant for the user; printed as `error: <message>`."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def describe_api_error(exc: APIStatusError, doing: str = "") -> str:
    """kubectl's form: `Error from server (NotFound): pods "web" not found`, or with what was
    being done: `Error from server (AlreadyExists): error when creating "web.yaml": ...`."""
    if doing:
        return f"Error from server ({exc.reason}): {doing}: {exc.message}"
    return f"Error from server ({exc.reason}): {exc.message}"
