"""What the plan asks the executor to do: typed, addressed actions, one handler each.

An action says what to say and where; the executor only renders it, sends it once
(journaled), and folds Slack's or Linear's answer back into state. Where an address is only
known once an earlier action of the same tick answered (a storm summary posted first, a
thread started by the sync's own first message), it names that action's record in state
(`StormThread`, `OwnThread`), which the executor reads when the action's turn comes.
"""

from __future__ import annotations

from dataclasses import dataclass

from triage.models import IssueRef, Thread
from triage.render import RecoveryContext, TriageContext


@dataclass(frozen=True)
class StormThread:
    """The thread of the storm summary in `channel` (posted earlier in the plan)."""

    channel: str


@dataclass(frozen=True)
class OwnThread:
    """The sync's own incident thread in `channel` (started earlier in the plan)."""

    channel: str


Where = Thread | StormThread | OwnThread


# The kinds of alert message, each worded by its own template branch.
OPEN = "open"  # the incident's first message in a channel: mentions, full context
REPEAT = "repeat"  # another failed run: one line in the thread
ESCALATION = "escalation"  # the streak crossed the threshold: one line, mentions, says so in its push text
JOIN = "join"  # a new incident of an open cause group (or a storm): its first message, in the group's thread
RENOTIFY = "renotify"  # nobody acknowledged it: its people again, in its thread
CHANGE = "change"  # a snoozed incident failing for another reason: the snooze is over
CRITICAL_NOW = "critical"  # a warning incident turned critical: its people hear of it


@dataclass(frozen=True)
class Post:
    """A Slack message about one sync's incident. `thread` None: a new message in the
    channel, which becomes the incident's first message there; else a reply, which does too
    when `starts_thread` (a storm member's or a group joiner's own message)."""

    sync_id: str
    channel: str
    kind: str
    ctx: TriageContext
    mentions: tuple[str, ...] = ()
    thread: Where | None = None
    broadcast: bool = False
    starts_thread: bool = False


@dataclass(frozen=True)
class PostRecovery:
    """The recovery reply in one of the incident's threads, and its first message marked resolved."""

    sync_id: str
    thread: Thread | OwnThread
    ctx: RecoveryContext


@dataclass(frozen=True)
class UpdateFirstMessage:
    """The incident's first message in `channel` rewritten to where it stands now (state,
    streak, owner, the Linear issue once it exists)."""

    sync_id: str
    channel: str
    ctx: TriageContext
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True)
class DirectMessage:
    """One person told directly, once per incident or outage, and why."""

    sync_id: str
    user: str
    ctx: TriageContext
    route: str
    group: str | None = None  # an outage's cause: its people are told once for all its syncs


@dataclass(frozen=True)
class PostStormSummary:
    """The storm's summary in `channel`, before its first member's reply."""

    channel: str
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpdateStormSummary:
    """The storm's summary rewritten: members failing and recovered, their issues."""

    channel: str


@dataclass(frozen=True)
class Escalate:
    """Find the sync's open Linear issue in `team`, or create one (search before create).
    With `group`, the cause group's issue of the team is the one: joined if it exists, else
    filed for every member of the team in `members`. `comment`: an issue found open hears
    that the sync failed again."""

    sync_id: str
    team: str
    priority: int
    labels: tuple[str, ...]
    ctx: TriageContext
    comment: bool = False
    group: str | None = None
    members: tuple[TriageContext, ...] = ()  # the group's members of the team, for its issue


@dataclass(frozen=True)
class TriggerRun:
    """A person asked for a retry (a reaction): trigger one normal run of the sync, never a
    full resync, and say in the thread which run started — or, with `refused`, why not."""

    sync_id: str
    user: str  # "" for a retry by rule (retry.transient)
    thread: Thread | None  # where to say so; None for a retry by rule, which says nothing yet
    ctx: TriageContext
    refused: str = ""
    automatic: bool = False  # retry.transient: before anyone is told
    answer: str = ""  # the reaction it answers ("emoji user"), recorded before the trigger


@dataclass(frozen=True)
class CommentRecovery:
    """The Linear issue told that the sync recovered; closed too when `close` (and no other
    sync shares it)."""

    sync_id: str
    issue: IssueRef
    ctx: RecoveryContext
    comment: bool
    close: bool


Action = (
    Post
    | PostRecovery
    | UpdateFirstMessage
    | DirectMessage
    | PostStormSummary
    | UpdateStormSummary
    | Escalate
    | CommentRecovery
    | TriggerRun
)
