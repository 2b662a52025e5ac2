"""Routing: which route a sync's alerts follow, resolved once, purely, into a `Route`
the rest of the code only reads (after Alertmanager's route tree, flattened: the
routes of config.yaml are checked in order and the first that matches applies).

A route's settings override the top-level defaults key by key; a sync that matches
no route follows the defaults, as the tool did before routes existed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from fnmatch import fnmatchcase
from typing import TypeVar

from triage.config import PRIORITIES, Config, RouteConfig, RouteMatch
from triage.models import Sync
from triage.signals import SignalRules

DEFAULT_ROUTE = "default"


@dataclass(frozen=True)
class Target:
    """What routes match on: the sync, and (when some route needs them) the names and type
    of its destination and model."""

    sync: Sync
    destination: str | None = None
    destination_type: str | None = None
    model: str | None = None
    severity: str | None = None  # the incident's, once the runs are judged (critical | warning)
    error_class: str | None = None  # the failure's known cause (see causes.py)


@dataclass(frozen=True)
class Route:
    """Where one sync's alerts go, every setting resolved."""

    name: str
    channels: tuple[str, ...]
    mentions: tuple[str, ...]
    dm_on_escalation: tuple[str, ...]
    team: str
    escalation_threshold: int
    priority: str
    escalate: bool
    labels: tuple[str, ...]
    muted_until: date | None = None  # date.max: muted for good
    signals: SignalRules = field(default_factory=SignalRules)  # thresholds of the trouble a green run hides
    escalate_warnings: bool = False  # a warning opens a Linear issue too

    @property
    def priority_value(self) -> int:
        return PRIORITIES[self.priority]

    def muted(self, today: date) -> bool:
        """Muted through the end of `muted_until` (UTC)."""
        return self.muted_until is not None and today <= self.muted_until


def needs_names(config: Config) -> bool:
    """Whether any route matches on destination or model, so they must be looked up first."""
    return any(route.match.needs_names for route in config.routes)


def default_route(config: Config) -> Route:
    return Route(
        name=DEFAULT_ROUTE,
        channels=config.slack.channels,
        mentions=config.slack.mention,
        dm_on_escalation=config.slack.dm_on_escalation,
        team=config.linear.team,
        escalation_threshold=config.linear.escalation_threshold,
        priority=config.linear.priority,
        escalate=config.linear.escalate,
        labels=config.linear.labels,
        signals=config.signals,
        escalate_warnings=config.linear.escalate_warnings,
    )


def resolve_route(target: Target, config: Config) -> Route:
    """The route of the first entry of `routes` that matches, over the defaults."""
    base = default_route(config)
    chosen = next((r for r in config.routes if matches(r.match, target)), None)
    return base if chosen is None else _override(base, chosen)


def matches(match: RouteMatch, target: Target) -> bool:
    """Every key given must fit (AND); within a key's list, any item fits (OR)."""
    sync = target.sync
    checks = [
        not match.sync or any(p == sync.id or _glob(sync.name, p) for p in match.sync),
        not match.destination or any(_glob(target.destination, p) for p in match.destination),
        not match.destination_type or (target.destination_type or "").lower() in match.destination_type,
        not match.model or any(_glob(target.model, p) for p in match.model),
        all(dict(sync.tags).get(key) == value for key, value in match.tags),
        not match.severity or target.severity in match.severity,
        not match.error_class or target.error_class in match.error_class,
    ]
    return all(checks)


def _glob(value: str | None, pattern: str) -> bool:
    """Case-insensitive shell-style match: `Salesforce*` fits `salesforce (prod)`."""
    return value is not None and fnmatchcase(value.lower(), pattern.lower())


T = TypeVar("T")


def every_route(config: Config) -> list[Route]:
    """The default route, then each configured route as it applies (overrides filled in)."""
    base = default_route(config)
    return [base, *(_override(base, route) for route in config.routes)]


def _pick(value: T | None, default: T) -> T:
    return default if value is None else value


def _override(base: Route, route: RouteConfig) -> Route:
    return Route(
        name=route.name,
        channels=_pick(route.channel, base.channels),
        mentions=_pick(route.mention, base.mentions),
        dm_on_escalation=_pick(route.dm_on_escalation, base.dm_on_escalation),
        team=_pick(route.team, base.team),
        escalation_threshold=_pick(route.escalation_threshold, base.escalation_threshold),
        priority=_pick(route.priority, base.priority),
        escalate=_pick(route.escalate, base.escalate),
        labels=_pick(route.labels, base.labels),
        muted_until=route.mute_until,
        signals=_pick(route.signals, base.signals),
        escalate_warnings=base.escalate_warnings,
    )
