"""Plain data the tool reasons about: syncs, runs and what is remembered of them.

Clients parse API responses into these types at their edge; nothing past the
client boundary handles raw JSON dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

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


def is_known_status(status: str) -> bool:
    return status in KNOWN_STATUSES


def iso_time(moment: datetime | None) -> str | None:
    """A time as state.yaml keeps it: ISO 8601 in UTC, at full precision (it is compared)."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


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
    failed: RowCounts = field(default_factory=RowCounts)

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
    kind: str  # "failure" or "recovery": the message's metadata event
    run_id: str  # the run it is about (the alert's newest failure, or the recovering run)
    at: str  # when it was about to be sent: history is read from a little before
    thread_ts: str | None = None  # a reply in this thread
    channel_id: str | None = None  # Slack's id of the channel, when known (history needs it)
    ts: str | None = None  # Slack's answer: the message went out


@dataclass(frozen=True)
class SyncState:
    """What one tick hands to the next about one sync (see state/state.yaml)."""

    name: str
    cursor_run_id: str | None = None  # newest run that is settled and handled
    cursor_at: str | None = None  # the cursor run's time, to place runs after it once it is gone
    last_run_at: str | None = None  # sync.lastRunAt when last checked
    consecutive_failures: int = 0
    linear_issue: str | None = None  # last Linear issue found or created
    linear_url: str | None = None  # its link, as Linear gave it
    linear_team: str | None = None  # the team key of that issue: a route change still finds it
    linear_pending: bool = False  # an escalation is due but has not succeeded yet
    linear_create_id: str | None = None  # id given to an issue create whose outcome is unknown
    pending_run_id: str | None = None  # an unsettled run to look at again next tick
    incident_at: str | None = None  # when the open incident's first failed run happened
    threads: tuple[Thread, ...] = ()  # the incident's first message in each channel
    since: str | None = None  # no cursor yet: runs created before this are history, not news
    sent: tuple[Sent, ...] = ()  # messages of a tick that did not finish this sync (see Sent)


@dataclass
class State:
    version: int = 1
    baseline_at: str | None = None
    last_tick_at: str | None = None
    syncs: dict[str, SyncState] = field(default_factory=dict)
    deferred: list[str] = field(default_factory=list)  # rate-limited last tick: go first
    # Storm summaries (by channel) posted while syncs were deferred: the next tick's first
    # messages in that channel reply there too, so one outage stays one thread.
    storms: dict[str, Thread] = field(default_factory=dict)
    # When the last full listing of syncs was read: until an hour later, ticks list only the
    # syncs that ran since then (List Syncs `after=`).
    full_listing_at: str | None = None

    @property
    def is_baseline(self) -> bool:
        """True before the first tick finished: nothing has been recorded yet."""
        return self.baseline_at is None
