"""The history of closed incidents (state/incidents.jsonl), which the digest turns into numbers.

Guarantees:
- one JSON line per closed incident, keys sorted, so the committed diff of a tick is the
  incidents it closed, one line each;
- `append_closed` is durable when it returns (append, flush, fsync), like the state journal;
- the file holds the last `HISTORY_DAYS` days: `prune` drops older lines, and lines that do
  not parse, by replacing the file atomically (temp file, fsync, rename);
- nothing here stops a tick: a missing file is an empty history, a corrupt line or file is
  a warning (what parses is kept, the rest is dropped at the next `prune`), and a disk that
  refuses a write is a warning too. The history only feeds the digest; losing a line of it
  must never cost an alert.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast, get_args

from triage.state import fsync_dir
from triage.times import parse_iso_time

HISTORY_FILE = "incidents.jsonl"  # beside state.yaml, so commit_state commits it with the state
HISTORY_DAYS = 90

Ending = Literal["recovered", "resolved", "healed"]
Severity = Literal["critical", "warning"]
ENDINGS: tuple[str, ...] = get_args(Ending)
SEVERITIES: tuple[str, ...] = get_args(Severity)


@dataclass(frozen=True)
class ClosedIncident:
    """One incident after it closed, as the history keeps it. Times are ISO 8601 text, as
    state keeps them (`times.iso_time`)."""

    sync_id: str
    sync_name: str
    channels: tuple[str, ...]  # as configured (#data-alerts): the digest goes per channel
    opened_at: str  # its first failed run
    closed_at: str
    # recovered: a run succeeded; resolved: a person closed it; healed: an automatic retry's
    # run succeeded before anyone was told (counted apart: nobody saw it as an incident).
    ended: Ending
    cause: str  # a short error line, as Hightouch wrote it
    severity: Severity
    error_class: str | None = None  # the failure's class (auth, schema, transient, …) when known
    acked_at: str | None = None
    acked_by: str | None = None  # a Slack user id
    muted: bool = False  # it was muted at some point before it closed
    snoozed: bool = False  # it was snoozed at some point before it closed


def history_path(state_path: Path) -> Path:
    """Where the history lives for a state file: beside it, in the committed folder."""
    return state_path.parent / HISTORY_FILE


def record_line(record: ClosedIncident) -> str:
    """A record as one line of the file (without the newline): JSON, keys sorted."""
    data = asdict(record)
    data["channels"] = list(record.channels)
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def load_history(path: Path, now: datetime) -> tuple[list[ClosedIncident], str | None]:
    """The incidents closed in the last `HISTORY_DAYS` days before `now`, oldest closed first,
    and a warning when part or all of the file could not be read. Never raises: a missing
    file is an empty history without a warning; an unreadable or corrupt one gives what
    parses (maybe nothing) and a warning naming the file and the first bad line."""
    records, bad, error = _read(path)
    if error is not None:
        return [], f"{path}: cannot read the incident history ({error}); a new history starts"
    kept = sorted(_recent(records, now), key=_closed_key)
    return kept, _corrupt_warning(path, bad, len(records))


def append_closed(path: Path, record: ClosedIncident) -> str | None:
    """Add one closed incident, durable when this returns (append, flush, fsync). Returns a
    warning instead of raising when the disk refuses: the history must never stop a tick."""
    line = record_line(record).encode("utf-8") + b"\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        with open(path, "a+b") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    # A crash left a torn last line: start ours on a line of its own, so the torn
                    # one stays a single corrupt line (dropped by the next prune) and ours is whole.
                    line = b"\n" + line
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        if created:
            fsync_dir(path.parent)  # the new file's name must survive a crash too
    except OSError as exc:
        return f"{path}: cannot record the closed incident of sync {record.sync_id} ({exc.strerror or exc})"
    return None


def prune(path: Path, now: datetime) -> str | None:
    """Keep only the lines of the last `HISTORY_DAYS` days that parse: the file is replaced
    atomically (temp file, fsync, rename) when that drops anything, and left alone otherwise,
    so a quiet tick changes nothing to commit. A corrupt file becomes a new history of what
    parsed. Returns a warning instead of raising when the disk refuses."""
    records, bad, error = _read(path)
    if error is not None:
        records, bad = [], 1  # unreadable as a whole: a new, empty history replaces it
    kept = _recent(records, now)
    if not bad and len(kept) == len(records):
        return None
    text = "".join(record_line(r) + "\n" for r in kept)
    try:
        _replace(path, text)
    except OSError as exc:
        return f"{path}: cannot rewrite the incident history ({exc.strerror or exc})"
    return None


# -- reading ------------------------------------------------------------------


def _read(path: Path) -> tuple[list[ClosedIncident], int, str | None]:
    """The records that parse, how many non-empty lines did not, and why the file could not
    be read at all (None when it could, or is simply absent)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0, None
    except OSError as exc:
        return [], 0, str(exc.strerror or exc)
    records: list[ClosedIncident] = []
    bad = 0
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            records.append(parse_record(json.loads(raw.decode("utf-8"))))
        except (ValueError, TypeError, KeyError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            bad += 1
    return records, bad, None


def parse_record(raw: Any) -> ClosedIncident:
    """A record from its JSON form, every field checked; ValueError names the first bad one.
    Unknown keys are ignored, so a history written by a newer release still reads."""
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    ended, severity = _text(raw, "ended"), _text(raw, "severity")
    if ended not in ENDINGS:
        raise ValueError(f"ended must be one of {', '.join(ENDINGS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
    channels = raw.get("channels")
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ValueError("channels must be a list of names")
    for key in ("opened_at", "closed_at"):
        if parse_iso_time(_text(raw, key)) is None:
            raise ValueError(f"{key} is not an ISO 8601 time")
    acked_at = _optional_text(raw, "acked_at")
    if acked_at is not None and parse_iso_time(acked_at) is None:
        raise ValueError("acked_at is not an ISO 8601 time")
    return ClosedIncident(
        sync_id=_text(raw, "sync_id"),
        sync_name=_text(raw, "sync_name"),
        channels=tuple(channels),
        opened_at=_text(raw, "opened_at"),
        closed_at=_text(raw, "closed_at"),
        ended=cast(Ending, ended),  # checked against ENDINGS above
        cause=_optional_text(raw, "cause") or "",
        severity=cast(Severity, severity),  # checked against SEVERITIES above
        error_class=_optional_text(raw, "error_class"),
        acked_at=acked_at,
        acked_by=_optional_text(raw, "acked_by"),
        muted=_flag(raw, "muted"),
        snoozed=_flag(raw, "snoozed"),
    )


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def _optional_text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _flag(raw: dict[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false")
    return value


def _closed_key(record: ClosedIncident) -> datetime:
    moment = parse_iso_time(record.closed_at)
    assert moment is not None  # parse_record checked it
    return moment


def _recent(records: list[ClosedIncident], now: datetime) -> list[ClosedIncident]:
    oldest = now - timedelta(days=HISTORY_DAYS)
    return [r for r in records if _closed_key(r) >= oldest]


def _corrupt_warning(path: Path, bad: int, good: int) -> str | None:
    if not bad:
        return None
    lines = "1 line" if bad == 1 else f"{bad} lines"
    if not good:
        return f"{path}: the incident history is corrupt ({lines} unreadable); a new history starts"
    return (
        f"{path}: {lines} of the incident history could not be read and were left out; "
        f"a new history starts from the {good} that could (the next prune rewrites the file)"
    )


# -- writing ------------------------------------------------------------------


def _replace(path: Path, text: str) -> None:
    """Write the whole file atomically: a crash leaves the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The prefix and suffix match .gitignore's state/*.tmp, so a crash's leftover is never committed.
    fd, tmp = tempfile.mkstemp(prefix=".incidents-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
