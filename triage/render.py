"""Jinja rendering of the Slack message and the Linear issue.

Templates hold the words; this module builds the plain values they show and
the escaping filters they apply: `slack` for Slack mrkdwn, `markdown` for
Linear. A template in `templates/` beside config.yaml overrides the shipped
one of the same name (package data in `triage/templates/`). A template error is a ConfigError naming the file and line.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import jinja2.bccache
import jinja2.sandbox

from triage.causes import HIGHTOUCH_ERROR_CODES_URL, classify, runbook_url
from triage.config import Config
from triage.decide import Alert, Recovery
from triage.digest import DigestContext, OpenIncident, digest_for
from triage.errors import ConfigError
from triage.history import ClosedIncident
from triage.models import Outcome, Run, Sync, outcome
from triage.signals import Finding, RejectedRowsFinding, RemovalsFinding, StuckFinding, VolumeDropFinding
from triage.signature import first_line
from triage.times import duration_text, human_time, parse_iso_time, slack_time

log = logging.getLogger(__name__)

SHIPPED_TEMPLATES = Path(__file__).resolve().parent / "templates"  # package data
SLACK_TEMPLATE = "slack_message.md.j2"
LINEAR_TITLE_TEMPLATE = "linear_title.txt.j2"
LINEAR_DESCRIPTION_TEMPLATE = "linear_description.md.j2"
SLACK_RECOVERY_TEMPLATE = "slack_recovery.md.j2"
LINEAR_FAILURE_COMMENT_TEMPLATE = "linear_comment_failure.md.j2"
LINEAR_RECOVERY_COMMENT_TEMPLATE = "linear_comment_recovery.md.j2"
SLACK_HEALTH_TEMPLATE = "slack_health.md.j2"
SLACK_STORM_TEMPLATE = "slack_storm.md.j2"
LINEAR_OUTAGE_TITLE_TEMPLATE = "linear_outage_title.txt.j2"
LINEAR_OUTAGE_DESCRIPTION_TEMPLATE = "linear_outage_description.md.j2"
SLACK_REPLY_TEMPLATE = "slack_reply.md.j2"
SLACK_DM_TEMPLATE = "slack_dm.md.j2"
SLACK_WATCHDOG_TEMPLATE = "slack_watchdog.md.j2"
SLACK_DIGEST_TEMPLATE = "slack_digest.md.j2"

SLACK_SECTION_LIMIT = 3000  # characters of one section block's text
SLACK_MAX_BLOCKS = 50
SLACK_TEXT_LIMIT = 40000


# -- escaping filters ---------------------------------------------------------


# Slack mrkdwn has no escape for *bold*, _italic_, ~strike~ and `code`; its delimiters only
# count at a word boundary, so a zero-width space before one that stands at a boundary keeps
# it literal. Inside a word (hubspot_deals_v2, HIGHTOUCH_API_KEY) Slack formats nothing, so
# the text stays as typed: copyable and searchable.
_SLACK_FORMATTING = re.compile(r"(?:(?<![0-9A-Za-z])[*_~`])|(?:[*_~`](?![0-9A-Za-z]))")


def _slack_entities(value: Any) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_escape(value: Any) -> str:
    """A value shown literally in Slack mrkdwn: control characters escaped (so `<!channel>`
    in a name cannot ping anyone) and formatting characters neutralised."""
    return _SLACK_FORMATTING.sub("\u200b\\g<0>", _slack_entities(value))


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def markdown_escape(value: Any) -> str:
    """Escape Markdown so a value shows as typed, on one line (safe in a table cell)."""
    text = " ".join(str(value).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def code_block(value: Any, lang: str = "text") -> str:
    """A fenced Markdown code block whose fence no run of backticks in the text can close."""
    text = str(value)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


def cut(value: Any, limit: int) -> str:
    """At most `limit` characters, with a marker saying how much was cut."""
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit].rstrip()}… [cut: {len(text) - limit:,} more characters]"


def slack_code(value: Any) -> str:
    """Text for inside a ``` block in Slack: escaped, and unable to close the block early
    (Slack applies no formatting inside one, so the rest is left as it is). A backtick at
    either end would merge with the fence, so it is set apart by a zero-width space."""
    text = _slack_entities(value).replace("```", "`\u200b`\u200b`")
    if text.endswith("`"):
        text += "\u200b"
    if text.startswith("`"):
        text = "\u200b" + text
    return text


def slack_inline(value: Any) -> str:
    """Text for inside `inline code` in Slack: escaped; a backtick would end the code early,
    so it becomes a look-alike (U+02CB)."""
    return _slack_entities(value).replace("`", "\u02cb")


