"""Talking back from Slack: reactions on an incident's first message acknowledge, snooze,
mute, resolve and retry it; an unanswered incident is re-announced; a watchdog message is
always pending. Told through the sandbox, tick by tick."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from tests.sandboxed import START, Workspace, mounted
from tests.slack_payloads import is_health, replies, text_of
from triage.sandbox import World

CONFIG = 'slack:\n  channel: "#data-alerts"\n  mention: [S0DATATEAM]\n'


def first_message(world: World) -> dict[str, Any]:
    return next(m for m in world.slack_messages if "thread_ts" not in m and not is_health(m))


def failing_and_told(tmp_path: Path, world: World, config: str = CONFIG) -> Workspace:
    ws = Workspace(tmp_path, world, config)
    ws.failing_after_baseline()
    assert ws.tick()[0] == 0
    return ws


def test_eyes_acknowledge_an_incident_and_it_is_never_re_announced(tmp_path: Path) -> None:
    world = World()
    world.users.add("U0ONCALL1")
    config = CONFIG + "  dm_on_escalation: [U0ONCALL1]\n  renotify_after_minutes: 15\n"
    with mounted(world):
        ws = failing_and_told(tmp_path, world, config)
        first = first_message(world)
        world.react("#data-alerts", first["ts"], "eyes", "U0ALICE")
        for _ in range(5):
            world.add_run("1", "failed")
            assert ws.tick()[0] == 0
    assert "Acknowledged by <@U0ALICE>" in text_of(first_message(world))
    assert not [m for m in replies(world) if "still failing" in m["text"]]
    assert not [m for m in world.slack_messages if m["channel"] == "U0ONCALL1"]  # no DM once acknowledged


def test_zzz_snoozes_an_incident_until_its_time_and_a_new_cause_breaks_it(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = failing_and_told(tmp_path, world, CONFIG + "  snooze_hours: 0.5\n")
        world.react("#data-alerts", first_message(world)["ts"], "zzz", "U0ALICE")
        world.add_run("1", "failed")
        ws.tick()  # the snooze is taken in: nothing posted
        world.add_run("1", "failed")
        ws.tick()  # still snoozed (30 minutes)
        assert replies(world) == []
        assert "Snoozed by <@U0ALICE>" in text_of(first_message(world))
        world.add_run("1", "failed")
        ws.tick()  # the snooze is over: a failure is told again
        assert len(replies(world)) == 1
        world.react("#data-alerts", first_message(world)["ts"], "zzz", "U0BOB")
        world.add_run("1", "failed", error="a different cause entirely")
        ws.tick()
    changed = [m for m in replies(world) if "another reason" in m["text"]]
    assert len(changed) == 1 and "<!subteam^S0DATATEAM>" in changed[0]["text"]


def test_white_check_mark_resolves_and_the_next_failure_opens_a_new_incident(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = failing_and_told(tmp_path, world)
        world.react("#data-alerts", first_message(world)["ts"], "white_check_mark", "U0ALICE")
        assert ws.tick()[0] == 0
        assert "resolved by <@U0ALICE>" in first_message(world)["text"]
        assert "incident" not in ws.saved()["syncs"]["1"]
        world.add_run("1", "failed")
        assert ws.tick()[0] == 0
    assert len([m for m in world.slack_messages if "thread_ts" not in m]) == 2


def test_no_bell_mutes_until_the_recovery_which_is_posted(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = failing_and_told(tmp_path, world)
        world.react("#data-alerts", first_message(world)["ts"], "no_bell", "U0ALICE")
        for _ in range(3):
            world.add_run("1", "failed")
            ws.tick()
        assert replies(world) == []
        world.add_run("1", "success")
        ws.tick()
    (recovery,) = replies(world)
    assert "recovered" in recovery["text"]


def test_repeat_triggers_exactly_one_run_and_says_which(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = failing_and_told(tmp_path, world)
        world.react("#data-alerts", first_message(world)["ts"], "repeat", "U0ALICE")
        assert ws.tick()[0] == 0
        triggers = [r for r in world.request_log if r.endswith("/trigger")]
        assert ws.tick()[0] == 0
        assert not [r for r in world.request_log if r.endswith("/trigger")]  # never twice for one reaction
    assert len(triggers) == 1
    (said,) = [m for m in replies(world) if "Retry requested" in m["text"]]
    run_id = world.syncs["1"].runs[-1].id
    assert f"run {run_id} started" in said["text"]


def test_an_unacknowledged_incident_is_re_announced_at_most_renotify_max_times(tmp_path: Path) -> None:
    world = World()
    config = CONFIG + "  renotify_after_minutes: 30\n  renotify_max: 3\n"
    with mounted(world):
        ws = failing_and_told(tmp_path, world, config)
        for _ in range(12):  # three hours of quiet ticks: the sync failed once and stays failing
            ws.tick()
    reminders = [m for m in replies(world) if "still failing" in m["text"]]
    assert len(reminders) == 3
    assert all("<!subteam^S0DATATEAM>" in m["text"] for m in reminders)


def test_after_every_tick_exactly_one_watchdog_message_is_pending(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = Workspace(tmp_path, world, CONFIG + "  watchdog_minutes: 90\n")
        world.add_sync("1", "contacts")
        world.add_run("1", "success")
        for tick in range(3):
            ws.tick()
            (pending,) = world.slack_scheduled
            tick_at = START.timestamp() + 15 * 60 * tick
            assert pending["post_at"] == tick_at + 90 * 60
            assert "has not run since" in pending["text"]
        # The schedule stops for two hours: Slack posts the message by itself …
        world.now = lambda: START.fromtimestamp(tick_at + 100 * 60, START.tzinfo)
        assert world.post_scheduled() == 1
        assert "has not run since" in world.slack_messages[-1]["text"]
        # … and the tick that comes back says so once.
        ws.ticks += 8
        ws.tick()
    assert "running again" in world.slack_messages[-1]["text"]
    assert len(world.slack_scheduled) == 1


def test_the_digest_comes_at_its_time_once_per_channel_with_the_periods_numbers(tmp_path: Path) -> None:
    world = World()
    world.channels.add("#crm-alerts")
    config = (
        CONFIG + "digest:\n  schedule: daily 10:00\n"
        "routes:\n  - name: crm\n    match: {sync: [crm-*]}\n    slack: {channel: '#crm-alerts'}\n"
    )
    with mounted(world):
        ws = Workspace(tmp_path, world, config)
        ws.healthy_at_baseline({"1": "contacts", "2": "crm-leads"})  # 09:00, the baseline: the digest counts from here
        world.add_run("1", "failed")
        ws.tick()  # 09:15: told
        world.react("#data-alerts", first_message(world)["ts"], "eyes", "U0ALICE")
        ws.tick()  # 09:30: acknowledged
        world.add_run("1", "success")
        ws.tick()  # 09:45: recovered
        ws.tick()  # 10:00: the digest
        ws.tick()  # 10:15: not again
    digests = [m for m in world.slack_messages if "digest" in m["text"]]
    assert sorted(m["channel"] for m in digests) == ["#crm-alerts", "#data-alerts"]
    data = next(text_of(m) for m in digests if m["channel"] == "#data-alerts")
    assert "1 incident opened, 1 closed" in data
    assert "median 29 min" in data  # failed at 09:01, acknowledged as the 09:30 tick read it
    assert "median 30 min" in data  # recovered at 09:31
    assert "contacts" in data
    lines = (tmp_path / "state" / "incidents.jsonl").read_text().splitlines()
    assert len(lines) == 1 and '"ended": "recovered"' in lines[0]


def test_a_transient_failure_is_retried_before_anyone_is_told(tmp_path: Path) -> None:
    world = World()
    config = CONFIG + "retry:\n  transient: true\n"
    lock = "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access for this record"
    with mounted(world):
        ws = Workspace(tmp_path, world, config)
        ws.healthy_at_baseline({"1": "contacts", "2": "deals"})
        world.add_run("1", "failed", error=lock)
        world.add_run("2", "failed", error=lock)
        assert ws.tick()[0] == 0
        assert world.slack_messages == []  # nobody told yet
        assert [r for r in world.request_log if r.endswith("/trigger")] == [
            "hightouch POST /syncs/1/trigger",
            "hightouch POST /syncs/2/trigger",
        ]
        # The retries' runs: sync 1's heals, sync 2's fails again.
        world.finish_run("1", "success")
        world.finish_run("2", "failed", error=lock)
        assert ws.tick()[0] == 0
        ws.tick()
    (told,) = world.slack_messages
    assert "deals" in told["text"] and "Retried automatically" in text_of(told)
    lines = (tmp_path / "state" / "incidents.jsonl").read_text().splitlines()
    assert len(lines) == 1 and '"ended": "healed"' in lines[0]


def test_an_auth_failure_is_never_retried_first(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = Workspace(tmp_path, world, CONFIG + "retry:\n  transient: true\n")
        ws.failing_after_baseline()
        world.syncs["1"].runs[-1].error = "invalid_grant: the refresh token expired"
        ws.tick()
    assert len(world.slack_messages) == 1
    assert not [r for r in world.request_log if r.endswith("/trigger")]


def test_a_dry_run_with_incidents_open_reads_no_reactions_and_sends_nothing(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = failing_and_told(tmp_path, world)
        world.react("#data-alerts", first_message(world)["ts"], "eyes", "U0ALICE")
        sent, scheduled = len(world.slack_messages), list(world.slack_scheduled)
        world.add_run("1", "failed")
        code, out = ws.tick("--dry-run")
    assert code == 0, out
    assert "[dry run] Slack message to #data-alerts (thread reply)" in out
    assert len(world.slack_messages) == sent and world.slack_scheduled == scheduled


def test_a_reaction_on_an_ended_incident_is_not_carried_to_the_next(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = failing_and_told(tmp_path, world)
        world.react("#data-alerts", first_message(world)["ts"], "no_bell", "U0BOB")
        world.add_run("1", "success")
        world.add_run("1", "failed")  # recovered and failed again before the next tick
        ws.tick()
        incident = ws.saved()["syncs"]["1"]["incident"]
    assert "muted_by" not in incident
    assert len([m for m in world.slack_messages if "thread_ts" not in m]) == 2  # the new incident is told


def test_two_retry_reactions_in_one_tick_start_one_run(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = failing_and_told(tmp_path, world)
        ts = first_message(world)["ts"]
        world.react("#data-alerts", ts, "repeat", "U0ALICE")
        world.react("#data-alerts", ts, "repeat", "U0BOB")
        ws.tick()
    assert len([r for r in world.request_log if r.endswith("/trigger")]) == 1
    said = [m["text"] for m in replies(world) if "Retry requested" in m["text"]]
    assert len(said) == 2 and sum("not started" in t for t in said) == 1


def test_a_retry_whose_reply_lost_its_answer_never_starts_a_second_run(tmp_path: Path) -> None:
    world = World()
    lost: list[str] = []

    def lose(api: str, method: str, path: str, body: bytes) -> None:
        if b"Retry requested" in body and not lost:
            lost.append(path)
            raise requests.ReadTimeout("read timed out")

    with mounted(world):
        ws = failing_and_told(tmp_path, world)
        world.react("#data-alerts", first_message(world)["ts"], "repeat", "U0ALICE")
        world.on_request = lose
        ws.tick()
        world.on_request = None
        world.finish_run("1", "failed")
        ws.tick()
    assert len([r for r in world.request_log if r.endswith("/trigger")]) == 0  # the second tick's log
    assert len(world.syncs["1"].runs) == 3  # baseline, the failure, the one retry


def test_a_storm_pings_its_people_once_in_its_summary(tmp_path: Path) -> None:
    world = World()
    config = CONFIG + "  storm_threshold: 2\n  renotify_after_minutes: 15\n"
    with mounted(world):
        ws = Workspace(tmp_path, world, config)
        for sync_id in "12":
            world.add_sync(sync_id, f"s{sync_id}")
            world.add_run(sync_id, "success")
        ws.tick()
        for sync_id in "12":
            world.add_run(sync_id, "failed", error="Snowflake: warehouse suspended")
        for _ in range(4):
            ws.tick()
    pings = [m for m in world.slack_messages if "<!subteam^S0DATATEAM>" in str(m.get("posted_text") or m["text"])]
    assert len(pings) == 1 and "started failing at once" in pings[0]["text"]


def test_reactions_are_read_between_full_listings_for_a_sync_that_did_not_run(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = Workspace(tmp_path, world, CONFIG)
        ws.healthy_at_baseline({"1": "contacts", "2": "busy"})  # 09:00, a full listing
        world.add_run("1", "failed")
        world.add_run("2", "success")
        ws.tick()  # 09:15: told
        world.react("#data-alerts", first_message(world)["ts"], "repeat", "U0ALICE")
        world.add_run("2", "success")  # the state changes every tick: no full listing until 10:00
        ws.tick()  # 09:30
    assert [r for r in world.request_log if r.endswith("/syncs/1/trigger")]


def test_resolve_and_a_new_failure_in_one_tick_tell_the_failure_as_a_new_incident(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = failing_and_told(tmp_path, world)
        world.react("#data-alerts", first_message(world)["ts"], "white_check_mark", "U0ALICE")
        world.add_run("1", "failed", error="a new error nobody has seen")
        code, out = ws.tick()
    assert code == 0 and "new failures: 1" in out
    firsts = [m for m in world.slack_messages if "thread_ts" not in m]
    assert len(firsts) == 2 and "nobody has seen" in text_of(firsts[1])
    assert ws.saved()["syncs"]["1"]["incident"]["first_run_id"] == world.syncs["1"].runs[-1].id.__str__()
