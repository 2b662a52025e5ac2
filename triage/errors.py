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


class StateBusy(TriageError):
    """Another tick holds the state: this one must not run (exit 0, nothing done)."""


class ApiError(TriageError):
    """A remote API answered with an error, or could not be reached. The message names
    the API and the endpoint; whether to try again was decided where it was raised."""


class AuthError(ApiError):
    """Credentials were refused. Fatal for the whole tick."""


class NotFoundError(ApiError):
    """The sync, run or other object asked for does not exist."""


class BadRequestError(ApiError):
    """The API rejected the request as malformed (HTTP 400 / 422)."""


class Deferred(ApiError):
    """The tick may not go on now: not a failure, the work left goes to the next tick."""


class RateLimited(Deferred):
    """Waiting out a rate limit would overrun the tick's wait budget."""


class OutOfTime(Deferred):
    """The tick reached its time limit: no new request is started."""


class AnswerLost(ApiError):
    """A request that changes something may have been carried out, but its answer was lost
    (a timeout after the request went out, a 5xx): the next tick looks it up before trying
    again. Not a failure of the tool."""