# -- what templates see -------------------------------------------------------


@dataclass(frozen=True)
class RunView:
    id: str
    status: str
    failed: bool
    symbol: str  # ✗ failed, ✓ succeeded, – anything else
    created_at: str
    finished_at: str
    error: str
    rejected: str
    added: str
    changed: str
    removed: str


@dataclass(frozen=True)
class OperationView:
    """Rejected rows of one operation (added, changed, removed), for people."""

    operation: str
    rejected: str
    planned: str
    share: str  # "30 %"


@dataclass(frozen=True)
class SignalView:
    """What a signal found, as numbers ready to show; templates word it by `signal`."""

    signal: str  # rejected_rows | removals | volume_drop | stuck | silent
    share: str = ""  # rejected rows: of planned; removals: of the previous size; volume: of the median
    rejected: str = ""
    planned: str = ""
    operations: tuple[OperationView, ...] = ()
    removing: str = ""  # rows the run removes (or plans to)
    previous_size: str = ""  # the previous successful run's querySize
    query_size: str = ""
    median: str = ""
    runs: int = 0  # how many runs the median is of
    minutes: str = ""  # stuck: running for; silent: no run for
    progress: str = ""  # stuck: the completion ratio, "54 %"
    schedule: str = ""  # silent: "every 1 hour"
    last_run: str = ""  # silent: when it last ran


@dataclass(frozen=True)
class TriageContext:
    sync_id: str
    sync_name: str
    sync_url: str
    destination: str
    model: str
    run: RunView
    history: tuple[RunView, ...]  # the runs before `run`, oldest first
    history_symbols: str
    previous_all_failed: bool
    new_failures: int
    consecutive_failures: int
    escalation_threshold: int
    escalates: bool = True  # False: the sync's route never opens a Linear issue
    incident_since: str = ""  # when the incident's first failed run happened ("" unknown)
    linear_issue: str = ""  # the sync's open Linear issue (DATA-42), once known
    linear_url: str = ""
    slack_thread_url: str = ""  # the incident's Slack thread, for the Linear issue to link back
    incident_since_at: int = 0  # the same as a Unix time, for Slack's <!date^…> (0 unknown)
    error_changed: bool = False  # the error differs from the one people saw last
    escalated: bool = False  # this message announces the escalation
    kind: str = "open"  # open | repeat | escalation | join | renotify | change | retry: which message this is
    error_line: str = ""  # the error's first line, as Hightouch wrote it
    # What people said by reaction, shown on the first message (Slack user ids; 0: no time).
    acked_by: str = ""
    acked_at: int = 0
    snoozed_by: str = ""
    snoozed_until: int = 0
    muted_by: str = ""
    renotified: int = 0  # re-notifications so far (this one included)
    renotify_max: int = 0
    by: str = ""  # who asked for what this message answers (a retry)
    retry_run: str = ""  # the run a retry started ("" when it did not)
    retry_note: str = ""  # why a retry was not started
    retried_at: str = ""  # retried automatically before anyone was told (a transient failure), at
    severity: str = "critical"  # critical | warning
    signal: SignalView | None = None  # the trouble, when it is not a failed run
    error_class: str = ""  # the failure's known cause: auth, rate_limit, … ("" for none)
    what_to_do: str = ""  # one line for the cause
    runbook_url: str = ""  # the team's runbook, else the documentation of the error


@dataclass(frozen=True)
class SyncLink:
    name: str
    url: str


@dataclass(frozen=True)
class StormContext:
    """One summary for many syncs that started failing together in one channel: every sync
    and every cause counted, the largest listed with a real error line of theirs."""

    count: int  # every member
    by_error: tuple[tuple[str, tuple[SyncLink, ...]], ...]  # a real error line → syncs, largest cause first
    by_destination: tuple[tuple[str, tuple[SyncLink, ...]], ...]
    failing: int = 0  # members still failing
    recovered: int = 0  # members that recovered since
    issues: tuple[SyncLink, ...] = ()  # the Linear issues of its syncs (name: the identifier)


@dataclass(frozen=True)
class OutageContext:
    """One Linear issue for many syncs that became due for escalation together, by one cause."""

    cause: str  # the error's first line (ids and numbers set aside), or the destination
    by: str  # "error" or "destination"
    syncs: tuple[TriageContext, ...]  # each sync as its own issue would show it
    count: int  # how many syncs
    other_teams: tuple[SyncLink, ...] = ()  # the same cause's issues in other teams (name: identifier)


