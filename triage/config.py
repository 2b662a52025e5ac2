"""Load and validate config.yaml and the environment into frozen dataclasses.

Every default lives here. Unknown keys and wrong types are errors that name
the file, the line and the dotted key, so a bad pull request fails review
instead of a tick.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from triage.causes import ERROR_CLASSES, runbook_key_problem
from triage.digest import parse_digest_schedule
from triage.errors import ConfigError, UsageError
from triage.models import KNOWN_STATUSES, PENDING_STATUSES
from triage.schedule import CronError, fastest_interval_minutes
from triage.signals import SignalRules, SignalRulesError, parse_signal_rules
from triage.slack_ids import CONVERSATION_ID, MENTION_ID, USER_ID

log = logging.getLogger(__name__)

PRIORITIES = {"urgent": 1, "high": 2, "medium": 3, "low": 4}
# Statuses a finished run can have: what `failure_statuses` may name.
SETTLED_STATUSES = KNOWN_STATUSES - PENDING_STATUSES

DEFAULT_HIGHTOUCH_API_URL = "https://api.hightouch.com/api/v1"
DEFAULT_HIGHTOUCH_APP_URL = "https://app.hightouch.com"
DEFAULT_SLACK_API_URL = "https://slack.com/api"
DEFAULT_LINEAR_API_URL = "https://api.linear.app/graphql"


@dataclass(frozen=True)
class HightouchConfig:
    workspace_slug: str = "my-workspace"
    sync_url: str = "{app_url}/{workspace_slug}/syncs/{sync_id}"
    # Hightouch allows 200 requests per 10 s per workspace; stay under it on our side.
    # 0 turns client-side throttling off (for a sandbox, or a plan with another limit).
    max_requests_per_10s: int = 190
    # How many Hightouch reads may be in flight at once.
    concurrency: int = 8


@dataclass(frozen=True)
class SlackConfig:
    """The default route's Slack settings (see RouteConfig for the overrides)."""

    channel: str | tuple[str, ...] = "#data-alerts"  # one channel, or several
    mention: tuple[str, ...] = ()  # Slack user-group (S…) and user (U…/W…) ids
    dm_on_escalation: tuple[str, ...] = ()  # user ids
    threads: bool = True  # later failures of an incident reply in its first message's thread
    broadcast: str = "escalation"  # thread replies also shown in the channel: never | escalation | all
    recovery: bool = True  # a recovery reply, and the first message marked resolved
    storm_threshold: int = 10  # this many syncs starting to fail for one channel in one tick: a summary first
    group_window_minutes: int = 120  # a cause group takes new members this long after it opened

    @property
    def channels(self) -> tuple[str, ...]:
        return (self.channel,) if isinstance(self.channel, str) else self.channel


@dataclass(frozen=True)
class LinearConfig:
    """The default route's Linear settings."""

    team: str = "DATA"
    escalation_threshold: int = 3
    priority: str = "high"
    escalate: bool = True
    labels: tuple[str, ...] = ()
    comment_on_failure: bool = True  # a comment on the open issue when the sync fails again
    comment_on_recovery: bool = True  # a comment when the sync recovers
    close_on_recovery: bool = False  # move the issue to the team's first "completed" state on recovery
    outage_threshold: int = 5  # this many syncs failing with one cause: one issue per team, not one per sync
    escalate_warnings: bool = False  # warnings never open Linear issues unless this is true

    @property
    def priority_value(self) -> int:
        """Linear's numeric priority (1 urgent … 4 low)."""
        return PRIORITIES[self.priority]


@dataclass(frozen=True)
class RouteMatch:
    """Which syncs a route is for: every key given must fit (AND); in a list, any item fits (OR)."""

    sync: tuple[str, ...] = ()  # slug globs or sync ids
    destination: tuple[str, ...] = ()  # destination name globs
    destination_type: tuple[str, ...] = ()  # Hightouch destination types (salesforce, hubspot, …)
    model: tuple[str, ...] = ()  # model name globs
    tags: tuple[tuple[str, str], ...] = ()  # sync tags that must equal these values
    severity: tuple[str, ...] = ()  # critical | warning: the incident's
    error_class: tuple[str, ...] = ()  # the failure's known cause (auth, schema, …; see causes.py)

    @property
    def needs_names(self) -> bool:
        """Whether matching needs the destination and model looked up."""
        return bool(self.destination or self.destination_type or self.model)


@dataclass(frozen=True)
class RouteConfig:
    """One entry of `routes`: a match, and the settings it overrides (None: inherited)."""

    name: str
    match: RouteMatch = field(default_factory=RouteMatch)
    channel: tuple[str, ...] | None = None
    mention: tuple[str, ...] | None = None
    dm_on_escalation: tuple[str, ...] | None = None
    team: str | None = None
    escalation_threshold: int | None = None
    priority: str | None = None
    escalate: bool | None = None
    labels: tuple[str, ...] | None = None
    signals: SignalRules | None = None  # routes[].signals over the top-level signals, key by key
    mute_until: date | None = None  # date.max: muted for good (`mute: true`)


@dataclass(frozen=True)
class TriageConfig:
    failure_statuses: tuple[str, ...] = ("failed", "interrupted", "aborted")
    history_window: int = 5
    # Seconds a tick may spend waiting out rate limits and back-offs before it
    # defers the rest of its work to the next tick.
    wait_budget_seconds: float = 120.0
    # Past this, a tick starts no new sync and defers the rest (a first tick of a
    # big workspace spreads over several ticks). Unless config.yaml sets it, it is
    # fitted to the workflow beside config.yaml (see fit_to_workflow).
    tick_time_limit_seconds: float = 600.0
    tick_time_limit_set: bool = False  # whether config.yaml sets tick_time_limit_seconds
    # Seconds to wait for an API's answer before counting the request as failed.
    request_timeout_seconds: float = 30.0


