"""Signals: the trouble a green run can hide, measured from answers the tick already reads.

A run with status `warning` that rejected 40 % of its rows, a run about to delete most of a
CRM, a model that suddenly returns 50 rows instead of 2 million, a run stuck for hours, a
sync that stopped running: none is a failed run. Each function here measures one of them
from plain values (a run's metrics, remembered query sizes, a sync's schedule and lastRunAt,
the time) and its rules, and returns a typed finding or None.

Pure: no I/O, no clock (the caller passes `now`), no state (the caller keeps the query-size
history with `remember_query_size`). A finding is a measurement, not a notification: the
caller makes it a trigger of the sync's incident, which notifies once per change of state.
Bad input (null counts, a negative querySize, an unreadable schedule) makes a signal return
None; `RunMetrics.problems` and the reason `silent` returns say why, for one info line.
"""

from __future__ import annotations

import calendar
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Any, Literal

from triage.models import RowCounts
from triage.schedule import CronError, minutes_of_day

Severity = Literal["critical", "warning"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning")
# The signals, named as their keys under `signals:` in config.
SIGNALS: tuple[str, ...] = ("rejected_rows", "removals", "volume_drop", "stuck", "silent")
OPERATIONS: tuple[str, ...] = ("added", "changed", "removed")

# No model feeds a reverse-ETL sync a trillion rows: a bigger count is a broken answer.
MAX_ROWS = 10**12
MINUTES = {"minute": 1, "hour": 60, "day": 24 * 60, "week": 7 * 24 * 60}
# Kept per sync in state: `volume_drop.runs` may not ask for more (the state stays small).
MAX_HISTORY = 100


# -- what a run says ---------------------------------------------------------------------


@dataclass(frozen=True)
class RunMetrics:
    """The numbers of one SyncRun answer that signals read. A field is None when Hightouch
    sent it null, left it out, or sent a value that cannot be true (negative, absurd, not a
    number): signals that need it are then skipped, and `problems` says what was wrong
    with the values that were present."""

    planned: RowCounts | None = None
    successful: RowCounts | None = None
    failed: RowCounts | None = None  # rows the destination rejected
    query_size: int | None = None  # rows the model's query returned
    completion_ratio: float | None = None  # progress of a run in flight, 0 to 1
    problems: tuple[str, ...] = ()


def run_metrics(raw: Mapping[str, Any]) -> RunMetrics:
    """Parse the metrics of a raw SyncRun (the API's JSON object). Never raises: each field
    is parsed on its own and one bad value spoils only its own field.

    A null count inside a RowCounts is kept as None (Hightouch sends those); a count that is
    present but negative, above MAX_ROWS or not a whole number makes the whole RowCounts None,
    because its other counts cannot be trusted either."""
    problems: list[str] = []
    planned = _row_counts(raw, "plannedRows", problems)
    successful = _row_counts(raw, "successfulRows", problems)
    failed = _row_counts(raw, "failedRows", problems)
    query_size = None
    if raw.get("querySize") is not None:
        query_size = _row_count(raw["querySize"])
        if query_size is None:
            problems.append(f"querySize: {raw['querySize']!r} is not a row count")
    ratio = None
    if raw.get("completionRatio") is not None:
        ratio = _ratio(raw["completionRatio"])
        if ratio is None:
            problems.append(f"completionRatio: {raw['completionRatio']!r} is not between 0 and 1")
    return RunMetrics(planned, successful, failed, query_size, ratio, tuple(problems))


def _row_counts(raw: Mapping[str, Any], key: str, problems: list[str]) -> RowCounts | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.append(f"{key}: expected an object of counts, got {value!r}")
        return None
    counts: dict[str, int | None] = {}
    for operation in OPERATIONS:
        name = f"{operation}Count"
        count = value.get(name)
        if count is None:
            counts[operation] = None
            continue
        counts[operation] = _row_count(count)
        if counts[operation] is None:
            problems.append(f"{key}.{name}: {count!r} is not a row count")
            return None
    return RowCounts(added=counts["added"], changed=counts["changed"], removed=counts["removed"])


def _row_count(value: Any) -> int | None:
    # JSON numbers may arrive as floats (the spec types querySize as a number): 12.0 is 12.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if 0 <= value <= MAX_ROWS else None


def _ratio(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if 0 <= value <= 1 else None


# -- rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectedRowsRule:
    """The rejected share of the rows a settled run planned (at or above a threshold)."""

    warning: float = 0.05
    critical: float = 0.25
    min_rows: int = 50  # fewer planned rows than this: no rejected-row alert


@dataclass(frozen=True)
class RemovalsRule:
    """Planned removals as a share of the previous successful run's querySize (above it)."""

    critical: float = 0.5
    min_rows: int = 1000  # fewer planned removals than this: no alert


@dataclass(frozen=True)
class VolumeDropRule:
    """querySize below (1 - warning) * the median of the last `runs` successful runs."""

    warning: float = 0.5
    runs: int = 10  # and not before this many sizes are known


@dataclass(frozen=True)
class StuckRule:
    """An unsettled run started this long ago, with no progress since the last tick."""

    after_minutes: float = 180


@dataclass(frozen=True)
class SilentRule:
    """No run for this many of the sync's scheduled intervals."""

    after_intervals: float = 3


@dataclass(frozen=True)
class SignalRules:
    """`signals:` in config, or one route's rules once its overrides are merged."""

    rejected_rows: RejectedRowsRule = field(default_factory=RejectedRowsRule)
    removals: RemovalsRule = field(default_factory=RemovalsRule)
    volume_drop: VolumeDropRule = field(default_factory=VolumeDropRule)
    stuck: StuckRule = field(default_factory=StuckRule)
    silent: SilentRule = field(default_factory=SilentRule)


class SignalRulesError(ValueError):
    """A bad `signals:` setting. `key` is the dotted key at fault (signals.stuck.after_minutes,
    routes[2].signals.silent), so config can name the file and line of that key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


_SHARE = "must be between 0 and 1"
# For each section: its keys, and for each key how to check it.
_KEYS: dict[str, dict[str, str]] = {
    "rejected_rows": {"warning": "share", "critical": "share", "min_rows": "rows"},
    "removals": {"critical": "share", "min_rows": "rows"},
    "volume_drop": {"warning": "share", "runs": "runs"},
    "stuck": {"after_minutes": "minutes"},
    "silent": {"after_intervals": "intervals"},
}


def parse_signal_rules(
    raw: Mapping[str, Any] | None, *, base: SignalRules | None = None, prefix: str = "signals"
) -> SignalRules:
    """Read `signals:` (a mapping as YAML loads it). Every key is optional: a key left out
    keeps its value in `base` (the defaults when None). Raises SignalRulesError naming the
    key for an unknown key, a share outside 0 to 1, a non-positive `after_minutes`, `runs`
    outside 3 to MAX_HISTORY, `after_intervals` below 1, or a rejected-rows warning above its
    critical threshold."""
    rules = base or SignalRules()
    if raw is None:
        return rules
    if not isinstance(raw, Mapping):
        raise SignalRulesError(prefix, f"expected a mapping of signals, got {raw!r}")
    for section, value in raw.items():
        where = f"{prefix}.{section}"
        if section not in _KEYS:
            raise SignalRulesError(where, f"unknown key (allowed here: {', '.join(SIGNALS)})")
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise SignalRulesError(where, f"expected a mapping such as {_example(section)}, got {value!r}")
        current = getattr(rules, section)
        changes: dict[str, Any] = {}
        for key, setting in value.items():
            kind = _KEYS[section].get(str(key))
            if kind is None:
                allowed = ", ".join(_KEYS[section])
                raise SignalRulesError(f"{where}.{key}", f"unknown key (allowed here: {allowed})")
            changes[str(key)] = _setting(setting, kind, f"{where}.{key}")
        rules = replace(rules, **{section: replace(current, **changes)})
    rejected = rules.rejected_rows
    if rejected.warning > rejected.critical:
        # Named where the reader set it; a route that sets neither inherits both, consistently.
        key = "warning" if "warning" in (raw.get("rejected_rows") or {}) else "critical"
        raise SignalRulesError(
            f"{prefix}.rejected_rows.{key}",
            f"the warning threshold ({rejected.warning:g}) must not be above the critical one ({rejected.critical:g})",
        )
    return rules


def merge_signal_rules(base: SignalRules, override: Mapping[str, Any] | None, prefix: str) -> SignalRules:
    """A route's rules: `base` (the top-level `signals:`) with the route's `signals:` laid
    over it key by key (`prefix` is where the route's keys live, e.g. "routes[1].signals")."""
    return parse_signal_rules(override, base=base, prefix=prefix)


def _setting(value: Any, kind: str, key: str) -> float | int:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if kind == "share":
        if number is None or not math.isfinite(number) or not 0 <= number <= 1:
            raise SignalRulesError(key, f"{_SHARE}, got {value!r}")
        return float(number)
    if kind == "rows":
        if not isinstance(number, int) or number < 0:
            raise SignalRulesError(key, f"must be a whole number of rows, 0 or more, got {value!r}")
        return number
    if kind == "runs":
        if not isinstance(number, int) or not 3 <= number <= MAX_HISTORY:
            raise SignalRulesError(key, f"must be a whole number of runs from 3 to {MAX_HISTORY}, got {value!r}")
        return number
    if kind == "minutes":
        if number is None or not math.isfinite(number) or number <= 0:
            raise SignalRulesError(key, f"must be a number of minutes above 0, got {value!r}")
        return number
    # intervals: below one interval, every sync would be "silent" between two of its runs
    if number is None or not math.isfinite(number) or number < 1:
        raise SignalRulesError(key, f"must be a number of intervals, 1 or more, got {value!r}")
    return number


def _example(section: str) -> str:
    defaults = getattr(SignalRules(), section)
    return "{" + ", ".join(f"{k}: {getattr(defaults, k):g}" for k in _KEYS[section]) + "}"


# -- findings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OperationShare:
    """Rejected / planned rows of one operation (added, changed or removed)."""

    operation: str
    rejected: int
    planned: int

    @property
    def share(self) -> float | None:
        """The rejected share of the planned rows; None when none were planned."""
        return self.rejected / self.planned if self.planned else None


@dataclass(frozen=True)
class RejectedRowsFinding:
    """A settled run's destination rejected a share of its planned rows at or above a threshold."""

    severity: Severity
    rejected: int
    planned: int
    share: float
    threshold: float  # the threshold reached (critical, else warning)
    operations: tuple[OperationShare, ...]  # each operation with planned or rejected rows
    signal: str = field(default="rejected_rows", init=False)


@dataclass(frozen=True)
class RemovalsFinding:
    """A run plans to remove more than a share of the records the previous successful run had."""

    removing: int  # rows the run planned (else reported) to remove
    previous_query_size: int
    share: float
    threshold: float
    removed: int | None = None  # removals the destination accepted, when reported
    rejected: int | None = None  # removals the destination rejected, when reported
    severity: Severity = field(default="critical", init=False)
    signal: str = field(default="removals", init=False)


@dataclass(frozen=True)
class VolumeDropFinding:
    """The model returned far fewer rows than it usually does."""

    query_size: int
    median: float  # of the last `runs` successful runs' querySize
    runs: int
    floor: float  # (1 - threshold) * median: sizes below it alert
    threshold: float
    severity: Severity = field(default="warning", init=False)
    signal: str = field(default="volume_drop", init=False)

    @property
    def share(self) -> float:
        """querySize as a share of the median (0.2: a fifth of the usual rows)."""
        return self.query_size / self.median


@dataclass(frozen=True)
class StuckFinding:
    """A run in flight for too long, with no progress since the previous tick."""

    started_at: datetime
    minutes: int  # running for, so far
    completion_ratio: float
    after_minutes: float
    severity: Severity = field(default="critical", init=False)
    signal: str = field(default="stuck", init=False)


@dataclass(frozen=True)
class ScheduleInterval:
    """How long a schedule lets a sync wait between two runs, at most."""

    kind: str  # interval | cron | visual
    minutes: float
    description: str  # for people: "every 1 hour", "cron 0 9 * * 1-5 (UTC)"


@dataclass(frozen=True)
class NoInterval:
    """Why a schedule gives no interval to expect runs at. `by_design`: the sync is not run
    by a clock (manual, dbt Cloud, Fivetran), so there is nothing to say each tick; else the
    schedule could not be read, which deserves one info line."""

    reason: str
    by_design: bool


@dataclass(frozen=True)
class SilentFinding:
    """An enabled, scheduled sync has not run for several of its intervals."""

    last_run_at: datetime
    schedule: ScheduleInterval
    silent_minutes: int
    after_intervals: float
    severity: Severity = field(default="warning", init=False)
    signal: str = field(default="silent", init=False)

    @property
    def intervals(self) -> float:
        """How many scheduled intervals have passed without a run."""
        return self.silent_minutes / self.schedule.minutes


Finding = RejectedRowsFinding | RemovalsFinding | VolumeDropFinding | StuckFinding | SilentFinding


# -- the signals -------------------------------------------------------------------------


def rejected_rows(metrics: RunMetrics, rules: RejectedRowsRule) -> RejectedRowsFinding | None:
    """Rejected rows of a settled run, whatever its status (`warning`, `success` with failed
    rows, `completed_with_errors`, `failed`): critical at or above `rules.critical`, warning
    at or above `rules.warning`, else None. None too when fewer than `min_rows` rows were
    planned, when none were rejected, or when the planned or rejected counts are unknown.
    A null count of one operation counts as 0."""
    planned, failed = metrics.planned, metrics.failed
    if planned is None or failed is None or planned.total is None:
        return None
    planned_total, rejected_total = planned.total, failed.total or 0
    if planned_total == 0 or planned_total < rules.min_rows or rejected_total == 0:
        return None
    share = rejected_total / planned_total
    if share >= rules.critical:
        severity: Severity = "critical"
        threshold = rules.critical
    elif share >= rules.warning:
        severity, threshold = "warning", rules.warning
    else:
        return None
    operations = tuple(
        OperationShare(op, getattr(failed, op) or 0, getattr(planned, op) or 0)
        for op in OPERATIONS
        if getattr(failed, op) or getattr(planned, op)
    )
    return RejectedRowsFinding(severity, rejected_total, planned_total, share, threshold, operations)


def mass_removal(metrics: RunMetrics, previous_query_size: int | None, rules: RemovalsRule) -> RemovalsFinding | None:
    """A run planning to remove more than `rules.critical` of the previous successful run's
    querySize: critical whatever the run's status, since the damage is done in the
    destination. Removals are the planned ones, else (planned counts unknown) the removals
    the run reported as done or rejected. None below `min_rows` removals, or without a
    previous querySize above 0 to compare with."""
    removing = _removals(metrics)
    if removing is None or previous_query_size is None or previous_query_size <= 0:
        return None
    if removing < rules.min_rows:
        return None
    share = removing / previous_query_size
    if share <= rules.critical:
        return None
    return RemovalsFinding(
        removing=removing,
        previous_query_size=previous_query_size,
        share=share,
        threshold=rules.critical,
        removed=metrics.successful.removed if metrics.successful else None,
        rejected=metrics.failed.removed if metrics.failed else None,
    )


def _removals(metrics: RunMetrics) -> int | None:
    if metrics.planned is not None and metrics.planned.removed is not None:
        return metrics.planned.removed
    done = [c.removed for c in (metrics.successful, metrics.failed) if c is not None and c.removed is not None]
    return sum(done) if done else None


def median(values: Sequence[float]) -> float:
    """The median of `values` (the mean of the middle two for an even count). Raises
    ValueError when there are none."""
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def remember_query_size(history: Sequence[int], size: int | None, keep: int) -> tuple[int, ...]:
    """The query sizes to keep in state after a successful run: `history` (oldest first) with
    `size` added, trimmed to the newest `keep`. A None size (unknown, or refused by
    run_metrics) adds nothing, so one bad answer cannot skew the median."""
    if keep < 1:
        raise ValueError(f"keep must be 1 or more, got {keep}")
    kept = [*history, size] if size is not None else list(history)
    return tuple(kept[-keep:])


def volume_drop(query_size: int | None, history: Sequence[int], rules: VolumeDropRule) -> VolumeDropFinding | None:
    """A successful run's querySize below (1 - `rules.warning`) * the median of the last
    `rules.runs` sizes in `history` (the previous successful runs, oldest first; the run
    itself not included): a warning. None until `rules.runs` sizes are known, or when the
    size is unknown or the median is 0."""
    if query_size is None or len(history) < rules.runs:
        return None
    window = history[-rules.runs :]
    middle = median(window)
    floor = (1 - rules.warning) * middle
    if middle <= 0 or query_size >= floor:
        return None
    return VolumeDropFinding(query_size, middle, len(window), floor, rules.warning)


def stuck(
    run_started_at: datetime | None,
    completion_ratio: float | None,
    previous_ratio: float | None,
    now: datetime,
    rules: StuckRule,
) -> StuckFinding | None:
    """An unsettled run (the caller passes only those) that started at least
    `rules.after_minutes` ago and whose completionRatio has not moved since the previous
    tick (`previous_ratio`, as seen then): critical. None when either ratio is unknown: a
    run seen for the first time has no progress to judge yet. A run still queued (no
    startedAt) is waiting behind another, not stuck."""
    if run_started_at is None or completion_ratio is None or previous_ratio is None:
        return None
    # Compared in minutes as floats: a timedelta of a huge configured value would overflow.
    running = (_utc(now) - _utc(run_started_at)).total_seconds() / 60
    if running < rules.after_minutes:
        return None
    if not math.isclose(completion_ratio, previous_ratio, rel_tol=0, abs_tol=1e-9):
        return None
    return StuckFinding(run_started_at, int(running), completion_ratio, rules.after_minutes)


def silent(
    schedule_raw: Any, last_run_at: datetime | None, now: datetime, rules: SilentRule
) -> tuple[SilentFinding | None, str | None]:
    """An enabled sync (the caller skips disabled ones) whose last run started more than
    `rules.after_intervals` of its scheduled intervals ago: a warning. Returns the finding
    (or None) and, when the signal cannot be measured for this sync, the reason why: manual,
    dbt Cloud or Fivetran triggers, a schedule of unknown shape or unreadable, or no run
    yet (see `schedule_interval` for which schedules are read)."""
    interval = schedule_interval(schedule_raw)
    if isinstance(interval, NoInterval):
        return None, interval.reason
    if last_run_at is None:
        return None, "never ran: no lastRunAt to measure silence from"
    quiet = (_utc(now) - _utc(last_run_at)).total_seconds() / 60
    if quiet <= rules.after_intervals * interval.minutes:  # floats: a year-long interval cannot overflow
        return None, None
    return SilentFinding(last_run_at, interval, int(quiet), rules.after_intervals), None


def _utc(moment: datetime) -> datetime:
    # Hightouch's times carry a zone; one without is UTC, as models.parse_iso_time reads it.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- schedules ---------------------------------------------------------------------------


def schedule_interval(raw: Any) -> ScheduleInterval | NoInterval:
    """The longest a sync's schedule (`Sync.schedule` as the API sends it) lets it wait
    between two runs. Never raises.

    - interval `{"interval": {"quantity": 1, "unit": "hour"}}`: quantity * unit.
    - cron `{"expression": "0 * * * *"}` (UTC, 5 fields or @hourly-style macros): the
      LARGEST gap between consecutive fire times, not the typical one — a sync whose cron
      skips weekends waits 49 hours from Friday night to Monday by design, and "3 typical
      intervals" would call it silent every weekend. The price: an irregular schedule is
      judged by its longest wait. Gaps are read over two weeks, or over eight years when
      the day-of-month or month is restricted (so monthly and 29 February schedules count).
    - visual `{"expressions": [{"days": {"monday": true}, "time": "08:30"}]}`: the largest
      gap over a week. Its times are in a time zone the API does not say, but shifting every
      time by the same offset leaves the gaps as they are.
    - manual (null), dbt Cloud and Fivetran triggers: NoInterval by design.
    The kind is told by the shape of `schedule` and checked against `type`."""
    if raw is None:
        return NoInterval("manual: the sync runs only when triggered", by_design=True)
    if not isinstance(raw, Mapping):
        return NoInterval(f"schedule of unknown shape: {raw!r}", by_design=False)
    declared = raw.get("type")
    declared = declared.lower() if isinstance(declared, str) else None
    inner = raw.get("schedule")
    shape = _shape(inner)
    if declared in ("interval", "cron", "visual") and shape not in (None, declared):
        return NoInterval(f"schedule type {declared!r}, but its schedule is shaped as {shape}", by_design=False)
    if shape == "dbt" or (shape is None and declared and ("dbt" in declared or "fivetran" in declared)):
        return NoInterval(f"{declared or 'dbt'}: the sync runs after another tool's job, not on a clock", True)
    if shape is None or not isinstance(inner, Mapping):
        if declared == "manual":
            return NoInterval("manual: the sync runs only when triggered", by_design=True)
        return NoInterval(f"schedule of unknown shape (type {raw.get('type')!r})", by_design=False)
    try:
        if shape == "interval":
            return _interval(inner["interval"])
        if shape == "cron":
            return _cron(inner["expression"])
        return _visual(inner["expressions"])
    except (CronError, ValueError, TypeError, KeyError) as exc:
        return NoInterval(f"unreadable {shape} schedule: {exc}", by_design=False)


def _shape(inner: Any) -> str | None:
    if not isinstance(inner, Mapping):
        return None
    if "interval" in inner:
        return "interval"
    if "expression" in inner:
        return "cron"
    if "expressions" in inner:
        return "visual"
    if "account" in inner or "job" in inner:
        return "dbt"
    return None


def _interval(raw: Any) -> ScheduleInterval:
    if not isinstance(raw, Mapping):
        raise ValueError(f"interval {raw!r} is not an object")
    quantity, unit = raw.get("quantity"), raw.get("unit")
    if isinstance(quantity, bool) or not isinstance(quantity, int | float) or not math.isfinite(quantity):
        raise ValueError(f"quantity {quantity!r} is not a number")
    if quantity <= 0:
        raise ValueError(f"quantity {quantity!r} is not above 0")
    name = unit.lower().removesuffix("s") if isinstance(unit, str) else None
    if name not in MINUTES:
        raise ValueError(f"unit {unit!r} is not one of {', '.join(MINUTES)}")
    plural = "" if quantity == 1 else "s"
    return ScheduleInterval("interval", float(quantity * MINUTES[name]), f"every {quantity:g} {name}{plural}")


# -- cron: the fields schedule.py leaves out (it only needs the spacing within a day) --------

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTH_NAMES = {name: i + 1 for i, name in enumerate(MONTHS)}
WEEKDAY_NAMES = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = 24 * 60
WEEK = 7 * DAY
# Cron gaps are read over whole years from here (a leap year, so 29 February counts).
CRON_FIRST_YEAR = 2024
CRON_YEARS = 8  # two leap days apart, at least


def _cron(expression: Any) -> ScheduleInterval:
    if not isinstance(expression, str) or not expression.strip():
        raise CronError(f"expression {expression!r} is not a cron line")
    text = MACROS.get(expression.strip().lower(), expression.strip())
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"{expression!r}: expected 5 fields (minute hour day month weekday)")
    minutes = sorted(minutes_of_day(text))
    days = _field(fields[2], 1, 31, {}, expression)
    months = _field(fields[3], 1, 12, MONTH_NAMES, expression)
    weekdays = {d % 7 for d in _field(fields[4], 0, 7, WEEKDAY_NAMES, expression)}  # 7 is Sunday too
    day_star, weekday_star = fields[2].startswith(("*", "?")), fields[4].startswith(("*", "?"))
    if day_star and fields[3] == "*":
        # Only the weekday restricts: the line repeats every week, and two weeks show every gap.
        fire_days = [offset for offset in range(14) if offset % 7 in weekdays]
    else:
        fire_days = _fire_days(days, months, weekdays, day_star, weekday_star)
    if len(fire_days) < 2:
        raise CronError(f"{expression!r} fires less than twice in {CRON_YEARS} years")
    gaps = [b - a for a, b in pairwise(minutes)]
    gaps += [(b - a) * DAY + minutes[0] - minutes[-1] for a, b in pairwise(fire_days)]
    return ScheduleInterval("cron", float(max(gaps)), f"cron {expression.strip()} (UTC)")


def _fire_days(days: set[int], months: set[int], weekdays: set[int], day_star: bool, weekday_star: bool) -> list[int]:
    """The days (as ordinals) a cron line fires on over CRON_YEARS years. As in Vixie cron,
    when both the day of month and the weekday are restricted, a day matching either fires."""
    fire: list[int] = []
    for year in range(CRON_FIRST_YEAR, CRON_FIRST_YEAR + CRON_YEARS):
        for month in sorted(months):
            first = date(year, month, 1)
            length = calendar.monthrange(year, month)[1]
            if weekday_star:  # the common monthly line: no need to walk every day
                fire += [first.toordinal() + d - 1 for d in sorted(days) if d <= length]
                continue
            sunday_based = (first.weekday() + 1) % 7  # cron counts weekdays from Sunday = 0
            for d in range(1, length + 1):
                on_weekday = (sunday_based + d - 1) % 7 in weekdays
                if on_weekday if day_star else (on_weekday or d in days):
                    fire.append(first.toordinal() + d - 1)
    return fire


def _field(text: str, low: int, high: int, names: Mapping[str, int], expression: str) -> set[int]:
    """One day, month or weekday field: `*` (or `?`), `n`, `a-b`, names (JAN, MON), any of
    them `/step`, and comma lists."""
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.lower().partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base in ("*", "?"):
                start, end = low, high
            elif "-" in base:
                first, last = base.split("-", 1)
                start, end = _value(first, names), _value(last, names)
            else:
                start = _value(base, names)
                end = high if step_text else start
        except ValueError:
            raise CronError(f"{expression!r}: {part!r} is not a cron field value") from None
        if step < 1 or not low <= start <= end <= high:
            raise CronError(f"{expression!r}: {part!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def _value(token: str, names: Mapping[str, int]) -> int:
    return names[token] if token in names else int(token)


def _visual(expressions: Any) -> ScheduleInterval:
    if not isinstance(expressions, list) or not expressions:
        raise ValueError("no expressions")
    fires: set[int] = set()
    for item in expressions:
        days, time = (item.get("days"), item.get("time")) if isinstance(item, Mapping) else (None, None)
        if not isinstance(days, Mapping) or not isinstance(time, str):
            raise ValueError(f"expression {item!r} has no days and time")
        hours, _, minutes = time.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
            raise ValueError(f"time {time!r} is not HH:MM")
        at = int(hours) * 60 + int(minutes)
        unknown = [d for d in days if str(d).lower() not in WEEKDAYS]
        if unknown:
            raise ValueError(f"unknown day {unknown[0]!r}")
        fires.update(WEEKDAYS.index(str(d).lower()) * DAY + at for d, on in days.items() if on is True)
    if not fires:
        raise ValueError("no day is selected")
    ordered = sorted(fires)
    gaps = [b - a for a, b in pairwise(ordered)] + [ordered[0] + WEEK - ordered[-1]]
    return ScheduleInterval("visual", float(max(gaps)), "custom recurrence (local time of whoever set it)")
