"""The weekly digest: the history of closed incidents, when a digest is due, its numbers and its words."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
import pytest

from triage.digest import (
    DigestContext,
    OpenIncident,
    SyncHealth,
    Tally,
    digest_for,
    due,
    parse_digest_schedule,
)
from triage.history import (
    HISTORY_DAYS,
    ClosedIncident,
    append_closed,
    history_path,
    load_history,
    prune,
)
from triage.render import SHIPPED_TEMPLATES, SLACK_MAX_BLOCKS, SLACK_SECTION_LIMIT, cut, slack_blocks, slack_escape
from triage.render import slack_inline as slack_inline_filter
from triage.times import iso_time

CHANNEL = "#data-alerts"
# A week of digests: Monday 16 November 2026 09:00 UTC to Monday 23 November 09:00 UTC.
WEEK_START = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
WEEK_END = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
NOW = WEEK_END + timedelta(minutes=7)  # the first tick after the scheduled time


def utc(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def closed(
    sync_id: str = "1",
    name: str = "salesforce-contacts",
    opened: datetime | None = None,
    closed_at: datetime | None = None,
    **kw: Any,
) -> ClosedIncident:
    fields: dict[str, Any] = {
        "channels": (CHANNEL,),
        "ended": "recovered",
        "cause": "Salesforce said: INVALID_EMAIL",
        "severity": "warning",
        **kw,
    }
    return ClosedIncident(
        sync_id=sync_id,
        sync_name=name,
        opened_at=iso_time(opened or utc(17, 10)) or "",
        closed_at=iso_time(closed_at or utc(17, 12)) or "",
        **fields,
    )


def still_open(sync_id: str, name: str, opened: datetime, **kw: Any) -> OpenIncident:
    return OpenIncident(sync_id=sync_id, sync_name=name, channels=(CHANNEL,), opened_at=iso_time(opened), **kw)


# -- the history file ---------------------------------------------------------


def test_closed_incidents_round_trip_through_the_history_file(tmp_path: Path) -> None:
    path = history_path(tmp_path / "state" / "state.yaml")
    first = closed(acked_at=iso_time(utc(17, 10, 10)), acked_by="U024BE7LH", error_class="rows", muted=True)
    second = closed("2", "hubspot-deals", utc(18, 1), utc(18, 2), ended="healed", severity="critical", snoozed=True)
    assert append_closed(path, first) is None
    assert append_closed(path, second) is None

    records, warning = load_history(path, NOW)

    assert path == tmp_path / "state" / "incidents.jsonl"
    assert (records, warning) == ([first, second], None)


def test_each_closed_incident_is_one_line_with_sorted_keys(tmp_path: Path) -> None:
    path = tmp_path / "incidents.jsonl"
    append_closed(path, closed())
    append_closed(path, closed("2", "hubspot-deals"))

    lines = path.read_text(encoding="utf-8").splitlines()

    assert len(lines) == 2
    keys = list(json.loads(lines[0]))
    assert keys == sorted(keys)
    assert json.loads(lines[1])["sync_name"] == "hubspot-deals"


def test_the_history_keeps_the_last_90_days_and_prune_drops_older_lines(tmp_path: Path) -> None:
    path = tmp_path / "incidents.jsonl"
    old = closed(
        "1", opened=NOW - timedelta(days=HISTORY_DAYS, hours=2), closed_at=NOW - timedelta(days=HISTORY_DAYS, hours=1)
    )
    recent = closed("2", opened=NOW - timedelta(days=3), closed_at=NOW - timedelta(days=2))
    append_closed(path, old)
    append_closed(path, recent)

    assert load_history(path, NOW) == ([recent], None)  # read bounded before any prune

    assert prune(path, NOW) is None
    assert path.read_text(encoding="utf-8").count("\n") == 1
    assert load_history(path, NOW - timedelta(days=30)) == ([recent], None)  # the old line is gone for good
    assert [p.name for p in tmp_path.iterdir()] == ["incidents.jsonl"]  # no temp file left behind


def test_prune_leaves_a_file_with_nothing_to_drop_untouched(tmp_path: Path) -> None:
    path = tmp_path / "incidents.jsonl"
    append_closed(path, closed())
    before = os.stat(path)

    assert prune(path, NOW) is None

    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_corrupt_line_is_left_out_with_a_warning_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "incidents.jsonl"
    append_closed(path, closed("1"))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"sync_id": "2", "ended": "exploded"}\n<<<<<<< HEAD\n')
    append_closed(path, closed("3"))

    records, warning = load_history(path, NOW)

    assert [r.sync_id for r in records] == ["1", "3"]
    assert warning is not None and "2 lines" in warning and str(path) in warning
    assert prune(path, NOW) is None  # the next prune starts the new history: what parsed
    assert load_history(path, NOW) == (records, None)


def test_a_corrupt_file_starts_a_new_history_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "incidents.jsonl"
    path.write_bytes(b"\x00\xff\xfe not json at all\n[1, 2, 3]\n")

    records, warning = load_history(path, NOW)

    assert records == []
    assert warning is not None and "corrupt" in warning
    assert append_closed(path, closed()) is None  # the tick carries on recording
    assert prune(path, NOW) is None
    assert load_history(path, NOW) == ([closed()], None)


def test_an_append_after_a_torn_last_line_stays_whole(tmp_path: Path) -> None:
    path = tmp_path / "incidents.jsonl"
    append_closed(path, closed("1"))
    with open(path, "ab") as handle:
        handle.write(b'{"sync_id": "2", "sync_na')  # a crash mid-write

    append_closed(path, closed("3"))
    records, warning = load_history(path, NOW)

    assert [r.sync_id for r in records] == ["1", "3"]
    assert warning is not None and "1 line" in warning


def test_a_missing_history_is_empty_without_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "state" / "incidents.jsonl"

    assert load_history(path, NOW) == ([], None)
    assert prune(path, NOW) is None
    assert not path.exists()  # nothing to commit until an incident closes


def test_an_unreadable_history_is_a_warning_never_an_error(tmp_path: Path) -> None:
    path = tmp_path / "incidents.jsonl"
    path.mkdir()  # whatever it is, it cannot be read as a file

    records, warning = load_history(path, NOW)

    assert records == [] and warning is not None and "cannot read" in warning
    written = append_closed(path, closed())
    assert written is not None and "sync 1" in written


# -- the schedule -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "weekday", "at"),
    [("mon 09:00", 0, "09:00"), ("Friday 7:30", 4, "07:30"), ("daily 23:59", None, "23:59"), ("SUN 00:00", 6, "00:00")],
)
def test_the_schedule_parses_weekly_and_daily_times(text: str, weekday: int | None, at: str) -> None:
    schedule = parse_digest_schedule(text, "Europe/Berlin")

    assert schedule is not None
    assert (schedule.weekday, f"{schedule.at:%H:%M}", schedule.zone.key) == (weekday, at, "Europe/Berlin")
    assert schedule.cadence == ("daily" if weekday is None else "weekly")


def test_an_empty_schedule_turns_the_digest_off() -> None:
    assert parse_digest_schedule("") is None
    assert parse_digest_schedule("   ", "UTC") is None


@pytest.mark.parametrize(
    ("text", "timezone", "names"),
    [
        ("mon", "UTC", "expected a day and a time"),
        ("mon 09:00 utc", "UTC", "expected a day and a time"),
        ("funday 09:00", "UTC", "unknown day 'funday'"),
        ("weekly 09:00", "UTC", "unknown day 'weekly'"),
        ("mon 24:00", "UTC", "'24:00' is not a time of day"),
        ("mon 9am", "UTC", "'9am' is not a time of day"),
        ("mon 09:00", "Mars/Olympus", "digest.timezone 'Mars/Olympus': unknown time zone"),
        ("mon 09:00", "Europe", "unknown time zone"),
        ("mon 09:00", "", "unknown time zone"),
        ("", "Europe/Berln", "unknown time zone"),  # a typo is caught even while the digest is off
    ],
)
def test_the_schedule_rejects_bad_text_naming_the_problem(text: str, timezone: str, names: str) -> None:
    with pytest.raises(ValueError, match="digest") as raised:
        parse_digest_schedule(text, timezone)

    assert names in str(raised.value)


# -- when a digest is due -----------------------------------------------------


def test_a_digest_is_due_once_per_scheduled_time() -> None:
    schedule = parse_digest_schedule("mon 09:00")
    assert schedule is not None

    assert due(schedule, WEEK_START, WEEK_END - timedelta(minutes=8)) is None  # Monday 08:52: not yet
    period = due(schedule, WEEK_START, NOW)
    assert period == (WEEK_START, WEEK_END)
    last = period[1]  # what the tick records after posting
    assert due(schedule, last, NOW + timedelta(minutes=15)) is None
    assert due(schedule, last, WEEK_END + timedelta(days=6, hours=23)) is None
    assert due(schedule, last, WEEK_END + timedelta(days=7, minutes=7)) == (WEEK_END, WEEK_END + timedelta(days=7))


def test_the_first_digest_covers_the_time_since_the_previous_scheduled_time() -> None:
    weekly, daily = parse_digest_schedule("mon 09:00"), parse_digest_schedule("daily 09:00")
    assert weekly is not None and daily is not None

    assert due(weekly, None, NOW) == (WEEK_START, WEEK_END)
    assert due(daily, None, NOW) == (WEEK_END - timedelta(days=1), WEEK_END)
    assert due(weekly, None, utc(25, 14)) == (WEEK_START, WEEK_END)  # a Wednesday: last Monday's is due


def test_a_monday_0900_in_berlin_is_due_at_0800_utc_in_winter_and_0700_in_summer() -> None:
    schedule = parse_digest_schedule("mon 09:00", "Europe/Berlin")
    assert schedule is not None

    winter = utc(23, 8)  # CET, UTC+1
    assert due(schedule, winter - timedelta(days=7), winter - timedelta(minutes=1)) is None
    assert due(schedule, winter - timedelta(days=7), winter + timedelta(minutes=7)) == (
        winter - timedelta(days=7),
        winter,
    )
    summer = datetime(2026, 6, 15, 7, 0, tzinfo=UTC)  # CEST, UTC+2
    assert due(schedule, None, summer + timedelta(minutes=7)) == (summer - timedelta(days=7), summer)


def test_the_week_across_a_dst_change_ends_at_0900_local_and_lasts_an_hour_longer() -> None:
    schedule = parse_digest_schedule("mon 09:00", "Europe/Berlin")
    assert schedule is not None
    before = datetime(2026, 10, 19, 7, 0, tzinfo=UTC)  # Monday 09:00 CEST; clocks go back on 25 October

    start, end = due(schedule, before, datetime(2026, 10, 26, 8, 7, tzinfo=UTC)) or (None, None)

    assert (start, end) == (before, datetime(2026, 10, 26, 8, 0, tzinfo=UTC))


def test_a_monday_digest_in_auckland_is_due_on_sunday_evening_utc() -> None:
    schedule = parse_digest_schedule("mon 09:00", "Pacific/Auckland")
    assert schedule is not None
    sunday_evening = utc(22, 20)  # Monday 23 November 09:00 NZDT (UTC+13)

    assert due(schedule, sunday_evening - timedelta(days=7), sunday_evening - timedelta(minutes=1)) is None
    assert due(schedule, sunday_evening - timedelta(days=7), sunday_evening) == (
        sunday_evening - timedelta(days=7),
        sunday_evening,
    )


def test_missed_ticks_catch_up_with_one_digest_for_the_whole_gap() -> None:
    schedule = parse_digest_schedule("mon 09:00")
    assert schedule is not None
    last = WEEK_START - timedelta(days=14)  # three scheduled times passed without a tick

    period = due(schedule, last, utc(25, 14))  # ticks come back on a Wednesday

    assert period == (last, WEEK_END)
    assert due(schedule, WEEK_END, utc(25, 14, 15)) is None  # and not once per missed slot


def test_a_digest_never_reaches_further_back_than_the_history() -> None:
    schedule = parse_digest_schedule("daily 09:00")
    assert schedule is not None

    period = due(schedule, WEEK_END - timedelta(days=400), NOW)

    assert period == (WEEK_END - timedelta(days=HISTORY_DAYS), WEEK_END)


# -- what the digest says -----------------------------------------------------


def week_of_incidents() -> tuple[list[ClosedIncident], list[OpenIncident]]:
    """A small hand-made week in #data-alerts (and one incident of another channel)."""
    records = [
        # Salesforce twice: acknowledged in 10 and 30 minutes, recovered in 2 h, resolved by a person in 1 h.
        closed(
            "1",
            opened=utc(17, 10),
            closed_at=utc(17, 12),
            acked_at=iso_time(utc(17, 10, 10)),
            severity="critical",
            cause="Salesforce said: INVALID_EMAIL on row 12",
        ),
        closed(
            "1",
            opened=utc(18, 10),
            closed_at=utc(18, 11),
            acked_at=iso_time(utc(18, 10, 30)),
            ended="resolved",
            cause="Salesforce said: INVALID_EMAIL on row 40",
        ),
        # HubSpot: one incident from before the week that closed in it (12 h of it), one of a day.
        closed(
            "2",
            "hubspot-deals",
            utc(15, 9),
            utc(16, 21),
            acked_at=iso_time(utc(15, 9, 5)),
            cause="HubSpot answered 502",
        ),
        closed("2", "hubspot-deals", utc(19, 0), utc(20, 0), cause="HubSpot answered 502"),
        # Braze: a transient failure healed by its retry in 15 minutes; nobody was told.
        closed("3", "braze-users", utc(20, 10), utc(20, 10, 15), ended="healed", cause="Braze timed out"),
        # Another channel's incident: not this digest's business.
        closed("4", "marketo-leads", utc(18, 0), utc(21, 0), channels=("#crm",)),
    ]
    open_incidents = [
        still_open(
            "5",
            "snowflake-orders",
            utc(22, 9),
            acked_at=iso_time(utc(22, 10)),
            muted=True,
            cause="Warehouse unreachable",
        ),
        still_open(
            "6", "iterable-events", utc(23, 8), snoozed_until=iso_time(utc(23, 12)), cause="Warehouse unreachable"
        ),
        OpenIncident("7", "zendesk-tickets", ("#crm",), iso_time(utc(20, 0)), muted=True),
    ]
    return records, open_incidents