@dataclass(frozen=True)
class HealthContext:
    """What the tool says of itself: a tick failed, or ticks work again."""

    failed: bool
    error: str  # the failure, in one line (secrets already redacted)
    run_url: str  # the workflow run, when known ("" otherwise)
    since: str  # when the failing began
    sent: int = 0  # ticks work again: the messages this tick sent (held alerts among them)


@dataclass(frozen=True)
class RecoveryContext:
    """What the recovery reply, the resolved first message and the Linear comment show."""

    sync_id: str
    sync_name: str
    sync_url: str
    run_id: str
    failed_runs: int
    since: str  # when the incident started ("" unknown)
    duration: str  # how long it lasted, for people: "2 h 15 min" ("" unknown)
    linear_issue: str = ""
    linear_url: str = ""
    destination: str = ""  # what failed, kept on the resolved first message
    error: str = ""  # the last error's first line
    closing: bool = False  # the Linear issue is closed with this recovery
    since_slack: str = ""  # `since` for Slack: each reader sees it in their own time zone
    resolved_by: str = ""  # closed by a person (a reaction), not by a successful run


@dataclass(frozen=True)
class WatchdogContext:
    """What Slack posts by itself when ticks stop, and what the tool says when they come back."""

    back: bool  # ticks came back after a gap (else: the message Slack holds for a gap)
    since: str  # the last tick that ran (Slack date markup)
    until: str = ""  # when ticks came back
    checked: int = 0  # syncs checked by the tick that came back


@dataclass(frozen=True)
class DirectContext:
    """A direct message to one person: which incident, why they are told, where to look."""

    sync_name: str
    sync_url: str
    consecutive_failures: int
    route: str
    thread_url: str  # the incident's Slack thread ("" unknown)
    linear_issue: str
    linear_url: str
    others: tuple[str, ...] = ()  # the other syncs of the same outage this message stands for


def sync_url(config: Config, app_url: str, sync_id: str) -> str:
    return config.hightouch.sync_url.format(
        app_url=app_url.rstrip("/"), workspace_slug=config.hightouch.workspace_slug, sync_id=sync_id
    )


def build_context(
    alert: Alert,
    *,
    destination: str,
    model: str,
    url: str,
    threshold: int,
    escalates: bool = True,
    runbooks: Mapping[str, str] | None = None,
) -> TriageContext:
    history = tuple(_view(r, failed) for r, failed in zip(alert.previous_runs, alert.previous_failed, strict=True))
    ctx = TriageContext(
        sync_id=alert.sync.id,
        sync_name=alert.sync.name,
        sync_url=url,
        destination=destination,
        model=model,
        run=_view(alert.run, alert.finding is None),  # a signal's run did not fail
        history=history,
        history_symbols=" ".join(v.symbol for v in history) or "no earlier runs",
        previous_all_failed=alert.previous_all_failed,
        new_failures=alert.new_failures,
        consecutive_failures=alert.consecutive_failures,
        escalation_threshold=threshold,
        escalates=escalates,
        error_line=first_line(alert.run.error),
        severity=alert.severity,
        signal=signal_view(alert.finding) if alert.finding is not None else None,
    )
    if alert.finding is None and alert.run.error:
        # A failure's known cause, what to do about it and where to read more.
        cause = classify(alert.run.error)
        link = runbook_url(cause, runbooks or {}, HIGHTOUCH_ERROR_CODES_URL)
        ctx = replace(ctx, error_class=cause.error_class, what_to_do=cause.what_to_do, runbook_url=link)
    return ctx


def _percent(share: float) -> str:
    return f"{share * 100:.0f} %" if share >= 0.01 else f"{share * 100:.1f} %"


def signal_view(finding: Finding) -> SignalView:
    """A finding's numbers, for people."""
    if isinstance(finding, RejectedRowsFinding):
        operations = tuple(
            OperationView(o.operation, count_text(o.rejected), count_text(o.planned), _percent(o.share or 0.0))
            for o in finding.operations
        )
        return SignalView(
            finding.signal,
            share=_percent(finding.share),
            rejected=count_text(finding.rejected),
            planned=count_text(finding.planned),
            operations=operations,
        )
    if isinstance(finding, RemovalsFinding):
        return SignalView(
            finding.signal,
            share=_percent(finding.share),
            removing=count_text(finding.removing),
            previous_size=count_text(finding.previous_query_size),
        )
    if isinstance(finding, VolumeDropFinding):
        return SignalView(
            finding.signal,
            share=_percent(finding.share),
            query_size=count_text(finding.query_size),
            median=count_text(int(finding.median)),
            runs=finding.runs,
        )
    if isinstance(finding, StuckFinding):
        return SignalView(
            finding.signal, minutes=duration_text(finding.minutes * 60), progress=_percent(finding.completion_ratio)
        )
    return SignalView(
        finding.signal,
        minutes=duration_text(finding.silent_minutes * 60),
        schedule=finding.schedule.description,
        last_run=human_time(finding.last_run_at),
    )


