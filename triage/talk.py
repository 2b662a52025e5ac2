"""What people say back from Slack, read from the reactions on an incident's first message,
and what time does to an incident (a snooze that ends, a re-notification that is due). Pure:
reactions and the clock in, the incident's next state and what to do about it out.

Guarantees:
- each reaction (emoji and person) is acted on once: the incident remembers it;
- a reaction by the bot itself, or one removed before the tick read it, is not seen;
- an acknowledged, snoozed or muted incident is never re-notified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from triage.config import ReactionsConfig, TalkConfig
from triage.models import Incident
from triage.times import iso_time, parse_iso_time

ACK = "ack"
SNOOZE = "snooze"
MUTE = "mute"
RESOLVE = "resolve"
RETRY = "retry"


@dataclass(frozen=True)
class Answer:
    """One person's reaction, to act on: `kind` is what the emoji means (ack, snooze, …)."""

    kind: str
    user: str
    emoji: str

    @property
    def key(self) -> str:
        return f"{self.emoji} {self.user}"


def answers(
    reactions: Mapping[str, tuple[str, ...]], rules: ReactionsConfig, incident: Incident, bot_user: str | None
) -> list[Answer]:
    """The reactions on the first message not acted on yet, in a stable order (resolve last,
    so a retry or an acknowledgement in the same tick is still shown)."""
    meanings = rules.by_name()
    found = [
        Answer(meanings[emoji], user, emoji)
        for emoji, users in reactions.items()
        if emoji in meanings
        for user in users
        if user != bot_user
    ]
    fresh = [a for a in found if a.key not in incident.answered]
    order = [ACK, SNOOZE, MUTE, RETRY, RESOLVE]
    return sorted(fresh, key=lambda a: order.index(a.kind))


def heard(incident: Incident, answer: Answer, now: datetime, talk: TalkConfig) -> Incident:
    """The incident once `answer` is taken in: remembered, and its effect on who is told."""
    incident = replace(incident, answered=(*incident.answered, answer.key))
    when = iso_time(now)
    if answer.kind == ACK and incident.acked_by is None:
        return replace(incident, acked_by=answer.user, acked_at=when)
    if answer.kind == SNOOZE:
        until = iso_time(now + timedelta(hours=talk.snooze_hours))
        return replace(incident, snoozed_by=answer.user, snoozed_until=until)
    if answer.kind == MUTE:
        return replace(incident, muted_by=answer.user)
    return incident


def snoozed(incident: Incident, now: datetime) -> bool:
    until = parse_iso_time(incident.snoozed_until)
    return until is not None and now < until


def quiet(incident: Incident | None, now: datetime) -> bool:
    """Whether nothing is to be posted for the incident now: snoozed, or muted."""
    return incident is not None and (incident.muted_by is not None or snoozed(incident, now))


def renotify_due(incident: Incident, now: datetime, talk: TalkConfig) -> bool:
    """An incident whose people were pinged and that nobody acknowledged, snoozed or muted
    since: announced again after `renotify_after_minutes`, at most `renotify_max` times."""
    if not incident.threads or incident.acked_by or quiet(incident, now):
        return False
    if any(t.message_ts is not None for t in incident.threads):
        return False  # a storm's or a group's member: its summary, or the group's first message, pinged for it
    if talk.renotify_after_minutes <= 0 or incident.renotified >= talk.renotify_max:
        return False
    last = parse_iso_time(incident.notified_at)
    return last is not None and now - last >= timedelta(minutes=talk.renotify_after_minutes)


def retries_today(retries: tuple[str, ...], now: datetime) -> int:
    """How many runs were triggered for a sync today (UTC): retries are kept as "date run"."""
    day = now.date().isoformat()
    return sum(1 for retry in retries if retry.startswith(day))