def test_the_digest_counts_incidents_opened_and_closed_in_its_period() -> None:
    records, open_incidents = week_of_incidents()

    digest = digest_for(CHANNEL, records, open_incidents, (WEEK_START, WEEK_END), NOW)

    assert (digest.opened, digest.critical, digest.closed, digest.resolved, digest.still_open) == (5, 1, 4, 1, 2)
    assert digest.healed == 1
    assert (digest.cadence, digest.length, digest.channel_id) == ("weekly", "7 d", "")


def test_mtta_and_mttr_are_the_median_and_worst_of_the_period() -> None:
    records, open_incidents = week_of_incidents()

    digest = digest_for(CHANNEL, records, open_incidents, (WEEK_START, WEEK_END), NOW)

    # Acknowledged in the week: 10 min, 30 min and 1 h (the one from the 15th was acknowledged before it).
    assert (digest.acknowledged, digest.mtta_median, digest.mtta_worst) == (3, "30 min", "1 h")
    # Closed in the week: 2 h, 1 h, 36 h and 24 h — the median is halfway between 2 h and 24 h.
    assert (digest.mttr_median, digest.mttr_worst) == ("13 h", "1 d 12 h")


def test_the_health_of_each_sync_is_its_share_of_the_period_without_an_incident() -> None:
    records, open_incidents = week_of_incidents()

    digest = digest_for(CHANNEL, records, open_incidents, (WEEK_START, WEEK_END), NOW)

    assert digest.health == (
        SyncHealth("hubspot-deals", "78.5%", "1 d 12 h"),  # 12 h of the one before the week, then a day
        SyncHealth("snowflake-orders", "85.7%", "1 d"),  # still open: counted to the period's end
        SyncHealth("salesforce-contacts", "98.2%", "3 h"),
        SyncHealth("iterable-events", "99.4%", "1 h"),
        SyncHealth("braze-users", "99.8%", "15 min"),  # healed, but the sync did fail for that while
    )
    assert digest.health_more == 0