def recovery_context(recovery: Recovery, sync: Sync, url: str, destination: str, closing: bool) -> RecoveryContext:
    """The words of an incident's end: how long it lasted, and what had failed."""
    incident = recovery.incident
    started, ended = parse_iso_time(incident.started_at), recovery.run.time
    return RecoveryContext(
        sync_id=sync.id,
        sync_name=sync.name,
        sync_url=url,
        run_id=recovery.run.id,
        failed_runs=recovery.failed_runs,
        since=human_time(started, ""),
        duration=duration_text((ended - started).total_seconds()) if started and ended else "",
        linear_issue=incident.issue.identifier if incident.issue else "",
        linear_url=(incident.issue.url or "") if incident.issue else "",
        destination=destination,
        error=incident.error or "",
        closing=closing,
        since_slack=slack_time(started),
    )


def _view(run: Run, failed: bool) -> RunView:
    succeeded = outcome(run) is Outcome.SUCCEEDED
    return RunView(
        id=run.id,
        status=run.status,
        failed=failed,
        symbol="✗" if failed else ("✓" if succeeded else "–"),
        created_at=_when(run.created_at),
        finished_at=_when(run.finished_at),
        error=run.error or "(no error message)",
        rejected=count_text(run.failed.total),
        added=count_text(run.successful.added),
        changed=count_text(run.successful.changed),
        removed=count_text(run.successful.removed),
    )


def count_text(value: int | None) -> str:
    """A row count for people: 1,200, or n/a when Hightouch sent none."""
    return "n/a" if value is None else f"{value:,}"


def _when(value: datetime | None) -> str:
    return human_time(value)


# -- rendering ----------------------------------------------------------------


@dataclass(frozen=True)
class SlackMessage:
    text: str  # notification and fallback text
    blocks: list[dict[str, Any]]
    mrkdwn: str  # the whole rendered message, for dry runs and logs


@dataclass(frozen=True)
class LinearIssueText:
    title: str
    description: str


# What a template is given.
Context = (
    TriageContext
    | RecoveryContext
    | HealthContext
    | StormContext
    | OutageContext
    | DirectContext
    | WatchdogContext
    | DigestContext
)