@dataclass(frozen=True)
class ReactionsConfig:
    """The emoji people add to an incident's first message to answer it (names without colons)."""

    ack: str = "eyes"  # acknowledged: no more re-notifications or DMs
    snooze: str = "zzz"  # nothing posted for snooze_hours, unless it turns critical or its cause changes
    mute: str = "no_bell"  # nothing posted until it recovers
    resolve: str = "white_check_mark"  # closed by a person: the next failure opens a new incident
    retry: str = "repeat"  # trigger one normal run of the sync now

    def by_name(self) -> dict[str, str]:
        """Emoji name → what it does."""
        return {self.ack: "ack", self.snooze: "snooze", self.mute: "mute", self.resolve: "resolve", self.retry: "retry"}


@dataclass(frozen=True)
class TalkConfig:
    """What people say back from Slack, and what time does to an incident."""

    reactions: ReactionsConfig = field(default_factory=ReactionsConfig)
    snooze_hours: float = 4.0
    renotify_after_minutes: int = 240  # an unacknowledged critical incident is announced again …
    renotify_max: int = 3  # … at most this many times
    watchdog_minutes: int = 90  # Slack posts "no tick since …" by itself past this; 0 turns it off


@dataclass(frozen=True)
class RetryConfig:
    transient: bool = False  # a transient failure triggers one normal run before anyone is told
    max_per_day: int = 3  # runs triggered per sync and day (by rule or by reaction)


@dataclass(frozen=True)
class DigestConfig:
    schedule: str = "mon 09:00"  # weekly ("mon 09:00") or "daily 09:00"; "" turns it off
    timezone: str = "UTC"


@dataclass(frozen=True)
class Config:
    hightouch: HightouchConfig = field(default_factory=HightouchConfig)
    slack: SlackConfig = field(default_factory=SlackConfig)
    linear: LinearConfig = field(default_factory=LinearConfig)
    triage: TriageConfig = field(default_factory=TriageConfig)
    routes: tuple[RouteConfig, ...] = ()  # checked in order; the first that matches applies
    talk: TalkConfig = field(default_factory=TalkConfig)  # slack.reactions and the timed rules
    signals: SignalRules = field(default_factory=SignalRules)  # trouble that does not fail a run
    runbooks: tuple[tuple[str, str], ...] = ()  # error class or code -> the team's runbook URL
    retry: RetryConfig = field(default_factory=RetryConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    # Directory of config.yaml: templates/ beside it override the shipped ones.
    base_dir: Path = Path(".")
    # Several Hightouch workspaces from one config: each a whole Config of its own (the keys
    # above, with the workspace's overrides), ticked on its own with its own state file.
    workspaces: tuple[WorkspaceConfig, ...] = ()


@dataclass(frozen=True)
class WorkspaceConfig:
    """One entry of `workspaces`: its name (its state file is state/<name>.yaml), the
    environment variable holding its API key, and its config, built from the top-level keys
    with its own workspace_slug and its slack, linear and routes overrides."""

    name: str
    api_key_env: str
    config: Config


@dataclass(frozen=True)
class Environment:
    """Secrets and API endpoints, read from the environment only.

    Secrets are excluded from repr so they cannot leak through a log line or
    a traceback that prints this object.
    """

    hightouch_api_key: str = field(repr=False)
    slack_bot_token: str = field(repr=False, default="")
    linear_api_key: str = field(repr=False, default="")
    hightouch_api_url: str = DEFAULT_HIGHTOUCH_API_URL
    hightouch_app_url: str = DEFAULT_HIGHTOUCH_APP_URL
    slack_api_url: str = DEFAULT_SLACK_API_URL
    linear_api_url: str = DEFAULT_LINEAR_API_URL

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.hightouch_api_key, self.slack_bot_token, self.linear_api_key) if s)


SECRET_VARIABLES = ("HIGHTOUCH_API_KEY", "SLACK_BOT_TOKEN", "LINEAR_API_KEY")
# Every output is redacted of the secrets, so a value of a few characters would be cut out
# of ordinary words (`[redacted]onfig.y[redacted]ml`). Real keys and tokens are 30
# characters or more; anything under this is refused at start instead.
MIN_SECRET_LENGTH = 8


def short_secret_problem(environ: Mapping[str, str], names: tuple[str, ...] = SECRET_VARIABLES) -> str | None:
    """Why a secret that is set is too short to be one (None: every one set is long enough)."""
    for name in names:
        value = environ.get(name, "").strip()
        if 0 < len(value) < MIN_SECRET_LENGTH:
            return (
                f"{name} is set to {len(value)} character{'s' if len(value) != 1 else ''}: too short to be a real "
                f"key or token (they are 30 characters or more), and hiding a value that short in every output "
                f"would hide those letters in ordinary text too; set the real value (at least {MIN_SECRET_LENGTH} "
                f"characters), or unset {name}"
            )
    return None


