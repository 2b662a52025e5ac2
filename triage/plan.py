"""The second pure stage: from every sync judged this tick, what spans syncs — storms,
cause groups, outages — and every action of the tick, addressed and in order.

`decide.py` judges one sync at a time; this module sees them all at once, with the state
as it stands, and returns the actions the tick executes (see actions.py) plus the storms
and groups as they stand once this tick's syncs joined them. It talks to nothing and
decides everything: what is said, to whom, where, and when nobody is pinged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

from triage import talk
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
    Where,
)
from triage.causes import classify
from triage.config import Config, RetryConfig, TalkConfig
from triage.decide import CRITICAL, Recovery, SyncDecision, cause_of
from triage.models import PENDING_STATUSES, Group, Incident, Run, State, Storm, StormMember, Thread
from triage.render import TriageContext, build_context, recovery_context
from triage.signature import first_line
from triage.talk import Answer
from triage.times import human_time, iso_time, parse_iso_time


@dataclass(frozen=True)
class Facts:
    """What the tick read of a sync beside its runs: names for people, and its link."""

    destination: str
    model: str
    url: str


@dataclass(frozen=True)
class IncidentRules:
    """The incident settings the plan follows, built once from config."""

    threads: bool = True
    broadcast: str = "escalation"
    recovery: bool = True
    storm_threshold: int = 10
    group_window: timedelta = timedelta(minutes=120)
    outage_threshold: int = 5
    comment_on_failure: bool = True
    comment_on_recovery: bool = True
    close_on_recovery: bool = False
    talk: TalkConfig = field(default_factory=TalkConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    runbooks: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> IncidentRules:
        slack, linear = config.slack, config.linear
        return cls(
            talk=config.talk,
            retry=config.retry,
            runbooks=config.runbooks,
            threads=slack.threads,
            broadcast=slack.broadcast,
            recovery=slack.recovery,
            storm_threshold=slack.storm_threshold,
            group_window=timedelta(minutes=slack.group_window_minutes),
            outage_threshold=linear.outage_threshold,
            comment_on_failure=linear.comment_on_failure,
            comment_on_recovery=linear.comment_on_recovery,
            close_on_recovery=linear.close_on_recovery,
        )


@dataclass(frozen=True)
class SyncPlan:
    """One sync's actions, in the order they are carried out."""

    decision: SyncDecision
    actions: tuple[Action, ...] = ()

    @property
    def channel(self) -> str:
        """The channel its first message goes to ("" for none): channels take turns."""
        return next((a.channel for a in self.actions if isinstance(a, Post)), "")


@dataclass(frozen=True)
class Plan:
    syncs: tuple[SyncPlan, ...]
    storms: dict[str, Storm]  # every open storm once this tick's members joined
    groups: dict[str, Group]  # every open cause group once this tick's members joined
    failing: frozenset[str] = frozenset()  # syncs with an open incident once this tick is done


