"""One tick: fetch → decide → act → record, per sync.

Reads (runs, names) run on a few threads, all of them before the first act, so
a storm is seen whole; everything that sends or records happens on the main
thread, one sync at a time, in plan order. The tick executes the actions
`decide` addressed (posts, updates, recoveries, the Linear step) and folds
the ids they return (message ts, issue identifier) into state with the pure
helpers of decide.py; it never reads a channel or a team from config.

Guarantees:
- a sync's new state is recorded only after its Slack message went out, so
  a failure to send means the alert is tried again next tick, and a recorded
  alert is never sent again (the one message in flight at a crash is the only
  at-least-once window);
- a Linear step that fails leaves `linear_pending` recorded and is retried
  next tick, searching again before any create;
- rate limits past the wait budget defer the remaining syncs to the next
  tick, where they go first; the tick still ends normally.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TextIO, TypeVar

from dateutil import parser as dateparser

from triage.config import Config
from triage.decide import (
    FAILURE,
    RECOVERY,
    Alert,
    Escalation,
    Post,
    SyncDecision,
    TickContext,
    Update,
    decide_sync,
    delivered,
    enough_runs,
    error_key,
    lazy_baseline,
    linear_attempt,
    linear_done,
    listing_after,
    never_ran_state,
    not_sent,
    plan_outages,
    plan_storms,
    plan_tick,
    sending,
    still_due,
    thread_started,
)
from triage.errors import ApiError, AuthError, ConfigError, Deferred, OutOfTime
from triage.hightouch import HightouchClient
from triage.http import Meter
from triage.linear import Issue, LinearClient, Team
from triage.models import Sent, State, Sync, SyncState, Thread, parse_iso_time
from triage.render import (
    OutageContext,
    RecoveryContext,
    Renderer,
    StormContext,
    SyncLink,
    TriageContext,
    build_context,
    duration_text,
    sync_url,
)
from triage.routing import Route, Target, needs_names
from triage.slack import CHANNEL_ID, USER_ID, MessageGone, MissingScope, PostedMessage, SlackClient, message_metadata
from triage.state import StateStore
from triage.summary import TickSummary

log = logging.getLogger(__name__)

# GitHub disables the schedule of a public repository after 60 days without a commit.
HEARTBEAT = timedelta(days=7)


@dataclass
class Services:
    """The clients a tick talks to. Slack and Linear are absent in a dry run."""

    hightouch: HightouchClient
    slack: SlackClient | None
    linear: LinearClient | None
    app_url: str
    meter: Meter = field(default_factory=Meter)  # requests and waits of all three, for progress lines


@dataclass(frozen=True)
class _Prepared:
    sync: Sync
    decision: SyncDecision
    alert: TriageContext | None
    escalation: TriageContext | None


@dataclass
class Tick:
    config: Config
    services: Services
    store: StateStore
    renderer: Renderer
    now: datetime
    out: TextIO
    dry_run: bool = False
    clock: Callable[[], float] = time.monotonic
    new_id: Callable[[], str] = lambda: str(uuid.uuid4())  # Linear takes a client-chosen UUID v4
    _teams: dict[str, Team] = field(default_factory=dict)
    _storm_threads: dict[str, Thread | None] = field(default_factory=dict)  # channel -> this tick's summary
    _team_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # team id -> label name -> id
    _unknown_logged: set[str] = field(default_factory=set)
    _channel_ids: dict[str, str] = field(default_factory=dict)  # channel as configured -> Slack's id
    _outage_of: dict[str, OutageKey] = field(default_factory=dict)  # sync id -> its outage
    _outages: dict[OutageKey, OutageContext] = field(default_factory=dict)  # what the outage's issue says
    _outage_issues: dict[OutageKey, Issue] = field(default_factory=dict)  # its issue, once filed
    _commented: set[str] = field(default_factory=set)  # Linear issues commented on this tick
    _unchecked_warned: bool = False

    def run(self) -> TickSummary:
        state = self.store.load()
        loaded = snapshot(state)
        summary = TickSummary(baseline=state.is_baseline)
        ctx = TickContext(
            baseline=state.is_baseline, previous_tick_at=_parse_time(state.last_tick_at), today=self.now.date()
        )
        after = listing_after(state, self.now)
        try:
            syncs = self.services.hightouch.list_syncs(expected=len(state.syncs) if after is None else 0, after=after)
        except Deferred as exc:
            # Nothing was done: the state stays as it is and the next tick starts over.
            log.warning("%s", exc)
            summary.listing_deferred = str(exc)
            return summary

        for known in state.syncs.values():
            for thread in known.threads:
                self._channel_ids.setdefault(thread.channel, thread.channel_id)
        listed = {s.id for s in syncs}
        if after is None:
            # A full listing: a remembered sync it lacks is confirmed by id before it is dropped.
            found, gone = self._recheck_unlisted(syncs, state, [i for i in state.syncs if i not in listed])
            state.full_listing_at = _iso(self.now)
        else:
            # Only syncs that ran since: the rest are unchanged, but for those with work left.
            found, gone = self._recheck_unlisted(syncs, state, still_due(state, listed))
            summary.unchanged += sum(1 for i in state.syncs if i not in listed) - len(found) - len(gone)
        syncs += found
        for sync_id in gone:
            del state.syncs[sync_id]  # deleted in Hightouch: nothing left to watch
        plan = plan_tick(syncs, state)
        summary.listed = len(syncs)
        summary.disabled = len(plan.disabled)
        summary.unchanged += len(plan.unchanged) + len(plan.never_ran) + len(plan.healthy_at_baseline)
        for sync in plan.never_ran:
            state.syncs[sync.id] = never_ran_state(sync)
        for sync in plan.healthy_at_baseline:
            state.syncs[sync.id] = lazy_baseline(sync, self.now)
        for sync in plan.unchanged:
            known = state.syncs[sync.id]
            if known.name != sync.name:
                state.syncs[sync.id] = replace(known, name=sync.name)

        deferred: list[str] = []
        self._storm_threads.update(state.storms)
        try:
            deferred = self._handle_all(plan.to_check, state, ctx, summary)
        finally:
            summary.deferred = deferred
            state.deferred = deferred
            # A storm still being posted stays open for the next tick.
            storms = {channel: t for channel, t in self._storm_threads.items() if t is not None}
            state.storms = storms if deferred else {}
            if not self.dry_run:
                self._save(state, loaded)
        return summary

    def _recheck_unlisted(self, syncs: list[Sync], state: State, unlisted: list[str]) -> tuple[list[Sync], list[str]]:
        """Remembered syncs the listing did not show: (those that still exist, those gone).

        A listing read page by page can skip a sync when another is deleted
        meanwhile (the offsets shift), so absence alone forgets nothing: each
        is asked for by id, and only a 404 drops it. A sync that cannot be
        checked now stays remembered as it is.
        """
        if not unlisted:
            return [], []

        def check(sync_id: str) -> Sync | ApiError | None:
            try:
                return self.services.hightouch.get_sync(sync_id)
            except AuthError:
                raise
            except ApiError as exc:  # rate limits and outages included: decide next tick
                return exc

        found: list[Sync] = []
        gone: list[str] = []
        with ThreadPoolExecutor(max_workers=self.config.hightouch.concurrency) as pool:
            for sync_id, result in zip(unlisted, pool.map(check, unlisted), strict=True):
                if isinstance(result, Sync):
                    log.info("sync %s was missing from the listing but exists: checked as usual", sync_id)
                    found.append(result)
                elif result is None:
                    gone.append(sync_id)
                else:
                    log.warning("sync %s is missing from the listing and could not be checked: %s", sync_id, result)
        return found, gone

    def _save(self, state: State, loaded: State) -> None:
        """Write state.yaml only when something changed, or as the weekly heartbeat.

        A quiet tick leaves the file untouched, so the workflow has nothing to
        commit; the heartbeat keeps a quiet repository's schedule alive.
        """
        previous = _parse_time(state.last_tick_at)
        heartbeat_due = previous is None or self.now - previous >= HEARTBEAT
        # A new full listing alone is no reason to commit: a quiet workspace then lists in
        # full every tick (as cheap as it is quiet), a busy one saves its pages.
        unchanged = replace(state, full_listing_at=loaded.full_listing_at) == loaded
        if unchanged and not heartbeat_due and not self.store.has_journal():
            return
        state.last_tick_at = _iso(self.now)
        if state.baseline_at is None:
            state.baseline_at = state.last_tick_at
        self.store.save(state)

    def _handle_all(self, to_check: list[Sync], state: State, ctx: TickContext, summary: TickSummary) -> list[str]:
        """Read every sync in parallel (runs, names), then act in order; return the ids deferred.

        Reads run on worker threads; Slack, Linear and state writes happen here, one sync
        at a time, in plan order. Acting waits for all reads so that a storm — many syncs
        starting to fail for one channel in this tick — is seen whole before its first post.
        """
        deadline = self.clock() + self.config.triage.tick_time_limit_seconds
        progress = Progress(len(to_check), self.services.meter, self.clock)
        with ThreadPoolExecutor(max_workers=self.config.hightouch.concurrency, thread_name_prefix="hightouch") as pool:
            futures = [pool.submit(self._prepare, sync, state.syncs.get(sync.id), ctx, deadline) for sync in to_check]
            try:
                results = []
                for future in futures:
                    results.append(_outcome(future))
                    progress.tell("read the runs of", len(results))
            finally:
                for future in futures:
                    future.cancel()
        storms = plan_storms(
            [r.decision for r in results if isinstance(r, _Prepared)],
            self.config.slack.storm_threshold,
            open_storms=state.storms,
        )
        self._plan_outages([r for r in results if isinstance(r, _Prepared)])
        # Channels take turns, so one channel's pace never holds up another's messages.
        order = interleaved(list(zip(to_check, results, strict=True)), key=_first_channel)
        # Past the time limit, a sync already read is still recorded; any request it needs
        # (a post) raises OutOfTime, which defers it and the rest.
        for handled, (sync, result) in enumerate(order):
            progress.tell("handled", handled)
            try:
                if isinstance(result, BaseException):
                    raise result
                self._act(result, state, summary, storms)
            except Deferred as exc:
                # Whatever was not handled (rate limit, time limit) goes first next tick.
                left = [s for s, _ in order[handled:]]
                log.warning("%s: deferring %d syncs to the next tick", exc, len(left))
                summary.deferred_why = str(exc)
                summary.deferred_names = [f"{s.name} ({s.id})" for s in left]
                return [s.id for s in left]
            except AuthError:
                raise
            except ConfigError as exc:
                # A route that points nowhere (a channel or team that does not exist): this
                # sync keeps its state and waits for the fix; the other routes go on.
                summary.config_errors.append(f"{sync.name} ({sync.id}): {exc}")
                log.error("sync %s (%s): %s", sync.name, sync.id, exc)
            except ApiError as exc:
                # This sync keeps its recorded state and is tried again next tick.
                summary.errors.append(f"{sync.name} ({sync.id}): {exc}")
                log.error("sync %s (%s): %s", sync.name, sync.id, exc)
        return []

    def _prepare(self, sync: Sync, known: SyncState | None, ctx: TickContext, deadline: float) -> _Prepared:
        """The read-only part of handling a sync: safe to run on a worker thread."""
        if self.clock() >= deadline:
            raise OutOfTime(f"sync {sync.id}: the tick's time limit is reached before its runs were read")
        runs = self.services.hightouch.list_runs(
            sync.id, enough=lambda fetched: enough_runs(fetched, known, ctx, self.config)
        )
        decision = decide_sync(sync, runs, known, ctx, self.config, self._target(sync))
        route = decision.route
        return _Prepared(
            sync=sync,
            decision=decision,
            alert=self._context(decision.alert, route) if decision.posts and decision.alert else None,
            escalation=self._context(decision.escalation.alert, route) if decision.escalation else None,
        )

    def _plan_outages(self, prepared: list[_Prepared]) -> None:
        """Many syncs due for escalation by one cause in one tick: one Linear issue for those
        that have none open, naming them all (see plan_outages)."""
        outages = plan_outages([p.decision for p in prepared], self.config.slack.storm_threshold)
        contexts = {p.sync.id: p.escalation for p in prepared if p.escalation is not None}
        for outage in outages:
            cause = outage.cause
            if outage.by == "destination":
                cause = self.services.hightouch.destination_name(cause or None)
            members = tuple(contexts[a.sync.id] for a in outage.alerts if contexts.get(a.sync.id) is not None)
            self._outages[outage.key] = OutageContext(cause, outage.by, members, len(members))
            self._outage_of |= {a.sync.id: outage.key for a in outage.alerts}
            count = len(outage.alerts)
            log.warning("outage: %d syncs due for escalation by one %s (%s): one Linear issue", count, outage.by, cause)

    def _target(self, sync: Sync) -> Target:
        """What routes match on; destination and model are looked up only when a route needs them."""
        if not needs_names(self.config):
            return Target(sync)
        hightouch = self.services.hightouch
        return Target(
            sync,
            destination=hightouch.destination_name(sync.destination_id),
            destination_type=hightouch.destination_type(sync.destination_id),
            model=hightouch.model_name(sync.model_id),
        )

    def _act(
        self, prepared: _Prepared, state: State, summary: TickSummary, storms: dict[str, tuple[Alert, ...]]
    ) -> None:
        """Carry out one sync's decision: its posts, then its state, then its Linear step."""
        sync, decision = prepared.sync, prepared.decision
        summary.checked += 1
        self._log_unknown(sync, decision)
        try:
            if decision.recovery is not None:
                self._recover(sync, decision, state)
            kept = decision.state
            for post in decision.posts:
                assert prepared.alert is not None  # built whenever there is something to post
                storm = (
                    self._storm_thread(post.channel, storms) if post.starts_thread and post.channel in storms else None
                )
                if storm is not None:
                    # One of a storm: a quiet reply in the storm's summary thread, posted first.
                    post = replace(post, thread=storm, broadcast=False)
                posted = self._send_slack(self._with_incident(prepared.alert, kept), post, decision, state)
                summary.slack_sent += 1
                if posted is not None and post.starts_thread:
                    # The incident's first message; in a storm, its reply in the summary's thread.
                    in_thread = storm.ts if storm is not None else None
                    kept = thread_started(kept, post.channel, posted.channel, posted.ts, in_thread)
            self._record(state, sync.id, kept)
            if decision.alert is not None:
                # Counted once handled: a failure a limit deferred is the next tick's.
                summary.new_failures += decision.alert.new_failures
            if decision.escalation is not None and prepared.escalation is not None:
                summary.escalations += 1
                self._escalate(decision.escalation, prepared.escalation, state, summary)
            for update in decision.updates:
                assert prepared.alert is not None
                self._update(self._with_incident(prepared.alert, state.syncs[sync.id]), update, state)
            if decision.posts and prepared.alert is not None:
                summary.alerted.append(self._with_incident(prepared.alert, state.syncs.get(sync.id, decision.state)))
        except ConfigError as exc:  # a channel, team or label of this route that does not exist
            raise ConfigError(f"route {decision.route.name!r}: {exc}") from None
        log.info("sync %s (%s): %s", sync.name, sync.id, what_was_decided(decision))

    def _record(self, state: State, sync_id: str, sync_state: SyncState) -> None:
        if state.syncs.get(sync_id) == sync_state:
            return
        state.syncs[sync_id] = sync_state
        if not self.dry_run:
            self.store.record(sync_id, sync_state)

    def _context(self, alert: Alert, route: Route) -> TriageContext:
        hightouch = self.services.hightouch
        return build_context(
            alert,
            destination=hightouch.destination_name(alert.sync.destination_id),
            model=hightouch.model_name(alert.sync.model_id),
            url=sync_url(self.config, self.services.app_url, alert.sync.id),
            threshold=route.escalation_threshold,
            escalates=route.escalate,
        )

    def _send_slack(self, ctx: TriageContext, post: Post, decision: SyncDecision, state: State) -> PostedMessage | None:
        message = self.renderer.slack_message(ctx, post.mentions)
        where = f"{post.channel}{' (thread reply)' if post.thread else ''}"
        slack = self.services.slack
        if slack is None:
            self._show(f"Slack message to {where} (route {decision.route.name})", message.mrkdwn)
            return None
        thread_ts = post.thread.ts if post.thread else None
        sent = Sent(post.channel, FAILURE, post.alert.run.id, _iso(self.now), thread_ts, self._channel_id(post.channel))
        posted, fresh = self._send_once(
            state,
            ctx.sync_id,
            decision.before,
            sent,
            post.earlier,
            lambda metadata: slack.post_message(
                post.channel,
                message.text,
                message.blocks,
                thread_ts=thread_ts,
                broadcast=post.broadcast,
                metadata=metadata,
            ),
        )
        verdict = "sent to" if fresh else "went out in an earlier tick: not sent again to"
        self.out.write(f"  {ctx.sync_name} ({ctx.sync_id}): Slack message {verdict} {where}\n")
        return posted

    def _send_once(
        self,
        state: State,
        sync_id: str,
        before: SyncState,
        sent: Sent,
        earlier: Sent | None,
        send: Callable[..., PostedMessage],  # called with the message's metadata=
    ) -> tuple[PostedMessage, bool]:
        """Send one message once across ticks: Slack's answer, and whether it was sent now
        (False: an earlier tick's attempt is known, or was found in history, to have gone out).

        The attempt is recorded before the send and its answer after. A tick that dies in
        between, or whose answer was lost (a timeout, a 5xx), leaves a record without ts; the
        next tick reads the channel's history for the message's metadata before sending again.
        """
        if earlier is not None and earlier.ts is None:
            earlier = self._found_in_history(sync_id, earlier)
        if earlier is not None and earlier.ts is not None:
            channel_id = earlier.channel_id or sent.channel
            self._record(state, sync_id, delivered(state.syncs.get(sync_id, before), sent, channel_id, earlier.ts))
            return PostedMessage(channel_id, earlier.ts), False
        self._record(state, sync_id, sending(state.syncs.get(sync_id, before), sent))
        try:
            posted = send(metadata=message_metadata(sent.kind, sync_id, sent.run_id))
        except Deferred:
            # A rate or time limit: Slack provably did not post it.
            self._record(state, sync_id, not_sent(state.syncs.get(sync_id, before), sent))
            raise
        self._channel_ids[sent.channel] = posted.channel
        self._record(state, sync_id, delivered(state.syncs.get(sync_id, before), sent, posted.channel, posted.ts))
        return posted, True

    def _found_in_history(self, sync_id: str, earlier: Sent) -> Sent | None:
        """`earlier` with its ts when the channel's history holds it; None when it is not there
        or cannot be read for want of the scope (then it is sent again: at least once)."""
        slack = self.services.slack
        assert slack is not None
        since = parse_iso_time(earlier.at)
        metadata = message_metadata(earlier.kind, sync_id, earlier.run_id)
        try:
            channel_id = earlier.channel_id or self._channel_id(earlier.channel)
            if channel_id is None and not USER_ID.fullmatch(earlier.channel):
                # History is read by id only; a channel configured by name is looked up once.
                channel_id = slack.find_channel_id(earlier.channel)
                if channel_id is not None:
                    self._channel_ids[earlier.channel] = channel_id
            if channel_id is None or since is None:
                self._warn_unchecked(f"Slack's id for {earlier.channel!r} is not known")
                return None
            ts = slack.find_sent(channel_id, metadata, since.timestamp(), thread_ts=earlier.thread_ts)
        except MissingScope as exc:
            self._warn_unchecked(str(exc))
            return None
        # Any other error: this sync waits for the next tick rather than risk a repeat.
        if ts is None:
            log.info(
                "sync %s: the message to %s whose answer was lost is not in Slack: sending it", sync_id, earlier.channel
            )
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
        """Slack's id for a configured channel, when known: it is an id already, or a post
        or a remembered thread showed it. History can only be read by id."""
        if CHANNEL_ID.fullmatch(channel):
            return channel
        return self._channel_ids.get(channel)

    @staticmethod
    def _with_incident(ctx: TriageContext, known: SyncState) -> TriageContext:
        """The alert's words with what state knows of the incident: its start, its issue."""
        since = parse_iso_time(known.incident_at)
        return replace(
            ctx,
            incident_since=since.strftime("%Y-%m-%d %H:%M UTC") if since else "",
            linear_issue=known.linear_issue or "",
            linear_url=known.linear_url or "",
        )

    def _storm_thread(self, channel: str, storms: dict[str, tuple[Alert, ...]]) -> Thread | None:
        """The storm summary's thread in `channel`, posted on first use in this tick."""
        if channel not in self._storm_threads:
            alerts = storms[channel]
            links = {a.sync.id: SyncLink(a.sync.name, self._url(a.sync.id)) for a in alerts}
            by_error: dict[str, list[SyncLink]] = {}
            by_destination: dict[str, list[SyncLink]] = {}
            for alert in alerts:
                by_error.setdefault(error_key(alert.run.error), []).append(links[alert.sync.id])
                destination = self.services.hightouch.destination_name(alert.sync.destination_id)
                by_destination.setdefault(destination, []).append(links[alert.sync.id])
            ctx = StormContext(
                count=len(alerts), by_error=_largest_first(by_error), by_destination=_largest_first(by_destination)
            )
            message = self.renderer.slack_storm(ctx)
            if self.services.slack is None:
                self._show(f"Slack storm summary to {channel}", message.mrkdwn)
                self._storm_threads[channel] = None
            else:
                posted = self.services.slack.post_message(channel, message.text, message.blocks)
                self.out.write(f"  storm: {len(alerts)} syncs started failing; summary sent to {channel}\n")
                self._storm_threads[channel] = Thread(channel, posted.channel, posted.ts)
        return self._storm_threads[channel]

    def _url(self, sync_id: str) -> str:
        return sync_url(self.config, self.services.app_url, sync_id)

    def _update(self, ctx: TriageContext, update: Update, state: State) -> None:
        """Refresh the incident's first message; if it was deleted, start the thread again."""
        slack = self.services.slack
        message = self.renderer.slack_message(ctx)
        if slack is None:
            self._show(f"Slack update of the first message in {update.thread.channel}", message.mrkdwn)
            return
        try:
            slack.update_message(update.thread.channel_id, update.thread.first_message_ts, message.text, message.blocks)
        except MessageGone as exc:
            log.warning("%s: posting a new first message for the incident", exc)
            posted = slack.post_message(update.thread.channel, message.text, message.blocks)
            known = state.syncs[ctx.sync_id]
            self._record(state, ctx.sync_id, thread_started(known, update.thread.channel, posted.channel, posted.ts))
        except (AuthError, ConfigError):
            raise
        except ApiError as exc:  # the alert itself went out: a stale first message is not worth a failed tick
            log.warning("the incident's first message in %s was not refreshed: %s", update.thread.channel, exc)

    def _recover(self, sync: Sync, decision: SyncDecision, state: State) -> None:
        """Tell each thread of the incident that it is over, and mark its first message resolved."""
        recovery = decision.recovery
        assert recovery is not None
        known = state.syncs.get(sync.id)
        started, ended = parse_iso_time(recovery.started_at), recovery.run.time
        ctx = RecoveryContext(
            sync_id=sync.id,
            sync_name=sync.name,
            sync_url=sync_url(self.config, self.services.app_url, sync.id),
            run_id=recovery.run.id,
            failed_runs=recovery.failed_runs,
            since=started.strftime("%Y-%m-%d %H:%M UTC") if started else "",
            duration=duration_text((ended - started).total_seconds()) if started and ended else "",
            linear_issue=recovery.linear_issue or "",
            linear_url=(known.linear_url or "") if known else "",
        )
        message = self.renderer.slack_recovery(ctx)
        slack, linear = self.services.slack, self.services.linear
        for thread in recovery.threads:
            if slack is None:
                self._show(f"Slack recovery reply in {thread.channel}", message.mrkdwn)
                continue
            sent = Sent(thread.channel, RECOVERY, recovery.run.id, _iso(self.now), thread.ts, thread.channel_id)
            _, fresh = self._send_once(
                state,
                sync.id,
                decision.before,
                sent,
                recovery.earlier_in(thread.channel),
                partial(slack.post_message, thread.channel, message.text, message.blocks, thread_ts=thread.ts),
            )
            if not fresh:
                continue  # told, and marked resolved, by the tick that sent it
            try:
                slack.update_message(thread.channel_id, thread.first_message_ts, message.text, message.blocks)
            except (AuthError, ConfigError):
                raise
            except ApiError as exc:  # deleted, or Slack down: the reply said it already
                log.warning("the incident's first message was not marked resolved: %s", exc)
            self.out.write(f"  {sync.name} ({sync.id}): recovery sent to {thread.channel}\n")
        if recovery.linear_issue and linear is not None:
            issue = linear.issue(recovery.linear_issue)
            if issue is not None and self.config.linear.comment_on_recovery:
                linear.comment(issue.id, self.renderer.linear_comment(ctx))
            if issue is not None and issue.open and recovery.close and issue.team_id:
                linear.close(issue.id, issue.team_id)
                self.out.write(f"  {sync.name} ({sync.id}): Linear issue {issue.identifier} closed\n")

    def _escalate(self, escalation: Escalation, ctx: TriageContext, state: State, summary: TickSummary) -> None:
        """Find the sync's open issue, or create it; record what was found or created.

        A create carries an id chosen and journaled before the call. If an earlier
        create's answer was lost, that id is looked up first; then the team's open
        issues are searched by name and marker (every time), and those of the team
        that holds the remembered issue if the route moved, then the remembered issue
        itself; only if all come up empty is an issue created.
        """
        linear = self.services.linear
        if linear is None:
            issue_text = self.renderer.linear_issue(ctx)
            self._show(
                f"Linear: search team {escalation.team} for an open issue naming {ctx.sync_name!r}; if none, create",
                f"{issue_text.title}\n\n{issue_text.description}",
            )
            return
        team = self._team(linear, escalation.team)
        known = state.syncs[ctx.sync_id]
        create_id = known.linear_create_id
        existing = None
        if create_id is not None:
            earlier = linear.issue(create_id)
            if earlier is not None:  # the lost create did land; its id is used up either way
                existing, create_id = (earlier if earlier.open else None), None
        teams = [team]
        if known.linear_team and known.linear_team.lower() != team.key.lower():
            teams.append(self._team(linear, known.linear_team))
        existing = existing or self._find_existing(linear, teams, ctx, known.linear_issue)
        verdict = "already open"
        outage = self._outage_of.get(ctx.sync_id)
        filed = self._outage_issues.get(outage) if outage else None
        if existing is not None and filed is not None and existing.id == filed.id:
            verdict = "is the outage's, filed this tick"  # it says this failure already: no comment
        elif (
            existing is not None
            and escalation.comment
            and escalation.alert.new_failures
            and existing.id not in self._commented  # an outage's issue hears of it once a tick
        ):
            self._commented.add(existing.id)
            linear.comment(existing.id, self.renderer.linear_comment(ctx))
            verdict = "already open, commented"
        if existing is None and filed is not None:
            existing, verdict = filed, "is the outage's, filed this tick"
        elif existing is None:
            labels = self._labels(linear, team, escalation.labels)
            outage_ctx = self._outages.get(outage) if outage else None
            if outage_ctx is not None:
                issue_text = self.renderer.linear_outage(outage_ctx)
                about: str | tuple[str, ...] = tuple(s.sync_id for s in outage_ctx.syncs)
            else:
                issue_text = self.renderer.linear_issue(replace(ctx, slack_thread_url=self._thread_link(known)))
                about = ctx.sync_id
            create_id = create_id or self.new_id()
            self._record(state, ctx.sync_id, linear_attempt(known, create_id))
            # Not retried in this tick when it fails: the next tick looks the id up first.
            existing = linear.create_issue(
                team,
                sync_id=about,
                title=issue_text.title,
                description=issue_text.description,
                priority=escalation.priority,
                issue_id=create_id,
                label_ids=labels,
            )
            if outage is not None:
                self._outage_issues[outage] = existing
            verdict = "created" if outage is None else f"created for an outage of {len(about)} syncs"
            summary.linear_created += 1
        else:
            summary.linear_found += 1
        done = linear_done(state.syncs[ctx.sync_id], existing.identifier, existing.team or team.key, existing.url)
        self._record(state, ctx.sync_id, done)
        self.out.write(f"  {ctx.sync_name} ({ctx.sync_id}): Linear issue {existing.identifier} {verdict}\n")

    def _thread_link(self, known: SyncState) -> str:
        """A link to the incident's Slack thread, for the issue to point back at ("" if none)."""
        slack = self.services.slack
        if slack is None or not known.threads:
            return ""
        first = known.threads[0]
        try:
            return slack.permalink(first.channel_id, first.ts)
        except ApiError as exc:  # a link is a courtesy: the issue is filed without it
            log.warning("no link to the Slack thread: %s", exc)
            return ""

    def _team(self, linear: LinearClient, key: str) -> Team:
        """A Linear team by key or name, looked up once per tick."""
        if key not in self._teams:
            self._teams[key] = linear.find_team(key)
        return self._teams[key]

    def _labels(self, linear: LinearClient, team: Team, names: tuple[str, ...]) -> tuple[str, ...]:
        if not names:
            return ()
        if team.id not in self._team_labels:
            self._team_labels[team.id] = linear.labels(team)
        known = self._team_labels[team.id]
        missing = [name for name in names if name.lower() not in known]
        if missing:
            raise ConfigError(
                f"Linear label {missing[0]!r} not found in team {team.key} (check linear.labels in config.yaml)"
            )
        return tuple(known[name.lower()] for name in names)

    @staticmethod
    def _find_existing(
        linear: LinearClient, teams: list[Team], ctx: TriageContext, remembered: str | None
    ) -> Issue | None:
        """An open issue naming the sync in any of `teams`; else the one remembered from an
        earlier tick, if still open (a just-created issue may not be searchable yet)."""
        for team in teams:
            existing = linear.find_open_issue(team, ctx.sync_name, ctx.sync_id)
            if existing is not None:
                return existing
        return linear.open_issue(remembered) if remembered else None

    def _show(self, heading: str, body: str) -> None:
        self.out.write(f"\n--- [dry run] {heading} ---\n{body}\n")

    def _log_unknown(self, sync: Sync, decision: SyncDecision) -> None:
        for status in decision.unknown_statuses:
            if status not in self._unknown_logged:
                self._unknown_logged.add(status)
                log.warning(
                    "run status %r (first seen on sync %s) is unknown: a finished run with it counts as "
                    "neither failure nor success, an unfinished one is judged later",
                    status,
                    sync.name,
                )