class CompiledTemplates(jinja2.BytecodeCache):
    """Templates compiled once per process, by name and words: the workspaces matrix, the demo
    and `validate` build several renderers over the same files, and compiling is most of a
    renderer's cost. An edited template has other words, so it is compiled again."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def get_bucket(
        self, environment: jinja2.Environment, name: str, filename: str | None, source: str
    ) -> jinja2.bccache.Bucket:
        key = hashlib.sha256(f"{name}\0{source}".encode()).hexdigest()
        bucket = jinja2.bccache.Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


# Every renderer's options are the same, so their compiled templates are too.
COMPILED = CompiledTemplates()


class Renderer:
    def __init__(self, config: Config) -> None:
        user_dir = config.base_dir / "templates"
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(user_dir))]
        if user_dir.resolve() != SHIPPED_TEMPLATES:
            loaders.append(jinja2.FileSystemLoader(str(SHIPPED_TEMPLATES)))
        # Templates come from pull requests: sandboxed, they cannot reach os.environ (the
        # secrets) through an object's attributes, nor change the values they are given.
        self.env = jinja2.sandbox.ImmutableSandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # escaping is explicit, per destination: see the filters
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            bytecode_cache=COMPILED,
        )
        self.env.filters.update(
            slack=slack_escape,
            markdown=markdown_escape,
            code_block=code_block,
            cut=cut,
            slack_code=slack_code,
            slack_inline=slack_inline,
        )

    def slack_message(
        self, ctx: TriageContext, mentions: tuple[str, ...] = (), *, strict: bool = False
    ) -> SlackMessage:
        """The alert as the template words it; if the template fails on this alert's data
        (it passed `validate` on the sample), the built-in plain message instead, so one
        odd alert cannot stop the tick. `strict` raises instead (for `validate`)."""
        people = mention_markup(mentions)
        body = self._or_plain(
            SLACK_TEMPLATE,
            ctx,
            strict,
            f"sync {ctx.sync_id} gets the built-in plain message",
            lambda: f"{people} {plain_slack_message(ctx)}".strip(),
            mentions=people,
        )
        return _slack(body)

    def slack_reply(self, ctx: TriageContext, mentions: tuple[str, ...] = (), *, strict: bool = False) -> SlackMessage:
        """Another failed run of a told incident, in its thread: one line (its escalation says
        so in the push text)."""
        people = mention_markup(mentions)
        plain = f"{people} Hightouch sync {slack_escape(ctx.sync_name)}: run {ctx.run.id} failed".strip()
        what = f"sync {ctx.sync_id} gets the built-in plain reply"
        return _slack(self._or_plain(SLACK_REPLY_TEMPLATE, ctx, strict, what, lambda: plain, mentions=people))

    def slack_dm(self, ctx: DirectContext, *, strict: bool = False) -> SlackMessage:
        """A person told directly of an escalation, once per incident or outage."""
        plain = f"Hightouch sync {slack_escape(ctx.sync_name)} escalated: {ctx.sync_url}"
        what = "the direct message is the built-in one"
        return _slack(self._or_plain(SLACK_DM_TEMPLATE, ctx, strict, what, lambda: plain))

    def slack_watchdog(self, ctx: WatchdogContext, *, strict: bool = False) -> SlackMessage:
        """The message Slack posts if ticks stop, or the note that they came back."""
        plain = "hightouch-triage is running again" if ctx.back else f"hightouch-triage has not run since {ctx.since}"
        what = "the watchdog message is the built-in one"
        return _slack(self._or_plain(SLACK_WATCHDOG_TEMPLATE, ctx, strict, what, lambda: plain))

    def slack_digest(self, ctx: DigestContext, *, strict: bool = False) -> SlackMessage:
        """The weekly (or daily) digest of one channel's syncs."""
        plain = f":bar_chart: hightouch-triage digest: {ctx.opened} incidents opened, {ctx.closed} closed"
        what = "the digest is the built-in one"
        return _slack(self._or_plain(SLACK_DIGEST_TEMPLATE, ctx, strict, what, lambda: plain))

    def linear_issue(self, ctx: TriageContext, *, strict: bool = False) -> LinearIssueText:
        """The issue as the templates word it, or the built-in plain text (see slack_message)."""
        try:
            title = " ".join(self._render(LINEAR_TITLE_TEMPLATE, ctx).split())
            description = self._render(LINEAR_DESCRIPTION_TEMPLATE, ctx).strip()
        except ConfigError as exc:
            if strict:
                raise
            log.error("%s; sync %s gets the built-in plain issue text", exc, ctx.sync_id)
            title, description = plain_linear_issue(ctx)
        return LinearIssueText(title=cut(title, 250), description=description)

    def linear_outage(self, ctx: OutageContext, *, strict: bool = False) -> LinearIssueText:
        """One issue for an outage: every sync named (a whole word each), with its destination,
        model, run history and error, so each sync's own search finds this issue."""
        plain_title = f"Hightouch outage: {ctx.count} syncs failing repeatedly"
        names = ", ".join(markdown_escape(s.sync_name) for s in ctx.syncs)
        what = "the outage issue is the built-in one"
        title = self._or_plain(LINEAR_OUTAGE_TITLE_TEMPLATE, ctx, strict, what, lambda: plain_title)
        description = self._or_plain(
            LINEAR_OUTAGE_DESCRIPTION_TEMPLATE, ctx, strict, what, lambda: f"Syncs failing repeatedly: {names}"
        )
        return LinearIssueText(title=cut(" ".join(title.split()), 250), description=description)

    def slack_recovery(self, ctx: RecoveryContext, *, strict: bool = False) -> SlackMessage:
        """The recovery reply, also the text the incident's first message is updated to."""
        plain = f":large_green_circle: Hightouch sync {slack_escape(ctx.sync_name)} recovered (run {ctx.run_id})"
        what = f"sync {ctx.sync_id} gets the built-in plain recovery"
        return _slack(self._or_plain(SLACK_RECOVERY_TEMPLATE, ctx, strict, what, lambda: plain))

    def slack_storm(self, ctx: StormContext, mentions: tuple[str, ...] = (), *, strict: bool = False) -> SlackMessage:
        """The summary a storm's alerts reply to; it pings the members' people, once for all."""
        people = mention_markup(mentions)
        plain = (
            f"{people} :rotating_light: {ctx.count} Hightouch syncs started failing: their alerts are in this thread"
        )
        what = "the storm summary is the built-in one"
        return _slack(self._or_plain(SLACK_STORM_TEMPLATE, ctx, strict, what, lambda: plain.strip(), mentions=people))

    def slack_health(self, ctx: HealthContext, *, strict: bool = False) -> SlackMessage:
        """What the tool says of itself: it cannot run, or it works again."""
        plain = f"hightouch-triage {'cannot run' if ctx.failed else 'works again'}: {slack_escape(ctx.error)}"
        what = "the health message is the built-in one"
        return _slack(self._or_plain(SLACK_HEALTH_TEMPLATE, ctx, strict, what, lambda: plain))

    def linear_comment(self, ctx: TriageContext | RecoveryContext, *, strict: bool = False) -> str:
        """A comment on the sync's open issue: it failed again, or it recovered."""
        name = LINEAR_RECOVERY_COMMENT_TEMPLATE if isinstance(ctx, RecoveryContext) else LINEAR_FAILURE_COMMENT_TEMPLATE
        plain = f"Hightouch sync {markdown_escape(ctx.sync_name)}: see {ctx.sync_url}"
        return self._or_plain(name, ctx, strict, f"sync {ctx.sync_id} gets a built-in plain comment", lambda: plain)

    def _or_plain(
        self, name: str, ctx: Context, strict: bool, what: str, plain: Callable[[], str], **extra: str
    ) -> str:
        """A template rendered; if it fails on real data, the built-in plain words (logged as an
        error: `what` happened instead). `strict` (for `validate`) raises instead."""
        try:
            return self._render(name, ctx, **extra).strip()
        except ConfigError as exc:
            if strict:
                raise
            log.error("%s; %s", exc, what)
            return plain()

    def check(self) -> None:
        """Render every template once with sample data: a broken template fails here, not mid-tick."""
        ctx = sample_context()
        self.slack_message(ctx, ("S0123ABCD", "U024BE7LH"), strict=True)
        for kind in ("repeat", "escalation", "renotify", "change", "retry"):
            for changed in (False, True):
                self.slack_reply(replace(ctx, kind=kind, error_changed=changed), ("S0123ABCD",), strict=True)
        for view in sample_signals():
            for severity in ("warning", "critical"):
                signalled = replace(ctx, signal=view, severity=severity)
                self.slack_message(signalled, strict=True)
                self.linear_issue(signalled, strict=True)
                for kind in ("repeat", "critical"):
                    self.slack_reply(replace(signalled, kind=kind), strict=True)
        caused = replace(ctx, error_class="auth", what_to_do="Reconnect the destination.", runbook_url="https://x")
        self.slack_message(caused, strict=True)
        self.linear_issue(caused, strict=True)
        answered = replace(ctx, acked_by="U024BE7LH", acked_at=1700000000, snoozed_by="U1", snoozed_until=1700003600)
        self.slack_message(replace(answered, muted_by="U2", retried_at="2026-11-23 09:05 UTC"), strict=True)
        self.slack_reply(replace(ctx, kind="retry", by="U024BE7LH", retry_run="98766"), strict=True)
        self.slack_reply(replace(ctx, kind="retry", by="U024BE7LH", retry_note="a run is in flight"), strict=True)
        self._check_digest()
        for back in (False, True):
            self.slack_watchdog(
                WatchdogContext(back, "<!date^1700000000^{time}|09:10 UTC>", "16:05 UTC", 3), strict=True
            )
        self.slack_message(replace(ctx, kind="join", linear_issue="", incident_since_at=0), strict=True)
        self.slack_dm(
            DirectContext(
                "salesforce-contacts", ctx.sync_url, 3, "crm", ctx.slack_thread_url, "DATA-42", ctx.linear_url
            ),
            strict=True,
        )
        self.linear_issue(ctx, strict=True)
        self.linear_comment(ctx, strict=True)
        other = replace(ctx, sync_id="1235", sync_name="hubspot-deals", destination="HubSpot")
        self.linear_outage(OutageContext("Warehouse unreachable", "error", (ctx, other), 2), strict=True)
        crm = SyncLink("CRM-7", "https://linear.app/acme/issue/CRM-7")
        self.linear_outage(OutageContext("Warehouse unreachable", "cause", (ctx,), 1, (crm,)), strict=True)
        recovery = sample_recovery()
        self.slack_recovery(recovery, strict=True)
        for closing in (False, True):
            self.linear_comment(replace(recovery, closing=closing), strict=True)
        self.slack_recovery(replace(recovery, resolved_by="U024BE7LH"), strict=True)
        link = SyncLink("salesforce-contacts", "https://app.hightouch.com/my-workspace/syncs/1234")
        self.slack_storm(
            StormContext(12, (("Warehouse unreachable", (link,)),), (("Salesforce", (link,)),), 10, 2, (link,)),
            strict=True,
        )
        for failed in (True, False):
            sample = HealthContext(
                failed, "Hightouch GET /syncs: HTTP 401", "https://github.com/a/b/actions/runs/1", "x"
            )
            self.slack_health(sample, strict=True)

    def _check_digest(self) -> None:
        """The digest on a quiet period and on a busy one: every branch of its template."""
        start, end = datetime(2026, 11, 16, 9, tzinfo=UTC), datetime(2026, 11, 23, 9, tzinfo=UTC)
        self.slack_digest(digest_for("#data-alerts", [], [], (start, end), end), strict=True)
        closed = [
            ClosedIncident(
                "1234", "salesforce-contacts", ("#data-alerts",), "2026-11-17T08:00:00Z", "2026-11-17T10:00:00Z",
                "recovered", "Salesforce rejected 12 rows", "critical", acked_at="2026-11-17T08:20:00Z",
            ),
            ClosedIncident(
                "1235", "hubspot-deals", ("#data-alerts",), "2026-11-18T08:00:00Z", "2026-11-18T08:30:00Z",
                "healed", "HubSpot API 503", "critical",
            ),
        ]  # fmt: skip
        still = [
            OpenIncident("1236", "braze-events", ("#data-alerts",), "2026-11-22T08:00:00Z", muted=True),
            OpenIncident("1237", "iterable-users", ("#data-alerts",), "2026-11-22T09:00:00Z",
                         snoozed_until="2026-11-23T12:00:00Z"),
        ]  # fmt: skip
        self.slack_digest(digest_for("#data-alerts", closed, still, (start, end), end), strict=True)

    def _render(self, name: str, ctx: Context, **extra: str) -> str:
        try:
            template = self.env.get_template(name)
            return template.render(ctx=ctx, **vars(ctx), **extra)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"{exc.filename or name}:{exc.lineno}: template error: {exc.message}") from None
        except jinja2.TemplateNotFound:
            raise ConfigError(f"template {name} not found in templates/") from None
        except jinja2.TemplateError as exc:
            raise ConfigError(f"template {name}: {exc}") from None