def plan(
    decisions: list[SyncDecision],
    facts: dict[str, Facts],
    state: State,
    rules: IncidentRules,
    now: datetime,
    reactions: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None,
    bot_user: str | None = None,
    storming: frozenset[str] = frozenset(),
) -> Plan:
    """Every action of the tick, in order: each sync's (channels taking turns, so one
    channel's pace never holds up another), a storm's summary before its first reply.
    `reactions` are those read from each told incident's first message (by sync id);
    `storming`, the channels where the syncs read first made a storm (see held_back)."""
    decisions = [_heard(d, (reactions or {}).get(d.sync.id, {}), bot_user, rules, now) for d in decisions]
    judged = {d.sync.id: d.state for d in decisions}
    incidents = {
        sync_id: known.incident for sync_id, known in {**state.syncs, **judged}.items() if known.incident is not None
    }
    failing = set(incidents)
    causes = {sync_id: incident.cause or "" for sync_id, incident in incidents.items()}
    groups = open_groups(state.groups, causes, now, rules.group_window)
    groups = join_groups(groups, decisions, now)
    storms = {c: s for c, s in state.storms.items() if any(m.sync_id in failing for m in s.members) or s.thread is None}
    storms = join_storms(storms, decisions, facts, state, groups, rules, now, storming)
    outage_teams = _outage_members(decisions, groups, state, rules)

    due: dict[tuple[str, str], list[TriageContext]] = {}  # (group, team) -> members due this tick
    for decision in decisions:
        ctx = _context(decision, facts.get(decision.sync.id), rules.runbooks)
        if decision.sync.id in outage_teams and ctx is not None:
            due.setdefault((outage_teams[decision.sync.id], decision.route.team.lower()), []).append(ctx)
    dmed: set[tuple[str, str]] = set()  # (person, incident or group) told this tick
    commented: set[str] = set()  # issues (or groups) commented on this tick
    plans: list[SyncPlan] = []
    for decision in decisions:
        actions: list[Action] = []
        sync_facts = facts.get(decision.sync.id)
        ctx = _context(decision, sync_facts, rules.runbooks)
        recovery = decision.recovery
        healed = recovery is not None and not recovery.incident.threads and recovery.incident.auto_retry is not None
        if healed:
            recovery = None  # retried before anyone was told, and the retry worked: nobody hears of it
        opened_and_closed = recovery is not None and not recovery.incident.threads
        if recovery is not None and sync_facts is not None and not opened_and_closed:
            actions += _recovery(decision, sync_facts, state, decisions, rules)
        retry_first = _retry_before_paging(decision, rules, now)
        if retry_first is not None:
            actions.append(retry_first)  # transient: one run first; told next tick if it fails too
        elif ctx is not None and sync_facts is not None:
            told = _alert(decision, ctx, state, storms, groups, rules, outage_teams, due, dmed, commented)
            actions += _hushed(told, decision.state.incident, now)
        if opened_and_closed and decision.state.incident is None and decision.alert is not None and sync_facts:
            # Failed and recovered between two ticks: its first message, then its end, in its thread.
            actions += _recovery(decision, sync_facts, state, decisions, rules)
        if sync_facts is not None:
            actions += _answered(decision, sync_facts, state, decisions, rules, now, already=actions)
        plans.append(SyncPlan(decision, tuple(actions)))
    ordered = _with_summaries(interleaved(plans, key=lambda p: p.channel), storms)
    summaries = {a.channel: a.mentions for p in ordered for a in p.actions if isinstance(a, PostStormSummary)}
    storms = {c: replace(s, mentioned=summaries[c]) if c in summaries else s for c, s in storms.items()}
    return Plan(syncs=tuple(ordered), storms=storms, groups=groups, failing=frozenset(failing))


# -- groups and storms ---------------------------------------------------------


def open_groups(groups: dict[str, Group], causes: dict[str, str], now: datetime, window: timedelta) -> dict[str, Group]:
    """The cause groups still open: a member still failing with the group's cause (`causes`:
    each failing sync's), or opened within `window`."""
    kept: dict[str, Group] = {}
    for signature, group in groups.items():
        opened = parse_iso_time(group.opened_at)
        recent = opened is not None and now - opened < window
        if recent or any(causes.get(m) == signature for m in group.members):
            kept[signature] = group
    return kept


def join_groups(groups: dict[str, Group], decisions: list[SyncDecision], now: datetime) -> dict[str, Group]:
    """Each incident told for the first time this tick joins its cause's open group, or opens one."""
    result = dict(groups)
    for decision in decisions:
        incident = decision.state.incident
        if not decision.opened or incident is None or incident.cause is None or decision.alert is None:
            continue
        if incident.signal != "failed":
            continue  # a signal is the sync's own trouble: nothing to group with
        group = result.get(incident.cause) or Group(
            signature=incident.cause, cause=first_line(decision.alert.run.error), opened_at=iso_time(now) or ""
        )
        if decision.sync.id not in group.members:
            group = replace(group, members=(*group.members, decision.sync.id))
        result[incident.cause] = group
    return result


