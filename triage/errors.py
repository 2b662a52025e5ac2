"""Typed errors. Each carries the file, key, channel or endpoint at fault.

The CLI maps them to exit codes in one place (`cli.py`); nothing else decides
how the process ends.
"""

from __future__ import annotations


class TriageError(Exception):
    """Base of every error this tool raises on purpose."""


class UsageError(TriageError):
    """The command line or the environment is wrong (exit 2)."""


class ConfigError(TriageError):
    """config.yaml or a template is wrong (exit 2). The message names file and key."""


class StateError(TriageError):
    """The state file cannot be read; it is left untouched (exit 1)."""


class ApiError(TriageError):
    """A remote API answered with an error, or could not be reached.

    `retryable` is decided once, where the error is raised: the caller never
    guesses whether trying again could help.
    """

    def __init__(self, message: str, *, endpoint: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.retryable = retryable


class AuthError(ApiError):
    """Credentials were refused. Fatal for the whole tick."""


class NotFoundError(ApiError):
    """The sync, run or other object asked for does not exist."""


class BadRequestError(ApiError):
    """The API rejected the request as malformed (HTTP 400 / 422)."""


class RateLimited(ApiError):
    """Waiting out a rate limit would overrun the tick's wait budget.

    Not a failure of the tick: the work left is deferred to the next one.
    """

    def __init__(self, message: str, *, endpoint: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, endpoint=endpoint, retryable=True)
        self.retry_after = retry_after
