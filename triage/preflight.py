"""`validate --online`: what only the real APIs can tell — the keys, the channels, the
teams and labels — checked once, each problem named with its setting and its fix.

Every check runs even when an earlier one failed, so one pass lists everything to fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from triage.config import Config
from triage.errors import ApiError, AuthError, ConfigError
from triage.hightouch import HightouchClient
from triage.linear import LinearClient, Team
from triage.routing import every_route
from triage.slack import USER_ID, MissingScope, SlackClient

PLACEHOLDER_SLUG = "my-workspace"  # what the shipped config.yaml says until a team sets its own


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "warn" (not checked, or suspicious) or "FAIL"
    what: str
    fix: str = ""

    def line(self) -> str:
        return f"  {self.level:<5} {self.what}" + (f" — {self.fix}" if self.fix else "")


def placeholder_warnings(config: Config) -> list[Finding]:
    """What `validate` can say offline: settings still at the shipped placeholder."""
    if config.hightouch.workspace_slug == PLACEHOLDER_SLUG:
        return [
            Finding(
                "warn",
                f"hightouch.workspace_slug is the placeholder {PLACEHOLDER_SLUG!r}: every link to a sync is broken",
                "set it to your workspace's slug, as in app.hightouch.com/<slug>/syncs",
            )
        ]
    return []


def preflight(
    config: Config, hightouch: HightouchClient, slack: SlackClient | None, linear: LinearClient | None
) -> list[Finding]:
    """Every check, in the order a person would fix them; `slack`/`linear` None: no key set."""

    def list_syncs() -> str:
        hightouch.probe()
        return "Hightouch: HIGHTOUCH_API_KEY accepted (List Syncs)"

    findings = placeholder_warnings(config)
    findings.append(
        _check(
            list_syncs,
            "Hightouch: HIGHTOUCH_API_KEY",
            "create a workspace API key (Hightouch: Settings → API keys) and set the secret",
        )
    )
    findings += _slack(config, slack)
    findings += _linear(config, linear)
    return findings


def _slack(config: Config, slack: SlackClient | None) -> list[Finding]:
    if slack is None:
        return [Finding("FAIL", "Slack: SLACK_BOT_TOKEN is not set", "add the repository secret SLACK_BOT_TOKEN")]
    who = _check(
        lambda: f"Slack: SLACK_BOT_TOKEN accepted (bot {slack.auth_test().get('user', '?')})",
        "Slack: SLACK_BOT_TOKEN",
        "use the app's bot token (xoxb-…) with chat:write, reinstalled after any scope change",
    )
    if who.level == "FAIL":
        return [who]
    channels = dict.fromkeys(c for route in every_route(config) for c in route.channels if not USER_ID.fullmatch(c))
    return [who, *(_channel(slack, channel) for channel in channels)]


def _channel(slack: SlackClient, channel: str) -> Finding:
    """One configured channel: it exists, is not archived, and has the bot as a member."""
    name = f"Slack channel {channel!r}"
    try:
        found = slack.channel(channel)
    except MissingScope:
        scopes = "not checked (the token lacks channels:read / groups:read)"
        return Finding("warn", f"{name}: {scopes}", "add those scopes to check channels here, or trust the first alert")
    except ApiError as exc:
        return Finding("FAIL", f"{name}: {exc}")
    if found is None:
        fix = "check slack.channel (and routes) in config.yaml; a private channel shows only once the bot is invited"
        return Finding("FAIL", f"{name} not found", f"{fix}; a channel id (C…) survives renames")
    if found.get("is_archived"):
        return Finding("FAIL", f"{name} is archived", "choose another channel")
    if not found.get("is_member", True):
        return Finding("FAIL", f"{name}: the bot is not a member", "invite it: /invite @your-bot")
    return Finding("ok", f"{name} ({found.get('id')}): the bot is a member")


def _linear(config: Config, linear: LinearClient | None) -> list[Finding]:
    if linear is None:
        return [Finding("FAIL", "Linear: LINEAR_API_KEY is not set", "add the repository secret LINEAR_API_KEY")]
    findings: list[Finding] = []
    labels: dict[str, set[str]] = {}
    for route in every_route(config):
        labels.setdefault(route.team, set()).update(route.labels)
    for key, wanted in labels.items():
        try:
            team = linear.find_team(key)
        except AuthError as exc:
            return [Finding("FAIL", f"Linear: LINEAR_API_KEY refused ({exc})", "create a personal API key in Linear")]
        except ConfigError:
            findings.append(
                Finding(
                    "FAIL",
                    f"Linear team {key!r} not found",
                    "check linear.team (and routes) in config.yaml: a key or name",
                )
            )
            continue
        except ApiError as exc:
            findings.append(Finding("FAIL", f"Linear team {key!r}: {exc}"))
            continue
        findings.append(Finding("ok", f"Linear team {key!r}: {team.key} ({team.name})"))
        findings += _labels(linear, team, wanted)
    return findings


def _labels(linear: LinearClient, team: Team, wanted: set[str]) -> list[Finding]:
    if not wanted:
        return []
    known = linear.labels(team)
    missing = sorted(name for name in wanted if name.lower() not in known)
    if missing:
        return [
            Finding(
                "FAIL",
                f"Linear labels {missing} not found in team {team.key}",
                "create them in Linear (team or workspace labels), or fix linear.labels in config.yaml",
            )
        ]
    return [Finding("ok", f"Linear labels {sorted(wanted)} exist in team {team.key}")]


def _check(call: Callable[[], str], what: str, fix: str) -> Finding:
    try:
        return Finding("ok", call())
    except AuthError as exc:
        return Finding("FAIL", f"{what} refused ({exc})", fix)
    except ApiError as exc:
        return Finding("FAIL", f"{what}: {exc}")