def join_storms(
    storms: dict[str, Storm],
    decisions: list[SyncDecision],
    facts: dict[str, Facts],
    state: State,
    groups: dict[str, Group],
    rules: IncidentRules,
    now: datetime,
    storming: frozenset[str] = frozenset(),
) -> dict[str, Storm]:
    """Storms as they stand once this tick's new incidents joined: in a channel where
    `storm_threshold` or more incidents open at once (or in `storming`, where this tick's
    syncs read first already made one: see held_back) a storm opens (or the open one grows);
    a channel's open storm also takes a new incident of a cause it already holds, and the
    members a limit left unposted last tick."""
    openers: dict[str, list[SyncDecision]] = {}
    for decision in decisions:
        if decision.opened and decision.alert is not None:
            for channel in decision.route.channels:
                openers.setdefault(channel, []).append(decision)
    result = dict(storms)
    for channel, starting in openers.items():
        storm = result.get(channel)
        held = {m.sync_id for m in storm.members} if storm else set()
        causes = {m.cause for m in storm.members} if storm else set()
        if len(starting) >= rules.storm_threshold or channel in storming:
            joining = starting
        else:
            joining = [d for d in starting if d.sync.id in held or _cause(d) in causes]
        if not joining:
            continue
        storm = storm or Storm(channel=channel, opened_at=iso_time(now) or "")
        members = list(storm.members)
        for decision in joining:
            sync_facts = facts.get(decision.sync.id)
            if decision.sync.id in held or sync_facts is None or decision.alert is None:
                continue
            error = first_line(decision.alert.run.error)
            members.append(
                StormMember(
                    decision.sync.id,
                    decision.sync.name,
                    sync_facts.url,
                    error,
                    _cause(decision),
                    sync_facts.destination,
                )
            )
        result[channel] = replace(storm, members=tuple(members))
    return result


@dataclass(frozen=True)
class HeldBack:
    """What the syncs read first (decide.read_first) may not do before the rest are read."""

    syncs: frozenset[str]  # whose actions wait, to be planned with the rest
    storming: frozenset[str]  # channels whose storm is certain: the rest's new incidents join it


def held_back(decisions: list[SyncDecision], rules: IncidentRules) -> HeldBack:
    """Of the syncs read first this tick, those whose actions wait for the rest of the reads,
    so that planning in two parts says what planning all at once would. A new incident waits
    when one of its channels has fewer than `storm_threshold` new incidents going now — the
    rest could make it a storm — and so, in turn, may others of those channels; an escalation
    waits when a waiting incident has its cause (the two may make an outage). In a channel
    with `storm_threshold` or more going, the storm is certain: its messages go while the
    rest are read, and the rest's new incidents there join it."""
    opening = [d for d in decisions if d.opened and d.alert is not None]
    held: set[str] = set()
    while True:
        counts: dict[str, int] = {}
        for decision in opening:
            if decision.sync.id not in held:
                for channel in decision.route.channels:
                    counts[channel] = counts.get(channel, 0) + 1
        short = {
            d.sync.id
            for d in opening
            if d.sync.id not in held and any(counts[c] < rules.storm_threshold for c in d.route.channels)
        }
        causes = {_cause(d) for d in decisions if d.sync.id in held | short} - {""}
        tied = {d.sync.id for d in decisions if d.escalation is not None and _cause(d) in causes}
        if short | tied <= held:
            storming = frozenset(c for c, n in counts.items() if n >= rules.storm_threshold)
            return HeldBack(frozenset(held), storming)
        held |= short | tied


def _cause(d: SyncDecision) -> str:
    incident = d.state.incident
    return (incident.cause if incident is not None else None) or ""


def _outage_members(
    decisions: list[SyncDecision], groups: dict[str, Group], state: State, rules: IncidentRules
) -> dict[str, str]:
    """Syncs whose escalation goes to their cause group's issue (sync id → signature): the
    groups with `outage_threshold` or more members, and a member due for escalation."""
    big = {s for s, g in groups.items() if len(g.members) >= rules.outage_threshold}
    result: dict[str, str] = {}
    for decision in decisions:
        incident = decision.state.incident
        # A sync that has its own open issue keeps it.
        if (
            decision.escalation is not None
            and incident is not None
            and incident.cause in big
            and incident.issue is None
        ):
            result[decision.sync.id] = incident.cause or ""
    return result


# -- one sync's actions ---------------------------------------------------------


def _context(
    decision: SyncDecision, facts: Facts | None, runbooks: tuple[tuple[str, str], ...] = ()
) -> TriageContext | None:
    alert = decision.alert or decision.escalation
    if alert is None or facts is None:
        return None
    route = decision.route
    ctx = build_context(
        alert,
        destination=facts.destination,
        model=facts.model,
        url=facts.url,
        threshold=route.escalation_threshold,
        escalates=route.escalate,
        runbooks=dict(runbooks),
    )
    return with_incident(ctx, decision.state.incident, decision.crossing)