def load_environment(environ: Mapping[str, str], *, need_senders: bool) -> Environment:
    """Read credentials and URLs. Slack and Linear keys are needed unless nothing is sent;
    a secret too short to be one is refused, whether it is needed or not."""
    required = ["HIGHTOUCH_API_KEY"]
    if need_senders:
        required += ["SLACK_BOT_TOKEN", "LINEAR_API_KEY"]
    missing = [name for name in required if not environ.get(name, "").strip()]
    if missing:
        raise UsageError(
            f"missing environment variable{'s' if len(missing) > 1 else ''}: {', '.join(missing)} "
            "(secrets are read from the environment only, never from config.yaml)"
        )
    problem = short_secret_problem(environ)
    if problem:
        raise UsageError(problem)

    def url(name: str, default: str) -> str:
        return (environ.get(name) or default).rstrip("/")

    return Environment(
        hightouch_api_key=environ["HIGHTOUCH_API_KEY"].strip(),
        slack_bot_token=environ.get("SLACK_BOT_TOKEN", "").strip(),
        linear_api_key=environ.get("LINEAR_API_KEY", "").strip(),
        hightouch_api_url=url("HIGHTOUCH_API_URL", DEFAULT_HIGHTOUCH_API_URL),
        hightouch_app_url=url("HIGHTOUCH_APP_URL", DEFAULT_HIGHTOUCH_APP_URL),
        slack_api_url=url("SLACK_API_URL", DEFAULT_SLACK_API_URL),
        linear_api_url=url("LINEAR_API_URL", DEFAULT_LINEAR_API_URL),
    )


