"""`status` and `trigger`: one sync run's outcome as an exit code, for schedulers to chain on.

The codes are Shipyard's, so these commands drop into its guardrails (whose
retry rules skip 200, 201 and 210): 0 succeeded, 210 finished with an error,
211 not finished, 212 a status this tool does not know; errors are 200 bad
credentials, 201 unknown sync or run, 202 bad request, 3 anything else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from triage.errors import NotFoundError, UsageError
from triage.hightouch import HightouchClient
from triage.models import PENDING_STATUSES, Outcome, Run, outcome
from triage.render import count_text

EXIT_SUCCEEDED = 0
EXIT_FAILED = 210
EXIT_UNFINISHED = 211
EXIT_UNKNOWN_STATUS = 212
EXIT_BAD_CREDENTIALS = 200
EXIT_NOT_FOUND = 201
EXIT_BAD_REQUEST = 202
EXIT_OTHER_ERROR = 3

DEFAULT_ARTIFACTS_DIR = Path("artifacts/hightouch")


def run_exit_code(run: Run, *, warning_is_error: bool = False) -> int:
    """The exit code a run's status stands for."""
    if run.status == "warning":
        return EXIT_FAILED if warning_is_error else EXIT_SUCCEEDED
    if run.status in PENDING_STATUSES:
        return EXIT_UNFINISHED
    return {
        Outcome.SUCCEEDED: EXIT_SUCCEEDED,
        Outcome.FAILED: EXIT_FAILED,
        Outcome.CANCELLED: EXIT_FAILED,  # a chained job must not run on a run that was stopped
        Outcome.UNSETTLED: EXIT_UNFINISHED,
        Outcome.OTHER: EXIT_UNKNOWN_STATUS,
    }[outcome(run)]


def describe(sync_id: str, run: Run) -> str:
    """One line a person can read in a scheduler's log."""
    rows = (
        f"{count_text(run.successful.added)} added, {count_text(run.successful.changed)} changed, "
        f"{count_text(run.successful.removed)} removed, {count_text(run.failed.total)} rejected"
    )
    line = f"sync {sync_id} run {run.id}: {run.status} · {rows}"
    if run.error:
        error = " ".join(run.error.split())
        line += f" · error: {error[:300]}{'…' if len(error) > 300 else ''}"
    return line


def save_artifact(artifacts_dir: Path, run_id: str, body: dict[str, Any]) -> Path:
    """The raw API response, at <dir>/responses/sync_run_<run id>_response.json."""
    path = artifacts_dir / "responses" / f"sync_run_{_safe(run_id)}_response.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


@dataclass(frozen=True)
class Checked:
    run: Run
    exit_code: int
    artifact: Path


def check(
    client: HightouchClient,
    sync_id: str,
    run_id: str | None,
    artifacts_dir: Path,
    *,
    warning_is_error: bool = False,
) -> Checked:
    """Fetch one run (the newest when no id is given), save the response, judge it."""
    if run_id is None:
        run_id = client.latest_run_id(sync_id)
        if run_id is None:
            raise NotFoundError(f"sync {sync_id} has no runs yet")
    run, body = client.get_run(sync_id, run_id)
    if run is None:
        raise NotFoundError(f"sync {sync_id} has no run {run_id}")
    artifact = save_artifact(artifacts_dir, run.id, body)
    return Checked(run=run, exit_code=run_exit_code(run, warning_is_error=warning_is_error), artifact=artifact)


def wait_for(
    client: HightouchClient,
    sync_id: str,
    run_id: str,
    artifacts_dir: Path,
    *,
    timeout: float,
    poll_interval: float,
    sleep: Callable[[float], None],
    now: Callable[[], datetime],
    out: TextIO,
    warning_is_error: bool = False,
) -> Checked:
    """Poll a run until it settles or `timeout` seconds pass (then its code is 211)."""
    started = now()
    while True:
        checked = check(client, sync_id, run_id, artifacts_dir, warning_is_error=warning_is_error)
        if checked.exit_code != EXIT_UNFINISHED:
            return checked
        waited = (now() - started).total_seconds()
        if waited + poll_interval > timeout:
            out.write(f"gave up waiting after {waited:.0f}s (--timeout {timeout:g}s); the run goes on\n")
            return checked
        out.write(f"run {run_id}: {checked.run.status}; next check in {poll_interval:g}s\n")
        out.flush()
        sleep(poll_interval)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, option: str) -> float:
    """`90`, `45s`, `30m`, `1h`, `1h30m` → seconds."""
    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)\s*([smhd]?)\s*)+", text.lower())
    if not parts:
        raise UsageError(f"{option}: {text!r} is not a duration (e.g. 90, 45s, 30m, 1h)")
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text.lower()):
        total += float(number) * _UNITS[unit or "s"]
    if total <= 0:
        raise UsageError(f"{option}: must be more than 0, got {text!r}")
    return total