def with_incident(ctx: TriageContext, incident: Incident | None, escalated_now: bool = False) -> TriageContext:
    """An alert's words with what state knows of its incident: its start, its issue, and
    whether its error changed since people last saw it."""
    if incident is None:
        return ctx
    since = parse_iso_time(incident.started_at)
    issue = incident.issue
    error_line = first_line(ctx.run.error)
    return replace(
        ctx,
        incident_since=since.strftime("%Y-%m-%d %H:%M UTC") if since else "",
        incident_since_at=int(since.timestamp()) if since else 0,
        linear_issue=issue.identifier if issue else "",
        linear_url=(issue.url or "") if issue else "",
        error_changed=incident.error is not None and incident.error != error_line,
        escalated=escalated_now or ctx.escalated,
        acked_by=incident.acked_by or "",
        acked_at=_unix(incident.acked_at),
        snoozed_by=incident.snoozed_by or "",
        snoozed_until=_unix(incident.snoozed_until),
        muted_by=incident.muted_by or "",
        retried_at=human_time(parse_iso_time(incident.auto_retry), ""),
    )


def _unix(value: str | None) -> int:
    moment = parse_iso_time(value)
    return int(moment.timestamp()) if moment else 0


def _alert(
    decision: SyncDecision,
    ctx: TriageContext,
    state: State,
    storms: dict[str, Storm],
    groups: dict[str, Group],
    rules: IncidentRules,
    outage_teams: dict[str, str],
    due: dict[tuple[str, str], list[TriageContext]],
    dmed: set[tuple[str, str]],
    commented: set[str],
) -> list[Action]:
    sync_id, route, incident = decision.sync.id, decision.route, decision.state.incident
    if incident is not None and incident.severity != CRITICAL:
        route = replace(route, mentions=(), dm_on_escalation=())  # a warning pings no one
    posts: list[Action] = []
    updates: list[Action] = []
    threaded_everywhere = True
    if decision.alert is not None:
        for channel in route.channels:
            thread = _thread_in(incident, channel) if rules.threads else None
            if thread is not None:
                crossing = decision.crossing
                broadcast = rules.broadcast == "all" or (rules.broadcast == "escalation" and crossing)
                kind = CRITICAL_NOW if decision.turned_critical else (ESCALATION if crossing else REPEAT)
                mentions = route.mentions if crossing or decision.turned_critical else ()
                posts.append(Post(sync_id, channel, kind, ctx, mentions, thread, broadcast))
                updates.append(UpdateFirstMessage(sync_id, channel, ctx, route.mentions))
                continue
            threaded_everywhere = False
            joined = _joined_thread(decision, channel, storms, groups, state)
            if joined is not None:
                missed = _missed_by_summary(route.mentions, joined, state)
                posts.append(Post(sync_id, channel, JOIN, ctx, missed, joined, starts_thread=True))
            else:
                posts.append(Post(sync_id, channel, OPEN, ctx, route.mentions, starts_thread=True))
            if decision.escalation is not None and rules.threads:
                updates.append(UpdateFirstMessage(sync_id, channel, ctx, route.mentions))
    escalation: list[Action] = []
    if decision.escalation is not None:
        group = outage_teams.get(sync_id)
        comment_key = group or (incident.issue.identifier if incident and incident.issue else sync_id)
        comment = (
            rules.comment_on_failure
            and decision.alert is not None
            and incident is not None
            and _worth_a_comment(incident, decision.alert.consecutive_failures, first_line(ctx.run.error))
            and comment_key not in commented
        )
        if comment:
            commented.add(comment_key)
        members: tuple[TriageContext, ...] = ()
        if group is not None:
            members = tuple(due.get((group, route.team.lower()), [ctx]))
        escalation.append(
            Escalate(sync_id, route.team, route.priority_value, route.labels, ctx, bool(comment), group, members)
        )
        if decision.crossing:
            about = group or sync_id
            for user in route.dm_on_escalation:
                told = incident is not None and user in incident.dms
                told = told or (group is not None and user in groups[group].dms)
                if not told and (user, about) not in dmed:
                    dmed.add((user, about))
                    escalation.append(DirectMessage(sync_id, user, ctx, route.name, group))
    if decision.crossing and threaded_everywhere:
        # The streak crossed the threshold in a thread that exists: the issue first, so the
        # escalation reply can name it.
        return [*escalation, *posts, *updates]
    return [*posts, *escalation, *updates]


# -- what people said, and what time does ------------------------------------------


