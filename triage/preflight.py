"""`validate --online`: what only the real APIs can tell — the keys, the channels, the
teams and labels — checked once, each problem named with its setting and its fix.

Every check runs even when an earlier one failed, so one pass lists everything to fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from triage.commit_state import state_branch
from triage.config import Config
from triage.errors import ApiError, AuthError, ConfigError
from triage.hightouch import HightouchClient
from triage.http import HttpClient, WaitBudget
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
    people = dict.fromkeys(u for route in every_route(config) for u in route.dm_on_escalation)
    findings = [who, *(_channel(slack, channel) for channel in channels)]
    findings += [_person(slack, user) for user in people]
    return [*findings, *_talking_back(config, slack)]


def _person(slack: SlackClient, user: str) -> Finding:
    """A dm_on_escalation user: still in the workspace (someone who left gets no DM)."""
    what = f"Slack user {user!r} (slack.dm_on_escalation)"
    try:
        found = slack.user(user)
    except MissingScope:
        return Finding("warn", f"{what}: not checked (the token lacks users:read)", "add users:read to check people")
    except (ApiError, ConfigError) as exc:
        return Finding("FAIL", f"{what}: {exc}", "remove the user, or fix the id")
    if found is None or found.get("deleted"):
        return Finding("FAIL", f"{what} is not in the workspace (left, or a typo)", "remove them from dm_on_escalation")
    return Finding("ok", f"{what}: {found.get('name') or 'found'}")


def _talking_back(config: Config, slack: SlackClient) -> list[Finding]:
    """What reactions and the watchdog need: reactions:read, and scheduling in the default channel."""
    channel = config.slack.channels[0]
    findings: list[Finding] = []
    try:
        slack.reactions(channel, "0000000000.000000")  # a message that is not there: only the scope is asked
        findings.append(Finding("ok", "Slack: reactions:read granted (acknowledge, snooze, mute, resolve, retry)"))
    except MissingScope:
        findings.append(
            Finding(
                "warn",
                "Slack: reactions:read is missing: reactions on incidents are not read",
                "add reactions:read to the Slack app and reinstall it",
            )
        )
    except (ApiError, ConfigError):
        findings.append(Finding("ok", "Slack: reactions:read granted (acknowledge, snooze, mute, resolve, retry)"))
    what = f"Slack: the watchdog message in {channel!r}"
    if config.talk.watchdog_minutes <= 0:
        return findings
    try:
        slack.scheduled_messages(slack.find_channel_id(channel) or channel)
        findings.append(Finding("ok", f"{what} can be scheduled"))
    except MissingScope as exc:
        findings.append(Finding("warn", f"{what}: not checked ({exc})", "add channels:read / groups:read"))
    except (ApiError, ConfigError) as exc:
        findings.append(Finding("FAIL", f"{what} cannot be scheduled: {exc}", "check chat:write and the channel"))
    return findings


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


DEFAULT_GITHUB_API_URL = "https://api.github.com"


def state_branch_findings(environ: Mapping[str, str], sleep: Callable[[float], None] = time.sleep) -> list[Finding]:
    """In GitHub Actions: whether the branch the state is committed to is protected, asked
    of GitHub's branches API with the job's own token. A protected branch refuses the state
    commit, and then every tick starts from the same state (alerts repeat or are missed).
    Outside Actions there is no workflow to commit with: nothing to check."""
    if environ.get("GITHUB_ACTIONS") != "true":
        return []
    token, repository = environ.get("GITHUB_TOKEN", "").strip(), environ.get("GITHUB_REPOSITORY", "")
    configured = environ.get("STATE_BRANCH") or environ.get("TRIAGE_STATE_BRANCH") or None
    branch = state_branch(configured, environ.get("GITHUB_REF_NAME"), environ.get("DEFAULT_BRANCH")) or environ.get(
        "GITHUB_REF_NAME", ""
    )
    what = f"GitHub: state branch {branch!r}"
    if not token or not repository or not branch:
        return [Finding("warn", f"{what}: not checked (no GITHUB_TOKEN in the step)", "pass GITHUB_TOKEN")]
    api = (environ.get("GITHUB_API_URL") or DEFAULT_GITHUB_API_URL).rstrip("/")
    http = HttpClient(name="GitHub", secrets=(token,), budget=WaitBudget(10.0), sleep=sleep)
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    try:
        response = http.request(
            "GET",
            f"{api}/repos/{repository}/branches/{quote(branch, safe='')}",
            endpoint="GET /repos/{owner}/{repo}/branches/{branch}",
            idempotent=True,
            headers=headers,
        )
    except ApiError as exc:
        return [Finding("warn", f"{what}: not checked ({exc})")]
    if response.status_code == 404:
        if configured:
            return [Finding("ok", f"{what} does not exist yet: the first tick creates it")]
        return [Finding("warn", f"{what}: not found in {repository}", "check TRIAGE_STATE_BRANCH")]
    try:
        protected = response.json().get("protected") if response.ok else None
    except ValueError:
        protected = None
    if protected is None:
        return [Finding("warn", f"{what}: not checked (GitHub answered HTTP {response.status_code})")]
    if not protected:
        return [Finding("ok", f"{what} is not protected: the state commit can be pushed")]
    fix = (
        f"lift the protection of {branch} (it holds only state commits), or set TRIAGE_STATE_BRANCH to another branch"
        if configured
        else "set the repository variable TRIAGE_STATE_BRANCH (e.g. triage-state) to keep state on a branch of its own"
    )
    return [
        Finding(
            "warn",
            f"{what} is protected: the state commit will likely be refused, and then every tick starts from "
            "the same state, so alerts repeat or are missed",
            fix,
        )
    ]