def load_config(path: Path) -> Config:
    """Parse and validate config.yaml. Raises ConfigError naming file, line and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (pass --config PATH)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if root is None:
        return Config(base_dir=path.parent)
    reader = _Reader(path)
    config = _parse_root(reader, root, path)
    workspaces = _workspaces(reader, root, path)
    return replace(config, workspaces=workspaces) if workspaces else config


def _parse_root(reader: _Reader, root: yaml.Node, path: Path) -> Config:
    sections = reader.mapping(root, "")
    allowed = {
        "hightouch",
        "slack",
        "linear",
        "triage",
        "routes",
        "retry",
        "digest",
        "signals",
        "runbooks",
        "workspaces",
    }
    reader.reject_unknown(sections, allowed, "")

    ht = reader.mapping(sections.get("hightouch"), "hightouch")
    reader.reject_unknown(ht, {"workspace_slug", "sync_url", "max_requests_per_10s", "concurrency"}, "hightouch")
    sl = reader.mapping(sections.get("slack"), "slack")
    reader.reject_unknown(sl, SLACK_KEYS | SLACK_INCIDENT_KEYS, "slack")
    li = reader.mapping(sections.get("linear"), "linear")
    reader.reject_unknown(li, LINEAR_KEYS | LINEAR_INCIDENT_KEYS, "linear")
    tr = reader.mapping(sections.get("triage"), "triage")
    reader.reject_unknown(
        tr,
        {
            "failure_statuses",
            "history_window",
            "wait_budget_seconds",
            "tick_time_limit_seconds",
            "request_timeout_seconds",
        },
        "triage",
    )

    d_ht, d_sl, d_li, d_tr = HightouchConfig(), SlackConfig(), LinearConfig(), TriageConfig()
    hightouch = HightouchConfig(
        workspace_slug=reader.string(ht, "workspace_slug", "hightouch", d_ht.workspace_slug),
        sync_url=reader.string(ht, "sync_url", "hightouch", d_ht.sync_url),
        max_requests_per_10s=reader.integer(
            ht, "max_requests_per_10s", "hightouch", d_ht.max_requests_per_10s, minimum=0
        ),
        concurrency=reader.integer(ht, "concurrency", "hightouch", d_ht.concurrency, maximum=64),
    )
    _check_sync_url(reader, ht, hightouch.sync_url)
    broadcast = reader.string(sl, "broadcast", "slack", d_sl.broadcast)
    if broadcast not in BROADCASTS:
        reader.fail(sl, "broadcast", "slack", f"expected one of {' | '.join(BROADCASTS)}, got {broadcast!r}")
    slack = SlackConfig(
        channel=_one_or_many(reader.channels(sl, "slack")) or d_sl.channel,
        mention=reader.slack_ids(sl, "mention", "slack", MENTION_ID) or (),
        dm_on_escalation=reader.slack_ids(sl, "dm_on_escalation", "slack", USER_ID) or (),
        threads=_default(reader.boolean(sl, "threads", "slack"), d_sl.threads),
        broadcast=broadcast,
        recovery=_default(reader.boolean(sl, "recovery", "slack"), d_sl.recovery),
        storm_threshold=reader.integer(sl, "storm_threshold", "slack", d_sl.storm_threshold, minimum=2),
        group_window_minutes=reader.integer(
            sl, "group_window_minutes", "slack", d_sl.group_window_minutes, minimum=0, maximum=10_080
        ),
    )
    linear = LinearConfig(
        team=reader.string(li, "team", "linear", d_li.team),
        escalation_threshold=reader.integer(
            li, "escalation_threshold", "linear", d_li.escalation_threshold, maximum=10_000
        ),
        priority=reader.priority(li, "linear") or d_li.priority,
        escalate=_default(reader.boolean(li, "escalate", "linear"), d_li.escalate),
        labels=reader.optional_list(li, "labels", "linear") or (),
        comment_on_failure=_default(reader.boolean(li, "comment_on_failure", "linear"), d_li.comment_on_failure),
        comment_on_recovery=_default(reader.boolean(li, "comment_on_recovery", "linear"), d_li.comment_on_recovery),
        close_on_recovery=_default(reader.boolean(li, "close_on_recovery", "linear"), d_li.close_on_recovery),
        outage_threshold=reader.integer(li, "outage_threshold", "linear", d_li.outage_threshold, minimum=2),
        escalate_warnings=_default(reader.boolean(li, "escalate_warnings", "linear"), d_li.escalate_warnings),
    )
    failure_statuses = reader.string_list(tr, "failure_statuses", "triage", d_tr.failure_statuses)
    unknown = [status for status in failure_statuses if status not in SETTLED_STATUSES]
    if unknown:
        reader.fail(
            tr,
            "failure_statuses",
            "triage",
            f"unknown run status {unknown[0]!r} (a typo would silently alert on nothing); "
            f"allowed: {', '.join(sorted(SETTLED_STATUSES))}",
        )
    triage = TriageConfig(
        failure_statuses=failure_statuses,
        # Slack shows at most 50 blocks, and each previous run is a line of the message.
        history_window=reader.integer(tr, "history_window", "triage", d_tr.history_window, maximum=20),
        wait_budget_seconds=reader.number(
            tr, "wait_budget_seconds", "triage", d_tr.wait_budget_seconds, minimum=0, maximum=3600
        ),
        tick_time_limit_seconds=reader.number(
            tr, "tick_time_limit_seconds", "triage", d_tr.tick_time_limit_seconds, minimum=1, maximum=3600
        ),
        tick_time_limit_set="tick_time_limit_seconds" in tr,
        request_timeout_seconds=reader.number(
            tr, "request_timeout_seconds", "triage", d_tr.request_timeout_seconds, minimum=1, maximum=300
        ),
    )
    talk, retry, digest = _talk(reader, sl, sections)
    signals = _signals(reader, sections.get("signals"), "signals", SignalRules())
    return Config(
        hightouch=hightouch,
        slack=slack,
        linear=linear,
        triage=triage,
        routes=_routes(reader, sections.get("routes"), signals),
        talk=talk,
        signals=signals,
        runbooks=_runbooks(reader, sections.get("runbooks")),
        retry=retry,
        digest=digest,
        base_dir=path.parent,
    )


def _talk(
    reader: _Reader, sl: dict[str, yaml.Node], sections: dict[str, yaml.Node]
) -> tuple[TalkConfig, RetryConfig, DigestConfig]:
    """slack.reactions and the timed rules, `retry:` and `digest:`."""
    d_talk, d_reactions, d_retry, d_digest = TalkConfig(), ReactionsConfig(), RetryConfig(), DigestConfig()
    rx = reader.mapping(sl.get("reactions"), "slack.reactions")
    names = ("ack", "snooze", "mute", "resolve", "retry")
    reader.reject_unknown(rx, set(names), "slack.reactions")
    chosen = {name: reader.string(rx, name, "slack.reactions", getattr(d_reactions, name)).strip(":") for name in names}
    seen: dict[str, str] = {}
    for name, emoji in chosen.items():
        if emoji in seen:
            reader.fail(
                rx, name, "slack.reactions", f"{emoji!r} is already the emoji of {seen[emoji]!r}: each must differ"
            )
        seen[emoji] = name
    talk = TalkConfig(
        reactions=ReactionsConfig(**chosen),
        snooze_hours=reader.number(sl, "snooze_hours", "slack", d_talk.snooze_hours, minimum=0.25, maximum=24 * 14),
        renotify_after_minutes=reader.integer(
            sl, "renotify_after_minutes", "slack", d_talk.renotify_after_minutes, minimum=0, maximum=10_080
        ),
        renotify_max=reader.integer(sl, "renotify_max", "slack", d_talk.renotify_max, minimum=0, maximum=100),
        watchdog_minutes=reader.integer(
            sl, "watchdog_minutes", "slack", d_talk.watchdog_minutes, minimum=0, maximum=120 * 24 * 60
        ),
    )
    rt = reader.mapping(sections.get("retry"), "retry")
    reader.reject_unknown(rt, {"transient", "max_per_day"}, "retry")
    retry = RetryConfig(
        transient=_default(reader.boolean(rt, "transient", "retry"), d_retry.transient),
        max_per_day=reader.integer(rt, "max_per_day", "retry", d_retry.max_per_day, minimum=0, maximum=96),
    )
    dg = reader.mapping(sections.get("digest"), "digest")
    reader.reject_unknown(dg, {"schedule", "timezone"}, "digest")
    schedule_node = dg.get("schedule")
    schedule = d_digest.schedule if schedule_node is None else str(reader._value(schedule_node) or "")
    timezone = reader.string(dg, "timezone", "digest", d_digest.timezone)
    try:
        parse_digest_schedule(schedule, timezone)
    except ValueError as exc:
        key = "schedule" if schedule_node is not None else "timezone"
        reader.fail(dg, key, "digest", str(exc).replace(f"digest.{key} ", "", 1))
    return talk, retry, DigestConfig(schedule=schedule, timezone=timezone)


WORKSPACE_KEYS = {"name", "api_key_env", "workspace_slug", "slack", "linear", "routes"}
# A workspace's name is its state file's (state/<name>.yaml) and its job's in the workflow.
WORKSPACE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
# A workspace's key variable starts like the one key of a single workspace, so the CLI knows
# it for a secret before it reads config.yaml, and redacts it from every output.
ENVIRONMENT_NAME = re.compile(r"HIGHTOUCH_API_KEY_[A-Z0-9_]+")


def _workspaces(reader: _Reader, root: yaml.Node, path: Path) -> tuple[WorkspaceConfig, ...]:
    node = reader.mapping(root, "").get("workspaces")
    if node is None or _is_null(node):
        return ()
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        reader.fail_at(node, "workspaces", "expected a list of workspaces (name, api_key_env, workspace_slug)")
    found: dict[str, int] = {}
    workspaces = []
    for index, item in enumerate(node.value):
        key = f"workspaces[{index}]"
        entry = reader.mapping(item, key)
        reader.reject_unknown(entry, WORKSPACE_KEYS, key)
        for required in ("name", "api_key_env", "workspace_slug"):
            if required not in entry:
                reader.fail_at(item, key, f"{required} is required (each workspace: name, api_key_env, workspace_slug)")
        name = reader.string(entry, "name", key, "")
        if not WORKSPACE_NAME.fullmatch(name):
            reader.fail(entry, "name", key, f"{name!r}: lowercase letters, digits, - and _ (it names the state file)")
        if name in found:
            reader.fail(entry, "name", key, f"{name!r} is the name of workspaces[{found[name]}] too")
        found[name] = index
        where = f"{key} ({name})"
        api_key_env = reader.string(entry, "api_key_env", where, "")
        if not ENVIRONMENT_NAME.fullmatch(api_key_env):
            reader.fail(
                entry,
                "api_key_env",
                where,
                f"{api_key_env!r}: an environment variable named HIGHTOUCH_API_KEY_…, e.g. "
                f"HIGHTOUCH_API_KEY_{name.upper().replace('-', '_')} (so it is redacted from every output)",
            )
        reader.string(entry, "workspace_slug", where, "")
        config = _parse_root(reader, _merged_root(root, entry), path)
        workspaces.append(WorkspaceConfig(name=name, api_key_env=api_key_env, config=config))
    return tuple(workspaces)


def _merged_root(root: yaml.Node, workspace: dict[str, yaml.Node]) -> yaml.MappingNode:
    """The top-level mapping as this workspace sees it: its workspace_slug in hightouch, its
    slack and linear keys over the top-level ones key by key, its routes instead of theirs.
    Built of the original nodes, so an error still names the line it is on."""
    assert isinstance(root, yaml.MappingNode)

    def key(name: str, near: yaml.Node) -> yaml.ScalarNode:
        return yaml.ScalarNode("tag:yaml.org,2002:str", name, near.start_mark, near.end_mark)

    sections = {str(k.value): (k, v) for k, v in root.value if k.value != "workspaces"}

    def merged(section: str, overrides: list[tuple[yaml.Node, yaml.Node]]) -> None:
        old_key, old_value = sections.get(section, (None, None))
        pairs = list(old_value.value) if isinstance(old_value, yaml.MappingNode) else []
        names = {str(k.value) for k, _ in overrides}
        pairs = [(k, v) for k, v in pairs if str(k.value) not in names] + overrides
        near = overrides[0][0] if overrides else old_key
        assert near is not None
        mapping = yaml.MappingNode("tag:yaml.org,2002:map", pairs, near.start_mark, near.end_mark)
        sections[section] = (old_key or key(section, near), mapping)

    slug = workspace["workspace_slug"]
    merged("hightouch", [(key("workspace_slug", slug), slug)])
    for section in ("slack", "linear"):
        node = workspace.get(section)
        if isinstance(node, yaml.MappingNode):
            merged(section, list(node.value))
        elif node is not None and not _is_null(node):
            sections[section] = (key(section, node), node)  # not a mapping: the parse says so, at its line
    if "routes" in workspace:
        sections["routes"] = (key("routes", workspace["routes"]), workspace["routes"])
    return yaml.MappingNode("tag:yaml.org,2002:map", list(sections.values()), root.start_mark, root.end_mark)


SLACK_KEYS = {"channel", "mention", "dm_on_escalation"}
LINEAR_KEYS = {"team", "escalation_threshold", "priority", "escalate", "labels"}
# How incidents are followed: set once, at the top level.
SLACK_INCIDENT_KEYS = {"threads", "broadcast", "recovery", "storm_threshold", "group_window_minutes"} | {
    "reactions",
    "snooze_hours",
    "renotify_after_minutes",
    "renotify_max",
    "watchdog_minutes",
}
LINEAR_INCIDENT_KEYS = {
    "comment_on_failure",
    "comment_on_recovery",
    "close_on_recovery",
    "outage_threshold",
    "escalate_warnings",
}
BROADCASTS = ("never", "escalation", "all")
MATCH_KEYS = {"sync", "destination", "destination_type", "model", "tags", "severity", "error_class"}
ROUTE_KEYS = {"name", "match", "slack", "linear", "mute", "mute_until", "signals"}
SEVERITIES = ("critical", "warning")


SLACK_NAME_LIMIT = 80


def slack_channel_problem(channel: str) -> str | None:
    """What Slack would refuse in a channel as config.yaml gives it (None: fine). A name is
    checked as Slack checks one: lowercase letters, digits, - and _, at most 80 characters,
    no spaces or periods; the # is optional."""
    if CONVERSATION_ID.fullmatch(channel):
        return None
    name = channel.removeprefix("#")
    wrong = [
        what
        for what, bad in (
            ("spaces", " " in name),
            ("periods", "." in name),
            ("capitals", name != name.lower()),
            ("other characters than letters, digits, - and _", any(not (c.isalnum() or c in "-_ .") for c in name)),
            (f"more than {SLACK_NAME_LIMIT} characters", len(name) > SLACK_NAME_LIMIT),
            ("no name at all", not name),
        )
        if bad
    ]
    if not wrong:
        return None
    fixed = re.sub(r"[^\w-]+", "-", name.lower()).strip("-")[:SLACK_NAME_LIMIT]
    hint = f" (Slack would call it '#{fixed}')" if fixed and fixed != name else ""
    return (
        f"{channel!r} is not a Slack channel: a name has {' and '.join(wrong)}{hint}; a channel name is lowercase "
        "letters, digits, - and _, at most 80 characters — or give the channel's id (C…), which survives renames"
    )