def _heard(
    decision: SyncDecision,
    reactions: Mapping[str, tuple[str, ...]],
    bot_user: str | None,
    rules: IncidentRules,
    now: datetime,
) -> SyncDecision:
    """The decision with what people said by reaction taken in: acknowledged, snoozed,
    muted — or resolved, which closes the incident (its next failure opens a new one)."""
    incident = decision.state.incident
    before = decision.before.incident
    if incident is None or before is None or before.first_run_id != incident.first_run_id:
        return decision  # reactions are on the first message of the incident that was told, not a new one
    heard_now: list[Answer] = []
    for answer in talk.answers(reactions, rules.talk.reactions, incident, bot_user):
        incident = talk.heard(incident, answer, now, rules.talk)
        heard_now.append(answer)
    alert = decision.alert
    cause = cause_of(alert) if alert is not None else None
    if talk.snoozed(incident, now) and (decision.turned_critical or (cause is not None and cause != incident.cause)):
        # Snoozed, and now failing for another reason: the snooze is over, and said so.
        incident = replace(incident, snoozed_until=None, snoozed_by=None)
        heard_now.append(Answer(CHANGE, "", ""))
    decision = replace(decision, state=replace(decision.state, incident=incident), heard=tuple(heard_now))
    resolver = next((a.user for a in heard_now if a.kind == talk.RESOLVE), None)
    if resolver is None:
        return decision
    # Closed by a person: what ends it is said like a recovery, in its threads.
    alert = decision.alert
    if alert is not None:
        # It failed again since the person looked: that failure opens the next incident,
        # told as new, and the resolved one ends with what came before it.
        new = Incident(started_at=iso_time(alert.run.time), first_run_id=alert.run.id, cause=cause_of(alert))
        ended = Recovery(alert.run, max(decision.state.consecutive_failures - alert.new_failures, 0), incident)
        reopened = replace(decision.state, incident=new, consecutive_failures=alert.new_failures)
        fresh = replace(alert, consecutive_failures=alert.new_failures)
        return replace(
            decision,
            state=reopened,
            alert=fresh,
            escalation=None,
            opened=True,
            crossing=False,
            resolved=(resolver, ended),
        )
    last_run = decision.latest.run if decision.latest else _no_run()
    ended = Recovery(last_run, decision.state.consecutive_failures, incident)
    closed = replace(decision.state, incident=None, consecutive_failures=0)
    return replace(decision, state=closed, alert=None, escalation=None, resolved=(resolver, ended))


def _no_run() -> Run:
    return Run(id="", status="failed")


def _hushed(actions: list[Action], incident: Incident | None, now: datetime) -> list[Action]:
    """An incident snoozed or muted posts nothing (its Linear issue is still kept up to
    date, and its first message edited, which notifies no one); an acknowledged one gets
    no direct messages."""
    quiet = talk.quiet(incident, now)
    acked = incident is not None and incident.acked_by is not None
    kept: list[Action] = []
    for action in actions:
        if isinstance(action, DirectMessage) and (quiet or acked):
            continue
        if quiet and isinstance(action, Post) and not action.starts_thread:
            continue
        kept.append(action)
    return kept


