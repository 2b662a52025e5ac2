"""The digest: when it is due, and what it says about one channel's syncs over its period.

Pure: schedules, times, closed incidents (triage.history) and open ones in, plain values out.
Nothing here reads the clock, the disk or the network; the tick decides when to call it and
what to record after posting.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from triage.history import HISTORY_DAYS, ClosedIncident, Severity
from triage.signature import error_key, first_line
from triage.slack_ids import CHANNEL_ID
from triage.times import duration_text, parse_iso_time, slack_time

Cadence = Literal["weekly", "daily"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})")

TOP_HEALTH = 10  # syncs listed by health
TOP_NOISY = 5  # syncs, and causes, listed as the noisiest
TOP_SILENCED = 10  # mutes, and snoozes, listed by name
NONE = "n/a"  # a time to acknowledge or recover when nothing was acknowledged or recovered


# -- the schedule -------------------------------------------------------------


@dataclass(frozen=True)
class DigestSchedule:
    """When digests are due: every week on `weekday`, or every day, at `at` in `zone`."""

    weekday: int | None  # 0 = Monday … 6 = Sunday; None: every day
    at: time
    zone: ZoneInfo

    @property
    def cadence(self) -> Cadence:
        return "daily" if self.weekday is None else "weekly"

    def describe(self) -> str:
        """For people and logs: `weekly on Monday at 09:00 (Europe/Berlin)`."""
        when = "daily" if self.weekday is None else f"weekly on {_DAY_NAMES[self.weekday].capitalize()}"
        return f"{when} at {self.at:%H:%M} ({self.zone.key})"


def parse_digest_schedule(text: str, timezone: str = "UTC") -> DigestSchedule | None:
    """config's `digest.schedule` and `digest.timezone`: `"mon 09:00"` (weekly; a day's three
    letters or its full name, any case), `"daily 09:00"`, or `""` (off: None). The time zone is
    an IANA name, checked even when the digest is off, so a typo fails `validate` at once.
    Raises ValueError naming the key, the value and what is allowed."""
    zone = _zone(timezone)
    words = text.split()
    if not words:
        return None
    example = 'e.g. "mon 09:00" (weekly), "daily 09:00", or "" (off)'
    if len(words) != 2:
        raise ValueError(f"digest.schedule {text!r}: expected a day and a time of day, {example}")
    day, clock = words[0].lower(), words[1]
    if day == "daily":
        weekday = None
    elif day in WEEKDAYS:
        weekday = WEEKDAYS.index(day)
    elif day in _DAY_NAMES:
        weekday = _DAY_NAMES.index(day)
    else:
        raise ValueError(
            f"digest.schedule {text!r}: unknown day {words[0]!r} (one of {', '.join(WEEKDAYS)}, or daily); {example}"
        )
    match = _TIME_OF_DAY.fullmatch(clock)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"digest.schedule {text!r}: {clock!r} is not a time of day (HH:MM, 00:00 to 23:59)")
    return DigestSchedule(weekday=weekday, at=time(int(match[1]), int(match[2])), zone=zone)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ZoneInfo raises a KeyError for an unknown name, a ValueError for a malformed one (""
        # or ../x) and on some systems an OSError for a folder of zones: to a person, one mistake.
        raise ValueError(
            f"digest.timezone {name!r}: unknown time zone (an IANA name such as Europe/Berlin, or UTC)"
        ) from None


def due(schedule: DigestSchedule, last_digest_at: datetime | None, now: datetime) -> tuple[datetime, datetime] | None:
    """The period (start, end), in UTC, that a digest posted now reports; None when none is due.

    `end` is the latest scheduled time at or before `now`; a digest is due when that time is
    later than `last_digest_at`, which is the `end` of the last digest posted (record it after
    posting). So each scheduled time gives at most one digest, ticks that were missed give one
    digest at the next tick (covering everything since the last), and the periods follow one
    another without gap or overlap. The first digest ever (`last_digest_at` None) covers the
    time since the scheduled time before `end`. A period never reaches further back than the
    history keeps (`HISTORY_DAYS`). `now` and `last_digest_at` must be time-zone aware."""
    end = _latest_slot(schedule, now)
    if last_digest_at is None:
        start = _latest_slot(schedule, end - timedelta(microseconds=1))
    elif end <= last_digest_at:
        return None
    else:
        start = last_digest_at.astimezone(UTC)
    return max(start, end - timedelta(days=HISTORY_DAYS)), end


def _latest_slot(schedule: DigestSchedule, moment: datetime) -> datetime:
    """The latest scheduled time at or before `moment`, in UTC."""
    return next(_slots_back(schedule, moment))


def _slots_back(schedule: DigestSchedule, moment: datetime) -> Iterator[datetime]:
    """Scheduled times at or before `moment`, latest first, in UTC. Each is the wall-clock
    time in the schedule's zone, so 09:00 stays 09:00 for its readers across DST changes."""
    day = moment.astimezone(schedule.zone).date()
    while True:
        if schedule.weekday is None or day.weekday() == schedule.weekday:
            # Compared in UTC: aware datetimes sharing a tzinfo compare by wall clock alone,
            # which is wrong in the hour a DST change repeats.
            slot = datetime.combine(day, schedule.at, tzinfo=schedule.zone).astimezone(UTC)
            if slot <= moment:
                yield slot
        day -= timedelta(days=1)


