"""Every kind of sync trouble, told through the sandbox: rejected rows, mass removals, a
volume drop, a stuck run, a silent sync, and the known cause of a failure."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.sandboxed import START, Workspace, mounted
from tests.slack_payloads import is_health, posted, text_of
from triage.sandbox import World

CONFIG = 'slack:\n  channel: "#data-alerts"\n  mention: [S0DATATEAM]\nlinear:\n  escalation_threshold: 1\n'
HOURLY = {"type": "interval", "schedule": {"interval": {"quantity": 1, "unit": "hour"}}}


def alerts(world: World) -> list[dict[str, Any]]:
    return [m for m in world.slack_messages if not is_health(m)]


def baseline(tmp_path: Path, world: World, config: str = CONFIG, **sync: Any) -> Workspace:
    ws = Workspace(tmp_path, world, config)
    world.add_sync("1", "contacts", **sync)
    for _ in range(10):
        world.add_run("1", "success", rows={"added": 9000, "changed": 1000, "query_size": 2_000_000})
    ws.tick()
    return ws


def rejected(share: float) -> dict[str, int | None]:
    """A run of 10,000 planned rows (9,000 added, 1,000 changed) with `share` of them rejected."""
    count = int(10_000 * share)
    return {
        "planned_added": 9000,
        "planned_changed": 1000,
        "added": 9000 - count,
        "rejected": count,
        "query_size": 2_000_000,
    }


@pytest.mark.parametrize(
    ("share", "told", "severity"), [(0.30, True, "critical"), (0.02, False, ""), (0.08, True, "warning")]
)
def test_rejected_rows_of_a_warning_run(tmp_path: Path, share: float, told: bool, severity: str) -> None:
    world = World()
    with mounted(world):
        ws = baseline(tmp_path, world)
        world.add_run("1", "warning", rows=rejected(share))
        assert ws.tick()[0] == 0
    if not told:
        assert alerts(world) == []
        return
    (alert,) = alerts(world)
    text = text_of(alert)
    assert f"rejected {share * 100:.0f} % of its rows" in alert["text"] and severity in alert["text"]
    assert "added 3,000 / 9,000" in text or "added 800 / 9,000" in text  # the share per operation
    if severity == "warning":
        assert "<!subteam^" not in alert["text"] and world.linear_issues == []
    else:
        assert "<!subteam^S0DATATEAM>" in alert["text"] and len(world.linear_issues) == 1


def test_a_successful_run_removing_most_records_is_critical_once(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = baseline(tmp_path, world)
        removing = {"planned_removed": 1_800_000, "removed": 1_800_000, "query_size": 200_000}
        world.add_run("1", "success", rows=removing)
        ws.tick()
        ws.tick()
    (alert,) = alerts(world)
    assert "is removing 1,800,000 records (90 % of the last run's)" in alert["text"]
    assert "critical" in alert["text"]


def test_a_volume_drop_warns_and_the_next_normal_run_recovers(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = baseline(tmp_path, world)
        world.add_run("1", "success", rows={"query_size": 400_000})
        ws.tick()
        world.add_run("1", "success", rows={"query_size": 2_000_000})
        ws.tick()
    warning, recovery = alerts(world)
    assert "returned 400,000 rows, 20 % of its usual 2,000,000" in posted(warning) and "warning" in posted(warning)
    assert recovery["thread_ts"] == warning["ts"] and "recovered" in recovery["text"]


def test_a_run_stuck_for_hours_is_told_once_and_recovers_when_it_settles(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = baseline(tmp_path, world, CONFIG + "signals:\n  stuck: {after_minutes: 20}\n")
        world.add_run("1", "processing", rows={"completion_ratio": 0.54, "query_size": 2_000_000})
        ws.tick()  # seen in flight, 14 minutes in: its progress noted
        ws.tick()  # 29 minutes in, no progress since: stuck
        ws.tick()  # still stuck: told already
        assert len(alerts(world)) == 1
        world.finish_run("1", "success")
        ws.tick()
    stuck, recovery = alerts(world)
    assert "without progress" in posted(stuck) and "critical" in posted(stuck)
    assert recovery["thread_ts"] == stuck["ts"] and "recovered" in recovery["text"]


def test_a_silent_hourly_sync_warns_once_and_a_new_run_recovers(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = Workspace(tmp_path, world, CONFIG)
        world.add_sync("1", "contacts", schedule=HOURLY)
        world.add_run("1", "success", at=START - timedelta(hours=5))
        ws.tick()  # the baseline tells nothing
        for _ in range(4):  # silence is judged at the hourly full listing, from the listing alone
            ws.tick()
            assert not [r for r in world.request_log if "/runs" in r]  # no runs read
        ws.tick()
        assert len(alerts(world)) == 1
        world.add_run("1", "success")
        ws.tick()
    silent, recovery = alerts(world)
    assert "has not run for" in posted(silent) and "warning" in posted(silent)
    assert "<!subteam^" not in posted(silent)
    assert recovery["thread_ts"] == silent["ts"]


@pytest.mark.parametrize(
    ("error", "error_class"),
    [
        ("invalid_grant: Token has been expired or revoked.", "auth"),
        ("INVALID_SESSION_ID: Session expired or invalid", "auth"),
        ("UNABLE_TO_LOCK_ROW: unable to obtain exclusive access to this record", "destination_unavailable"),
        ("SQL compilation error: error line 1 at position 7 invalid identifier 'EMAIL_ADDRESS'", "schema"),
    ],
)
def test_a_failure_shows_its_known_cause_what_to_do_and_a_link(tmp_path: Path, error: str, error_class: str) -> None:
    world = World()
    config = CONFIG + "runbooks:\n  auth: https://wiki.example.com/reconnect\n"
    with mounted(world):
        ws = baseline(tmp_path, world, config)
        world.add_run("1", "failed", error=error)
        ws.tick()
    text = text_of(alerts(world)[0])
    assert f"*Known cause:* `{error_class}`" in text
    link = "https://wiki.example.com/reconnect" if error_class == "auth" else "https://"
    assert f"<{link}" in text


def test_a_route_matching_error_class_auth_gets_the_auth_errors(tmp_path: Path) -> None:
    world = World()
    world.channels.add("#credentials")
    config = (
        CONFIG + "routes:\n  - name: keys\n    match: {error_class: [auth]}\n    slack: {channel: '#credentials'}\n"
    )
    with mounted(world):
        ws = Workspace(tmp_path, world, config)
        ws.healthy_at_baseline({"1": "contacts", "2": "deals"})
        world.add_run("1", "failed", error="invalid_grant: Token has been expired or revoked.")
        world.add_run("2", "failed", error="HubSpot API 503: service unavailable")
        ws.tick()
    where = {m["text"].split("|")[1].split(">")[0]: m["channel"] for m in alerts(world)}
    assert where == {"contacts": "#credentials", "deals": "#data-alerts"}
