"""The judge: the first pure stage. Per sync, from its runs and what state remembers:
which runs are new, what its incident becomes (opened, repeated, escalated, a signal,
recovered) and whether a Linear step is due. What spans syncs, and every action, is the
plan's (plan.py). No I/O here, so every rule is a unit test on data.

Guarantees:
- a settled run is judged exactly once: it is handled only when it lies after
  the sync's cursor, and the cursor moves past it in the same decision;
- handling stops at the first unsettled run, which is judged at a later tick
  (unless 3 later runs have settled: then it was abandoned and is passed over);
- the first tick (no state) and a sync first seen later record a baseline and
  alert on nothing that happened before the tool was watching.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from triage import signals
from triage.causes import classify
from triage.config import Config
from triage.models import (
    Incident,
    Outcome,
    Run,
    State,
    Sync,
    SyncState,
    is_after,
    is_known_status,
    iso_time,
    outcome,
    parse_iso_time,
    sort_runs,
)
from triage.routing import Route, Target, resolve_route
from triage.signals import Finding, SignalRules
from triage.signature import signature
from triage.talk import Answer

log = logging.getLogger(__name__)

CRITICAL = "critical"
WARNING = "warning"

# Later runs that must have settled before an unfinished run is taken as abandoned.
ABANDONED_AFTER = 3


@dataclass(frozen=True)
class TickPlan:
    """Which syncs need their runs fetched this tick, in the order to handle them."""

    to_check: list[Sync]
    disabled: list[Sync]
    unchanged: list[Sync]
    # Syncs that never ran and are not yet remembered: recorded with no request.
    never_ran: list[Sync]
    # At the baseline, syncs whose latest run succeeded: recorded with no request (see lazy_baseline).
    healthy_at_baseline: list[Sync] = field(default_factory=list)


def plan_tick(syncs: list[Sync], state: State) -> TickPlan:
    """Skip disabled syncs and syncs with nothing new, with no runs request for them.

    Syncs deferred last tick (by a rate or time limit) go first, so none starves.
    """
    disabled = [s for s in syncs if s.disabled]
    enabled = [s for s in syncs if not s.disabled]
    to_check: list[Sync] = []
    unchanged: list[Sync] = []
    never_ran: list[Sync] = []
    healthy: list[Sync] = []
    for sync in enabled:
        known = state.syncs.get(sync.id)
        if known is None:
            if sync.last_run_at is None:
                never_ran.append(sync)
            elif state.is_baseline and sync.healthy:
                healthy.append(sync)
            else:
                to_check.append(sync)
        elif needs_runs(sync, known):
            to_check.append(sync)
        else:
            unchanged.append(sync)
    deferred = set(state.deferred)
    to_check.sort(key=lambda s: s.id not in deferred)  # stable: listing order otherwise
    return TickPlan(
        to_check=to_check, disabled=disabled, unchanged=unchanged, never_ran=never_ran, healthy_at_baseline=healthy
    )


# A full listing at least this often: it is what notices syncs paused, deleted or renamed
# without running. In between, ticks list only syncs that ran since the last full listing,
# less a margin for the clocks of runner and Hightouch disagreeing.
FULL_LISTING_EVERY = timedelta(hours=1)
LISTING_MARGIN = timedelta(minutes=5)


def listing_after(state: State, now: datetime) -> str | None:
    """The time to list syncs that ran after (List Syncs `after=`), or None when a full
    listing is due: the first tick, or none in the last FULL_LISTING_EVERY."""
    last = parse_iso_time(state.full_listing_at)
    if state.is_baseline or last is None or now - last >= FULL_LISTING_EVERY or last > now:
        return None
    return iso_time(last - LISTING_MARGIN)


def still_due(state: State, listed: set[str], answering: Collection[str] = ()) -> list[str]:
    """Remembered syncs a listing of recent runs leaves out that must be looked at anyway:
    a run still in flight, a Linear step or a message to finish, a deferral — or an
    incident people answered, or whose reminder is due (`answering`)."""
    deferred = set(state.deferred) | set(answering)
    return [
        sync_id
        for sync_id, known in state.syncs.items()
        if sync_id not in listed
        and (known.pending_run_id is not None or known.issue_pending or known.sent or sync_id in deferred)
    ]


def read_first(syncs: list[Sync], state: State) -> tuple[list[Sync], list[Sync]]:
    """`syncs` split into those to read first and the rest, each in its order. The rest are
    remembered syncs whose latest run the listing shows a success, with nothing open, owed or
    deferred. They can bring only new incidents of their own — a signal on a green run, a
    failure and its recovery between two ticks — and what those could change in what the
    first decided waits for them (plan.held_back). (A run that failed after the listing was
    read is told as if it had failed a moment later, as it would be at the next tick.) The
    tick carries out what the first decided while it reads the rest."""
    deferred = set(state.deferred)

    def quiet(sync: Sync) -> bool:
        known = state.syncs.get(sync.id)
        return (
            sync.status == "success"
            and known is not None
            and known.incident is None
            and known.consecutive_failures == 0
            and known.pending_run_id is None
            and not known.issue_pending
            and not known.sent
            and sync.id not in deferred
        )

    return [s for s in syncs if not quiet(s)], [s for s in syncs if quiet(s)]


def needs_runs(sync: Sync, known: SyncState) -> bool:
    return sync.last_run_at != known.last_run_at or known.pending_run_id is not None or known.issue_pending


@dataclass(frozen=True)
class TickContext:
    baseline: bool  # the very first tick: record, alert on nothing
    previous_tick_at: datetime | None  # when the last tick ran; syncs first seen later use it
    today: date | None = None  # for muted routes (UTC); None: nothing is muted by date
    now: datetime | None = None  # for signals that are about time (stuck, silent); None: not measured


def enough_runs(runs: list[Run], known: SyncState | None, ctx: TickContext, config: Config) -> bool:
    """Whether the runs fetched so far reach back far enough to decide.

    They must reach the boundary between handled and new runs (the cursor, or
    the previous tick for a sync first seen now) and hold `history_window`
    runs at or before it, so the context block shows the previous runs.
    """
    wanted = config.triage.history_window
    if known is not None and known.cursor_run_id is not None:
        old = _up_to_cursor(sort_runs(runs), known)
    elif known is not None and known.since is not None:
        boundary = parse_iso_time(known.since)
        old = [r for r in runs if r.time is not None and boundary is not None and r.time < boundary]
    elif known is not None:
        return False  # remembered but never had a settled run: everything is new
    elif ctx.baseline or ctx.previous_tick_at is None:
        old = runs
    else:
        boundary = ctx.previous_tick_at
        old = [r for r in runs if r.time is not None and r.time < boundary]
    return len(old) >= wanted


def read_from(known: SyncState | None, ctx: TickContext) -> datetime | None:
    """The moment a sync's runs are read back to (List Sync Runs `after=`, less a margin):
    where `enough_runs` looks back to — the cursor run's time, a lazy baseline's, the previous
    tick's for a sync first seen now, the tick's own at the baseline. None: read every page."""
    if known is not None and known.cursor_run_id is not None:
        return parse_iso_time(known.cursor_at)
    if known is not None and known.since is not None:
        return parse_iso_time(known.since)
    if known is not None:
        return None  # remembered, never settled: every page
    if ctx.baseline or ctx.previous_tick_at is None:
        return ctx.now
    return ctx.previous_tick_at


@dataclass(frozen=True)
class Alert:
    """One Slack message: the newest new failure of a sync and what led to it."""

    sync: Sync
    run: Run  # the newest failed run
    new_failures: int  # failures first seen this tick
    consecutive_failures: int
    previous_runs: tuple[Run, ...]  # settled runs before `run`, oldest first
    previous_failed: tuple[bool, ...]  # whether each of previous_runs failed
    finding: Finding | None = None  # a signal, when the trouble is not a failed run (see signals.py)
    severity: str = CRITICAL

    @property
    def previous_all_failed(self) -> bool:
        return bool(self.previous_failed) and all(self.previous_failed)


@dataclass(frozen=True)
class Recovery:
    """The first successful run after an incident that was told: its end, to be told in each
    of its threads, on its first messages and on its Linear issue."""

    run: Run
    failed_runs: int
    incident: Incident


@dataclass(frozen=True)
class SyncDecision:
    """One sync judged: its runs walked, its incident's next state, and what changed that
    people may need to hear of. Where and how they hear of it is the plan's (see plan.py).

    `state` has the cursor moved past every handled run and the incident as it now stands
    (`issue_pending` set when an escalation is due); `before` is the state as it stood, on
    which each message of the sync is journaled as it is sent, so a tick that dies midway
    leaves the next one what it needs to send each message once.
    """

    sync: Sync
    state: SyncState
    route: Route
    before: SyncState
    alert: Alert | None = None  # new failures this tick
    recovery: Recovery | None = None  # an incident that was told ended this tick
    escalation: Alert | None = None  # a Linear step is due, for this failure
    opened: bool = False  # the incident was first told this tick (no thread yet)
    crossing: bool = False  # it crossed the escalation threshold this tick: people hear of it
    muted: bool = False  # the route is muted: judged, not told
    unknown_statuses: tuple[str, ...] = field(default_factory=tuple)
    latest: Alert | None = None  # the open incident's newest failure, new or not: what its first message shows
    heard: tuple[Answer, ...] = ()  # what people said by reaction this tick (see talk.py)
    turned_critical: bool = False  # a warning incident became critical this tick: announced as that
    resolved: tuple[str, Recovery] | None = None  # closed by this person: the incident as it ended


def decide_sync(
    sync: Sync,
    runs: list[Run],
    known: SyncState | None,
    ctx: TickContext,
    config: Config,
    target: Target | None = None,
) -> SyncDecision:
    """Judge one sync from its runs (any order): which runs are new, what its incident
    becomes, and whether a Linear step is due.

    `target` carries what routes match on beyond the sync (destination and model);
    without it the sync alone is matched."""
    target = target or Target(sync)
    route = resolve_route(target, config)  # its signals' thresholds: before anything is judged
    measure = None
    if ctx.now is not None and not ctx.baseline:
        in_flight = (known.pending_run_id, known.pending_ratio) if known is not None else (None, None)
        measure = Measure(route.signals, ctx.now, in_flight)
    failure_statuses = config.triage.failure_statuses
    ordered = sort_runs(runs)
    unknown = tuple(sorted({r.status for r in ordered if not is_known_status(r.status)}))

    if known is None or (known.cursor_run_id is None and known.since is not None):
        # First seen now, or baselined without its runs: runs before the boundary are history.
        boundary = _history_boundary(known, ctx)
        if boundary is None:
            baseline, new = ordered, []
        else:
            baseline = [r for r in ordered if r.time is None or r.time < boundary]
            new = [r for r in ordered if r.time is not None and r.time >= boundary]
        base = SyncState(name=sync.name) if known is None else replace(known, name=sync.name, pending_run_id=None)
        start = _walk(replace(base, since=iso_time(boundary)), baseline, failure_statuses).state
        if known is not None and known.incident is not None:
            # Runs before the boundary are history: they neither open nor end an incident
            # that was told since (a silent sync's, judged from the listing alone).
            start = replace(start, incident=known.incident)
        if start.pending_run_id is not None:
            # A baseline run still running: judge it, and all after it, later.
            new = []
        # Its lastRunAt left unset, so a tick that dies before recording the decision
        # reads these runs again.
        before = start if known is None else known
    else:
        before = known
        start = replace(known, name=sync.name, pending_run_id=None)
        new = _after_cursor(ordered, known)

    silenced = None
    if start.incident is not None and start.incident.signal == "silent" and new:
        # It runs again: the silence is over, whatever the run says.
        silenced = Recovery(new[0], 0, start.incident)
        start = replace(start, incident=None)
    severity_before = start.incident.severity if start.incident is not None else None
    walked = _walk(start, new, failure_statuses, measure)
    state = replace(walked.state, last_run_at=sync.last_run_at, sent=())
    if state.cursor_run_id is not None:
        state = replace(state, since=None)  # the cursor places every later run
    window = config.triage.history_window

    troubles = walked.troubles
    if measure is not None and not new and state.incident is None:
        quiet = measure.silent(sync)
        if quiet is not None:
            placeholder = Run(id="", status="no run")
            troubles = ((placeholder, quiet),)
            state = replace(state, incident=Incident(started_at=iso_time(ctx.now), severity=WARNING, signal="silent"))
    alert = None
    if walked.failures:
        # A run an earlier tick's message already reported (that tick died before recording
        # it) is not news again: "N new failed runs" counts only the others.
        told = {s.run_id for s in before.sent if s.kind == "failure"}  # sent, or whose answer was lost
        newest = walked.failures[-1]
        fresh = [r for r in walked.failures if r.id not in told or r.id == newest.id]
        alert = _alert(sync, ordered, newest, len(fresh), state, window, failure_statuses)
    elif troubles:
        run, finding = troubles[-1]
        alert = replace(
            _alert(sync, ordered, run, len(troubles), state, window, failure_statuses),
            finding=finding,
            severity=finding.severity,
        )

    # Where it goes can depend on how bad it is and why: the route is resolved again with both.
    incident_now = state.incident
    error_class = classify(alert.run.error).error_class if alert is not None and alert.finding is None else None
    if incident_now is not None:
        target = replace(target, severity=incident_now.severity, error_class=error_class or incident_now.error_class)
        route = resolve_route(target, config)
        if error_class is not None:
            state = replace(state, incident=replace(incident_now, error_class=error_class))
    muted = ctx.today is not None and route.muted(ctx.today)

    # A muted route tells no one; its runs are judged all the same, so nothing is
    # alerted once the mute ends.
    escalated = None if muted else _due_escalation(sync, ordered, alert, state, route, config, measure)
    incident = state.incident
    crossing = False
    if incident is not None and alert is not None and incident.cause is None:
        incident = replace(incident, cause=cause_of(alert))
    if incident is not None:
        # No escalation due (under the threshold): forget a create id an earlier tick chose;
        # an issue that did land names the sync and is found by the next search.
        pending = escalated is not None
        crossing = pending and alert is not None and not incident.escalated
        incident = replace(
            incident,
            issue_pending=pending,
            issue_create_id=incident.issue_create_id if pending else None,
            escalated=incident.escalated or crossing,
        )
        state = replace(state, incident=incident)
    opened = alert is not None and not muted and incident is not None and not incident.threads
    turned_critical = severity_before == WARNING and incident is not None and incident.severity == CRITICAL
    latest = alert or escalated
    if latest is None and incident is not None:
        handled = _newest_handled_failure(ordered, state, failure_statuses)
        latest = _alert(sync, ordered, handled, 0, state, window, failure_statuses) if handled else None
    return SyncDecision(
        sync=sync,
        state=state,
        route=route,
        before=before,
        alert=alert if not muted else None,
        recovery=silenced or walked.recovery,
        escalation=escalated,
        opened=opened,
        crossing=crossing,
        muted=muted,
        unknown_statuses=unknown,
        latest=latest,
        turned_critical=turned_critical and not muted,
    )


def _due_escalation(
    sync: Sync,
    ordered: list[Run],
    alert: Alert | None,
    state: SyncState,
    route: Route,
    config: Config,
    measure: Measure | None = None,
) -> Alert | None:
    """The alert a Linear step is due for: a new failure past the route's threshold (or a
    critical signal; a warning only with `linear.escalate_warnings`), or a Linear step that
    failed last tick, retried while the sync is still failing (or its signal still holds)."""
    if alert is not None and alert.finding is not None:
        wanted = alert.severity == CRITICAL or route.escalate_warnings
        return alert if route.escalate and wanted else None
    incident = state.incident
    if alert is None and incident is not None and incident.signal != "failed":
        return _signal_retry(sync, ordered, state, config, measure) if route.escalate and state.issue_pending else None
    if not route.escalate or state.consecutive_failures < route.escalation_threshold:
        return None
    if alert is not None:
        return alert
    if not state.issue_pending:
        return None
    failure_statuses = config.triage.failure_statuses
    newest = _newest_handled_failure(ordered, state, failure_statuses)
    if newest is None:
        return None
    return _alert(sync, ordered, newest, 0, state, config.triage.history_window, failure_statuses)


def cause_of(alert: Alert) -> str:
    """What an alert's trouble groups by: a failure's signature; a signal is the sync's own
    trouble, and groups with no other sync's."""
    if alert.finding is not None:
        return f"{alert.finding.signal} of {alert.sync.id}"
    return signature(alert.run.error, alert.sync.destination_id)