def mention_markup(ids: tuple[str, ...]) -> str:
    """Slack mentions of user groups (S…) and users (U…/W…). The ids come from config.yaml,
    checked there: the one value in a message that is not escaped."""
    return " ".join(f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in ids)


def _slack(body: str) -> SlackMessage:
    """A rendered Slack text as Slack takes it: blocks, and its first line as the notification."""
    headline = body.splitlines()[0] if body else "hightouch-triage"
    return SlackMessage(text=cut_markup(headline, 300), blocks=slack_blocks(body), mrkdwn=cut(body, SLACK_TEXT_LIMIT))


# The last resort when a template fails on real data. Words live in templates; these few
# stand here only because no template can be trusted at that point.


def plain_slack_message(ctx: TriageContext) -> str:
    return (
        f":red_circle: *Hightouch sync <{ctx.sync_url}|{slack_escape(cut(ctx.sync_name, 150))}> failed* "
        f"(run {slack_escape(ctx.run.id)}, {slack_escape(ctx.run.status)}; "
        f"{ctx.consecutive_failures} failed in a row)\n"
        f"```{slack_code(cut(ctx.run.error, 1500))}```\n"
        "_The message template failed on this alert: see the tick's log._"
    )


def plain_linear_issue(ctx: TriageContext) -> tuple[str, str]:
    title = f"Hightouch sync {ctx.sync_name} failing repeatedly"
    description = (
        f"Hightouch sync [{markdown_escape(ctx.sync_name)}]({ctx.sync_url}) (id {ctx.sync_id}) has failed "
        f"{ctx.consecutive_failures} runs in a row. Last failed run: {ctx.run.id}.\n\n"
        f"{code_block(cut(ctx.run.error, 20000))}\n\n"
        "The issue templates failed on this sync's data: see the tick's log."
    )
    return title, description


