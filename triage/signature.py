"""A failure's cause, as one signature that everything grouping by cause asks (storm
summaries, cause groups, outage issues): computed here and nowhere else."""

from __future__ import annotations

import re

# Errors of the warehouse or the model's query: every sync reading from it fails alike,
# whatever its destination, so the source (not the destination) is part of the cause.
_SOURCE_ERROR = re.compile(
    r"\b(sql|query|warehouse|snowflake|bigquery|redshift|postgres|databricks|compilation error|relation)\b",
    re.IGNORECASE,
)
_VARYING = re.compile(r"\b[0-9a-f]*\d[0-9a-f-]*\b", re.IGNORECASE)


def first_line(error: str | None) -> str:
    """The error's first non-empty line, as Hightouch wrote it ("" for none)."""
    return next((line.strip() for line in (error or "").splitlines() if line.strip()), "")


def error_key(error: str | None) -> str:
    """An error's first line without the numbers and ids that differ between syncs, so one
    cause reads as one key: `Table 'X' … 42 rows` and `… 7 rows` are the same. For grouping,
    never for reading."""
    return _VARYING.sub("N", first_line(error) or "no error message")[:200]


def signature(error: str | None, destination_id: str | None) -> str:
    """The cause of a failure: its error's key, and where it happened — the destination, or
    the source for a warehouse or query error."""
    where = "source" if _SOURCE_ERROR.search(first_line(error)) else f"destination {destination_id or '?'}"
    return f"{error_key(error)} @ {where}"