@dataclass
class Progress:
    """A line at info every `every` seconds of a long tick: how far, and at what cost."""

    total: int
    meter: Meter
    clock: Callable[[], float]
    every: float = 10.0
    _next: float | None = None

    def tell(self, doing: str, done: int) -> None:
        now = self.clock()
        if self._next is None:
            self._next = now + self.every
        elif now >= self._next:
            self._next = now + self.every
            meter = self.meter
            log.info(
                "progress: %s %d of %d syncs; %d requests, %d waits (%.0f s)",
                doing,
                done,
                self.total,
                meter.requests,
                meter.waits,
                meter.waited,
            )


def what_was_decided(decision: SyncDecision) -> str:
    """One sync's decision in a few words, for its log line."""
    parts: list[str] = []
    if decision.recovery is not None:
        parts.append(f"recovered (run {decision.recovery.run.id})")
    alert = decision.alert
    if alert is not None:
        runs = f"{alert.new_failures} new failed run{'s' if alert.new_failures != 1 else ''}"
        parts.append(f"{runs}, {alert.consecutive_failures} in a row")
        if decision.posts:
            where = ", ".join(p.channel + (" (thread)" if p.thread else "") for p in decision.posts)
            parts.append(f"Slack: {where}")
        else:
            parts.append(f"muted by route {decision.route.name!r}")
    if decision.escalation is not None:
        parts.append(f"Linear: find or open an issue in {decision.escalation.team}")
    return "; ".join(parts) or "no new failed run"