def test_the_noisiest_syncs_and_causes_come_first() -> None:
    records, open_incidents = week_of_incidents()

    digest = digest_for(CHANNEL, records, open_incidents, (WEEK_START, WEEK_END), NOW)

    assert digest.noisy_syncs == (
        Tally("salesforce-contacts", 2),
        Tally("hubspot-deals", 1),
        Tally("iterable-events", 1),
        Tally("snowflake-orders", 1),
    )
    # Causes are counted with ids and numbers set aside, and shown by their latest real line.
    assert digest.noisy_causes == (
        Tally("Salesforce said: INVALID_EMAIL on row 40", 2),
        Tally("Warehouse unreachable", 2),
        Tally("HubSpot answered 502", 1),
    )


def test_mutes_and_snoozes_in_force_are_listed_and_an_expired_snooze_is_not() -> None:
    records, open_incidents = week_of_incidents()

    digest = digest_for(CHANNEL, records, open_incidents, (WEEK_START, WEEK_END), NOW)
    later = digest_for(CHANNEL, records, open_incidents, (WEEK_START, WEEK_END), utc(23, 12, 1))

    assert [s.name for s in digest.muted] == ["snowflake-orders"]  # #crm's muted incident is not listed
    assert [(s.name, "12:00 UTC" in s.until) for s in digest.snoozed] == [("iterable-events", True)]
    assert later.snoozed == ()