FENCE = "```"


def slack_blocks(mrkdwn: str) -> list[dict[str, Any]]:
    """Section blocks of at most 3,000 characters each, split at blank lines outside code
    blocks: a multi-paragraph error stays one code block, and a block split for length
    is closed and reopened at the split."""
    blocks: list[dict[str, Any]] = []
    for paragraph in _paragraphs(mrkdwn):
        for piece in _pieces(paragraph, SLACK_SECTION_LIMIT):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": piece}})
    return blocks[:SLACK_MAX_BLOCKS]


def _paragraphs(text: str) -> list[str]:
    paragraphs: list[str] = []
    lines: list[str] = []
    in_code = False
    for line in text.split("\n"):
        if not line.strip() and not in_code:
            if lines:
                paragraphs.append("\n".join(lines))
            lines = []
            continue
        lines.append(line)
        in_code ^= line.count(FENCE) % 2 == 1
    if lines:
        paragraphs.append("\n".join(lines))
    return [p.strip() for p in paragraphs if p.strip()]


def _pieces(text: str, limit: int) -> list[str]:
    pieces: list[str] = []
    while len(text) > limit:
        piece, text = _split_at(text, limit - len(FENCE))
        if piece.count(FENCE) % 2 == 1:  # cut inside a code block: close it here, reopen it next
            piece, text = piece + FENCE, FENCE + text
        pieces.append(piece)
    if text:
        pieces.append(text)
    return pieces