def _answered(
    decision: SyncDecision,
    facts: Facts,
    state: State,
    decisions: list[SyncDecision],
    rules: IncidentRules,
    now: datetime,
    already: list[Action],
) -> list[Action]:
    """What answering people, and time, take: the first message updated to show who said
    what; a retry triggered; the resolved incident told; a reminder when nobody answered."""
    actions: list[Action] = []
    if decision.muted and decision.resolved is None:
        return actions  # a muted route tells no one: no reminders, no retries said
    if decision.resolved is not None:
        user, ended = decision.resolved
        resolved = replace(decision, recovery=ended)
        closing = rules.close_on_recovery
        for action in _recovery(resolved, facts, state, decisions, replace(rules, recovery=True)):
            if isinstance(action, PostRecovery):
                ctx = replace(action.ctx, resolved_by=user, run_id=f"resolved-{ended.incident.first_run_id}")
                action = replace(action, ctx=ctx)
            elif isinstance(action, CommentRecovery):
                ctx = replace(action.ctx, resolved_by=user, run_id=f"resolved-{ended.incident.first_run_id}")
                action = replace(action, ctx=ctx, comment=rules.comment_on_recovery, close=closing and action.close)
            actions.append(action)
        return actions
    incident = decision.state.incident
    latest = _latest_context(decision, facts, rules.runbooks)
    if incident is None or latest is None or not incident.threads:
        return actions
    route = decision.route
    if incident.severity != CRITICAL:
        route = replace(route, mentions=(), dm_on_escalation=())  # a warning pings no one
    heard_kinds = {a.kind for a in decision.heard}
    mentioned = any(isinstance(a, Post) and a.mentions for a in already)
    posted = any(isinstance(a, Post) for a in already)
    if CHANGE in heard_kinds and not mentioned:
        for thread in incident.threads:
            actions.append(Post(decision.sync.id, thread.channel, CHANGE, latest, route.mentions, thread))
    triggered = False
    for answer in decision.heard:
        if answer.kind == talk.RETRY:
            thread = incident.threads[0]
            again = "not started: one run was requested already" if triggered else ""
            refused = _no_retry(decision, rules, now) or again
            triggered = triggered or not refused
            actions.append(TriggerRun(decision.sync.id, answer.user, thread, latest, refused, answer=answer.key))
    if heard_kinds & {talk.ACK, talk.SNOOZE, talk.MUTE, CHANGE} and not any(
        isinstance(a, UpdateFirstMessage) for a in already
    ):
        actions += [UpdateFirstMessage(decision.sync.id, t.channel, latest, route.mentions) for t in incident.threads]
    critical = incident.severity == CRITICAL
    if not posted and critical and talk.renotify_due(incident, now, rules.talk):
        reminder = replace(latest, renotified=incident.renotified + 1, renotify_max=rules.talk.renotify_max)
        for thread in incident.threads:
            actions.append(Post(decision.sync.id, thread.channel, RENOTIFY, reminder, route.mentions, thread))
        if incident.escalated:
            actions += [DirectMessage(decision.sync.id, user, reminder, route.name) for user in route.dm_on_escalation]
    return actions


def _retry_before_paging(decision: SyncDecision, rules: IncidentRules, now: datetime) -> TriggerRun | None:
    """With `retry.transient`, a new incident whose failure is of a transient class (a rate
    limit, a destination briefly down) triggers one run before anyone is told. Never twice
    for one incident, never beyond `retry.max_per_day`, never while a run is in flight."""
    incident, alert = decision.state.incident, decision.alert
    if not rules.retry.transient or alert is None or incident is None or not decision.opened:
        return None
    if incident.auto_retry is not None or any(r.endswith(" refused") for r in incident.retries):
        return None
    if _no_retry(decision, rules, now):
        return None
    if not classify(alert.run.error).transient:
        return None
    return TriggerRun(decision.sync.id, "", None, _plain_context(decision), automatic=True)


def _plain_context(decision: SyncDecision) -> TriageContext:
    alert = decision.alert or decision.latest
    assert alert is not None
    return build_context(alert, destination="", model="", url="", threshold=decision.route.escalation_threshold)


def _no_retry(decision: SyncDecision, rules: IncidentRules, now: datetime) -> str:
    """Why a retry a person asked for is not started ("" when it is)."""
    incident = decision.state.incident
    if decision.state.pending_run_id is not None or decision.sync.status in PENDING_STATUSES:
        return "not started: a run is in flight, and it is not started twice"
    done = talk.retries_today(incident.retries if incident else (), now)
    if done >= rules.retry.max_per_day:
        return f"not started: {done} runs were triggered today already (retry.max_per_day)"
    return ""


def _latest_context(
    decision: SyncDecision, facts: Facts, runbooks: tuple[tuple[str, str], ...]
) -> TriageContext | None:
    """The incident as its first message shows it: its newest failure, new this tick or not."""
    return _context(replace(decision, alert=decision.alert or decision.escalation or decision.latest), facts, runbooks)


def _worth_a_comment(incident: Incident, streak: int, error: str) -> bool:
    """A failure comment only when the error changed or the streak doubled since the last
    one: ten failures make at most three comments."""
    if incident.commented_streak == 0:
        return True
    return error != (incident.commented_error or "") or streak >= 2 * incident.commented_streak


def _thread_in(incident: Incident | None, channel: str) -> Thread | None:
    if incident is None:
        return None
    return next((t for t in incident.threads if t.channel == channel), None)