def _signal_retry(
    sync: Sync, ordered: list[Run], state: SyncState, config: Config, measure: Measure | None
) -> Alert | None:
    """A signal incident's Linear step that failed: measured again on the run that raised it,
    so the issue says what was found."""
    if measure is None:
        return None
    handled = [r for r in _up_to_cursor(ordered, state) if outcome(r) is not Outcome.UNSETTLED]
    pending = next((r for r in ordered if r.id == state.pending_run_id), None)
    finding: Finding | None = None
    run: Run | None = None
    if pending is not None:
        run, finding = pending, measure.pending(pending, state)
    elif handled:
        # Its own size is the newest remembered: measured against those before it.
        run = handled[-1]
        finding = measure.settled(run, replace(state, query_sizes=state.query_sizes[:-1]))
    if finding is None:
        finding, run = measure.silent(sync), Run(id="", status="no run")
    if finding is None or run is None:
        return None
    window, statuses = config.triage.history_window, config.triage.failure_statuses
    return replace(_alert(sync, ordered, run, 0, state, window, statuses), finding=finding, severity=finding.severity)


def silent_now(sync: Sync, known: SyncState, ctx: TickContext, config: Config) -> bool:
    """Whether an unchanged sync has gone silent (no run for `silent.after_intervals` of its
    schedule): judged from the listing alone, so it costs no request."""
    if ctx.baseline or ctx.now is None or known.incident is not None or sync.schedule is None:
        return False
    return Measure(resolve_route(Target(sync), config).signals, ctx.now).silent(sync) is not None


