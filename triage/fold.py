"""Pure helpers that fold what Slack and Linear answered into a sync's state: the only way
the executor changes state, each a function of (state, answer) → state."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from triage.models import Incident, IssueRef, Sent, SyncState, Thread
from triage.times import iso_time


def _key(sent: Sent) -> tuple[str, str, str]:
    return (sent.channel, sent.kind, sent.run_id)


def sending(state: SyncState, sent: Sent) -> SyncState:
    """The state with `sent` in its outbox: an attempt (no ts yet) or a delivery (its ts)."""
    others = tuple(s for s in state.sent if _key(s) != _key(sent))
    return replace(state, sent=(*others, sent))


def delivered(state: SyncState, sent: Sent, channel_id: str, ts: str) -> SyncState:
    """The state once Slack answered (or its history showed) that the message went out."""
    return sending(state, replace(sent, channel_id=channel_id, ts=ts))


def not_sent(state: SyncState, sent: Sent) -> SyncState:
    """The state when the message provably did not go out (a rate or time limit)."""
    return replace(state, sent=tuple(s for s in state.sent if _key(s) != _key(sent)))


def thread_started(
    state: SyncState, channel: str, channel_id: str, ts: str, in_thread: Thread | None = None
) -> SyncState:
    """The state once an incident's first message (`ts`) went out in `channel`: later failures
    reply to it — or, when it was itself a reply in another thread (a storm's summary, its
    cause group's), to that thread, with `ts` as the message that shows its state."""
    incident = state.incident
    if incident is None:
        return state  # it already ended (failed and recovered in one tick): nothing to follow up
    others = tuple(t for t in incident.threads if t.channel != channel)
    thread = Thread(channel, channel_id, ts) if in_thread is None else Thread(channel, channel_id, in_thread.ts, ts)
    return replace(state, incident=replace(incident, threads=(*others, thread)))


def shown(state: SyncState, error_line: str) -> SyncState:
    """The state once people saw the error `error_line`: a repeat shows the error only when it changes."""
    incident = state.incident
    return state if incident is None else replace(state, incident=replace(incident, error=error_line))


def dm_sent(state: SyncState, user: str) -> SyncState:
    incident = state.incident
    if incident is None or user in incident.dms:
        return state
    return replace(state, incident=replace(incident, dms=(*incident.dms, user)))


def issue_attempt(state: SyncState, create_id: str, fallback: Incident | None = None) -> SyncState:
    """The state to record before an issue create: the id it carries, so a create whose
    answer is lost can be looked up next tick instead of sent again. `fallback` is the
    incident to record it on when the state has none yet (its first run is still news)."""
    incident = state.incident or fallback
    if incident is None:
        return state
    return replace(state, incident=replace(incident, issue_create_id=create_id))


def issue_done(state: SyncState, issue: IssueRef) -> SyncState:
    """The state once the Linear step succeeded (issue found or created)."""
    incident = state.incident
    if incident is None:
        return state
    return replace(state, incident=replace(incident, issue=issue, issue_pending=False, issue_create_id=None))


def pinged(state: SyncState, now: datetime, *, reminder: bool = False) -> SyncState:
    """The state once the incident's people were pinged (opened, escalated, reminded)."""
    incident = state.incident
    if incident is None:
        return state
    count = incident.renotified + 1 if reminder else incident.renotified
    return replace(state, incident=replace(incident, notified_at=iso_time(now), renotified=count))


def retried(state: SyncState, fallback: Incident | None, now: datetime, run_id: str) -> SyncState:
    """The state once a run was triggered for the incident (`run_id`: "?" while the trigger's
    outcome is unknown): counted against retry.max_per_day, and never repeated."""
    incident = state.incident or fallback
    if incident is None:
        return state
    entry = f"{now.date().isoformat()} {run_id}"
    kept = tuple(r for r in incident.retries if r != f"{now.date().isoformat()} ?")
    return replace(state, incident=replace(incident, retries=(*kept, entry)))


def retried_first(state: SyncState, now: datetime) -> SyncState:
    """The state once a transient failure was retried before anyone was told."""
    incident = state.incident
    return state if incident is None else replace(state, incident=replace(incident, auto_retry=iso_time(now)))


def heard(state: SyncState, answer: str) -> SyncState:
    """The state once a reaction ("emoji user") was acted on: never acted on again."""
    incident = state.incident
    if incident is None or answer in incident.answered:
        return state
    return replace(state, incident=replace(incident, answered=(*incident.answered, answer)))