def _routes(reader: _Reader, node: yaml.Node | None, signals: SignalRules) -> tuple[RouteConfig, ...]:
    if node is None or _is_null(node):
        return ()
    if not isinstance(node, yaml.SequenceNode):
        reader.fail_at(node, "routes", "expected a list of routes")
    return tuple(_route(reader, item, f"routes[{index}]", signals) for index, item in enumerate(node.value))


def _signals(reader: _Reader, node: yaml.Node | None, prefix: str, base: SignalRules) -> SignalRules:
    """`signals:` (or a route's), over `base` key by key; an error names the file:line of the key."""
    if node is None or _is_null(node):
        return base
    try:
        return parse_signal_rules(reader._value(node), base=base, prefix=prefix)
    except SignalRulesError as exc:
        reader.fail_at(_node_at(node, exc.key.removeprefix(prefix).lstrip(".")), exc.key, exc.problem)
        raise  # not reached: fail_at raises


def _node_at(node: yaml.Node, dotted: str) -> yaml.Node:
    """The YAML node of a dotted key under `node` (as deep as it exists), for its line."""
    for part in [p for p in dotted.split(".") if p]:
        if not isinstance(node, yaml.MappingNode):
            break
        found = next((value for key, value in node.value if key.value == part), None)
        if found is None:
            break
        node = found
    return node