def first_seen_state(sync: Sync, ctx: TickContext) -> SyncState | None:
    """What to remember of a sync first seen this tick whose runs could not be read (an error,
    a limit): the boundary it was judged with — runs created before the previous tick are
    history — so the next tick reads it again with the same one, and its failures since are
    still news. None at the baseline, when everything is history anyway."""
    if ctx.baseline or ctx.previous_tick_at is None:
        return None
    return SyncState(name=sync.name, since=iso_time(ctx.previous_tick_at))


def never_ran_state(sync: Sync) -> SyncState:
    return SyncState(name=sync.name, last_run_at=sync.last_run_at)


def lazy_baseline(sync: Sync, baseline_at: datetime) -> SyncState:
    """A healthy sync's baseline without reading its runs: no failure streak (its latest
    run succeeded), and every run created before the baseline is history when it next
    runs — the rule for a sync first seen after the baseline."""
    return SyncState(name=sync.name, last_run_at=sync.last_run_at, since=iso_time(baseline_at))


@dataclass(frozen=True)
class _Walk:
    state: SyncState
    failures: list[Run]
    recovery: Recovery | None = None
    troubles: tuple[tuple[Run, Finding], ...] = ()  # runs that did not fail but hurt, with what was found


@dataclass(frozen=True)
class Measure:
    """The signals measured on runs as they are walked (see signals.py): the route's rules,
    and the tick's time for those about time."""

    rules: SignalRules
    now: datetime
    previous: tuple[str | None, float | None] = (None, None)  # the run pending at the last check, its ratio

    def settled(self, run: Run, state: SyncState) -> Finding | None:
        """What hurt in a run that did not fail: rows rejected, records removed, a volume drop."""
        metrics = _metrics(run)
        previous = state.query_sizes[-1] if state.query_sizes else None
        return (
            signals.mass_removal(metrics, previous, self.rules.removals)
            or signals.rejected_rows(metrics, self.rules.rejected_rows)
            or signals.volume_drop(run.query_size, state.query_sizes, self.rules.volume_drop)
        )

    def pending(self, run: Run, state: SyncState) -> Finding | None:
        """A run in flight past `stuck.after_minutes` that made no progress since the last tick."""
        pending_id, ratio = self.previous
        previous = ratio if pending_id == run.id else None
        return signals.stuck(
            run.started_at or run.created_at, run.completion_ratio, previous, self.now, self.rules.stuck
        )

    def silent(self, sync: Sync) -> Finding | None:
        if sync.schedule is None or sync.disabled:
            return None
        try:
            schedule = json.loads(sync.schedule)
        except ValueError:
            return None
        finding, why_not = signals.silent(schedule, parse_iso_time(sync.last_run_at), self.now, self.rules.silent)
        if why_not and finding is None and not why_not.startswith(("manual", "dbt", "fivetran")):
            log.info("sync %s: silent not judged: %s", sync.name, why_not)
        return finding


