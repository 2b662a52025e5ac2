"""Signals: the trouble a green run can hide, as issue 19's acceptance states it, and the
bad answers that must skip a signal rather than alert or crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage.models import RowCounts
from triage.signals import (
    MAX_ROWS,
    NoInterval,
    RejectedRowsFinding,
    RejectedRowsRule,
    RemovalsRule,
    RunMetrics,
    ScheduleInterval,
    SignalRules,
    SignalRulesError,
    SilentRule,
    StuckRule,
    VolumeDropRule,
    mass_removal,
    median,
    merge_signal_rules,
    parse_signal_rules,
    rejected_rows,
    remember_query_size,
    run_metrics,
    schedule_interval,
    silent,
    stuck,
    volume_drop,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RULES = SignalRules()


def counts(added: int | None = 0, changed: int | None = 0, removed: int | None = 0) -> dict[str, int | None]:
    return {"addedCount": added, "changedCount": changed, "removedCount": removed}


def sync_run(**fields: Any) -> dict[str, Any]:
    """A SyncRun as the API answers it: a settled `warning` run, with what the test adds."""
    run: dict[str, Any] = {
        "id": 101,
        "status": "warning",
        "createdAt": "2026-11-23T11:00:00Z",
        "startedAt": "2026-11-23T11:00:05Z",
        "finishedAt": "2026-11-23T11:04:00Z",
        "querySize": 120_000,
        "completionRatio": 1,
        "plannedRows": counts(),
        "successfulRows": counts(),
        "failedRows": counts(),
    }
    run.update(fields)
    return run


def hourly() -> dict[str, Any]:
    return {"type": "interval", "schedule": {"interval": {"quantity": 1, "unit": "hour"}}}


def cron(expression: str) -> dict[str, Any]:
    return {"type": "cron", "schedule": {"expression": expression}}


# -- reading a run -----------------------------------------------------------------------


def test_run_metrics_reads_counts_query_size_and_progress() -> None:
    metrics = run_metrics(
        sync_run(
            plannedRows=counts(6000, 3000, 1000),
            successfulRows=counts(3600, 2400, 1000),
            failedRows=counts(2400, 600, None),
            querySize=120_000.0,  # the spec types it as a number
            completionRatio=0.5,
        )
    )
    assert metrics == RunMetrics(
        planned=RowCounts(6000, 3000, 1000),
        successful=RowCounts(3600, 2400, 1000),
        failed=RowCounts(2400, 600, None),
        query_size=120_000,
        completion_ratio=0.5,
    )


@pytest.mark.parametrize(
    ("fields", "empty", "problem"),
    [
        ({"plannedRows": None}, "planned", None),
        ({"querySize": None}, "query_size", None),
        ({"querySize": -5}, "query_size", "querySize: -5 is not a row count"),
        ({"querySize": MAX_ROWS + 1}, "query_size", "querySize"),
        ({"querySize": "lots"}, "query_size", "querySize"),
        ({"querySize": 1.5}, "query_size", "querySize"),
        ({"querySize": True}, "query_size", "querySize"),
        ({"querySize": float("nan")}, "query_size", "querySize"),
        ({"completionRatio": 1.7}, "completion_ratio", "completionRatio: 1.7 is not between 0 and 1"),
        ({"completionRatio": -0.1}, "completion_ratio", "completionRatio"),
        ({"plannedRows": counts(-1, 10, 0)}, "planned", "plannedRows.addedCount: -1 is not a row count"),
        ({"failedRows": counts(10, 10**15, 0)}, "failed", "failedRows.changedCount"),
        ({"successfulRows": "many"}, "successful", "successfulRows: expected an object"),
    ],
)
def test_a_bad_value_spoils_only_its_own_field(fields: dict[str, Any], empty: str, problem: str | None) -> None:
    raw = sync_run(plannedRows=counts(1, 2, 3), successfulRows=counts(1, 2, 3), completionRatio=0.5)
    raw.update(fields)
    metrics = run_metrics(raw)
    for name in ("planned", "successful", "failed", "query_size", "completion_ratio"):
        assert (getattr(metrics, name) is None) is (name == empty), name
    if problem is None:
        assert metrics.problems == ()
    else:
        assert len(metrics.problems) == 1 and metrics.problems[0].startswith(problem)


def test_missing_fields_are_none_without_a_problem() -> None:
    assert run_metrics({"id": 1, "status": "queued"}) == RunMetrics()


def test_null_counts_are_kept_as_unknown() -> None:
    metrics = run_metrics(sync_run(failedRows=counts(None, None, None)))
    assert metrics.failed == RowCounts() and metrics.problems == ()


# -- rejected rows -----------------------------------------------------------------------


def rejected(
    added: int, changed: int = 0, removed: int = 0, planned: tuple[int, int, int] = (6000, 3000, 1000)
) -> RejectedRowsFinding | None:
    metrics = run_metrics(sync_run(plannedRows=counts(*planned), failedRows=counts(added, changed, removed)))
    return rejected_rows(metrics, RULES.rejected_rows)


def test_thirty_percent_of_ten_thousand_rejected_is_critical_with_the_share_per_operation() -> None:
    finding = rejected(2400, 600, 0)
    assert finding is not None
    assert (finding.severity, finding.rejected, finding.planned, finding.share) == ("critical", 3000, 10_000, 0.3)
    by_operation = {op.operation: (op.rejected, op.planned, op.share) for op in finding.operations}
    assert by_operation == {"added": (2400, 6000, 0.4), "changed": (600, 3000, 0.2), "removed": (0, 1000, 0.0)}
    assert finding.signal == "rejected_rows"


def test_two_percent_rejected_is_nothing() -> None:
    assert rejected(200) is None


def test_eight_percent_rejected_is_a_warning() -> None:
    finding = rejected(500, 300)
    assert finding is not None and (finding.severity, finding.threshold) == ("warning", 0.05)


def test_the_thresholds_are_reached_at_equality() -> None:
    at_warning, at_critical = rejected(500), rejected(2500)
    assert at_warning is not None and at_warning.severity == "warning"
    assert at_critical is not None and at_critical.severity == "critical"


def test_below_min_rows_planned_nothing_is_said() -> None:
    assert rejected(40, planned=(49, 0, 0)) is None
    assert rejected(40, planned=(50, 0, 0)) is not None


def test_a_run_that_rejected_nothing_is_nothing_even_with_a_zero_warning() -> None:
    metrics = run_metrics(sync_run(plannedRows=counts(100, 0, 0)))
    assert rejected_rows(metrics, RejectedRowsRule(warning=0)) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"plannedRows": None},
        {"failedRows": None},
        {"plannedRows": counts(None, None, None)},
        {"plannedRows": counts(-10_000, 0, 0)},
        {"plannedRows": counts(0, 0, 0)},
    ],
)
def test_rejected_rows_are_skipped_on_bad_or_missing_counts(fields: dict[str, Any]) -> None:
    raw = sync_run(plannedRows=counts(10_000, 0, 0), failedRows=counts(5000, 0, 0))
    raw.update(fields)
    assert rejected_rows(run_metrics(raw), RULES.rejected_rows) is None


# -- mass removals -----------------------------------------------------------------------


def test_a_successful_run_planning_to_remove_ninety_percent_of_the_previous_query_size_is_critical() -> None:
    metrics = run_metrics(
        sync_run(
            status="success",
            plannedRows=counts(0, 10, 9000),
            successfulRows=counts(0, 10, 9000),
            failedRows=counts(0, 0, 0),
        )
    )
    finding = mass_removal(metrics, 10_000, RULES.removals)
    assert finding is not None
    assert (finding.severity, finding.removing, finding.previous_query_size, finding.share) == (
        "critical",
        9000,
        10_000,
        0.9,
    )
    assert (finding.removed, finding.rejected, finding.signal) == (9000, 0, "removals")


def test_removing_half_or_less_is_nothing() -> None:
    metrics = run_metrics(sync_run(plannedRows=counts(0, 0, 5000)))
    assert mass_removal(metrics, 10_000, RULES.removals) is None


def test_fewer_removals_than_min_rows_are_nothing() -> None:
    metrics = run_metrics(sync_run(plannedRows=counts(0, 0, 999)))
    assert mass_removal(metrics, 1000, RULES.removals) is None
    assert mass_removal(metrics, 1000, RemovalsRule(min_rows=0)) is not None


def test_without_planned_counts_the_reported_removals_count() -> None:
    metrics = run_metrics(sync_run(plannedRows=None, successfulRows=counts(0, 0, 7000), failedRows=counts(0, 0, 500)))
    finding = mass_removal(metrics, 10_000, RULES.removals)
    assert finding is not None and finding.removing == 7500


@pytest.mark.parametrize("previous", [None, 0, -3])
def test_mass_removal_needs_a_previous_query_size(previous: int | None) -> None:
    metrics = run_metrics(sync_run(plannedRows=counts(0, 0, 9000)))
    assert mass_removal(metrics, previous, RULES.removals) is None


def test_mass_removal_is_skipped_on_null_or_negative_counts() -> None:
    for planned in (None, counts(0, 0, None), counts(0, 0, -9000)):
        metrics = run_metrics(sync_run(plannedRows=planned, successfulRows=None, failedRows=None))
        assert mass_removal(metrics, 10_000, RULES.removals) is None


# -- volume drop -------------------------------------------------------------------------

USUAL = [100_000, 98_000, 102_000, 101_000, 99_000, 100_500, 99_500, 100_200, 99_800, 100_000]


def test_query_size_at_a_fifth_of_the_median_of_the_last_ten_is_a_warning() -> None:
    finding = volume_drop(20_000, USUAL, RULES.volume_drop)
    assert finding is not None
    assert (finding.severity, finding.median, finding.runs, finding.floor) == ("warning", 100_000, 10, 50_000)
    assert finding.share == pytest.approx(0.2)
    assert finding.signal == "volume_drop"


def test_a_normal_size_is_nothing() -> None:
    assert volume_drop(95_000, USUAL, RULES.volume_drop) is None
    assert volume_drop(50_000, USUAL, RULES.volume_drop) is None  # at the floor: not below it


def test_no_volume_drop_before_runs_sizes_are_known() -> None:
    assert volume_drop(20_000, USUAL[:9], RULES.volume_drop) is None
    assert volume_drop(20_000, USUAL[:3], VolumeDropRule(runs=3)) is not None


def test_only_the_last_runs_sizes_count() -> None:
    # A model that grew tenfold long ago: the old sizes no longer set the median.
    history = [1_000_000] * 10 + [100_000] * 10
    assert volume_drop(90_000, history, RULES.volume_drop) is None


def test_volume_drop_is_skipped_without_a_size_or_with_a_zero_median() -> None:
    assert volume_drop(None, USUAL, RULES.volume_drop) is None
    assert volume_drop(0, [0] * 10, RULES.volume_drop) is None


def test_a_negative_query_size_never_reaches_the_history() -> None:
    metrics = run_metrics(sync_run(querySize=-20))
    assert remember_query_size(USUAL, metrics.query_size, keep=10) == tuple(USUAL)


def test_the_history_keeps_the_newest_sizes_only() -> None:
    history: tuple[int, ...] = ()
    for size in range(1, 15):
        history = remember_query_size(history, size, keep=10)
    assert history == tuple(range(5, 15))
    with pytest.raises(ValueError):
        remember_query_size(history, 1, keep=0)


def test_median() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    with pytest.raises(ValueError):
        median([])


# -- stuck runs --------------------------------------------------------------------------

FOUR_HOURS_AGO = NOW - timedelta(hours=4)


def test_a_run_in_flight_for_four_hours_without_progress_is_stuck() -> None:
    finding = stuck(FOUR_HOURS_AGO, 0.42, 0.42, NOW, RULES.stuck)
    assert finding is not None
    assert (finding.severity, finding.minutes, finding.completion_ratio, finding.signal) == (
        "critical",
        240,
        0.42,
        "stuck",
    )


def test_a_run_that_moved_is_not_stuck() -> None:
    assert stuck(FOUR_HOURS_AGO, 0.43, 0.42, NOW, RULES.stuck) is None


def test_a_young_run_is_not_stuck() -> None:
    assert stuck(NOW - timedelta(minutes=179), 0.42, 0.42, NOW, RULES.stuck) is None
    assert stuck(NOW - timedelta(minutes=30), 0.42, 0.42, NOW, StuckRule(after_minutes=30)) is not None


@pytest.mark.parametrize(
    ("started", "ratio", "previous"),
    [
        (None, 0.4, 0.4),  # still queued behind another run
        (FOUR_HOURS_AGO, None, 0.4),
        (FOUR_HOURS_AGO, 0.4, None),  # first seen at this tick: no progress to judge yet
    ],
)
def test_stuck_needs_a_start_and_two_ratios(
    started: datetime | None, ratio: float | None, previous: float | None
) -> None:
    assert stuck(started, ratio, previous, NOW, RULES.stuck) is None


def test_a_time_without_zone_is_utc() -> None:
    assert stuck(FOUR_HOURS_AGO.replace(tzinfo=None), 0.1, 0.1, NOW, RULES.stuck) is not None


# -- silent syncs ------------------------------------------------------------------------


def test_an_hourly_sync_last_run_five_hours_ago_is_silent() -> None:
    finding, reason = silent(hourly(), NOW - timedelta(hours=5), NOW, RULES.silent)
    assert reason is None and finding is not None
    assert (finding.severity, finding.silent_minutes, finding.intervals, finding.signal) == (
        "warning",
        300,
        5,
        "silent",
    )
    assert finding.schedule == ScheduleInterval("interval", 60, "every 1 hour")


def test_an_hourly_sync_last_run_two_hours_ago_is_fine() -> None:
    assert silent(hourly(), NOW - timedelta(hours=2), NOW, RULES.silent) == (None, None)


def test_silence_is_counted_in_intervals() -> None:
    assert silent(hourly(), NOW - timedelta(hours=3), NOW, RULES.silent) == (None, None)  # exactly 3: not yet
    assert silent(hourly(), NOW - timedelta(hours=2), NOW, SilentRule(after_intervals=1.5))[0] is not None


def test_an_hourly_cron_reads_like_an_hourly_interval() -> None:
    finding, reason = silent(cron("0 * * * *"), NOW - timedelta(hours=5), NOW, RULES.silent)
    assert reason is None and finding is not None and finding.schedule.minutes == 60
    assert silent(cron("0 * * * *"), NOW - timedelta(hours=2), NOW, RULES.silent) == (None, None)


def test_a_weekday_cron_is_not_silent_over_the_weekend() -> None:
    # Hourly on weekdays: Friday 23:00 to Monday 00:00 is the longest wait, by design.
    monday_early = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    friday_last = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
    assert silent(cron("0 * * * 1-5"), friday_last, monday_early, RULES.silent) == (None, None)


@pytest.mark.parametrize(
    ("schedule", "by_design"),
    [
        (None, True),
        ({"type": "dbt-cloud", "schedule": {"account": {"id": "1"}, "job": {"id": "7"}}}, True),
        ({"type": "fivetran", "schedule": {"connectorId": "abc"}}, True),
        (cron("not a cron"), False),
        (cron("0 0 L * *"), False),
        ({"type": "interval", "schedule": {"interval": {"quantity": -1, "unit": "hour"}}}, False),
        ({"type": "interval", "schedule": {"interval": {"quantity": 1, "unit": "fortnight"}}}, False),
        ({"type": "cron", "schedule": {"interval": {"quantity": 1, "unit": "hour"}}}, False),
        ({"type": "weird", "schedule": {"something": 1}}, False),
        ("hourly", False),
    ],
)
def test_unreadable_or_clockless_schedules_skip_with_a_reason(schedule: Any, by_design: bool) -> None:
    finding, reason = silent(schedule, NOW - timedelta(days=30), NOW, RULES.silent)
    assert finding is None and reason
    interval = schedule_interval(schedule)
    assert isinstance(interval, NoInterval) and interval.by_design is by_design and interval.reason == reason


def test_a_sync_that_never_ran_is_skipped_with_a_reason() -> None:
    finding, reason = silent(hourly(), None, NOW, RULES.silent)
    assert finding is None and reason is not None and "never ran" in reason


@pytest.mark.parametrize(
    ("schedule", "minutes"),
    [
        ({"type": "interval", "schedule": {"interval": {"quantity": 15, "unit": "minute"}}}, 15),
        ({"type": "interval", "schedule": {"interval": {"quantity": 2, "unit": "days"}}}, 2 * 1440),
        ({"type": "interval", "schedule": {"interval": {"quantity": 1, "unit": "week"}}}, 10080),
        (cron("*/15 * * * *"), 15),
        (cron("0 8,20 * * *"), 720),
        (cron("@daily"), 1440),
        (cron("0 9 * * MON-FRI"), 3 * 1440),  # Friday 09:00 to Monday 09:00
        (cron("30 6 * * sun"), 10080),
        (cron("0 0 1 * *"), 31 * 1440),  # monthly: the longest month
        (cron("0 0 1,15 * 1"), 10080),  # both day fields restricted: either fires (Mondays at least)
        (cron("0 0 29 2 *"), (4 * 365 + 1) * 1440),
        (
            {
                "type": "visual",
                "schedule": {"expressions": [{"days": {"monday": True, "friday": True}, "time": "08:30"}]},
            },
            4 * 1440,
        ),
        ({"type": "visual", "schedule": {"expressions": [{"days": {"tuesday": True}, "time": "23:00"}]}}, 10080),
    ],
)
def test_schedule_intervals_are_the_longest_wait(schedule: dict[str, Any], minutes: float) -> None:
    interval = schedule_interval(schedule)
    assert isinstance(interval, ScheduleInterval) and interval.minutes == minutes


# -- rules -------------------------------------------------------------------------------


def test_the_defaults_are_the_issues() -> None:
    assert parse_signal_rules(None) == parse_signal_rules({}) == SignalRules()
    rules = SignalRules()
    assert (rules.rejected_rows.warning, rules.rejected_rows.critical, rules.rejected_rows.min_rows) == (0.05, 0.25, 50)
    assert (rules.removals.critical, rules.removals.min_rows) == (0.5, 1000)
    assert (rules.volume_drop.warning, rules.volume_drop.runs) == (0.5, 10)
    assert rules.stuck.after_minutes == 180
    assert rules.silent.after_intervals == 3


def test_parse_signal_rules_reads_every_key() -> None:
    rules = parse_signal_rules(
        {
            "rejected_rows": {"warning": 0.1, "critical": 1, "min_rows": 0},
            "removals": {"critical": 0.3, "min_rows": 10},
            "volume_drop": {"warning": 0.8, "runs": 3},
            "stuck": {"after_minutes": 45.5},
            "silent": {"after_intervals": 2},
        }
    )
    assert rules == SignalRules(
        RejectedRowsRule(0.1, 1.0, 0),
        RemovalsRule(0.3, 10),
        VolumeDropRule(0.8, 3),
        StuckRule(45.5),
        SilentRule(2),
    )


@pytest.mark.parametrize(
    ("raw", "key", "problem"),
    [
        ({"rejected_rows": {"warning": 1.5}}, "signals.rejected_rows.warning", "must be between 0 and 1"),
        ({"rejected_rows": {"critical": -0.1}}, "signals.rejected_rows.critical", "must be between 0 and 1"),
        ({"removals": {"critical": "half"}}, "signals.removals.critical", "must be between 0 and 1"),
        ({"volume_drop": {"warning": True}}, "signals.volume_drop.warning", "must be between 0 and 1"),
        ({"stuck": {"after_minutes": 0}}, "signals.stuck.after_minutes", "must be a number of minutes above 0"),
        ({"stuck": {"after_minutes": -5}}, "signals.stuck.after_minutes", "above 0"),
        ({"volume_drop": {"runs": 2}}, "signals.volume_drop.runs", "must be a whole number of runs from 3"),
        ({"volume_drop": {"runs": 3.5}}, "signals.volume_drop.runs", "whole number"),
        ({"rejected_rows": {"min_rows": -1}}, "signals.rejected_rows.min_rows", "0 or more"),
        ({"silent": {"after_intervals": 0.5}}, "signals.silent.after_intervals", "1 or more"),
        ({"rejected_rows": {"warnings": 0.1}}, "signals.rejected_rows.warnings", "unknown key"),
        ({"rejected": {"warning": 0.1}}, "signals.rejected", "unknown key"),
        ({"stuck": 180}, "signals.stuck", "expected a mapping such as {after_minutes: 180}"),
        ({"rejected_rows": {"warning": 0.3}}, "signals.rejected_rows.warning", "must not be above the critical one"),
    ],
)
def test_bad_rules_name_the_key(raw: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(SignalRulesError) as caught:
        parse_signal_rules(raw)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ") and problem in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_the_message_reads_as_the_issue_asks() -> None:
    with pytest.raises(ValueError, match=r"^signals\.rejected_rows\.warning: must be between 0 and 1"):
        parse_signal_rules({"rejected_rows": {"warning": 2}})


def test_a_route_overrides_key_by_key() -> None:
    base = parse_signal_rules({"rejected_rows": {"warning": 0.1}, "stuck": {"after_minutes": 60}})
    route = merge_signal_rules(base, {"rejected_rows": {"critical": 0.5}}, "routes[0].signals")
    assert route.rejected_rows == RejectedRowsRule(warning=0.1, critical=0.5, min_rows=50)
    assert route.stuck == StuckRule(60)
    assert merge_signal_rules(base, None, "routes[0].signals") == base


def test_a_route_override_is_checked_against_what_it_inherits() -> None:
    base = parse_signal_rules({"rejected_rows": {"warning": 0.2}})
    with pytest.raises(SignalRulesError) as caught:
        merge_signal_rules(base, {"rejected_rows": {"critical": 0.1}}, "routes[2].signals")
    assert caught.value.key == "routes[2].signals.rejected_rows.critical"
    with pytest.raises(SignalRulesError) as caught:
        merge_signal_rules(base, {"silent": {"after_intervals": 0}}, "routes[2].signals")
    assert caught.value.key == "routes[2].signals.silent.after_intervals"


# -- any answer at all -------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
COUNTS = st.fixed_dictionaries({}, optional={"addedCount": SCALAR, "changedCount": SCALAR, "removedCount": SCALAR})
RUN = st.fixed_dictionaries(
    {},
    optional={
        "plannedRows": COUNTS | SCALAR,
        "successfulRows": COUNTS | SCALAR,
        "failedRows": COUNTS | SCALAR,
        "querySize": SCALAR,
        "completionRatio": SCALAR,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(RUN)
def test_any_run_answer_gives_metrics_the_signals_accept(raw: dict[str, Any]) -> None:
    metrics = run_metrics(raw)
    for found in (
        rejected_rows(metrics, RULES.rejected_rows),
        mass_removal(metrics, 10_000, RULES.removals),
        volume_drop(metrics.query_size, USUAL, RULES.volume_drop),
    ):
        assert found is None or found.severity in ("critical", "warning")
    assert metrics.query_size is None or 0 <= metrics.query_size <= MAX_ROWS
    assert metrics.completion_ratio is None or 0 <= metrics.completion_ratio <= 1


SCHEDULES = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["interval", "cron", "visual", "dbt", "manual"]) | JSON,
        "schedule": st.fixed_dictionaries(
            {},
            optional={
                "interval": st.fixed_dictionaries({}, optional={"quantity": JSON, "unit": JSON}),
                "expression": st.text(alphabet="0123456789*/,-? LMONFRIJA@hourly", max_size=24) | JSON,
                "expressions": st.lists(
                    st.fixed_dictionaries({}, optional={"days": JSON, "time": st.text(max_size=6) | JSON}),
                    max_size=3,
                )
                | JSON,
            },
        )
        | JSON,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SCHEDULES | JSON)
def test_any_schedule_gives_an_interval_or_a_reason(raw: Any) -> None:
    interval = schedule_interval(raw)
    if isinstance(interval, ScheduleInterval):
        assert interval.minutes > 0
    else:
        assert interval.reason
    finding, reason = silent(raw, NOW - timedelta(days=400), NOW, RULES.silent)
    assert finding is None or reason is None  # a finding never comes with a reason to skip


def test_huge_intervals_and_thresholds_do_not_overflow() -> None:
    forever = {"type": "interval", "schedule": {"interval": {"quantity": 1e300, "unit": "week"}}}
    assert silent(forever, NOW - timedelta(days=400), NOW, RULES.silent) == (None, None)
    assert stuck(FOUR_HOURS_AGO, 0.1, 0.1, NOW, StuckRule(after_minutes=1e300)) is None
