"""Properties of the decision core over random run histories and tick boundaries."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import at, config, iso, planned
from triage.actions import Post
from triage.decide import TickContext, decide_sync, lazy_baseline, plan_tick
from triage.fold import issue_done, thread_started
from triage.models import IssueRef, Run, State, Sync, SyncState, sort_runs

THRESHOLD = 3
SETTLED = ["success", "failed", "failed", "failed", "cancelled", "warning", "interrupted"]
FAILED = {"failed", "interrupted"}


@dataclass(frozen=True)
class NewRun:
    status: str  # the final status
    pending_ticks: int  # ticks it stays `processing` before it settles


@dataclass(frozen=True)
class TickPlan:
    runs: list[NewRun]  # runs that appear before this tick


new_run = st.builds(NewRun, st.sampled_from(SETTLED), st.integers(0, 2))
tick_plan = st.builds(TickPlan, st.lists(new_run, max_size=4))


class Workspace:
    """One sync whose runs appear and settle over time, as Hightouch would show them."""

    def __init__(self) -> None:
        self.runs: list[tuple[Run, str, int]] = []  # run as now, final status, tick it settles
        self.clock = 0

    def add(self, status: str, settles_at: int, tick: int) -> None:
        # Hightouch runs a sync's runs one after another: none finishes before an earlier one.
        settles_at = max([settles_at, *(when for _, _, when in self.runs)])
        self.clock += 1
        run = Run(id=str(1000 + self.clock), status="processing", created_at=at(self.clock))
        self.runs.append((run, status, settles_at))
        self.settle(tick)

    def settle(self, tick: int) -> None:
        self.runs = [
            (replace(run, status=final, finished_at=run.created_at + timedelta(seconds=1)), final, when)  # type: ignore[operator, arg-type]
            if when <= tick and run.finished_at is None
            else (run, final, when)
            for run, final, when in self.runs
        ]

    def listed(self) -> list[Run]:
        return [run for run, _, _ in self.runs]

    def sync(self) -> Sync:
        newest = max((r.created_at for r in self.listed() if r.created_at), default=None)
        return Sync(id="1", name="s", last_run_at=iso(newest) if newest else None)


@settings(max_examples=300, deadline=None)
@given(history=st.lists(new_run, max_size=6), ticks=st.lists(tick_plan, min_size=1, max_size=8))
def test_every_failed_run_after_the_baseline_is_alerted_exactly_once(
    history: list[NewRun], ticks: list[TickPlan]
) -> None:
    cfg = config(threshold=THRESHOLD, window=5)
    world = Workspace()
    for item in history:
        world.add(item.status, item.pending_ticks, 0)

    # The baseline tick: what it judges is never alerted.
    baseline = decide_sync(world.sync(), world.listed(), None, TickContext(True, None), cfg)
    assert baseline.alert is None and baseline.escalation is None
    state = baseline.state
    judged_at_baseline = _handled(world.listed(), None, state.cursor_run_id)

    alerted: list[str] = []
    all_ticks = [*ticks, TickPlan([]), TickPlan([]), TickPlan([])]  # let everything settle
    for number, plan in enumerate(all_ticks, start=1):
        for item in plan.runs:
            world.add(item.status, number + item.pending_ticks, number)
        world.settle(number)
        sync = world.sync()
        if not plan_tick([sync], State(baseline_at="x", syncs={"1": state})).to_check:
            continue  # nothing new: no runs request, nothing to decide

        decision = decide_sync(sync, world.listed(), state, TickContext(False, at(0)), cfg)
        covered = _handled(world.listed(), state.cursor_run_id, decision.state.cursor_run_id)
        new_failures = [r.id for r in covered if r.status in FAILED]
        if new_failures:
            assert decision.alert is not None
            assert decision.alert.new_failures == len(new_failures)
            assert decision.alert.run.id == new_failures[-1]
        else:
            assert decision.alert is None
        alerted += new_failures

        count = _consecutive(_handled(world.listed(), None, decision.state.cursor_run_id))
        assert decision.state.consecutive_failures == count
        assert (decision.escalation is not None) == (bool(new_failures) and count >= THRESHOLD)
        state = decision.state
        if decision.escalation is not None:
            state = issue_done(state, IssueRef("DATA-1"))

    failed_after_baseline = [
        run.id for run in sort_runs(world.listed()) if run.status in FAILED and run not in judged_at_baseline
    ]
    assert sorted(alerted) == sorted(failed_after_baseline)
    assert len(alerted) == len(set(alerted))


def _handled(runs: list[Run], after: str | None, through: str | None) -> list[Run]:
    """Runs after cursor `after` up to and including cursor `through`, oldest first."""
    ordered = sort_runs(runs)
    ids = [r.id for r in ordered]
    start = ids.index(after) + 1 if after is not None else 0
    end = ids.index(through) + 1 if through is not None else 0
    return ordered[start:end]


def _consecutive(handled: list[Run]) -> int:
    count = 0
    for run in handled:
        if run.status in FAILED:
            count += 1
        elif run.status in ("success", "warning"):
            count = 0
    return count


@settings(max_examples=200, deadline=None)
@given(ticks=st.lists(st.lists(st.sampled_from(SETTLED), max_size=3), min_size=1, max_size=10), data=st.data())
def test_linear_creates_exactly_when_due_and_no_issue_is_open(ticks: list[list[str]], data: st.DataObject) -> None:
    cfg = config(threshold=THRESHOLD)
    world = Workspace()
    state = decide_sync(world.sync(), [], None, TickContext(True, None), cfg).state
    open_issue: str | None = None
    issues_created = 0
    for number, statuses in enumerate(ticks, start=1):
        for status in statuses:
            world.add(status, 0, number)
        if open_issue and data.draw(st.booleans(), label=f"close before tick {number}"):
            open_issue = None
        sync = world.sync()
        if not plan_tick([sync], State(baseline_at="x", syncs={"1": state})).to_check:
            continue
        decision = decide_sync(sync, world.listed(), state, TickContext(False, at(0)), cfg)
        count = decision.state.consecutive_failures
        new_failure = decision.alert is not None
        expected_create = new_failure and count >= THRESHOLD and open_issue is None
        created = decision.escalation is not None and open_issue is None
        assert created == expected_create
        state = decision.state
        if decision.escalation is not None:
            if open_issue is None:
                issues_created += 1
                open_issue = f"DATA-{issues_created}"
            state = issue_done(state, IssueRef(open_issue))
        assert isinstance(state, SyncState) and not state.issue_pending


@dataclass(frozen=True)
class OddRun:
    status: str
    pending_ticks: int
    missing_times: bool  # createdAt null (numeric ids: every timestamp null)


odd_run = st.builds(OddRun, st.sampled_from(SETTLED), st.integers(0, 2), st.booleans())


@settings(max_examples=300, deadline=None)
@given(
    numeric_ids=st.booleans(),
    history=st.lists(odd_run, max_size=5),
    ticks=st.lists(st.tuples(st.lists(odd_run, max_size=3), st.booleans()), min_size=1, max_size=8),
)
def test_odd_run_ids_and_missing_times_still_alert_every_failure_exactly_once(
    numeric_ids: bool, history: list[OddRun], ticks: list[tuple[list[OddRun], bool]]
) -> None:
    """Whatever the id shape, however many timestamps are null, and even when the cursor's
    run has vanished from the listing, every failed run after the baseline is alerted once."""
    cfg = config(threshold=THRESHOLD, window=5)
    runs: list[tuple[Run, str, int]] = []  # as listed now, final status, tick it settles; in creation order
    created_count = iter(range(1, 1000))

    def add(item: OddRun, tick: int) -> None:
        n = next(created_count)
        settles_at = max([tick + item.pending_ticks, *(when for _, _, when in runs)])
        created = at(n)
        times: tuple[datetime | None, datetime | None]
        if numeric_ids:
            # Ids grow; with missing times, nothing else tells the order.
            run_id, times = str(1000 + n), (None, None) if item.missing_times else (created, created)
        else:
            # Opaque ids that sort neither by text nor by number; startedAt stands in for a null createdAt.
            run_id = f"run-{(n * 7919) % 10007:05x}"
            times = (None, created) if item.missing_times else (created, created)
        run = Run(id=run_id, status="processing", created_at=times[0], started_at=times[1])
        runs.append((run, item.status, settles_at))

    def settle(tick: int) -> None:
        runs[:] = [
            (replace(run, status=final, finished_at=run.started_at), final, when)
            if when <= tick and run.finished_at is None
            else (run, final, when)
            for run, final, when in runs
        ]

    for item in history:
        add(item, 0)
    settle(0)
    sync = Sync(id="1", name="s")
    state = decide_sync(sync, [r for r, _, _ in runs], None, TickContext(True, None), cfg).state
    seen_at_baseline = {r.id for r, _, _ in runs if r.status != "processing"}

    alerted: list[str] = []
    for number, (new_runs, drop_handled) in enumerate([*ticks, ([], False), ([], False), ([], False)], start=1):
        for item in new_runs:
            add(item, number)
        settle(number)
        if drop_handled and state.cursor_run_id is not None:
            # Hightouch keeps recent runs only: everything up to the cursor is gone.
            ids = [r.id for r, _, _ in runs]
            if state.cursor_run_id in ids:
                del runs[: ids.index(state.cursor_run_id) + 1]
        decision = decide_sync(sync, [r for r, _, _ in runs], state, TickContext(False, at(0)), cfg)
        handled_now = _newly_handled(runs, state, decision.state)
        alerted += [r.id for r in handled_now if r.status in FAILED]
        assert (decision.alert is None) == (not any(r.status in FAILED for r in handled_now))
        state = decision.state

    expected = [r.id for r, final, _ in runs if final in FAILED and r.id not in seen_at_baseline]
    assert len(alerted) == len(set(alerted))
    assert set(expected) <= set(alerted)
    assert not set(alerted) & seen_at_baseline


def _newly_handled(runs: list[tuple[Run, str, int]], before: SyncState, after: SyncState) -> list[Run]:
    """Runs (in creation order) past `before`'s cursor up to and including `after`'s cursor."""
    ids = [r.id for r, _, _ in runs]
    if after.cursor_run_id is None or after.cursor_run_id == before.cursor_run_id:
        return []
    end = ids.index(after.cursor_run_id) + 1
    start = ids.index(before.cursor_run_id) + 1 if before.cursor_run_id in ids else 0
    if before.cursor_run_id is not None and before.cursor_run_id not in ids:
        start = 0  # the old cursor and everything before it are gone
    return [r for r, _, _ in runs[start:end]]


@settings(max_examples=200, deadline=None)
@given(
    history=st.lists(st.sampled_from(SETTLED), max_size=4),
    ticks=st.lists(st.lists(st.sampled_from(SETTLED), max_size=3), min_size=1, max_size=10),
)
def test_a_recovery_ends_each_told_incident_once_and_only_those(history: list[str], ticks: list[list[str]]) -> None:
    cfg = config(threshold=THRESHOLD)
    world = Workspace()
    for status in history:
        world.add(status, 0, 0)
    state = decide_sync(world.sync(), world.listed(), None, TickContext(True, None), cfg).state
    assert not state.threads  # the baseline tells no one
    recoveries = 0
    told_and_ended = 0
    for number, statuses in enumerate(ticks, start=1):
        told_before = bool(state.threads)
        for status in statuses:
            world.add(status, 0, number)
        decision = decide_sync(world.sync(), world.listed(), state, TickContext(False, at(0)), cfg)
        handled = _handled(world.listed(), state.cursor_run_id, decision.state.cursor_run_id)
        ended = any(r.status in ("success", "warning") for r in handled)
        # An incident that opened and closed between two ticks (failed, then recovered) is
        # told opened and closed: the oracle walks the handled runs for one.
        is_open, opened_here, opened_and_closed = state.incident is not None, False, False
        for run in handled:
            if run.status in FAILED and not is_open:
                is_open, opened_here = True, True
            elif run.status in ("success", "warning") and is_open:
                opened_and_closed = opened_and_closed or (opened_here and not told_before)
                is_open = False
        if decision.recovery is not None:
            recoveries += 1
            if told_before:
                assert decision.recovery.incident.threads == state.threads
            else:
                assert opened_and_closed  # else only an incident that was told gets a recovery
        told_and_ended += told_before and ended
        told_and_ended += not told_before and opened_and_closed
        state = decision.state
        for action in planned(decision, cfg):
            if isinstance(action, Post) and action.starts_thread:
                state = thread_started(state, action.channel, "C1", f"{number}.0")
    assert recoveries == told_and_ended  # each told incident that ended got exactly one


@given(
    history=st.lists(st.sampled_from(SETTLED), max_size=8),
    later=st.lists(st.lists(st.sampled_from(SETTLED), max_size=3), min_size=1, max_size=4),
)
@settings(max_examples=300, deadline=None)
def test_a_lazy_baseline_alerts_exactly_what_reading_the_runs_at_the_baseline_would(
    history: list[str], later: list[list[str]]
) -> None:
    """A sync whose latest run succeeded is baselined without reading its runs; every tick
    after must alert, count and escalate exactly as if its runs had been read then."""
    history = [*history, "success"]  # healthy: its latest run succeeded
    runs = [Run(str(100 + n), s, created_at=at(n), finished_at=at(n)) for n, s in enumerate(history)]
    baseline_at = at(len(runs))
    sync = Sync("1", "contacts", last_run_at=iso(baseline_at), status="success")
    baseline = TickContext(baseline=True, previous_tick_at=None)

    eager = decide_sync(sync, runs, None, baseline, config(THRESHOLD)).state
    lazy = lazy_baseline(sync, baseline_at)
    assert plan_tick([sync], State()).healthy_at_baseline == [sync]
    for tick, statuses in enumerate(later, start=1):
        start = len(runs)
        runs += [Run(str(100 + start + i), s, created_at=at(start + i + 1), finished_at=at(start + i + 1))
                 for i, s in enumerate(statuses)]  # fmt: skip
        now = replace(sync, last_run_at=iso(at(len(runs) + 1)))
        ctx = TickContext(baseline=False, previous_tick_at=at(start))
        a = decide_sync(now, runs, eager, ctx, config(THRESHOLD))
        b = decide_sync(now, runs, lazy, ctx, config(THRESHOLD))
        assert (a.alert is None) == (b.alert is None), tick
        if a.alert is not None and b.alert is not None:
            assert (a.alert.run.id, a.alert.new_failures, a.alert.consecutive_failures) == (
                b.alert.run.id,
                b.alert.new_failures,
                b.alert.consecutive_failures,
            )
            assert a.alert.previous_runs == b.alert.previous_runs
        assert (a.escalation is None) == (b.escalation is None)
        assert a.state.consecutive_failures == b.state.consecutive_failures
        eager, lazy = a.state, b.state
    assert eager == lazy  # once it ran again, the two states are one
