"""When the state cannot be saved, the default Slack channel hears it: every tick then
starts from the state it found, so its alerts repeat or are missed.

The commit-back runs after the tick, in its own step, so it builds what it needs here —
the config, the renderer (team overrides included) and a Slack client — from the
environment. Nothing can be saved, so nothing remembers the message was sent: each tick
it happens to says it again, which is right, as each such tick repeats or misses alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from triage.config import DEFAULT_SLACK_API_URL, load_config, short_secret_problem
from triage.errors import ConfigError, TriageError
from triage.health import run_url
from triage.http import HttpClient, WaitBudget, redact
from triage.render import Renderer, cut_markup, slack_blocks, slack_code, slack_escape
from triage.slack import SlackClient

log = logging.getLogger(__name__)

STATE_UNSAVED_TEMPLATE = "slack_state_unsaved.md.j2"


@dataclass(frozen=True)
class UnsavedContext:
    """What the message shows."""

    branch: str
    error: str  # git's own message (secrets already redacted)
    protected: bool
    run_url: str = ""


def unsaved_message(
    renderer: Renderer, ctx: UnsavedContext, *, strict: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """(notification text, blocks) of the message, from its template; a plain one if the
    template fails (the team's override may be broken: the news matters more). `strict`
    (for `validate`) raises a ConfigError instead."""
    try:
        body = renderer.env.get_template(STATE_UNSAVED_TEMPLATE).render(ctx=ctx, **vars(ctx)).strip()
    except jinja2.TemplateError as exc:
        if strict:
            raise ConfigError(f"template {STATE_UNSAVED_TEMPLATE}: {exc}") from None
        log.error("template %s: %s; the message is the built-in one", STATE_UNSAVED_TEMPLATE, exc)
        body = (
            f":rotating_light: hightouch-triage could not save its state to {slack_escape(ctx.branch)}: alerts will "
            f"repeat or be missed until this is fixed.\n```{slack_code(ctx.error)}```"
        )
    return cut_markup(body.splitlines()[0], 300), slack_blocks(body)


def tell_slack(config_path: Path, environ: Mapping[str, str], ctx: UnsavedContext) -> str | None:
    """Post the message to the default channel. None when it went out (or there is no token
    to post with), else why it did not — for the step's log; it never raises."""
    token = environ.get("SLACK_BOT_TOKEN", "").strip()
    if not token:
        return "SLACK_BOT_TOKEN is not set in this step: Slack was not told"
    problem = short_secret_problem(environ, ("SLACK_BOT_TOKEN",))
    if problem:
        return f"Slack was not told: {problem}"
    try:
        config = load_config(config_path)
        renderer = Renderer(config)
        http = HttpClient(name="Slack", secrets=(token,), budget=WaitBudget(30.0))
        slack = SlackClient(http, (environ.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL).rstrip("/"), token)
        text, blocks = unsaved_message(renderer, ctx)
        slack.post_message(config.slack.channels[0], text, blocks)
    except (ConfigError, TriageError, OSError) as exc:
        return redact(f"Slack was not told: {exc}", (token,))
    return None


def context(branch: str, error: str, protected: bool, environ: Mapping[str, str]) -> UnsavedContext:
    return UnsavedContext(branch=branch, error=error, protected=protected, run_url=run_url(environ))