T = TypeVar("T")
OutageKey = tuple[str, str, str]  # Outage.key: team, by, cause


def snapshot(state: State) -> State:
    """The state as loaded, to tell at the end whether anything changed. Each sync's
    record is immutable, so copying the mappings that hold them is enough."""
    return replace(state, syncs=dict(state.syncs), deferred=list(state.deferred), storms=dict(state.storms))


def interleaved(items: list[T], key: Callable[[T], str]) -> list[T]:
    """`items` with their groups (by `key`) taking turns, each group in its own order:
    a, a, a, b, b → a, b, a, b, a."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    queues = list(groups.values())
    return [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]


def _first_channel(item: tuple[Sync, _Prepared | BaseException]) -> str:
    result = item[1]
    if isinstance(result, _Prepared) and result.decision.posts:
        return result.decision.posts[0].channel
    return ""  # nothing to post: no pace to wait for


def _outcome(future: Future[_Prepared]) -> _Prepared | BaseException:
    try:
        return future.result()
    except Exception as exc:  # raised again when this sync's turn comes, so errors stay per sync
        return exc


def _largest_first(groups: dict[str, list[SyncLink]]) -> tuple[tuple[str, tuple[SyncLink, ...]], ...]:
    return tuple(sorted(((k, tuple(v)) for k, v in groups.items()), key=lambda kv: -len(kv[1])))


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return dateparser.isoparse(value)
    except ValueError:
        return None


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