def _joined_thread(
    decision: SyncDecision, channel: str, storms: dict[str, Storm], groups: dict[str, Group], state: State
) -> Where | None:
    """Where a new incident's first message goes when it is not a message of its own: its
    channel's storm, or the thread of its cause group in that channel."""
    storm = storms.get(channel)
    if storm is not None and any(m.sync_id == decision.sync.id for m in storm.members):
        return StormThread(channel)
    incident = decision.state.incident
    group = groups.get(incident.cause or "") if incident is not None else None
    if group is None:
        return None
    for member in group.members:
        known = state.syncs.get(member)
        thread = _thread_in(known.incident if known else None, channel) if member != decision.sync.id else None
        if thread is not None:
            return Thread(thread.channel, thread.channel_id, thread.ts)
    return None


def _recovery(
    decision: SyncDecision, facts: Facts, state: State, decisions: list[SyncDecision], rules: IncidentRules
) -> list[Action]:
    recovery = decision.recovery
    assert recovery is not None
    ctx = recovery_context(recovery, decision.sync, facts.url, facts.destination, rules.close_on_recovery)
    actions: list[Action] = []
    if rules.recovery:
        threads: tuple[Thread | OwnThread, ...] = recovery.incident.threads
        if not threads:  # opened this tick: its threads are the ones its first messages start
            threads = tuple(OwnThread(channel) for channel in decision.route.channels)
        actions += [PostRecovery(decision.sync.id, thread, ctx) for thread in threads]
    issue = recovery.incident.issue
    if issue is not None and (rules.comment_on_recovery or rules.close_on_recovery):
        recovering = {d.sync.id for d in decisions if d.recovery is not None}
        shared = any(
            known.issue is not None and known.issue.identifier == issue.identifier
            for sync_id, known in state.syncs.items()
            if sync_id != decision.sync.id and sync_id not in recovering
        )
        close = rules.close_on_recovery and not shared
        actions.append(
            CommentRecovery(decision.sync.id, issue, replace(ctx, closing=close), rules.comment_on_recovery, close)
        )
    return actions


def _missed_by_summary(mentions: tuple[str, ...], joined: Where, state: State) -> tuple[str, ...]:
    """Whom a new member's reply in a storm's thread pings: its people the summary did not,
    when the summary went out before this plan (a summary of this plan pings them itself)."""
    if not isinstance(joined, StormThread) or joined.channel not in state.storms:
        return ()
    pinged = state.storms[joined.channel].mentioned
    return tuple(m for m in mentions if m not in pinged)


def _with_summaries(plans: list[SyncPlan], storms: dict[str, Storm]) -> list[SyncPlan]:
    """A storm's summary before the first reply in its thread; an update of it after the
    last of its members' messages this tick (new members, recoveries)."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for index, sync_plan in enumerate(plans):
        for action in sync_plan.actions:
            if isinstance(action, Post) and isinstance(action.thread, StormThread):
                first.setdefault(action.channel, index)
        sync_id = sync_plan.decision.sync.id
        for channel, storm in storms.items():
            if any(m.sync_id == sync_id for m in storm.members) and sync_plan.actions:
                last[channel] = index
    result = list(plans)
    for channel, index in last.items():
        storm = storms[channel]
        extra: tuple[Action, ...] = ()
        if storm.thread is not None or channel not in first:
            extra = (UpdateStormSummary(channel),)
        result[index] = replace(result[index], actions=(*result[index].actions, *extra))
    for channel, index in first.items():
        if storms[channel].thread is None:
            summary = PostStormSummary(channel, _storm_mentions(plans, channel))
            result[index] = replace(result[index], actions=(summary, *result[index].actions))
    return result


def _storm_mentions(plans: list[SyncPlan], channel: str) -> tuple[str, ...]:
    """Whom a storm's summary pings, once for all its members: the people of their routes in
    that channel (a warning's route pings no one)."""
    people: dict[str, None] = {}
    for sync_plan in plans:
        decision = sync_plan.decision
        incident = decision.state.incident
        joined = any(isinstance(a, Post) and a.channel == channel and isinstance(a.thread, StormThread)
                     for a in sync_plan.actions)  # fmt: skip
        if joined and incident is not None and incident.severity == CRITICAL:
            people.update(dict.fromkeys(decision.route.mentions))
    return tuple(people)


T = TypeVar("T")


def interleaved(items: Iterable[T], key: Callable[[T], str]) -> list[T]:
    """`items` with their groups (by `key`) taking turns, each group in its own order:
    a, a, a, b, b → a, b, a, b, a."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    queues = list(groups.values())
    return [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]