def _runbooks(reader: _Reader, node: yaml.Node | None) -> tuple[tuple[str, str], ...]:
    """`runbooks:`: an error class or code → the team's runbook URL."""
    section = reader.mapping(node, "runbooks")
    found: list[tuple[str, str]] = []
    for key, value_node in section.items():
        problem = runbook_key_problem(key)
        if problem:
            reader.fail_at(value_node, f"runbooks.{key}", problem)
        url = reader.string(section, key, "runbooks", "")
        if not url.startswith(("https://", "http://")):
            reader.fail_at(value_node, f"runbooks.{key}", f"expected a link (https://…), got {url!r}")
        found.append((key, url))
    return tuple(found)


def _route(reader: _Reader, node: yaml.Node, key: str, signals: SignalRules) -> RouteConfig:
    route = reader.mapping(node, key)
    reader.reject_unknown(route, ROUTE_KEYS, key)
    name = reader.string(route, "name", key, f"{key} (line {node.start_mark.line + 1})")
    where = f"{key} ({name})" if "name" in route else key
    match = reader.mapping(route.get("match"), f"{where}.match")
    reader.reject_unknown(match, MATCH_KEYS, f"{where}.match")
    sl = reader.mapping(route.get("slack"), f"{where}.slack")
    reader.reject_unknown(sl, SLACK_KEYS, f"{where}.slack")
    li = reader.mapping(route.get("linear"), f"{where}.linear")
    reader.reject_unknown(li, LINEAR_KEYS, f"{where}.linear")
    threshold = None
    if "escalation_threshold" in li:
        threshold = reader.integer(li, "escalation_threshold", f"{where}.linear", 0, maximum=10_000)
    mute_until = reader.date(route, "mute_until", where)
    if reader.boolean(route, "mute", where):
        mute_until = date.max
    elif mute_until is not None and mute_until < datetime.now(UTC).date():
        log.warning("%s: %s: mute_until %s is past: the route is no longer muted", reader.path, where, mute_until)
    types = reader.optional_list(match, "destination_type", f"{where}.match") or ()
    severity = reader.optional_list(match, "severity", f"{where}.match") or ()
    for value in severity:
        if value not in SEVERITIES:
            reader.fail(match, "severity", f"{where}.match", f"expected critical or warning, got {value!r}")
    classes = reader.optional_list(match, "error_class", f"{where}.match") or ()
    for value in classes:
        if value not in ERROR_CLASSES:
            reader.fail(
                match, "error_class", f"{where}.match", f"unknown class {value!r} (one of {', '.join(ERROR_CLASSES)})"
            )
    route_signals = _signals(reader, route.get("signals"), f"{where}.signals", signals) if "signals" in route else None
    return RouteConfig(
        name=name,
        match=RouteMatch(
            sync=reader.globs(match, "sync", f"{where}.match"),
            destination=reader.globs(match, "destination", f"{where}.match"),
            destination_type=tuple(t.lower() for t in types),
            model=reader.globs(match, "model", f"{where}.match"),
            tags=reader.tags(match, f"{where}.match"),
            severity=tuple(severity),
            error_class=tuple(classes),
        ),
        signals=route_signals,
        channel=reader.channels(sl, f"{where}.slack"),
        mention=reader.slack_ids(sl, "mention", f"{where}.slack", MENTION_ID),
        dm_on_escalation=reader.slack_ids(sl, "dm_on_escalation", f"{where}.slack", USER_ID),
        team=reader.string(li, "team", f"{where}.linear", "") or None,
        escalation_threshold=threshold,
        priority=reader.priority(li, f"{where}.linear"),
        escalate=reader.boolean(li, "escalate", f"{where}.linear"),
        labels=reader.optional_list(li, "labels", f"{where}.linear"),
        mute_until=mute_until,
    )


def _one_or_many(values: tuple[str, ...] | None) -> str | tuple[str, ...] | None:
    if values is None:
        return None
    return values[0] if len(values) == 1 else values


def _default(value: bool | None, default: bool) -> bool:
    return default if value is None else value


WORKFLOW = Path(".github/workflows/triage.yml")
# A fork's tick of several workspaces, when it has moved the schedule there.
WORKSPACES_WORKFLOW = Path(".github/workflows/triage-workspaces.yml")
# Room a tick needs past its time limit: the request in flight, then the state commit.
COMMIT_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class WorkflowFit:
    """The config with its tick time limit fitted to the workflow, and what a person should know."""

    config: Config
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Bound:
    most: float  # seconds the tick's time limit may be
    why: str
    hard: bool  # past a hard bound a killed job loses the state commit; past a soft one ticks queue
    workflow: Path = WORKFLOW


