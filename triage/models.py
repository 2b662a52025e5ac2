"""Plain data the tool reasons about: syncs, runs and what is remembered of them.

Clients parse API responses into these types at their edge; nothing past the
client boundary handles raw JSON dicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from triage.times import iso_time as iso_time  # re-exported: callers import times from here too
from triage.times import parse_iso_time as parse_iso_time

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Statuses of a run that has not finished yet.
PENDING_STATUSES = frozenset({"queued", "querying", "processing", "reporting", "pending"})
# Finished without failing: the consecutive-failure count starts again.
SUCCESS_STATUSES = frozenset({"success", "warning", "completed", "completed_with_errors"})
# Stopped by a person: says nothing about the sync's health.
CANCELLED_STATUSES = frozenset({"cancelled", "canceled"})
# Finished, and failures unless configured otherwise.
FAILURE_LIKE_STATUSES = frozenset({"failed", "interrupted", "aborted"})
KNOWN_STATUSES = PENDING_STATUSES | SUCCESS_STATUSES | CANCELLED_STATUSES | FAILURE_LIKE_STATUSES


class Outcome(Enum):
    FAILED = "failed"
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    OTHER = "other"  # finished with a status we do not know: neither resets nor counts
    UNSETTLED = "unsettled"


def outcome(run: Run, failure_statuses: Iterable[str] = FAILURE_LIKE_STATUSES) -> Outcome:
    """Classify one run — the one classification the tick, `status` and the messages share.
    A run whose finishedAt is set has settled whatever its status says; `failure_statuses`
    are those that count as failures (config's `triage.failure_statuses`)."""
    status = run.status
    if status in failure_statuses:
        return Outcome.FAILED
    if status in SUCCESS_STATUSES:
        return Outcome.SUCCEEDED
    if status in CANCELLED_STATUSES:
        return Outcome.CANCELLED
    if status in FAILURE_LIKE_STATUSES:
        # A failure status the user chose not to count: finished, not a failure.
        return Outcome.OTHER
    if run.finished_at is not None:
        return Outcome.OTHER
    return Outcome.UNSETTLED


def is_known_status(status: str) -> bool:
    return status in KNOWN_STATUSES


@dataclass(frozen=True)
class RowCounts:
    """Added / changed / removed row counts. Hightouch may send null for any of them."""

    added: int | None = None
    changed: int | None = None
    removed: int | None = None

    @property
    def total(self) -> int | None:
        """The sum of the counts Hightouch sent; None when it sent none."""
        known = [n for n in (self.added, self.changed, self.removed) if n is not None]
        return sum(known) if known else None


@dataclass(frozen=True)
class Sync:
    id: str
    name: str  # the sync's slug: Hightouch has no separate display name
    disabled: bool = False
    last_run_at: str | None = None  # kept as sent, compared for equality with state
    destination_id: str | None = None
    model_id: str | None = None
    tags: tuple[tuple[str, str], ...] = ()  # Hightouch sync tags (e.g. env: production), sorted
    status: str | None = None  # the listed status: its latest run's (success, failed, processing, …)
    schedule: str | None = None  # its schedule as Hightouch sent it (JSON text); None: manual
    created_at: datetime | None = None  # when it was created: no run is older

    @property
    def healthy(self) -> bool:
        """Its latest run succeeded and none is in flight: at the baseline, its runs can
        wait until it runs again (they would show no failure streak)."""
        return self.status == "success"


@dataclass(frozen=True)
class Run:
    id: str
    status: str
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    successful: RowCounts = field(default_factory=RowCounts)
    failed: RowCounts = field(default_factory=RowCounts)  # rows the destination rejected
    planned: RowCounts = field(default_factory=RowCounts)  # what the run was to do
    query_size: int | None = None  # rows the model's query returned
    completion_ratio: float | None = None  # progress of a run in flight, 0 to 1

    @property
    def number(self) -> int | None:
        """The id as a number, when it is one (Hightouch's ids grow with every run)."""
        return run_number(self.id)

    @property
    def time(self) -> datetime | None:
        """When the run happened, as far as Hightouch said: createdAt, else startedAt, else finishedAt."""
        return self.created_at or self.started_at or self.finished_at

    @property
    def sort_key(self) -> tuple[bool, int, datetime, str]:
        """Oldest first, by what is present: the numeric id, then the time; a run whose id is
        not a number sorts by its time. The API's order is not trusted."""
        number = self.number
        return (number is None, number or 0, self.time or EPOCH, self.id)


def run_number(run_id: str | None) -> int | None:
    if run_id is None:
        return None
    try:
        return int(run_id)
    except ValueError:
        return None


def is_after(run: Run, cursor_run_id: str, cursor_at: datetime | None) -> bool:
    """Whether `run` came after the cursor run, judged without the cursor run itself (it may
    be gone): by numeric ids when both are numbers, else by time. A run that cannot be
    placed counts as after: alerting it once beats silencing the sync for good."""
    number, cursor = run.number, run_number(cursor_run_id)
    if number is not None and cursor is not None:
        return number > cursor
    if run.time is not None and cursor_at is not None:
        return run.time > cursor_at
    return run.id != cursor_run_id


def sort_runs(runs: list[Run] | tuple[Run, ...]) -> list[Run]:
    """Runs oldest → newest, de-duplicated by id (overlapping pages repeat runs)."""
    unique = {run.id: run for run in runs}
    return sorted(unique.values(), key=lambda run: run.sort_key)


@dataclass(frozen=True)
class Thread:
    """The first Slack message of an incident in one channel: later messages reply to it."""

    channel: str  # as configured (#data-alerts): the key routes and state agree on
    channel_id: str  # as Slack answered (C…): what chat.update needs
    ts: str  # the thread's parent: replies go under it
    # The incident's own message when it is a reply in a storm's summary thread: updated
    # and marked resolved in place of the parent, which speaks for many syncs.
    message_ts: str | None = None

    @property
    def first_message_ts(self) -> str:
        """The message that shows the incident's state (chat.update)."""
        return self.message_ts or self.ts


@dataclass(frozen=True)
class Sent:
    """One Slack message of the alert (or recovery) being handled, recorded before it is
    sent: `ts` is None until Slack answered. A record still without `ts` at the next tick
    means the answer was lost (a crash, a timeout): Slack's history says whether it went out.
    """

    channel: str  # as the post addressed it
    kind: str  # failure, recovery, dm, storm, repost, digest: its metadata's event (see slack.EVENT_TYPES)
    run_id: str  # the run it is about (the alert's newest failure, or the recovering run)
    at: str  # when it was about to be sent: history is read from a little before
    thread_ts: str | None = None  # a reply in this thread
    channel_id: str | None = None  # Slack's id of the channel, when known (history needs it)
    ts: str | None = None  # Slack's answer: the message went out


@dataclass(frozen=True)
class IssueRef:
    """A Linear issue as state remembers it."""

    identifier: str  # DATA-42
    url: str | None = None
    team: str | None = None  # the team's key: a route change still finds it


@dataclass(frozen=True)
class Incident:
    """One sync's trouble, from its first failed run to the run that ends it: the unit people
    are told about. Who was pinged and what was said is kept here, so a person hears of an
    incident when it opens and when it changes state (escalates, recovers), never per run."""

    started_at: str | None = None  # its first failed run's time
    first_run_id: str | None = None  # with the sync, its identity
    threads: tuple[Thread, ...] = ()  # its first message in each channel, once told
    issue: IssueRef | None = None  # its Linear issue, once found or created
    issue_pending: bool = False  # an escalation is due but has not succeeded yet
    issue_create_id: str | None = None  # id given to an issue create whose outcome is unknown
    escalated: bool = False  # people were told it crossed the escalation threshold
    error: str | None = None  # the error's first line as last shown: repeats show it only when it changes
    cause: str | None = None  # its cause's signature (see signature.py): what it groups by
    commented_streak: int = 0  # the streak at the last Linear failure comment (0: none yet)
    commented_error: str | None = None  # the error's first line at that comment
    dms: tuple[str, ...] = ()  # people sent a direct message about it: each once
    severity: str = "critical"  # critical | warning: a warning pings no one; critical never steps down
    signal: str = "failed"  # what it is about: failed runs, or a signal (rejected_rows, removals, …)
    error_class: str | None = None  # its failure's known cause (see causes.py)
    # What people said by reaction on its first message, and what time does to it.
    acked_by: str | None = None  # acknowledged: no more re-notifications or DMs
    acked_at: str | None = None
    snoozed_by: str | None = None
    snoozed_until: str | None = None  # nothing posted until then, unless it turns critical or its cause changes
    muted_by: str | None = None  # nothing posted until it recovers
    answered: tuple[str, ...] = ()  # reactions acted on ("emoji user"): each once
    notified_at: str | None = None  # when its people were last pinged (opened, escalated, re-notified)
    renotified: int = 0  # re-notifications so far
    retries: tuple[str, ...] = ()  # runs triggered for it (by reaction or rule): "date run-id"
    auto_retry: str | None = None  # retried before anyone was told (a transient failure): when


@dataclass(frozen=True)
class SyncState:
    """What one tick hands to the next about one sync (see state/state.yaml): where its runs
    were read to (the cursor), its open incident, and its outbox of messages in flight."""

    name: str
    cursor_run_id: str | None = None  # newest run that is settled and handled
    cursor_at: str | None = None  # the cursor run's time, to place runs after it once it is gone
    last_run_at: str | None = None  # sync.lastRunAt when last checked
    consecutive_failures: int = 0
    pending_run_id: str | None = None  # an unsettled run to look at again next tick
    since: str | None = None  # no cursor yet: runs created before this are history, not news
    incident: Incident | None = None  # open while it fails; None once it recovered
    query_sizes: tuple[int, ...] = ()  # the last successful runs' querySize, newest last (volume_drop)
    pending_ratio: float | None = None  # the pending run's completionRatio at the last check (stuck)
    sent: tuple[Sent, ...] = ()  # messages of a tick that did not finish this sync (see Sent)

    @property
    def threads(self) -> tuple[Thread, ...]:
        return self.incident.threads if self.incident is not None else ()

    @property
    def issue(self) -> IssueRef | None:
        return self.incident.issue if self.incident is not None else None

    @property
    def issue_pending(self) -> bool:
        return self.incident is not None and self.incident.issue_pending


@dataclass(frozen=True)
class StormMember:
    """A sync of a storm as its summary shows it."""

    sync_id: str
    name: str
    url: str
    error: str  # the first line of its error, as Hightouch wrote it
    cause: str  # its cause's signature: the summary counts causes by it
    destination: str


@dataclass(frozen=True)
class Storm:
    """Many syncs starting to fail for one channel at once: one summary message, their alerts
    replies in its thread, the summary updated as they fail and recover. Open while any member
    still fails."""

    channel: str
    opened_at: str
    members: tuple[StormMember, ...] = ()
    thread: Thread | None = None  # the summary, once posted
    sent: Sent | None = None  # the summary's post in flight (its answer may be lost)
    mentioned: tuple[
        str, ...
    ] = ()  # whom the summary pinged: a later member's people it missed are pinged in its reply


@dataclass(frozen=True)
class GroupIssue:
    """A cause group's Linear issue in one team."""

    team: str
    issue: IssueRef | None = None
    create_id: str | None = None  # a create whose outcome is unknown


@dataclass(frozen=True)
class Group:
    """Syncs failing with one cause (see signature.py), across channels, teams and ticks:
    a sync newly failing with it joins the group's thread; past `linear.outage_threshold`
    members, one Linear issue per team."""

    signature: str
    cause: str  # a member's real error line: the signature is for grouping, never for reading
    opened_at: str
    members: tuple[str, ...] = ()  # sync ids, in the order they joined
    issues: tuple[GroupIssue, ...] = ()
    dms: tuple[str, ...] = ()  # people told directly of it: each once

    def issue_of(self, team: str) -> GroupIssue | None:
        return next((i for i in self.issues if i.team.lower() == team.lower()), None)


@dataclass(frozen=True)
class Watchdog:
    """The message each tick schedules in Slack for a time past the next tick: if ticks stop,
    Slack posts it by itself. The next tick deletes it and schedules a new one."""

    channel: str
    channel_id: str
    scheduled_id: str  # Slack's scheduled_message_id
    post_at: int  # Unix seconds
    since: str  # the tick that scheduled it (what the message says the last tick was)


@dataclass
class State:
    version: int = 2
    baseline_at: str | None = None
    last_tick_at: str | None = None
    syncs: dict[str, SyncState] = field(default_factory=dict)
    deferred: list[str] = field(default_factory=list)  # rate-limited last tick: go first
    # Storm summaries by channel, while any of their syncs still fails.
    storms: dict[str, Storm] = field(default_factory=dict)
    # Cause groups by signature, while a member fails or the group window is open.
    groups: dict[str, Group] = field(default_factory=dict)
    # When the last full listing of syncs was read: until an hour later, ticks list only the
    # syncs that ran since then (List Syncs `after=`).
    full_listing_at: str | None = None
    watchdog: Watchdog | None = None  # the "no tick since" message Slack holds, to post by itself
    digest_at: str | None = None  # the end of the period the last digest reported

    @property
    def is_baseline(self) -> bool:
        """True before the first tick finished: nothing has been recorded yet."""
        return self.baseline_at is None
