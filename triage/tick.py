"""One tick: observe → judge → plan → execute → record.

- observe: list the syncs, read the runs of those with something new (on a few threads),
  and what people are shown of each (destination, model, link);
- judge (decide.py): per sync, which runs are new and what its incident becomes;
- plan (plan.py): across syncs, storms, cause groups and outages, and every action;
- execute (execute.py): each action by its handler, every write sent once and journaled;
- record: the answers folded into state (fold.py) and the state saved.

This module wires the stages together: what to say, to whom and where is the plan's. What
is left here is when to read (which syncs, how far back, what people said on their
incidents) and the tick's own housekeeping — the watchdog message in the default channel
and the digest at its time.

Guarantees:
- a sync's new state is recorded only after its Slack messages went out, so a failure to
  send means the alert is tried again next tick, and a recorded alert is never sent again;
- a Linear step that fails leaves the escalation pending and is retried next tick,
  searching again before any create; it never holds back Slack;
- rate limits past the wait budget defer the remaining syncs to the next tick, where they
  go first; the tick still ends normally.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TextIO

from triage import talk
from triage.actions import Post
from triage.config import Config
from triage.decide import (
    SyncDecision,
    TickContext,
    decide_sync,
    enough_runs,
    first_seen_state,
    lazy_baseline,
    listing_after,
    never_ran_state,
    plan_tick,
    read_first,
    read_from,
    silent_now,
    still_due,
)
from triage.digest import OpenIncident, digest_for, due, parse_digest_schedule
from triage.errors import ApiError, AuthError, ConfigError, Deferred, OutOfTime
from triage.execute import Executor, Journal, Unconfirmed
from triage.hightouch import HightouchClient
from triage.history import append_closed, history_path, load_history, prune
from triage.http import Meter
from triage.linear import LinearClient
from triage.models import Group, State, Storm, Sync, SyncState
from triage.plan import Facts, IncidentRules, SyncPlan, held_back, plan, with_incident
from triage.render import Renderer, sync_url
from triage.routing import every_route
from triage.slack import SLACK_MESSAGES_PER_SECOND, MissingScope, SlackClient
from triage.slack_ids import USER_ID
from triage.state import StateStore
from triage.summary import TickSummary
from triage.targets import route_target
from triage.times import iso_time, parse_iso_time, tick_time

log = logging.getLogger(__name__)

# GitHub disables the schedule of a public repository after 60 days without a commit.
HEARTBEAT = timedelta(days=7)


@dataclass
class Services:
    """The clients a tick talks to: in a dry run, Slack and Linear stand-ins that print."""

    hightouch: HightouchClient
    slack: SlackClient
    linear: LinearClient | None
    app_url: str
    meter: Meter = field(default_factory=Meter)  # requests and waits of all three, for progress lines
    trigger: Callable[[str], str] = lambda sync_id: ""  # starts one normal run (a dry run only prints)


@dataclass(frozen=True)
class _Observed:
    sync: Sync
    decision: SyncDecision
    facts: Facts


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
    deadline: float = float("inf")  # on `clock`: the tick's one time limit, set as it starts
    _unknown_logged: set[str] = field(default_factory=set)
    _state: State | None = None
    _unread: list[str] = field(default_factory=list)  # syncs whose runs could not be read this tick
    _reads: ReadBound = field(default_factory=lambda: ReadBound(SLACK_MESSAGES_PER_SECOND))
    _reactions: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    _unread_ok: set[str] = field(default_factory=set)  # judged without reading their runs (silent)
    _bot_user: str | None = None
    _executor: Executor | None = None

    @functools.cached_property
    def rules(self) -> IncidentRules:
        return IncidentRules.from_config(self.config)

    def run(self) -> TickSummary:
        state = self.store.load()
        self._state = state
        if self.deadline == float("inf"):
            self.deadline = self.clock() + self.config.triage.tick_time_limit_seconds
        loaded = snapshot(state)
        summary = TickSummary(baseline=state.is_baseline)
        ctx = TickContext(
            baseline=state.is_baseline,
            previous_tick_at=parse_iso_time(state.last_tick_at),
            today=self.now.date(),
            now=self.now,
        )
        after = listing_after(state, self.now)
        # What people said on told incidents' first messages (and the reminders due): those
        # syncs are read like any changed sync, whether or not they ran since.
        self._reactions = self._read_reactions(state)
        answering = {
            sync_id
            for sync_id, known in state.syncs.items()
            if self._reactions.get(sync_id) or self._reminder_due(known)
        }
        try:
            syncs = self.services.hightouch.list_syncs(expected=len(state.syncs) if after is None else 0, after=after)
        except Deferred as exc:
            # Nothing was done: the state stays as it is and the next tick starts over.
            log.warning("%s", exc)
            summary.listing_deferred = str(exc)
            return summary

        listed = {s.id for s in syncs}
        if after is None:
            # A full listing: a remembered sync it lacks is confirmed by id before it is dropped.
            found, gone = self._recheck_unlisted(syncs, state, [i for i in state.syncs if i not in listed])
            state.full_listing_at = tick_time(self.now)
        else:
            # Only syncs that ran since: the rest are unchanged, but for those with work left.
            found, gone = self._recheck_unlisted(syncs, state, still_due(state, listed, answering))
            summary.unchanged += sum(1 for i in state.syncs if i not in listed) - len(found) - len(gone)
        syncs += found
        for sync_id in gone:
            del state.syncs[sync_id]  # deleted in Hightouch: nothing left to watch
        listing = plan_tick(syncs, state)
        summary.listed = len(syncs)
        summary.disabled = len(listing.disabled)
        summary.unchanged += len(listing.unchanged) + len(listing.never_ran) + len(listing.healthy_at_baseline)
        for sync in listing.never_ran:
            state.syncs[sync.id] = never_ran_state(sync)
        for sync in listing.healthy_at_baseline:
            state.syncs[sync.id] = lazy_baseline(sync, self.now)
        for sync in listing.unchanged:
            known = state.syncs[sync.id]
            if known.name != sync.name:
                state.syncs[sync.id] = replace(known, name=sync.name)

        to_check = listing.to_check + [s for s in listing.unchanged if s.id in answering]
        # Syncs that stopped running: judged from the listing, without reading their runs.
        self._unread_ok = {
            s.id
            for s in listing.unchanged
            if s.id not in answering and silent_now(s, state.syncs[s.id], ctx, self.config)
        }
        to_check += [s for s in listing.unchanged if s.id in self._unread_ok]

        deferred: list[str] = []
        try:
            deferred = self._handle_all(to_check, state, ctx, summary)
            if not self.dry_run:
                self._watchdog(state, summary)
                self._digest(state, summary)
        finally:
            summary.deferred = deferred
            # Syncs whose runs could not be read go first next tick too, and are read then
            # even when the next listing (of syncs that ran since) leaves them out.
            state.deferred = list(dict.fromkeys([*deferred, *self._unread]))
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
        previous = parse_iso_time(state.last_tick_at)
        heartbeat_due = previous is None or self.now - previous >= HEARTBEAT
        # A new full listing alone is no reason to commit: a quiet workspace then lists in
        # full every tick (as cheap as it is quiet), a busy one saves its pages.
        # Nor is a new watchdog message: every tick schedules one.
        unchanged = replace(state, full_listing_at=loaded.full_listing_at, watchdog=loaded.watchdog) == loaded
        if unchanged and not heartbeat_due and not self.store.has_journal():
            return
        state.last_tick_at = tick_time(self.now)
        if state.baseline_at is None:
            state.baseline_at = state.last_tick_at
        self.store.save(state)

    def _handle_all(self, to_check: list[Sync], state: State, ctx: TickContext, summary: TickSummary) -> list[str]:
        """Observe every sync (runs, names) on worker threads, judge each, plan across syncs
        and execute the plan in order; return the ids deferred.

        Reads and posts overlap. The syncs in trouble are read first (read_first) and what
        they decided is carried out while the rest are read, but for what the rest could
        still change (held_back: new incidents of a channel that may yet be a storm, and what
        they tie to), which is planned with the rest. Reads that failed go last. Slack, Linear
        and state writes happen on this thread, one sync at a time.
        """
        first, rest = read_first(to_check, state)
        progress = Progress(len(to_check), self.services.meter, self.clock)
        journal = Journal(state, self._record_sync, self._record_storm, self._record_group)
        executor = Executor(
            slack=self.services.slack,
            linear=self.services.linear,
            renderer=self.renderer,
            journal=journal,
            summary=summary,
            now=self.now,
            out=self.out,
            new_id=self.new_id,
            trigger=self.services.trigger,
            history=(lambda record: None) if self.dry_run else partial(append_closed, history_path(self.store.path)),
        )
        self._executor = executor
        first_reads: list[tuple[Sync, Future[_Observed]]] = []
        rest_reads: list[tuple[Sync, Future[_Observed]]] = []
        with ThreadPoolExecutor(max_workers=self.config.hightouch.concurrency, thread_name_prefix="hightouch") as pool:
            try:
                self._read_names(first)
                first_reads = self._read(pool, first, state, ctx)
                results = self._results(first_reads, progress, 0)
                # The rest are read while the first are carried out (not before: the first have
                # Hightouch's pace to themselves).
                rest_reads = self._read(pool, rest, state, ctx)
                observed = [r for _, r in results if isinstance(r, _Observed)]
                hold = held_back([o.decision for o in observed], self.rules)
                held = [o for o in observed if o.sync.id in hold.syncs]
                going = [o for o in observed if o.sync.id not in hold.syncs]
                failed = [(sync, r) for sync, r in results if isinstance(r, BaseException)]
                after = [o.sync for o in held] + rest + [sync for sync, _ in failed]
                deferred = self._carry_out(going, [], after, executor, summary, progress)
                if not deferred:
                    results = self._results(rest_reads, progress, len(first))
                    observed = held + [r for _, r in results if isinstance(r, _Observed)]
                    failed += [(sync, r) for sync, r in results if isinstance(r, BaseException)]
                    deferred = self._carry_out(observed, failed, [], executor, summary, progress, hold.storming)
                return deferred
            finally:
                for _, future in first_reads + rest_reads:
                    future.cancel()
                # Whatever the tick did not get to (a limit, an error, a crash): a sync first seen
                # keeps the boundary it was judged with, so its failures since are still news.
                for sync in to_check:
                    first_seen = first_seen_state(sync, ctx) if sync.id not in state.syncs else None
                    if first_seen is not None:
                        journal.sync(sync.id, first_seen)

    def _read(
        self, pool: ThreadPoolExecutor, syncs: list[Sync], state: State, ctx: TickContext
    ) -> list[tuple[Sync, Future[_Observed]]]:
        """Start observing `syncs` on the pool's threads, in order."""
        return [(sync, pool.submit(self._observe, sync, state.syncs.get(sync.id), ctx)) for sync in syncs]

    def _results(
        self, reads: list[tuple[Sync, Future[_Observed]]], progress: Progress, done: int
    ) -> list[tuple[Sync, _Observed | BaseException]]:
        """Each read's outcome, in order, once it is in."""
        results: list[tuple[Sync, _Observed | BaseException]] = []
        for sync, future in reads:
            results.append((sync, _outcome(future)))
            progress.tell("read the runs of", done + len(results))
        return results

    def _read_names(self, syncs: list[Sync]) -> None:
        """The names the syncs listed as failing will show, from a page or two of their lists
        rather than one request each."""
        troubled = [s for s in syncs if s.status != "success"]
        self.services.hightouch.read_names("destinations", (s.destination_id for s in troubled))
        self.services.hightouch.read_names("models", (s.model_id for s in troubled))

    def _carry_out(
        self,
        observed: list[_Observed],
        failed: list[tuple[Sync, BaseException]],
        later: list[Sync],
        executor: Executor,
        summary: TickSummary,
        progress: Progress,
        storming: frozenset[str] = frozenset(),
    ) -> list[str]:
        """Plan the syncs observed and execute the plan, then the syncs whose reads failed.
        Returns the ids a limit deferred (with `later`, the syncs still to handle after these),
        none if it was reached by no request."""
        state = executor.state
        journal = executor.journal
        the_plan = plan(
            [o.decision for o in observed],
            {o.sync.id: o.facts for o in observed},
            state,
            self.rules,
            self.now,
            reactions=self._reactions,
            bot_user=self._bot_user,
            storming=storming,
        )
        for signature in set(state.groups) - set(the_plan.groups):
            journal.forget_group(signature)  # closed: no member failing, the window over
        for signature, group in the_plan.groups.items():
            journal.group(signature, group)
        for channel in set(state.storms) - set(the_plan.storms):
            journal.storm(channel, None)
        for channel, storm in the_plan.storms.items():
            journal.storm(
                channel, replace(storm, thread=state.storms[channel].thread) if channel in state.storms else storm
            )
        executor.failing = frozenset(the_plan.failing)  # for the storm summaries of this part
        for sync, error in failed:
            if not isinstance(error, Deferred):
                self._unread.append(sync.id)  # read again next tick, whatever the listing says
        order: list[tuple[Sync, SyncPlan | BaseException]] = [(p.decision.sync, p) for p in the_plan.syncs]
        order += failed
        # Past the time limit, a sync already read is still recorded; any request it needs
        # (a post) raises OutOfTime, which defers it and the rest.
        for handled, (sync, item) in enumerate(order):
            progress.tell("handled", summary.checked)
            try:
                if isinstance(item, BaseException):
                    raise item
                self._act(executor, item, summary)
            except Deferred as exc:
                # Whatever was not handled (rate limit, time limit) goes first next tick.
                left = [s for s, _ in order[handled:]] + later
                log.warning("%s: deferring %d syncs to the next tick", exc, len(left))
                summary.deferred_why = str(exc)
                summary.deferred_names = [f"{s.name} ({s.id})" for s in left]
                return [s.id for s in left]
            except Unconfirmed:
                continue  # journaled; the next tick looks the message up, then carries on
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

    def _read_reactions(self, state: State) -> dict[str, dict[str, tuple[str, ...]]]:
        """The reactions on each told, open incident's first message (reactions.get, one each).
        A read that fails leaves that incident as it was for the next tick: a missing scope is
        said once, naming it."""
        found: dict[str, dict[str, tuple[str, ...]]] = {}
        for sync_id, known in state.syncs.items():
            incident = known.incident
            if incident is None or not incident.threads:
                continue
            first = incident.threads[0]
            try:
                reactions = self.services.slack.reactions(first.channel_id, first.first_message_ts)
            except MissingScope as exc:
                log.warning("%s: reactions on incidents are not read (add reactions:read to the Slack app)", exc)
                return found
            except Deferred as exc:
                # Slack's pace for reactions.get: the rest are read next tick, and the tick goes on.
                log.warning("reactions: %s; the others are read next tick", exc)
                return found
            except AuthError:
                raise
            except (ApiError, ConfigError) as exc:  # deleted, or a channel retired: nothing to hear
                log.info("sync %s: the reactions on its first message could not be read: %s", sync_id, exc)
                continue
            if any(users for users in reactions.values()):
                found[sync_id] = reactions
        if found and self._bot_user is None:
            try:
                self._bot_user = str(self.services.slack.auth_test().get("user_id") or "") or None
            except ApiError as exc:  # its own reactions are then taken as a person's: rare, and harmless
                log.info("the bot's own user id is not known: %s", exc)
        return found

    def _reminder_due(self, known: SyncState) -> bool:
        return known.incident is not None and talk.renotify_due(known.incident, self.now, self.config.talk)

    def _watchdog(self, state: State, summary: TickSummary) -> None:
        """Exactly one "no tick since" message pending in Slack after every tick; a note when
        ticks come back after Slack had to post it."""
        executor = self._executor
        if executor is None:
            return
        try:
            state.watchdog = executor.watchdog(
                state.watchdog,
                self.config.slack.channels[0],
                self.config.talk.watchdog_minutes,
                summary.checked,
                state.last_tick_at,
            )
        except AuthError:
            raise
        except (ApiError, ConfigError) as exc:  # a limit (Deferred) included: the next tick schedules it
            summary.errors_noted.append(f"watchdog: {exc}")
            log.warning("the watchdog message could not be scheduled: %s", exc)

    def _digest(self, state: State, summary: TickSummary) -> None:
        """At the digest's time, one message per channel that routes point to, about its syncs
        over the period since the last one."""
        schedule = parse_digest_schedule(self.config.digest.schedule, self.config.digest.timezone)
        executor = self._executor
        if schedule is None or executor is None:
            return
        if state.digest_at is None:
            # A new install (or one upgraded from before digests): the first digest comes at
            # the next scheduled time, about the time since.
            state.digest_at = iso_time(self.now)
            return
        period = due(schedule, parse_iso_time(state.digest_at), self.now)
        if period is None:
            return
        path = history_path(self.store.path)
        records, warning = load_history(path, self.now)
        for problem in (warning, prune(path, self.now)):
            if problem:
                log.warning("%s", problem)
        still = [
            OpenIncident(
                sync_id=sync_id,
                sync_name=known.name,
                channels=tuple(t.channel for t in known.incident.threads),
                opened_at=known.incident.started_at,
                acked_at=known.incident.acked_at,
                muted=known.incident.muted_by is not None,
                snoozed_until=known.incident.snoozed_until,
                cause=known.incident.error or "",
                severity="warning" if known.incident.severity == "warning" else "critical",
            )
            for sync_id, known in state.syncs.items()
            if known.incident is not None and known.incident.threads
        ]
        channels = dict.fromkeys(c for r in every_route(self.config) for c in r.channels if not USER_ID.fullmatch(c))
        end = iso_time(period[1]) or ""
        try:
            for channel in channels:
                ctx = digest_for(channel, records, still, period, self.now, cadence=schedule.cadence)
                executor.post_digest(channel, ctx, end)
        except AuthError:
            raise
        except (ApiError, ConfigError) as exc:  # a limit (Deferred) included: it is tried next tick
            summary.errors_noted.append(f"digest: {exc}")
            log.warning("the digest was not posted in full (it is tried again next tick): %s", exc)
            return
        state.digest_at = end

    def _observe(self, sync: Sync, known: SyncState | None, ctx: TickContext) -> _Observed:
        """The read-only part of handling a sync, and its judgement: safe on a worker thread."""
        if self.clock() >= self.deadline:
            raise OutOfTime(f"sync {sync.id}: the tick's time limit is reached before its runs were read")
        if self._reads.full(self.deadline - self.clock(), self.config.triage.tick_time_limit_seconds):
            raise OutOfTime(
                f"sync {sync.id}: the time left is for posting what was read ({self._reads.messages} messages)"
            )
        runs = (
            []
            if sync.id in self._unread_ok
            else self.services.hightouch.list_runs(
                sync.id,
                enough=lambda fetched: enough_runs(fetched, known, ctx, self.config),
                after=read_from(known, ctx),  # bounded by time, whatever order the API lists runs in
                created=sync.created_at,
            )
        )
        decision = decide_sync(
            sync, runs, known, ctx, self.config, route_target(self.services.hightouch, self.config, sync)
        )
        hightouch = self.services.hightouch
        facts = Facts(
            destination=hightouch.destination_name(sync.destination_id)
            if decision.alert or decision.escalation or decision.recovery
            else "",
            model=hightouch.model_name(sync.model_id) if decision.alert or decision.escalation else "",
            url=sync_url(self.config, self.services.app_url, sync.id),
        )
        if decision.alert is not None or decision.recovery is not None:
            self._reads.need(len(decision.route.channels))
        return _Observed(sync, decision, facts)

    def _act(self, executor: Executor, sync_plan: SyncPlan, summary: TickSummary) -> None:
        """Carry out one sync's actions; count what was done."""
        decision = sync_plan.decision
        sync = decision.sync
        summary.checked += 1
        self._log_unknown(sync, decision)
        try:
            executor.run(sync_plan)
        except ConfigError as exc:  # a channel, team or label of this route that does not exist
            raise ConfigError(f"route {decision.route.name!r}: {exc}") from None
        if decision.alert is not None:
            # Counted once handled: a failure a limit deferred is the next tick's.
            summary.new_failures += decision.alert.new_failures
            posts = [a for a in sync_plan.actions if isinstance(a, Post)]
            if posts:
                final = self.store_state(sync.id)
                summary.alerted.append(with_incident(posts[0].ctx, final.incident if final else None))
        log.info("sync %s (%s): %s", sync.name, sync.id, what_was_decided(sync_plan))

    def store_state(self, sync_id: str) -> SyncState | None:
        return self._state.syncs.get(sync_id) if self._state is not None else None

    def _record_sync(self, sync_id: str, sync_state: SyncState) -> None:
        if not self.dry_run:
            self.store.record(sync_id, sync_state)

    def _record_storm(self, channel: str, storm: Storm | None) -> None:
        if not self.dry_run:
            self.store.record_storm(channel, storm)

    def _record_group(self, signature: str, group: Group | None) -> None:
        if not self.dry_run:
            self.store.record_group(signature, group)

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