def _metrics(run: Run) -> signals.RunMetrics:
    return signals.RunMetrics(
        planned=run.planned if run.planned.total is not None else None,
        successful=run.successful if run.successful.total is not None else None,
        failed=run.failed,
        query_size=run.query_size,
        completion_ratio=run.completion_ratio,
    )


def _worse(incident: Incident, severity: str, signal: str) -> Incident:
    """The incident with a new trigger: critical never steps back down to warning."""
    return replace(incident, severity=CRITICAL if CRITICAL in (incident.severity, severity) else WARNING, signal=signal)


def _walk(
    start: SyncState, runs: list[Run], failure_statuses: tuple[str, ...], measure: Measure | None = None
) -> _Walk:
    """Apply settled runs in order, stopping at the first unsettled one (recorded as pending).

    `start.pending_run_id` is kept when no run is walked: a run still running at the
    baseline must be looked at again even if the sync's lastRunAt never moves. With
    `measure`, a run that did not fail but hurt (rows rejected, records removed, a volume
    drop, stuck in flight) is a trouble of the incident too; without it (the baseline),
    only failures count.
    """
    state = start
    failures: list[Run] = []
    troubles: list[tuple[Run, Finding]] = []
    recovery: Recovery | None = None
    for index, run in enumerate(runs):
        result = outcome(run, failure_statuses)
        if result is Outcome.UNSETTLED:
            if not _abandoned(runs[index + 1 :], failure_statuses):
                stuck = measure.pending(run, state) if measure is not None else None
                incident = state.incident
                if stuck is not None and not (incident and incident.signal == "stuck"):
                    troubles.append((run, stuck))
                    state = _troubled(state, run, stuck)
                pending = replace(state, pending_run_id=run.id, pending_ratio=run.completion_ratio)
                return _Walk(pending, failures, recovery, tuple(troubles))
            # Passed over, neither failure nor success, so one zombie run cannot silence a sync.
            result = Outcome.OTHER
        count = state.consecutive_failures
        judged = result in (Outcome.SUCCEEDED, Outcome.OTHER)  # a cancelled run says nothing of health
        finding = measure.settled(run, state) if measure is not None and judged else None
        if result is Outcome.SUCCEEDED and run.query_size is not None:
            keep = measure.rules.volume_drop.runs if measure is not None else signals.VolumeDropRule().runs
            state = replace(state, query_sizes=signals.remember_query_size(state.query_sizes, run.query_size, keep))
        if result is Outcome.FAILED:
            count += 1
            failures.append(run)
            if state.incident is None:  # an incident starts
                state = replace(state, incident=Incident(started_at=iso_time(run.time), first_run_id=run.id))
            else:
                state = replace(state, incident=_worse(state.incident, CRITICAL, "failed"))
        elif finding is not None:
            troubles.append((run, finding))
            state = _troubled(state, run, finding)
            if result is Outcome.SUCCEEDED:
                count = 0  # it did not fail: the failure streak starts again
        elif result is Outcome.SUCCEEDED:
            incident = state.incident
            # The end of an incident that was told, or of one that opened since the last tick
            # (failed and recovered between two ticks: it is told opened and closed at once).
            new = incident is not None and any(f.id == incident.first_run_id for f in failures)
            healed = incident is not None and incident.auto_retry is not None  # its retry worked
            if incident is not None and (incident.threads or new or healed) and recovery is None:
                recovery = Recovery(run, count, incident)
            count = 0
            state = replace(state, incident=None)
        state = replace(state, cursor_run_id=run.id, cursor_at=iso_time(run.time), consecutive_failures=count)
    return _Walk(replace(state, pending_ratio=None), failures, recovery, tuple(troubles))


