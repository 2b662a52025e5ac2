"""The tool's own health: when a tick fails, the default channel hears it once per failure
streak, and hears "working again" when a tick succeeds after it.

The record lives in `state/health.yaml`, apart from state.yaml, so a state file that
cannot be read does not silence it; it exists only while the tool is failing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from triage.render import HealthContext, Renderer
from triage.slack import SlackClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    failing_since: str | None = None  # when the streak of failed ticks began
    error: str = ""
    channel: str | None = None  # where the health message went, to reply in its thread
    ts: str | None = None


def health_change(previous: Health, failure: str | None) -> str | None:
    """`failing` when a streak of failed ticks starts, `recovered` when it ends, else None."""
    if failure is not None and previous.failing_since is None:
        return "failing"
    if failure is None and previous.failing_since is not None:
        return "recovered"
    return None


def load_health(path: Path) -> Health:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return Health()
    if not isinstance(raw, dict):
        return Health()
    return Health(**{k: str(v) for k, v in raw.items() if k in Health.__dataclass_fields__ and v is not None})


def save_health(path: Path, health: Health) -> None:
    if health == Health():
        path.unlink(missing_ok=True)  # healthy: nothing to keep, nothing to commit
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({k: v for k, v in vars(health).items() if v}, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def run_url(environ: Mapping[str, str]) -> str:
    """The GitHub Actions run that ticked, when there is one."""
    parts = [environ.get(n, "") for n in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else ""


def report_health(
    path: Path,
    failure: str | None,
    *,
    slack: SlackClient,
    renderer: Renderer,
    channel: str,
    now: datetime,
    link: str,
) -> None:
    """Post or answer the health message as the streak starts or ends, and remember it."""
    previous = load_health(path)
    change = health_change(previous, failure)
    if change is None:
        return
    ctx = HealthContext(
        failed=change == "failing",
        error=failure or previous.error,
        run_url=link,
        since=previous.failing_since or now.strftime("%Y-%m-%d %H:%M UTC"),
    )
    message = renderer.slack_health(ctx)
    if change == "failing":
        posted = slack.post_message(channel, message.text, message.blocks)
        save_health(path, Health(ctx.since, failure or "", posted.channel, posted.ts))
        return
    slack.post_message(previous.channel or channel, message.text, message.blocks, thread_ts=previous.ts)
    save_health(path, Health())