# -- what the digest says -----------------------------------------------------


@dataclass(frozen=True)
class OpenIncident:
    """An incident still open when the digest is made, as far as the digest needs it."""

    sync_id: str
    sync_name: str
    channels: tuple[str, ...]  # as configured (#data-alerts), like Thread.channel
    opened_at: str | None  # its first failed run (None: unknown, then it is left out of the numbers)
    acked_at: str | None = None
    muted: bool = False  # muted until it recovers
    snoozed_until: str | None = None  # snoozed until then (in force while later than now)
    cause: str = ""  # a short error line, as Hightouch wrote it
    severity: Severity = "warning"


@dataclass(frozen=True)
class SyncHealth:
    """One sync's share of the period without an incident."""

    name: str
    healthy: str  # "97.3%", rounded down: a sync that failed at all never shows 100%
    down: str  # how long it had an incident in the period: "4 h 30 min"


@dataclass(frozen=True)
class Tally:
    """A name and how many incidents it had: a sync, or a cause (a real error line of it)."""

    name: str
    count: int


@dataclass(frozen=True)
class Silenced:
    """An open incident nobody is told about for now: muted until it recovers, or snoozed."""

    name: str
    since: str  # when it opened, for Slack (each reader's own time zone)
    until: str  # a snooze's end, for Slack ("" for a mute: it lasts until the recovery)


@dataclass(frozen=True)
class DigestContext:
    """What the digest template shows for one channel and one period: plain values only.

    Incidents are the ones people were told of (recovered, resolved or still open); those an
    automatic retry healed before anyone was told count only under `healed` and in the
    health shares (the sync did fail for that while). A period is [start, end): an incident
    opened or closed exactly at `end` belongs to the next digest."""

    channel: str  # as configured: "#data-alerts" or a channel id
    channel_id: str  # the same when it is a Slack channel id (C…), for a <#C…> link; else ""
    cadence: str  # weekly | daily
    since: str  # the period's start, for Slack (each reader's own time zone)
    until: str  # the period's end, likewise
    length: str  # how long the period is: "7 d"
    opened: int  # incidents opened in the period
    critical: int  # of those, the critical ones
    closed: int  # incidents closed in the period (recovered or resolved)
    resolved: int  # of those, the ones a person closed
    still_open: int  # incidents open now, whenever they opened
    acknowledged: int  # incidents acknowledged in the period
    mtta_median: str  # time to acknowledge, over those: "12 min", or "n/a"
    mtta_worst: str
    mttr_median: str  # time to recover (or be resolved), over the incidents closed in the period
    mttr_worst: str
    health: tuple[SyncHealth, ...]  # the least healthy first, at most TOP_HEALTH
    health_more: int  # syncs with an incident in the period not listed
    noisy_syncs: tuple[Tally, ...]  # most incidents opened first, at most TOP_NOISY
    noisy_causes: tuple[Tally, ...]  # likewise, by cause
    healed: int  # failures an automatic retry healed before anyone was told
    muted: tuple[Silenced, ...]  # in force now, at most TOP_SILENCED
    muted_more: int
    snoozed: tuple[Silenced, ...]  # in force now, at most TOP_SILENCED
    snoozed_more: int


@dataclass(frozen=True)
class _Spell:
    """An incident, closed or open, as the numbers need it: times parsed, kinds uniform."""

    sync_id: str
    name: str
    opened: datetime
    closed: datetime | None  # None: still open
    acked: datetime | None
    cause: str
    severity: str
    ended: str  # recovered | resolved | healed | open