READS_SHARE = 0.6  # reading stops with this share of the tick left, once something needs posting


@dataclass
class ReadBound:
    """Reads stop once what they found needs all the time left to post: a tick never spends
    its time reading what it cannot send (the rest is read first next tick). Thread-safe."""

    rate: float  # messages a second Slack takes (per channel; one channel is the worst case)
    messages: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def need(self, messages: int) -> None:
        with self._lock:
            self.messages += messages

    def full(self, time_left: float, time_limit: float) -> bool:
        """Whether reading must stop: the messages found need the time left, or 40 % of the
        tick is spent and there is something to post — a read in flight then (a back-off)
        may overrun, and posting still gets at least half the tick."""
        with self._lock:
            if self.messages == 0:
                return False
            return self.messages / self.rate >= time_left or time_left <= time_limit * READS_SHARE


def what_was_decided(sync_plan: SyncPlan) -> str:
    """One sync's plan in a few words, for its log line."""
    decision = sync_plan.decision
    parts: list[str] = []
    if decision.recovery is not None:
        parts.append(f"recovered (run {decision.recovery.run.id})")
    alert = decision.alert
    if alert is not None:
        runs = f"{alert.new_failures} new failed run{'s' if alert.new_failures != 1 else ''}"
        parts.append(f"{runs}, {alert.consecutive_failures} in a row")
        posts = [a for a in sync_plan.actions if isinstance(a, Post)]
        if posts:
            parts.append("Slack: " + ", ".join(f"{p.channel} ({p.kind})" for p in posts))
    elif decision.muted and decision.state.consecutive_failures:
        parts.append(f"muted by route {decision.route.name!r}")
    if decision.escalation is not None:
        parts.append(f"Linear: find or open an issue in {decision.route.team}")
    return "; ".join(parts) or "no new failed run"


def snapshot(state: State) -> State:
    """The state as loaded, to tell at the end whether anything changed. Each record is
    immutable, so copying the mappings that hold them is enough."""
    return replace(
        state,
        syncs=dict(state.syncs),
        deferred=list(state.deferred),
        storms=dict(state.storms),
        groups=dict(state.groups),
    )


def _failures(results: list[tuple[Sync, _Observed | BaseException]]) -> list[tuple[Sync, BaseException]]:
    return [(sync, r) for sync, r in results if isinstance(r, BaseException)]


def _outcome(future: Future[_Observed]) -> _Observed | BaseException:
    try:
        return future.result()
    except Exception as exc:  # raised again when this sync's turn comes, so errors stay per sync
        return exc
