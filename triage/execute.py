"""The executor: carries out the plan's actions, one handler per kind, and folds what Slack
and Linear answered (a message's ts, an issue's identifier) back into state with the pure
helpers of fold.py. It decides nothing the plan did not say.

Guarantees:
- every Slack message is sent once: its attempt is journaled before the send and its ts
  after; an attempt found without a ts (a crash, a lost answer) is looked up in Slack's
  history, by the metadata the message carries, before anything is sent again;
- every Linear issue is created once: the id it carries is journaled before the create and
  looked up first when its answer was lost;
- one service failing never holds back the other: a Linear error leaves the escalation
  pending for the next tick and the sync's Slack messages go on; a direct message that
  cannot be delivered is reported and holds nothing back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TextIO

from triage.actions import (
    CHANGE,
    CRITICAL_NOW,
    ESCALATION,
    JOIN,
    OPEN,
    RENOTIFY,
    REPEAT,
    Action,
    CommentRecovery,
    DirectMessage,
    Escalate,
    OwnThread,
    Post,
    PostRecovery,
    PostStormSummary,
    StormThread,
    TriggerRun,
    UpdateFirstMessage,
    UpdateStormSummary,
)
from triage.decide import SyncDecision
from triage.digest import DigestContext
from triage.errors import AnswerLost, ApiError, AuthError, ConfigError, Deferred
from triage.fold import (
    dm_sent,
    heard,
    issue_attempt,
    issue_done,
    not_sent,
    pinged,
    retried,
    retried_first,
    sending,
    shown,
    thread_started,
)
from triage.history import ClosedIncident
from triage.linear import Issue, LinearClient, Team
from triage.models import Group, GroupIssue, IssueRef, Sent, State, Storm, SyncState, Thread, Watchdog
from triage.plan import SyncPlan
from triage.render import (
    DirectContext,
    OutageContext,
    Renderer,
    SlackMessage,
    StormContext,
    SyncLink,
    TriageContext,
    WatchdogContext,
)
from triage.slack import CHANNEL_ID, USER_ID, MessageGone, MissingScope, PostedMessage, SlackClient, message_metadata
from triage.summary import TickSummary
from triage.times import human_time, iso_time, parse_iso_time, slack_time, tick_time

log = logging.getLogger(__name__)

# The kinds of message a sync's outbox journals, by what they are about.
FAILURE = "failure"
RECOVERY = "recovery"


class Unconfirmed(Exception):
    """A message went out as far as anyone knows, but Slack's answer was lost: the rest of the
    sync waits for the next tick, which looks the message up first."""


@dataclass
class Journal:
    """Where the executor makes each change durable at once (the state journal), or nowhere
    in a dry run."""

    state: State
    record_sync: Callable[[str, SyncState], None]
    record_storm: Callable[[str, Storm | None], None]
    record_group: Callable[[str, Group | None], None]

    def sync(self, sync_id: str, sync_state: SyncState) -> None:
        if self.state.syncs.get(sync_id) != sync_state:
            self.state.syncs[sync_id] = sync_state
            self.record_sync(sync_id, sync_state)

    def storm(self, channel: str, storm: Storm | None) -> None:
        if self.state.storms.get(channel) != storm:
            if storm is None:
                self.state.storms.pop(channel, None)
            else:
                self.state.storms[channel] = storm
            self.record_storm(channel, storm)

    def forget_group(self, signature: str) -> None:
        if self.state.groups.pop(signature, None) is not None:
            self.record_group(signature, None)

    def group(self, signature: str, group: Group) -> None:
        if self.state.groups.get(signature) != group:
            self.state.groups[signature] = group
            self.record_group(signature, group)


@dataclass
class Executor:
    slack: SlackClient
    linear: LinearClient | None  # None: Linear is not configured for this run
    renderer: Renderer
    journal: Journal
    summary: TickSummary
    now: datetime
    out: TextIO
    failing: frozenset[str] = frozenset()  # syncs failing once this tick is done (for summaries)
    # Starts one normal run of a sync and answers its run id (a dry run prints instead).
    trigger: Callable[[str], str] = lambda sync_id: ""
    # Keeps an incident that ended for the digest (a dry run keeps nothing): a warning, or None.
    history: Callable[[ClosedIncident], str | None] = lambda record: None
    new_id: Callable[[], str] = lambda: str(uuid.uuid4())  # Linear takes a client-chosen UUID v4
    _teams: dict[str, Team] = field(default_factory=dict)
    _labels: dict[str, dict[str, str]] = field(default_factory=dict)  # team id -> label name -> id
    _channel_ids: dict[str, str] = field(default_factory=dict)  # channel as configured -> Slack's id
    _linear_down: str = ""  # Linear refused or failed as a whole this tick: the rest waits
    _outage_searches: dict[tuple[str, str], dict[str, Issue]] = field(default_factory=dict)
    _unchecked_warned: bool = False

    # -- one sync -------------------------------------------------------------

    def run(self, sync_plan: SyncPlan) -> None:
        """Carry out one sync's actions in order; record its decided state once its Slack
        messages went out, and an incident that ended in the history. Raises Deferred (a
        limit: the rest waits) and Unconfirmed."""
        decision = sync_plan.decision
        run = _SyncRun(self, decision, decision.state)
        for action in sync_plan.actions:
            run.do(action)
        self.journal.sync(decision.sync.id, replace(run.final, sent=()))
        ended = closed_record(decision, self.now)
        if ended is not None:
            warning = self.history(ended)
            if warning:
                log.warning("%s", warning)

    @property
    def state(self) -> State:
        return self.journal.state

    def remember_channel(self, channel: str, channel_id: str) -> None:
        self._channel_ids.setdefault(channel, channel_id)

    # -- sending once -----------------------------------------------------------

    def send_once(
        self,
        sent: Sent,
        earlier: Sent | None,
        about: str,
        record: Callable[[Sent | None], None],
        send: Callable[[dict[str, Any]], PostedMessage],
    ) -> tuple[PostedMessage, bool]:
        """Send one message once across ticks: Slack's answer, and whether it was sent now
        (False: an earlier tick's attempt is known, or was found in history, to have gone out).

        `record(sent)` journals the attempt (no ts) and the delivery (ts); `record(None)` that
        it provably did not go out. A lost answer raises Unconfirmed: the attempt stays
        journaled, and the next tick reads the channel's history before sending again."""
        metadata = message_metadata(sent.kind, about, sent.run_id)
        if earlier is not None and earlier.ts is None:
            earlier = self._found_in_history(earlier, metadata)
        if earlier is not None and earlier.ts is not None:
            record(replace(sent, channel_id=earlier.channel_id or sent.channel_id, ts=earlier.ts))
            return PostedMessage(earlier.channel_id or sent.channel, earlier.ts), False
        sent = replace(sent, channel_id=sent.channel_id or self._channel_id(sent.channel))
        record(sent)
        try:
            posted = send(metadata)
        except Deferred:
            record(None)  # a rate or time limit: Slack provably did not post it
            raise
        except AnswerLost as exc:
            self.summary.slack_sent += 1  # as far as anyone knows it went out: counted, and looked up later
            self.summary.unconfirmed.append(f"{sent.channel}: {exc}")
            log.warning("%s: it is looked up in Slack next tick, not sent again", exc)
            raise Unconfirmed(str(exc)) from None
        self._channel_ids[sent.channel] = posted.channel
        record(replace(sent, channel_id=posted.channel, ts=posted.ts))
        self.summary.slack_sent += 1
        return posted, True

    def found_in_history(self, earlier: Sent, about: str) -> Sent | None:
        """`earlier` (a message about `about`) with its ts, if Slack's history holds it."""
        return self._found_in_history(earlier, message_metadata(earlier.kind, about, earlier.run_id))

    def _found_in_history(self, earlier: Sent, metadata: dict[str, Any]) -> Sent | None:
        """`earlier` with its ts when the channel's history holds it; None when it is not there
        or cannot be read for want of the scope (then it is sent again: at least once)."""
        since = parse_iso_time(earlier.at)
        try:
            channel_id = earlier.channel_id or self._channel_id(earlier.channel)
            if channel_id is None and not USER_ID.fullmatch(earlier.channel):
                # History is read by id only; a channel configured by name is looked up once.
                channel_id = self.slack.find_channel_id(earlier.channel)
                if channel_id is not None:
                    self._channel_ids[earlier.channel] = channel_id
            if channel_id is None or since is None:
                self._warn_unchecked(f"Slack's id for {earlier.channel!r} is not known")
                return None
            ts = self.slack.find_sent(channel_id, metadata, since.timestamp(), thread_ts=earlier.thread_ts)
        except MissingScope as exc:
            self._warn_unchecked(str(exc))
            return None
        if ts is None:
            log.info("the message to %s whose answer was lost is not in Slack: sending it", earlier.channel)
            return None
        return replace(earlier, channel_id=channel_id, ts=ts)

    def _warn_unchecked(self, why: str) -> None:
        if not self._unchecked_warned:
            self._unchecked_warned = True
            log.warning(
                "a Slack message whose answer was lost cannot be looked up (%s): it is sent again, so it may "
                "show twice. For exactly-once alerts give the Slack app channels:history, groups:history, "
                "channels:read and groups:read, or configure channels by id",
                why,
            )

    def _channel_id(self, channel: str) -> str | None:
        if CHANNEL_ID.fullmatch(channel):
            return channel
        return self._channel_ids.get(channel)

    # -- storms -----------------------------------------------------------------

    def storm_context(self, storm: Storm) -> StormContext:
        """A storm's summary as it stands: every member and cause counted, issues listed."""
        by_cause: dict[str, list[SyncLink]] = {}
        lines: dict[str, str] = {}
        by_destination: dict[str, list[SyncLink]] = {}
        for member in storm.members:
            link = SyncLink(member.name, member.url)
            by_cause.setdefault(member.cause, []).append(link)
            lines.setdefault(member.cause, member.error or "(no error message)")
            by_destination.setdefault(member.destination, []).append(link)
        issues: dict[str, SyncLink] = {}
        for member in storm.members:
            known = self.state.syncs.get(member.sync_id)
            issue = known.issue if known is not None else None
            if issue is not None:
                issues.setdefault(issue.identifier, SyncLink(issue.identifier, issue.url or ""))
        failing = sum(1 for m in storm.members if m.sync_id in self.failing)
        return StormContext(
            count=len(storm.members),
            by_error=_largest_first({lines[c]: links for c, links in by_cause.items()}),
            by_destination=_largest_first(by_destination),
            failing=failing,
            recovered=len(storm.members) - failing,
            issues=tuple(issues.values()),
        )

    def post_storm_summary(self, action: PostStormSummary) -> None:
        storm = self.state.storms[action.channel]
        message = self.renderer.slack_storm(self.storm_context(storm), action.mentions)
        sent = Sent(action.channel, "storm", storm.opened_at, tick_time(self.now))

        def record(done: Sent | None) -> None:
            current = self.state.storms[action.channel]
            if done is not None and done.ts is not None:
                thread = Thread(action.channel, done.channel_id or action.channel, done.ts)
                self.journal.storm(action.channel, replace(current, thread=thread, sent=None))
            else:
                self.journal.storm(action.channel, replace(current, sent=done))

        _, fresh = self.send_once(
            sent,
            storm.sent,
            f"storm {action.channel}",
            record,
            lambda metadata: self.slack.post_message(action.channel, message.text, message.blocks, metadata=metadata),
        )
        verdict = "sent to" if fresh else "went out in an earlier tick: not sent again to"
        self.out.write(f"  storm: {len(storm.members)} syncs started failing; summary {verdict} {action.channel}\n")

    def update_storm_summary(self, action: UpdateStormSummary) -> None:
        storm = self.state.storms.get(action.channel)
        if storm is None or storm.thread is None:
            return
        message = self.renderer.slack_storm(self.storm_context(storm))
        self._update(storm.thread.channel_id, storm.thread.ts, message, f"the storm summary in {action.channel}")
        if not any(m.sync_id in self.failing for m in storm.members):
            self.journal.storm(action.channel, None)  # every member recovered: the storm is over

    def _update(self, channel_id: str, ts: str, message: SlackMessage, what: str) -> bool:
        """Rewrite a message; a failure is worth a warning, not a failed tick (the messages
        themselves went out). False when the message is gone."""
        try:
            self.slack.update_message(channel_id, ts, message.text, message.blocks)
        except MessageGone:
            return False
        except (AuthError, ConfigError, Deferred):
            raise
        except ApiError as exc:
            log.warning("%s was not updated: %s", what, exc)
        return True

    # -- the watchdog -------------------------------------------------------------

    def watchdog(
        self, previous: Watchdog | None, channel: str, minutes: int, checked: int, last_tick: str | None = None
    ) -> Watchdog | None:
        """Leave exactly one "no tick since" message scheduled in `channel`, for `minutes` from
        now (none when 0). When the one a tick scheduled is no longer pending, Slack posted it:
        ticks are back after a gap, and the channel hears that once."""
        now = self.now
        channel_id = (previous.channel_id if previous else None) or self._channel_id(channel)
        if channel_id is None:
            channel_id = self.slack.find_channel_id(channel) or channel
        # chat.scheduledMessages.list shows this app's messages only: in the health channel,
        # they are the watchdog's. All go, so a tick that died after scheduling leaves none behind.
        pending = self.slack.scheduled_messages(channel_id)
        if previous is not None and not pending and previous.post_at <= now.timestamp():
            # A quiet tick saves nothing, so the record may be older than the last tick: the
            # later of the two is when the gap began.
            began = max(t for t in (parse_iso_time(previous.since), parse_iso_time(last_tick)) if t is not None)
            back = WatchdogContext(True, slack_time(began), human_time(now), checked)
            message = self.renderer.slack_watchdog(back)
            self.slack.post_message(channel, message.text, message.blocks)
            self.out.write(f"  watchdog: ticks are back after a gap since {previous.since}\n")
        for item in pending:
            self.slack.delete_scheduled(channel_id, str(item.get("id") or ""))
        if minutes <= 0:
            return None
        post_at = int(now.timestamp()) + minutes * 60
        message = self.renderer.slack_watchdog(WatchdogContext(False, slack_time(now, human_time(now))))
        channel_id, scheduled_id = self.slack.schedule_message(channel, post_at, message.text, message.blocks)
        return Watchdog(channel, channel_id, scheduled_id, post_at, tick_time(now))

    # -- the digest ----------------------------------------------------------------

    def post_digest(self, channel: str, ctx: DigestContext, period_end: str) -> bool:
        """One channel's digest for the period ending `period_end`, posted once: a tick that died
        after posting it finds it in the channel's history. False when it was there already."""
        key = Sent(channel, "digest", period_end, period_end)
        if self.found_in_history(key, f"digest {channel}") is not None:
            return False
        message = self.renderer.slack_digest(ctx)
        metadata = message_metadata("digest", f"digest {channel}", period_end)
        posted = self.slack.post_message(channel, message.text, message.blocks, metadata=metadata)
        self._channel_ids[channel] = posted.channel
        self.summary.slack_sent += 1
        self.out.write(f"  digest sent to {channel}\n")
        return True

    # -- Linear -----------------------------------------------------------------

    def team(self, key: str) -> Team:
        assert self.linear is not None
        if key not in self._teams:
            self._teams[key] = self.linear.find_team(key)
        return self._teams[key]

    def labels(self, team: Team, names: tuple[str, ...]) -> tuple[str, ...]:
        assert self.linear is not None
        if not names:
            return ()
        if team.id not in self._labels:
            self._labels[team.id] = self.linear.labels(team)
        known = self._labels[team.id]
        missing = [name for name in names if name.lower() not in known]
        if missing:
            raise ConfigError(
                f"Linear label {missing[0]!r} not found in team {team.key} (check linear.labels in config.yaml)"
            )
        return tuple(known[name.lower()] for name in names)

    def outage_search(self, team: Team, action: Escalate) -> dict[str, Issue]:
        """Each outage member's own open issue in `team`, searched once a tick for all of them."""
        assert self.linear is not None
        key = (team.id, action.group or "")
        if key not in self._outage_searches:
            members = [(m.sync_name, m.sync_id) for m in action.members]
            self._outage_searches[key] = self.linear.find_open_issues(team, members)
        return self._outage_searches[key]

    def linear_failed(self, sync_name: str, exc: ApiError) -> None:
        """A Linear step that failed: the escalation stays pending for the next tick, and the
        Slack side goes on. Refused credentials stop Linear (only) for the rest of the tick."""
        if isinstance(exc, AuthError):
            self._linear_down = str(exc)
        self.summary.linear_errors.append(f"{sync_name}: {exc}")
        log.error("Linear, sync %s: %s (the escalation is retried next tick)", sync_name, exc)

    @property
    def linear_down(self) -> str:
        return self._linear_down


@dataclass
class _SyncRun:
    """One sync's actions being carried out: `final` is its decided state with every answer
    folded in; `before` (as journaled) carries the outbox until `final` is recorded."""

    executor: Executor
    decision: SyncDecision
    final: SyncState
    started: dict[str, Thread] = field(default_factory=dict)  # threads its messages started this tick

    @property
    def sync_id(self) -> str:
        return self.decision.sync.id

    @property
    def name(self) -> str:
        return self.decision.sync.name

    def before(self) -> SyncState:
        return self.executor.state.syncs.get(self.sync_id, self.decision.before)

    def do(self, action: Action) -> None:
        handler: Callable[[Any], None] = getattr(self, "_" + type(action).__name__)
        handler(action)

    def _journal(self, sent: Sent, done: Sent | None) -> None:
        before = self.before()
        self.executor.journal.sync(self.sync_id, not_sent(before, sent) if done is None else sending(before, done))

    def _earlier(self, sent: Sent) -> Sent | None:
        key = (sent.channel, sent.kind, sent.run_id)
        return next((s for s in self.decision.before.sent if (s.channel, s.kind, s.run_id) == key), None)

    def _send(self, sent: Sent, send: Callable[[dict[str, Any]], PostedMessage]) -> tuple[PostedMessage, bool]:
        return self.executor.send_once(
            sent, self._earlier(sent), self.sync_id, lambda done: self._journal(sent, done), send
        )

    def _view(self, ctx: TriageContext) -> TriageContext:
        """The words with the incident as it stands now (an issue filed a moment ago)."""
        issue = self.final.issue
        return replace(ctx, linear_issue=issue.identifier, linear_url=issue.url or "") if issue else ctx

    # -- Slack --------------------------------------------------------------------

    def _Post(self, action: Post) -> None:
        ex = self.executor
        if action.starts_thread and action.thread is None:
            action = self._after_a_lost_first_message(action)
        ctx = replace(self._view(action.ctx), kind=action.kind)
        if action.kind in (REPEAT, ESCALATION, RENOTIFY, CHANGE, CRITICAL_NOW):
            message = ex.renderer.slack_reply(ctx, action.mentions)
        else:
            message = ex.renderer.slack_message(ctx, action.mentions)
        thread = self._resolve(action)
        # A run's first message or repeat is keyed by the run; any other message about it by
        # the run and its kind, so two messages about one run never share an outbox record.
        key = ctx.run.id if action.kind in (OPEN, JOIN, REPEAT) else f"{ctx.run.id}-{action.kind}"
        sent = Sent(action.channel, FAILURE, key, tick_time(ex.now), thread.ts if thread else None)
        if thread is not None:
            sent = replace(sent, channel_id=thread.channel_id)
        posted, fresh = self._send(
            sent,
            lambda metadata: ex.slack.post_message(
                action.channel,
                message.text,
                message.blocks,
                thread_ts=thread.ts if thread else None,
                broadcast=action.broadcast,
                metadata=metadata,
            ),
        )
        if action.starts_thread:
            self.final = thread_started(self.final, action.channel, posted.channel, posted.ts, thread)
            self.started[action.channel] = (
                Thread(action.channel, posted.channel, posted.ts)
                if thread is None
                else Thread(action.channel, posted.channel, thread.ts, posted.ts)
            )
        if action.kind != REPEAT or ctx.error_changed:
            self.final = shown(self.final, ctx.error_line)
        if action.mentions:
            self.final = pinged(self.final, ex.now, reminder=action.kind == RENOTIFY)
        where = f"{action.channel}{' (thread reply)' if thread else ''}"
        verdict = "sent to" if fresh else "went out in an earlier tick: not sent again to"
        ex.out.write(f"  {self.name} ({self.sync_id}): Slack message {verdict} {where}\n")

    def _after_a_lost_first_message(self, action: Post) -> Post:
        """A new first message, unless an earlier tick's first message of this incident went
        out in the channel and that tick died before recording it: then this alert is a reply
        in that message's thread, which becomes the incident's thread."""
        ex = self.executor
        prior = next(
            (
                s
                for s in self.decision.before.sent
                if s.channel == action.channel and s.kind == FAILURE and s.thread_ts is None
                if s.run_id != action.ctx.run.id
            ),
            None,
        )
        if prior is None:
            return action
        found = prior if prior.ts else ex.found_in_history(prior, self.sync_id)
        if found is None or found.ts is None:
            return action  # it never went out: this one is the first message
        channel_id = found.channel_id or action.channel
        self.final = thread_started(self.final, action.channel, channel_id, found.ts)
        self.started[action.channel] = Thread(action.channel, channel_id, found.ts)
        return replace(
            action, kind=ESCALATION if action.mentions and self.decision.crossing else REPEAT,
            thread=Thread(action.channel, channel_id, found.ts), starts_thread=False,
            mentions=action.mentions if self.decision.crossing else (),
        )  # fmt: skip

    def _resolve(self, action: Post) -> Thread | None:
        where = action.thread
        if where is None or isinstance(where, Thread):
            return where
        if isinstance(where, StormThread):
            storm = self.executor.state.storms.get(where.channel)
            if storm is not None and storm.thread is None and storm.sent is not None:
                raise Unconfirmed(f"the storm summary in {where.channel} awaits its lost answer: its alerts follow")
            if storm is None or storm.thread is None:
                raise ApiError(f"the storm summary in {where.channel} was not posted: the alert waits for it")
            return storm.thread
        assert isinstance(where, OwnThread)
        return self._own(where.channel)

    def _own(self, channel: str) -> Thread | None:
        """The sync's thread in `channel`: started this tick, or remembered."""
        return self.started.get(channel) or next((t for t in self.final.threads if t.channel == channel), None)

    def _UpdateFirstMessage(self, action: UpdateFirstMessage) -> None:
        ex = self.executor
        thread = next((t for t in self.final.threads if t.channel == action.channel), None)
        if thread is None:
            return
        # The incident as it stands, not this tick's news: no "N new failed runs".
        ctx = replace(self._view(action.ctx), kind="open", new_failures=1)
        message = ex.renderer.slack_message(ctx, action.mentions)
        if ex._update(thread.channel_id, thread.first_message_ts, message, f"the first message in {action.channel}"):
            return
        # Someone deleted it: the incident starts again with a new first message, sent once.
        log.warning("the first message in %s was deleted: posting a new one for the incident", action.channel)
        sent = Sent(action.channel, "repost", ctx.run.id, tick_time(ex.now))
        posted, _ = self._send(
            sent,
            lambda metadata: ex.slack.post_message(action.channel, message.text, message.blocks, metadata=metadata),
        )
        self.final = thread_started(self.final, action.channel, posted.channel, posted.ts, None)

    def _PostRecovery(self, action: PostRecovery) -> None:
        ex = self.executor
        thread = action.thread if isinstance(action.thread, Thread) else self._own(action.thread.channel)
        if thread is None:
            return  # its first message did not go out: nothing to close
        message = ex.renderer.slack_recovery(action.ctx)
        sent = Sent(thread.channel, RECOVERY, action.ctx.run_id, tick_time(ex.now), thread.ts, thread.channel_id)
        try:
            _, fresh = self._send(
                sent,
                lambda metadata: ex.slack.post_message(
                    thread.channel, message.text, message.blocks, thread_ts=thread.ts, metadata=metadata
                ),
            )
        except ConfigError as exc:
            # The channel was retired (archived, the bot removed): the thread is abandoned, the
            # incident over all the same; later incidents go to the route's channels as they are.
            log.warning("the recovery of %s could not reach its thread in %s: %s", self.name, thread.channel, exc)
            ex.summary.abandoned.append(f"{self.name} ({self.sync_id}): {thread.channel}: {exc}")
            return
        # Marked resolved whether the reply went out now or was found in history: an update
        # is idempotent, and a lost answer must not leave the first message failing forever.
        ex._update(thread.channel_id, thread.first_message_ts, message, f"the first message in {thread.channel}")
        if fresh:
            ex.summary.recovered.append(f"{self.name} ({self.sync_id})")
        ex.out.write(f"  {self.name} ({self.sync_id}): recovery sent to {thread.channel}\n")

    def _DirectMessage(self, action: DirectMessage) -> None:
        ex = self.executor
        first = self.final.threads[0] if self.final.threads else None
        thread_url = ""
        if first is not None:
            try:
                thread_url = ex.slack.permalink(first.channel_id, first.ts)
            except (AuthError, Deferred):
                raise
            except ApiError as exc:  # a link is a courtesy
                log.warning("no link to the Slack thread: %s", exc)
        others: tuple[str, ...] = ()
        if action.group is not None and action.group in ex.state.groups:
            members = ex.state.groups[action.group].members
            others = tuple(ex.state.syncs[m].name for m in members if m != self.sync_id and m in ex.state.syncs)
        issue = self.final.issue
        ctx = DirectContext(
            sync_name=self.name,
            sync_url=action.ctx.sync_url,
            consecutive_failures=action.ctx.consecutive_failures,
            route=action.route,
            thread_url=thread_url,
            linear_issue=issue.identifier if issue else "",
            linear_url=(issue.url or "") if issue else "",
            others=others,
        )
        message = ex.renderer.slack_dm(ctx)
        sent = Sent(action.user, "dm", action.ctx.run.id, tick_time(ex.now))
        earlier = self._earlier(sent)
        if earlier is not None and earlier.ts is None:
            # A DM's channel is known only from its answer, so a lost one cannot be looked up:
            # a person is told at most once (the channel's alert is what must not be lost).
            log.info("the direct message to %s may have gone out already: not sent again", action.user)
            self.final = dm_sent(self.final, action.user)
            return
        try:
            self._send(
                sent,
                lambda metadata: ex.slack.post_message(action.user, message.text, message.blocks, metadata=metadata),
            )
        except Unconfirmed:
            pass  # as far as anyone knows it went out: told at most once, and the rest goes on
        except (ConfigError, ApiError) as exc:
            if isinstance(exc, (AuthError, Deferred)):
                raise
            # Someone who left, or a typo: the channel alert and the Linear issue do not wait.
            problem = f"direct message to {action.user} (slack.dm_on_escalation of route {action.route!r}): {exc}"
            ex.summary.dm_errors.append(problem)
            log.error("%s", problem)
            return
        self.final = dm_sent(self.final, action.user)
        if action.group is not None and action.group in ex.state.groups:
            group = ex.state.groups[action.group]
            ex.journal.group(action.group, replace(group, dms=(*group.dms, action.user)))
        ex.out.write(f"  {self.name} ({self.sync_id}): direct message sent to {action.user}\n")

    def _TriggerRun(self, action: TriggerRun) -> None:
        """A retry a person asked for: at most one run per reaction, never while one is in
        flight; the thread says which run started, or why none did."""
        ex = self.executor
        started, refused = "", action.refused
        if not refused:
            # Recorded before the trigger, with the reaction it answers: a trigger is not
            # idempotent, and a tick that dies (or loses an answer) after it must not start a
            # second run for the same reaction.
            attempt = retried(self.before(), self.final.incident, ex.now, "?")
            ex.journal.sync(self.sync_id, heard(attempt, action.answer) if action.answer else attempt)
            try:
                started = ex.trigger(self.sync_id)
            except (AuthError, Deferred):
                raise
            except AnswerLost as exc:
                refused = "Hightouch's answer was lost: a run may have started (see the sync's runs)"
                ex.summary.errors_noted.append(f"{self.name} ({self.sync_id}): retry: {exc}")
            except ApiError as exc:
                refused = f"not started: Hightouch refused it ({exc})"
                ex.summary.errors_noted.append(f"{self.name} ({self.sync_id}): retry: {exc}")
            self.final = retried(self.final, self.final.incident, ex.now, started or "refused")
        if action.automatic and not started:
            # Refused: the failure is told next tick, as if no retry had been asked for.
            ex.journal.sync(self.sync_id, retried(self.before(), self.final.incident, ex.now, "refused"))
            raise Unconfirmed(f"{self.name}: the retry before paging was refused ({refused}): told next tick")
        if action.automatic:
            self.final = retried_first(self.final, ex.now)
            verdict = f"run {started} started" if started else f"not started: {refused}"
            ex.out.write(
                f"  {self.name} ({self.sync_id}): transient failure, retried before telling anyone: {verdict}\n"
            )
            return
        assert action.thread is not None
        ctx = replace(self._view(action.ctx), kind="retry", by=action.user, retry_run=started, retry_note=refused)
        message = ex.renderer.slack_reply(ctx)
        thread = action.thread
        key = f"retry-{action.user}-{started or 'none'}"
        sent = Sent(thread.channel, "failure", key, tick_time(ex.now), thread.ts, thread.channel_id)
        self._send(
            sent,
            lambda metadata: ex.slack.post_message(
                thread.channel, message.text, message.blocks, thread_ts=thread.ts, metadata=metadata
            ),
        )
        verdict = f"run {started} started" if started else f"not started: {refused}"
        ex.out.write(f"  {self.name} ({self.sync_id}): retry requested by {action.user}: {verdict}\n")

    def _PostStormSummary(self, action: PostStormSummary) -> None:
        self.executor.post_storm_summary(action)

    def _UpdateStormSummary(self, action: UpdateStormSummary) -> None:
        self.executor.update_storm_summary(action)

    # -- Linear ---------------------------------------------------------------------

    def _Escalate(self, action: Escalate) -> None:
        ex = self.executor
        ex.summary.escalations += 1
        if ex.linear is None:
            return
        if ex.linear_down:
            ex.summary.linear_errors.append(f"{self.name}: not tried: {ex.linear_down}")
            return
        try:
            issue, verdict = self._find_or_file(action)
        except ConfigError as exc:
            # A team or label that does not exist: this escalation waits for the fix, and the
            # sync's Slack side is recorded as done all the same.
            problem = f"{self.name} ({self.sync_id}): route {self.decision.route.name!r}: {exc}"
            ex.summary.config_errors.append(problem)
            log.error("sync %s", problem)
            return
        except Deferred as exc:
            # Linear's rate limit or the tick's time: not a failure; the escalation waits.
            log.warning("Linear, sync %s: %s (the escalation waits for the next tick)", self.name, exc)
            return
        except ApiError as exc:
            ex.linear_failed(self.name, exc)
            return
        if verdict.startswith(("already open", "is its outage", "was created by an earlier")):
            ex.summary.linear_found += 1
        self.final = issue_done(self.final, IssueRef(issue.identifier, issue.url, issue.team or action.team))
        ex.out.write(f"  {self.name} ({self.sync_id}): Linear issue {issue.identifier} {verdict}\n")

    def _find_or_file(self, action: Escalate) -> tuple[Issue, str]:
        """The sync's open issue, found (search before create, every time) or created once."""
        ex = self.executor
        linear = ex.linear
        assert linear is not None
        team = ex.team(action.team)
        incident = self.final.incident
        create_id = incident.issue_create_id if incident else None
        existing: Issue | None = None
        if create_id is not None:
            earlier = linear.issue(create_id)
            if earlier is not None:  # the lost create did land; its id is used up either way
                existing, create_id = (earlier if earlier.open else None), None
        group = ex.state.groups.get(action.group) if action.group else None
        filed = group.issue_of(team.key) if group is not None else None
        if existing is None and filed is not None and filed.create_id is not None:
            earlier = linear.issue(filed.create_id)  # the outage's create whose answer was lost
            if earlier is not None:
                self._group_issue(action.group, team.key, earlier, None)
                filed = GroupIssue(team.key, IssueRef(earlier.identifier, earlier.url, earlier.team or team.key))
        if existing is None and len(action.members) > 1:
            # An outage: one search for all its members of the team, shared by their turns.
            existing = ex.outage_search(team, action).get(self.sync_id)
        elif existing is None:
            existing = linear.find_open_issue(team, self.name, self.sync_id)
        if existing is None and filed is not None and filed.issue is not None:
            joined = linear.open_issue(filed.issue.identifier)
            if joined is not None:
                return joined, "is its outage's (joined)"
        remembered = self.final.issue
        if existing is None and remembered is not None:
            existing = linear.open_issue(remembered.identifier)
        if existing is not None:
            if action.comment:
                body = ex.renderer.linear_comment(self._view(action.ctx))
                linear.comment(existing.id, body, comment_id(self.sync_id, existing.identifier, action.ctx.run.id))
                self.final = shown_in_linear(self.final, action.ctx)
                return existing, "already open, commented"
            return existing, "already open"
        # Nothing open: create, with an id journaled first.
        labels = ex.labels(team, action.labels)
        if group is not None and action.group is not None:
            members = action.members or (action.ctx,)  # this tick's members of the team due for it
            others = tuple(
                SyncLink(i.issue.identifier, i.issue.url or "")
                for i in group.issues
                if i.issue is not None and i.team.lower() != team.key.lower()
            )
            text = ex.renderer.linear_outage(OutageContext(group.cause, "cause", members, len(members), others))
            about: str | tuple[str, ...] = tuple(m.sync_id for m in members)
            create_id = create_id or (filed.create_id if filed else None) or ex.new_id()
            self._group_issue(action.group, team.key, None, create_id)
        else:
            text = ex.renderer.linear_issue(replace(self._view(action.ctx), slack_thread_url=self._thread_link()))
            about = self.sync_id
            create_id = create_id or ex.new_id()
        self.final = issue_attempt(self.final, create_id)
        ex.journal.sync(self.sync_id, issue_attempt(self.before(), create_id, self.final.incident))
        # Not retried in this tick when it fails: the next tick looks the id up first.
        try:
            issue = linear.create_issue(
                team,
                sync_id=about,
                title=text.title,
                description=text.description,
                priority=action.priority,
                issue_id=create_id,
                label_ids=labels,
            )
        except ApiError as exc:
            if "already exists" not in str(exc):
                raise
            # An earlier create with this id landed, though Linear's reads do not show it yet
            # (they lag): it is the issue. Its identifier is learned from a later search.
            issue = Issue(id=create_id, identifier=create_id, title=text.title, url="", team=team.key)
            return issue, "was created by an earlier tick (Linear does not show it yet)"
        ex.summary.linear_created += 1
        self.final = shown_in_linear(self.final, action.ctx)
        if action.group is not None:
            self._group_issue(action.group, team.key, issue, None)
            return issue, f"created for an outage of {len(about)} syncs"
        return issue, "created"

    def _group_issue(self, signature: str | None, team: str, issue: Issue | None, create_id: str | None) -> None:
        ex = self.executor
        if signature is None or signature not in ex.state.groups:
            return
        group = ex.state.groups[signature]
        ref = IssueRef(issue.identifier, issue.url, issue.team or team) if issue is not None else None
        others = tuple(i for i in group.issues if i.team.lower() != team.lower())
        ex.journal.group(signature, replace(group, issues=(*others, GroupIssue(team, ref, create_id))))

    def _thread_link(self) -> str:
        """A link to the incident's Slack thread, for the issue to point back at ("" if none)."""
        first = self.final.threads[0] if self.final.threads else None
        if first is None:
            return ""
        try:
            return self.executor.slack.permalink(first.channel_id, first.ts)
        except (AuthError, Deferred):
            raise
        except ApiError as exc:  # a link is a courtesy: the issue is filed without it
            log.warning("no link to the Slack thread: %s", exc)
            return ""

    def _CommentRecovery(self, action: CommentRecovery) -> None:
        ex = self.executor
        linear = ex.linear
        if linear is None or ex.linear_down:
            return
        try:
            issue = linear.issue(action.issue.identifier)
            if issue is None:
                return
            if action.comment:
                body = ex.renderer.linear_comment(action.ctx)
                linear.comment(
                    issue.id, body, comment_id(self.sync_id, issue.identifier, action.ctx.run_id, "recovery")
                )
            if action.close and issue.open and issue.team_id:
                linear.close(issue.id, issue.team_id)
                ex.out.write(f"  {self.name} ({self.sync_id}): Linear issue {issue.identifier} closed\n")
        except Deferred as exc:
            log.warning("Linear, sync %s: %s (its recovery is not said there)", self.name, exc)
        except (ApiError, ConfigError) as exc:
            if isinstance(exc, ConfigError):
                raise
            # The incident is over: its comment (or close) is not tried again. Said, so a person can.
            problem = f"{self.name}: the recovery comment or close of {action.issue.identifier} failed ({exc})"
            ex.summary.linear_errors.append(problem)
            log.error("Linear, %s; close it by hand if it should be", problem)


# Comment ids are derived from what the comment is about, so the same comment always has the
# same id: Linear refuses a second one, and a repeat after a crash is harmless.
_COMMENTS = uuid.UUID("5b6f0c4e-9d1a-4c3e-8f7a-2d1e0b9c8a71")


def comment_id(sync_id: str, issue: str, run_id: str, kind: str = "failure") -> str:
    return str(uuid.uuid5(_COMMENTS, f"{sync_id}/{issue}/{run_id}/{kind}"))


def closed_record(decision: SyncDecision, now: datetime) -> ClosedIncident | None:
    """The history's line for an incident that ended with this decision: it recovered, or a
    person resolved it."""
    resolved_by = decision.resolved[0] if decision.resolved else None
    ended = decision.resolved[1] if decision.resolved else decision.recovery
    if ended is None:
        return None
    healed = not ended.incident.threads and ended.incident.auto_retry is not None
    if not ended.incident.threads and not healed:
        return None
    incident = ended.incident
    return ClosedIncident(
        sync_id=decision.sync.id,
        sync_name=decision.sync.name,
        channels=tuple(t.channel for t in incident.threads),
        opened_at=incident.started_at or iso_time(now) or "",
        closed_at=iso_time(now if resolved_by else (ended.run.time or now)) or "",
        ended="resolved" if resolved_by else ("healed" if healed else "recovered"),
        cause=incident.error or "",
        severity="warning" if incident.severity == "warning" else "critical",
        acked_at=incident.acked_at,
        acked_by=incident.acked_by,
        muted=incident.muted_by is not None,
        snoozed=incident.snoozed_until is not None,
    )


def shown_in_linear(state: SyncState, ctx: TriageContext) -> SyncState:
    """The state once Linear was told of the failure in `ctx` (a comment, or the issue itself)."""
    incident = state.incident
    if incident is None:
        return state
    return replace(
        state, incident=replace(incident, commented_streak=ctx.consecutive_failures, commented_error=ctx.error_line)
    )


def _largest_first(groups: dict[str, list[SyncLink]]) -> tuple[tuple[str, tuple[SyncLink, ...]], ...]:
    return tuple(sorted(((k, tuple(v)) for k, v in groups.items()), key=lambda kv: -len(kv[1])))