def fit_to_workflow(config_path: Path, config: Config) -> WorkflowFit:
    """The tick's time limit against the workflow that runs it, when that workflow sits beside
    config.yaml (`validate` and `run` both ask). The tick must end before the job's
    timeout-minutes kills it — killed, a tick loses the state commit of what it already sent —
    so a limit past that is an error. It should also end before the next scheduled tick is due
    at the fastest interval of the cron lines; a tick past that only delays the next one (the
    concurrency group queues it), so a limit set past it is a warning naming both numbers, and
    a limit not set at all is fitted to it: a new cron line never fails `validate`."""
    bounds = _workflow_bounds(config)
    limit = config.triage.tick_time_limit_seconds
    if not config.triage.tick_time_limit_set:
        hard = [b for b in bounds if b.hard]
        for bound in hard:
            if bound.most < 1:
                raise ConfigError(f"{config.base_dir / bound.workflow}: {bound.why} leaves no time for a tick")
        usable = [b.most for b in bounds if b.most >= 1]
        fitted = min([limit, *usable])
        if fitted == limit:
            return WorkflowFit(config)
        log.info("triage.tick_time_limit_seconds: %g s, to fit the workflow", fitted)
        return WorkflowFit(replace(config, triage=replace(config.triage, tick_time_limit_seconds=fitted)))
    warnings: list[str] = []
    for bound in bounds:
        if limit <= bound.most:
            continue
        where = _setting_line(config_path, "triage", "tick_time_limit_seconds")
        if bound.hard:
            raise ConfigError(f"{where}: {limit:g} s does not fit {bound.why}: set at most {bound.most:g}")
        warnings.append(
            f"{where}: {limit:g} s is longer than {bound.why}, {bound.most:g} s: a tick that long delays the next "
            f"scheduled one (GitHub queues it); set at most {bound.most:g}, or remove the setting to fit the schedule"
        )
    return WorkflowFit(config, tuple(warnings))


def _workflow_bounds(config: Config) -> list[_Bound]:
    return [bound for name in (WORKFLOW, WORKSPACES_WORKFLOW) for bound in _bounds_of(config, name)]


def _bounds_of(config: Config, name: Path) -> list[_Bound]:
    workflow = config.base_dir / name
    try:
        doc = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []  # no workflow here (or not ours to judge)
    if not isinstance(doc, dict):
        return []
    request = config.triage.request_timeout_seconds
    bounds: list[_Bound] = []
    jobs = doc.get("jobs")
    timeouts = [
        job["timeout-minutes"]
        for job in (jobs.values() if isinstance(jobs, dict) else [])
        if isinstance(job, dict) and isinstance(job.get("timeout-minutes"), int)
    ]
    if timeouts:
        minutes = min(timeouts)
        bounds.append(
            _Bound(
                minutes * 60 - request - COMMIT_MARGIN_SECONDS,
                f"the {minutes}-minute timeout-minutes of {name} once a request in flight ({request:g} s) and "
                f"the state commit ({COMMIT_MARGIN_SECONDS} s) are counted",
                hard=True,
                workflow=name,
            )
        )
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads the key `on` as true
    schedule = triggers.get("schedule") if isinstance(triggers, dict) else None
    crons = [str(item["cron"]) for item in schedule or [] if isinstance(item, dict) and "cron" in item]
    if crons:
        try:
            interval = fastest_interval_minutes(crons)
        except CronError as exc:
            raise ConfigError(f"{workflow}: on.schedule: {exc}") from None
        bounds.append(
            _Bound(
                interval * 60 - request,
                f"the fastest interval of the schedule in {name} ({interval} minutes) less a request ({request:g} s)",
                hard=False,
                workflow=name,
            )
        )
    return bounds


