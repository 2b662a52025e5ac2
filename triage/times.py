"""Every way the tool writes or reads a time, in one place: state (ISO 8601, UTC), people
(`2026-11-23 09:10 UTC`), Slack (`<!date^…>`, shown in each reader's own time zone) and
spans (`2 h 15 min`)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_time(moment: datetime | None) -> str | None:
    """A time as state.yaml keeps it: ISO 8601 in UTC, at full precision (it is compared)."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def tick_time(moment: datetime) -> str:
    """A tick's own time in state (last_tick_at, full_listing_at): to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_time(value: str | None) -> datetime | None:
    """A time read back from state or an API (any ISO 8601 form); None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def human_time(moment: datetime | None, missing: str = "n/a") -> str:
    """A time for people who read it anywhere (Linear, logs): `2026-11-23 09:10 UTC`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else missing


def slack_time(moment: datetime | None, missing: str = "") -> str:
    """A time in Slack mrkdwn that each reader sees in their own time zone, with the UTC
    text as the fallback Slack shows where it cannot format it."""
    if moment is None:
        return missing
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{human_time(moment)}>"


def duration_text(seconds: float) -> str:
    """A span for people: 45 s, 12 min, 2 h 15 min, 3 d 4 h."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} s"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