def digest_for(
    channel: str,
    records: Iterable[ClosedIncident],
    open_incidents: Iterable[OpenIncident],
    period: tuple[datetime, datetime],
    now: datetime,
    *,
    cadence: Cadence = "weekly",
) -> DigestContext:
    """The digest of `channel` (as configured) for `period` (from `due`), from the closed
    incidents of the history and the incidents open `now`; only those whose channels include
    `channel` count. Deterministic: ties are broken by name."""
    start, end = period
    records, open_incidents = tuple(records), tuple(open_incidents)  # each is read twice
    spells = sorted(_spells(channel, records, open_incidents), key=lambda s: (s.opened, s.sync_id))
    told = [s for s in spells if s.ended != "healed"]
    opened = [s for s in told if start <= s.opened < end]
    closed = [s for s in told if s.closed is not None and start <= s.closed < end]
    acked = [s for s in told if s.acked is not None and start <= s.acked < end]
    tta = [_seconds(s.opened, s.acked) for s in acked if s.acked is not None]
    ttr = [_seconds(s.opened, s.closed) for s in closed if s.closed is not None]
    names = {s.sync_id: s.name for s in spells}  # the latest name each sync had
    health = _health(spells, names, start, end, now)
    silenced = [s for s in open_incidents if channel in s.channels]
    muted = [_silenced(s, "") for s in silenced if s.muted]
    snoozed = [
        _silenced(s, slack_time(until))
        for s in silenced
        if not s.muted and (until := parse_iso_time(s.snoozed_until)) is not None and until > now
    ]
    return DigestContext(
        channel=channel,
        channel_id=channel if CHANNEL_ID.fullmatch(channel) else "",
        cadence=cadence,
        since=slack_time(start),
        until=slack_time(end),
        length=duration_text((end - start).total_seconds()),
        opened=len(opened),
        critical=sum(1 for s in opened if s.severity == "critical"),
        closed=len(closed),
        resolved=sum(1 for s in closed if s.ended == "resolved"),
        still_open=sum(1 for s in told if s.closed is None),
        acknowledged=len(acked),
        mtta_median=_median(tta),
        mtta_worst=_worst(tta),
        mttr_median=_median(ttr),
        mttr_worst=_worst(ttr),
        health=tuple(health[:TOP_HEALTH]),
        health_more=max(0, len(health) - TOP_HEALTH),
        noisy_syncs=_top(Counter(s.sync_id for s in opened), names),
        noisy_causes=_top_causes(opened),
        healed=sum(1 for s in spells if s.ended == "healed" and s.closed is not None and start <= s.closed < end),
        muted=tuple(muted[:TOP_SILENCED]),
        muted_more=max(0, len(muted) - TOP_SILENCED),
        snoozed=tuple(snoozed[:TOP_SILENCED]),
        snoozed_more=max(0, len(snoozed) - TOP_SILENCED),
    )


def _spells(
    channel: str, records: Iterable[ClosedIncident], open_incidents: Iterable[OpenIncident]
) -> Iterator[_Spell]:
    for r in records:
        opened, closed = parse_iso_time(r.opened_at), parse_iso_time(r.closed_at)
        if channel in r.channels and opened is not None and closed is not None:
            acked = parse_iso_time(r.acked_at)
            yield _Spell(r.sync_id, r.sync_name, opened, closed, acked, r.cause, r.severity, r.ended)
    for o in open_incidents:
        opened = parse_iso_time(o.opened_at)
        if channel in o.channels and opened is not None:
            acked = parse_iso_time(o.acked_at)
            yield _Spell(o.sync_id, o.sync_name, opened, None, acked, o.cause, o.severity, "open")


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())  # clocks disagree at times: never a negative span


def _median(spans: Sequence[float]) -> str:
    return duration_text(statistics.median(spans)) if spans else NONE


def _worst(spans: Sequence[float]) -> str:
    return duration_text(max(spans)) if spans else NONE


def _health(
    spells: list[_Spell], names: dict[str, str], start: datetime, end: datetime, now: datetime
) -> list[SyncHealth]:
    """Each sync with an incident overlapping the period, least healthy first. Its time down
    is the union of its incidents clipped to the period (an open one lasts until now), so
    overlapping records never count twice."""
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for s in spells:
        low, high = max(s.opened, start), min(s.closed or now, end)
        if low < high:
            spans.setdefault(s.sync_id, []).append((low, high))
    length = (end - start).total_seconds()
    rows: list[tuple[float, str, SyncHealth]] = []
    for sync_id, intervals in spans.items():
        down = _union_seconds(intervals)
        share = 1 - down / length if length > 0 else 1.0
        name = names[sync_id]
        row = SyncHealth(name=name, healthy=_percent(share), down=duration_text(down))
        rows.append((-down, name, row))
    return [row for _, _, row in sorted(rows, key=lambda r: (r[0], r[1]))]


def _union_seconds(intervals: list[tuple[datetime, datetime]]) -> float:
    total, reach = 0.0, None
    for low, high in sorted(intervals):
        if reach is not None and low < reach:
            low = reach  # the part already counted by an earlier interval
        if high > low:
            total += (high - low).total_seconds()
            reach = high
    return total


def _percent(share: float) -> str:
    # Rounded down, so a sync that failed for a minute of a week reads 99.9%, never 100.0%.
    return f"{math.floor(share * 1000) / 10:.1f}%"


def _top(counts: Counter[str], names: dict[str, str]) -> tuple[Tally, ...]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], names[item[0]]))
    return tuple(Tally(names[sync_id], count) for sync_id, count in ranked[:TOP_NOISY])


def _top_causes(spells: list[_Spell]) -> tuple[Tally, ...]:
    """Causes counted by their error key (ids and numbers set aside, as cause groups do), each
    shown by the latest real error line of it: the key is for counting, never for reading."""
    counts: Counter[str] = Counter()
    shown: dict[str, str] = {}
    for s in spells:  # oldest first: the latest line wins
        key = error_key(s.cause)
        counts[key] += 1
        shown[key] = first_line(s.cause) or "no error message"
    ranked = sorted(counts.items(), key=lambda item: (-item[1], shown[item[0]]))
    return tuple(Tally(shown[key], count) for key, count in ranked[:TOP_NOISY])


def _silenced(incident: OpenIncident, until: str) -> Silenced:
    return Silenced(name=incident.sync_name, since=slack_time(parse_iso_time(incident.opened_at)), until=until)