def _setting_line(config_path: Path, section: str, key: str) -> str:
    """`config.yaml:LINE` of a setting, for messages that are not errors of the parse."""
    try:
        root = yaml.compose(config_path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return f"{config_path}: {section}.{key}"
    reader = _Reader(config_path)
    node = reader.mapping(reader.mapping(root, "").get(section), section).get(key)
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    return f"{config_path}{line}: {section}.{key}"


def _check_sync_url(reader: _Reader, section: dict[str, yaml.Node], template: str) -> None:
    try:
        template.format(app_url="a", workspace_slug="w", sync_id="1")
    except (KeyError, IndexError, ValueError) as exc:
        reader.fail(
            section,
            "sync_url",
            "hightouch",
            f"unknown placeholder {exc}; use {{app_url}}, {{workspace_slug}} and {{sync_id}}",
        )


class _Reader:
    """Reads typed values out of a composed YAML tree, failing with file:line and dotted key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._loader = yaml.SafeLoader("")

    def fail_at(self, node: yaml.Node | None, key: str, problem: str) -> None:
        where = f"{self.path}:{node.start_mark.line + 1}" if node is not None else str(self.path)
        raise ConfigError(f"{where}: {key}: {problem}")

    def fail(self, section: dict[str, yaml.Node], name: str, prefix: str, problem: str) -> None:
        self.fail_at(section.get(name), _dotted(prefix, name), problem)

    def mapping(self, node: yaml.Node | None, key: str) -> dict[str, yaml.Node]:
        if node is None or _is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.fail_at(node, key or "top level", "expected a mapping of keys")
        out: dict[str, yaml.Node] = {}
        first_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            name = str(key_node.value)
            if name in out:
                # YAML keeps the last silently: the setting a reviewer saw may not be the one used.
                self.fail_at(key_node, _dotted(key, name), f"duplicate key (first set on line {first_lines[name]})")
            out[name] = value_node
            first_lines[name] = key_node.start_mark.line + 1
        return out

    def reject_unknown(self, section: dict[str, yaml.Node], allowed: set[str], prefix: str) -> None:
        for name, node in section.items():
            if name not in allowed:
                self.fail_at(node, _dotted(prefix, name), f"unknown key (allowed here: {', '.join(sorted(allowed))})")

    def _value(self, node: yaml.Node) -> Any:
        return self._loader.construct_object(node, deep=True)

    def string(self, section: dict[str, yaml.Node], name: str, prefix: str, default: str) -> str:
        node = section.get(name)
        if node is None:
            return default
        value = self._value(node)
        if not isinstance(value, str) or not value.strip():
            self.fail_at(node, _dotted(prefix, name), f"expected a non-empty string, got {value!r}")
        return str(value)

    def integer(
        self,
        section: dict[str, yaml.Node],
        name: str,
        prefix: str,
        default: int,
        minimum: int = 1,
        maximum: int = 1_000_000,
    ) -> int:
        node = section.get(name)
        if node is None:
            return default
        value = self._value(node)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self.fail_at(
                node, _dotted(prefix, name), f"expected a whole number from {minimum} to {maximum}, got {value!r}"
            )
        return int(value)

    def number(
        self,
        section: dict[str, yaml.Node],
        name: str,
        prefix: str,
        default: float,
        *,
        minimum: float,
        maximum: float,
    ) -> float:
        node = section.get(name)
        if node is None:
            return default
        value = self._value(node)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not minimum <= value <= maximum
        ):
            self.fail_at(
                node,
                _dotted(prefix, name),
                f"expected a number of seconds from {minimum:g} to {maximum:g}, got {value!r}",
            )
        return float(value)

    def string_list(
        self, section: dict[str, yaml.Node], name: str, prefix: str, default: tuple[str, ...]
    ) -> tuple[str, ...]:
        node = section.get(name)
        if node is None:
            return default
        value = self._value(node)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.fail_at(node, _dotted(prefix, name), f"expected a non-empty list of strings, got {value!r}")
        return tuple(v.strip().lower() for v in value)

    # -- the types routes add ---------------------------------------------------

    def optional_list(self, section: dict[str, yaml.Node], name: str, prefix: str) -> tuple[str, ...] | None:
        """A string or a list of strings; None when absent."""
        node = section.get(name)
        if node is None:
            return None
        value = self._value(node)
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(v, str) and v.strip() for v in items):
            self.fail_at(
                node, _dotted(prefix, name), f"expected a string or a non-empty list of strings, got {value!r}"
            )
        return tuple(str(v).strip() for v in items)

    def channels(self, section: dict[str, yaml.Node], prefix: str) -> tuple[str, ...] | None:
        channels = self.optional_list(section, "channel", prefix)
        for channel in channels or ():
            problem = slack_channel_problem(channel)
            if problem:
                self.fail(section, "channel", prefix, problem)
        return channels

    def slack_ids(
        self, section: dict[str, yaml.Node], name: str, prefix: str, shape: re.Pattern[str]
    ) -> tuple[str, ...] | None:
        ids = self.optional_list(section, name, prefix)
        for value in ids or ():
            if not shape.fullmatch(value):
                kinds = "user-group (S…) or user (U…/W…)" if shape is MENTION_ID else "user (U…/W…)"
                self.fail(
                    section, name, prefix, f"{value!r} is not a Slack {kinds} id (find it in the profile's ⋮ menu)"
                )
        return ids

    def globs(self, section: dict[str, yaml.Node], name: str, prefix: str) -> tuple[str, ...]:
        patterns = self.optional_list(section, name, prefix) or ()
        for pattern in patterns:
            if pattern.count("[") != pattern.count("]"):
                self.fail(section, name, prefix, f"bad glob {pattern!r}: unbalanced [ ]")
        return patterns

    def tags(self, section: dict[str, yaml.Node], prefix: str) -> tuple[tuple[str, str], ...]:
        node = section.get("tags")
        if node is None:
            return ()
        value = self._value(node)
        if not isinstance(value, dict) or not value or not all(isinstance(k, str) for k in value):
            self.fail_at(node, _dotted(prefix, "tags"), f"expected a mapping of tag names to values, got {value!r}")
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))

    def boolean(self, section: dict[str, yaml.Node], name: str, prefix: str) -> bool | None:
        node = section.get(name)
        if node is None:
            return None
        value = self._value(node)
        if not isinstance(value, bool):
            self.fail_at(node, _dotted(prefix, name), f"expected true or false, got {value!r}")
        return bool(value)

    def date(self, section: dict[str, yaml.Node], name: str, prefix: str) -> date | None:
        node = section.get(name)
        if node is None:
            return None
        value = self._value(node)
        if isinstance(value, datetime):
            value = value.date()
        if not isinstance(value, date):
            self.fail_at(node, _dotted(prefix, name), f"expected a date such as 2026-12-31, got {value!r}")
        return date(value.year, value.month, value.day)

    def priority(self, section: dict[str, yaml.Node], prefix: str) -> str | None:
        if "priority" not in section:
            return None
        value = self.string(section, "priority", prefix, "").lower()
        if value not in PRIORITIES:
            self.fail(section, "priority", prefix, f"expected one of {' | '.join(PRIORITIES)}, got {value!r}")
        return value


def _dotted(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"