def _split_at(text: str, limit: int) -> tuple[str, str]:
    if len(text) <= limit:
        return text, ""
    cut_at = text.rfind("\n", 0, limit)
    if cut_at <= 0:
        cut_at = _safe_cut(text, limit)
    return text[:cut_at], text[cut_at:].lstrip("\n")


def _safe_cut(text: str, limit: int) -> int:
    """A cut at or before `limit` that splits neither an &amp; entity nor a <url|label>."""
    cut_at = limit
    amp = text.rfind("&", max(0, cut_at - 5), cut_at)
    if amp != -1 and ";" not in text[amp:cut_at]:
        cut_at = amp
    opening = text.rfind("<", 0, cut_at)
    if opening > text.rfind(">", 0, cut_at):
        cut_at = opening
    return cut_at if cut_at > 0 else limit


def cut_markup(text: str, limit: int) -> str:
    """`cut`, for mrkdwn: never inside a link or an entity, with the same marker."""
    if len(text) <= limit:
        return text
    cut_at = _safe_cut(text, limit)
    return f"{text[:cut_at].rstrip()}… [cut: {len(text) - cut_at:,} more characters]"


def sample_context() -> TriageContext:
    run = RunView(
        id="98765",
        status="failed",
        failed=True,
        symbol="✗",
        created_at="2026-11-23 09:00 UTC",
        finished_at="2026-11-23 09:02 UTC",
        error="Salesforce rejected 12 rows: <INVALID_EMAIL_ADDRESS> & more",
        rejected="12",
        added="1,200",
        changed="34",
        removed="0",
    )
    return TriageContext(
        sync_id="1234",
        sync_name="salesforce-contacts",
        sync_url="https://app.hightouch.com/my-workspace/syncs/1234",
        destination="Salesforce",
        model="Active contacts",
        run=run,
        history=(run, run),
        history_symbols="✗ ✗",
        previous_all_failed=True,
        new_failures=1,
        consecutive_failures=3,
        escalation_threshold=3,
        incident_since="2026-11-23 08:30 UTC",
        linear_issue="DATA-42",
        linear_url="https://linear.app/acme/issue/DATA-42",
        slack_thread_url="https://acme.slack.com/archives/C024BE91L/p1700000000000100",
    )


def sample_signals() -> tuple[SignalView, ...]:
    """One view of each signal, for `validate` to render every branch."""
    return (
        SignalView(
            "rejected_rows",
            share="30 %",
            rejected="3,000",
            planned="10,000",
            operations=(OperationView("added", "3,000", "9,000", "33 %"),),
        ),
        SignalView("removals", share="90 %", removing="1,800,000", previous_size="2,000,000"),
        SignalView("volume_drop", share="20 %", query_size="400,000", median="2,000,000", runs=10),
        SignalView("stuck", minutes="4 h", progress="54 %"),
        SignalView("silent", minutes="5 h", schedule="every 1 hour", last_run="2026-11-23 04:00 UTC"),
    )


def sample_recovery() -> RecoveryContext:
    return RecoveryContext(
        sync_id="1234",
        sync_name="salesforce-contacts",
        sync_url="https://app.hightouch.com/my-workspace/syncs/1234",
        run_id="98770",
        failed_runs=4,
        since="2026-11-23 08:30 UTC",
        duration="2 h 15 min",
        linear_issue="DATA-42",
        linear_url="https://linear.app/acme/issue/DATA-42",
    )
