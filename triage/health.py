"""The tool's own health: when a tick fails, the default channel hears it once per failure
streak, and hears "working again" when a tick succeeds after it.

The record lives in `state/health.yaml`, apart from state.yaml, so a state file that
cannot be read does not silence it; it exists only while the tool is failing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from triage.errors import ApiError
from triage.render import HealthContext, Renderer
from triage.slack import CHANNEL_ID, SlackClient, message_metadata
from triage.times import human_time, parse_iso_time, tick_time

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    failing_since: str | None = None  # when the streak of failed ticks began
    error: str = ""
    channel: str | None = None  # where the health message went, to reply in its thread
    ts: str | None = None
    sent_at: str | None = None  # the "cannot run" message was being sent then: no ts yet means its answer was lost


def health_change(previous: Health, failure: str | None) -> str | None:
    """`failing` when a streak of failed ticks starts, `recovered` when it ends, else None."""
    if failure is not None and previous.failing_since is None:
        return "failing"
    if failure is not None and previous.ts is None and previous.sent_at is not None:
        return "unconfirmed"  # still failing, and whether people were told is not known yet
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
    sent: int = 0,
) -> None:
    """Post or answer the health message as the streak starts or ends, and remember it."""
    previous = load_health(path)
    change = health_change(previous, failure)
    if change is None:
        return
    ctx = HealthContext(
        failed=change != "recovered",
        error=failure or previous.error,
        run_url=link,
        since=previous.failing_since or human_time(now),
        sent=sent,
    )
    message = renderer.slack_health(ctx)
    metadata = message_metadata("health", "hightouch-triage", ctx.since)
    if change == "failing":
        # Journaled first, found in history after a lost answer: told once per streak.
        attempt = Health(ctx.since, failure or "", channel, None, tick_time(now))
        save_health(path, attempt)
        posted = slack.post_message(channel, message.text, message.blocks, metadata=metadata)
        save_health(path, replace(attempt, channel=posted.channel, ts=posted.ts))
        return
    if change == "unconfirmed":
        ts = _found(slack, previous, metadata)
        if ts is None:
            posted = slack.post_message(channel, message.text, message.blocks, metadata=metadata)
            channel, ts = posted.channel, posted.ts
        save_health(path, replace(previous, channel=channel, ts=ts))
        return
    slack.post_message(previous.channel or channel, message.text, message.blocks, thread_ts=previous.ts)
    save_health(path, Health())


def _found(slack: SlackClient, previous: Health, metadata: dict[str, Any]) -> str | None:
    """The ts of the "cannot run" message whose answer was lost, if Slack's history has it."""
    since = parse_iso_time(previous.sent_at)
    channel = previous.channel or ""
    try:
        channel_id = channel if CHANNEL_ID.fullmatch(channel) else slack.find_channel_id(channel)
        if channel_id is None or since is None:
            return None
        return slack.find_sent(channel_id, metadata, since.timestamp())
    except ApiError as exc:  # no history scope, or Slack down: told again, at worst twice
        log.warning("the health message whose answer was lost could not be looked up: %s", exc)
        return None