def test_overlapping_incidents_of_one_sync_are_down_time_counted_once() -> None:
    records = [
        closed("1", opened=utc(17, 0), closed_at=utc(17, 12)),
        closed("1", opened=utc(17, 6), closed_at=utc(17, 18)),
    ]

    digest = digest_for(CHANNEL, records, [], (WEEK_START, WEEK_END), NOW)

    assert digest.health[0].down == "18 h"


def test_a_quiet_period_says_so() -> None:
    digest = digest_for("C0123ABCD", [], [], (WEEK_END - timedelta(days=1), WEEK_END), NOW, cadence="daily")

    assert (digest.opened, digest.closed, digest.health, digest.noisy_syncs) == (0, 0, (), ())
    assert (digest.mtta_median, digest.mttr_worst, digest.channel_id) == ("n/a", "n/a", "C0123ABCD")


# -- the words ----------------------------------------------------------------


def environment() -> jinja2.Environment:
    """As the project's Renderer builds it: sandboxed, strict, with the escaping filters."""
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(SHIPPED_TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(slack=slack_escape, slack_inline=slack_inline_filter, cut=cut)
    return env


def render(ctx: DigestContext) -> str:
    return environment().get_template("slack_digest.md.j2").render(ctx=ctx, **vars(ctx)).strip()


def test_the_digest_of_a_busy_week_renders_every_section() -> None:
    records, open_incidents = week_of_incidents()
    digest = digest_for(CHANNEL, records, open_incidents, (WEEK_START, WEEK_END), NOW)

    text = render(digest)

    assert text.splitlines()[0] == (
        ":bar_chart: *hightouch-triage weekly digest for #data-alerts* — 5 incidents opened, 4 closed"
    )
    for words in (
        "*Time to acknowledge:* median 30 min, worst 1 h (3 acknowledged)",
        "*Time to recover:* median 13 h, worst 1 d 12 h (4 closed)",
        "• hubspot-deals — 78.5% healthy (1 d 12 h in an incident)",
        "• salesforce-contacts — 2 incidents",
        "• `Warehouse unreachable` — 2",
        "*Retries that healed:* 1 failure fixed by an automatic retry",
        "• :no_bell: snowflake-orders — muted until it recovers",
        "• :zzz: iterable-events — snoozed until <!date^",
    ):
        assert words in text
    assert "1 critical · 1 resolved by a person · 2 still open" in text


def test_the_digest_of_a_quiet_period_renders_without_empty_sections() -> None:
    digest = digest_for("C0123ABCD", [], [], (WEEK_END - timedelta(days=1), WEEK_END), NOW, cadence="daily")

    text = render(digest)

    assert (
        text.splitlines()[0]
        == ":bar_chart: *hightouch-triage daily digest for <#C0123ABCD>* — 0 incidents opened, 0 closed"
    )
    assert "every sync was healthy the whole period" in text
    assert "*Retries that healed:* none" in text
    assert "*Muted and snoozed now:* none" in text
    assert "Noisiest" not in text


def test_hightouch_values_in_the_digest_are_escaped_and_it_fits_slacks_limits() -> None:
    hostile = "<!channel> *urgent* " + "x" * 300
    records = [
        closed(str(i), f"{hostile}-{i}", utc(17, i % 24), utc(18, i % 24), cause=f"`boom` <!here> {hostile} {i}")
        for i in range(40)
    ]
    open_incidents = [
        still_open(str(100 + i), f"{hostile}-{i}", utc(22, 0), muted=i % 2 == 0, snoozed_until=iso_time(utc(24, 0)))
        for i in range(30)
    ]
    digest = digest_for(CHANNEL, records, open_incidents, (WEEK_START, WEEK_END), NOW)

    text = render(digest)
    blocks = slack_blocks(text)

    assert "<!channel>" not in text and "<!here>" not in text
    assert "&lt;!channel&gt;" in text
    assert "+60 more syncs with an incident" in text  # 70 syncs, 10 listed
    assert "+5 more muted" in text and "+5 more snoozed" in text
    assert len(blocks) <= SLACK_MAX_BLOCKS
    assert all(len(b["text"]["text"]) <= SLACK_SECTION_LIMIT for b in blocks)
    assert len(text) < 8000  # short enough to read


def test_a_renamed_sync_is_shown_by_its_latest_name() -> None:
    records = [closed("1", "old-name", utc(17, 0), utc(17, 1)), closed("1", "new-name", utc(18, 0), utc(18, 1))]

    digest = digest_for(CHANNEL, records, [], (WEEK_START, WEEK_END), NOW)

    assert [t.name for t in digest.noisy_syncs] == ["new-name"]
    assert digest.health == (SyncHealth("new-name", "98.8%", "2 h"),)