def _troubled(state: SyncState, run: Run, finding: Finding) -> SyncState:
    """The state once a signal found trouble in `run`: the incident opens, or takes it in."""
    incident = state.incident
    if incident is None:
        opened = Incident(
            started_at=iso_time(run.time), first_run_id=run.id, severity=finding.severity, signal=finding.signal
        )
        return replace(state, incident=opened)
    return replace(state, incident=_worse(incident, finding.severity, finding.signal))


def _history_boundary(known: SyncState | None, ctx: TickContext) -> datetime | None:
    """Before when a sync's runs are history: its lazy baseline's time, or for a sync first
    seen now the previous tick's; None at the very first tick (all of them are)."""
    if known is not None:
        return parse_iso_time(known.since)
    if ctx.baseline:
        return None
    return ctx.previous_tick_at


def _abandoned(later: list[Run], failure_statuses: tuple[str, ...]) -> bool:
    """An unfinished run is taken as abandoned once ABANDONED_AFTER later runs have settled:
    Hightouch queues a sync's runs one after another, so they would not finish first."""
    settled = sum(1 for run in later if outcome(run, failure_statuses) is not Outcome.UNSETTLED)
    return settled >= ABANDONED_AFTER


def _after_cursor(ordered: list[Run], known: SyncState) -> list[Run]:
    """The runs after the cursor: after the cursor run itself when it is listed, else
    placed by what state remembers of it (its id and time)."""
    cursor_run_id = known.cursor_run_id
    if cursor_run_id is None:
        return ordered
    for index, run in enumerate(ordered):
        if run.id == cursor_run_id:
            return ordered[index + 1 :]
    cursor_at = parse_iso_time(known.cursor_at)
    return [r for r in ordered if is_after(r, cursor_run_id, cursor_at)]


def _up_to_cursor(ordered: list[Run], known: SyncState) -> list[Run]:
    """The runs at or before the cursor: already handled."""
    after = {r.id for r in _after_cursor(ordered, known)}
    return [r for r in ordered if r.id not in after]


def _alert(
    sync: Sync,
    ordered: list[Run],
    run: Run,
    new_failures: int,
    state: SyncState,
    window: int,
    failure_statuses: tuple[str, ...],
) -> Alert:
    """The context of `run`: the `window` settled runs before it, oldest first."""
    before = [r for r in ordered if r.sort_key < run.sort_key and outcome(r, failure_statuses) is not Outcome.UNSETTLED]
    previous = tuple(before[-window:])
    return Alert(
        sync=sync,
        run=run,
        new_failures=new_failures,
        consecutive_failures=state.consecutive_failures,
        previous_runs=previous,
        previous_failed=tuple(outcome(r, failure_statuses) is Outcome.FAILED for r in previous),
    )


def _newest_handled_failure(ordered: list[Run], state: SyncState, failure_statuses: tuple[str, ...]) -> Run | None:
    handled = _up_to_cursor(ordered, state)
    failures = [r for r in handled if outcome(r, failure_statuses) is Outcome.FAILED]
    return failures[-1] if failures else None
