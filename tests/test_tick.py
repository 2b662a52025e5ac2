"""Whole ticks through the CLI entry point, against responses-mocked APIs."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes import ENV, World, reply
from tests.yaml_files import read_yaml
from triage.cli import build_services, main
from triage.config import load_config, load_environment
from triage.render import Renderer
from triage.state import StateStore
from triage.summary import format_summary
from triage.tick import Tick

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Harness:
    def __init__(self, tmp_path: Path, world: World, config_extra: str = "") -> None:
        self.world = world
        self.config = tmp_path / "config.yaml"
        self.config.write_text("hightouch:\n  workspace_slug: acme\n" + config_extra)
        self.state = tmp_path / "state" / "state.yaml"
        self.ticks = 0
        self.sleeps: list[float] = []

    def tick(self, *extra: str, env: dict[str, str] | None = None, now: datetime | None = None) -> tuple[int, str]:
        out = io.StringIO()
        now = now or START + timedelta(minutes=15 * self.ticks)
        self.ticks += 1
        tick_now = now
        self.world.sandbox.now = lambda: tick_now + timedelta(minutes=1)  # Slack's clock: the tick's, not the machine's
        code = main(
            ["run", "--config", str(self.config), "--state", str(self.state), *extra],
            environ=env or ENV,
            stdout=out,
            sleep=self.sleeps.append,
            now=lambda: now,
        )
        return code, out.getvalue()

    def saved(self) -> dict[str, Any]:
        return dict(read_yaml(self.state))


def after_baseline(
    tmp_path: Path, world: World, config_extra: str = "", history: tuple[str, ...] = ("success",)
) -> Harness:
    """Sync 1 ("sync-1") with runs 100, 101, … of these statuses, and the baseline tick done."""
    world.hightouch.add_sync("1", "sync-1")
    for offset, status in enumerate(history):
        world.hightouch.add_run("1", 100 + offset, status, minute=offset)
    h = Harness(tmp_path, world, config_extra)
    h.tick()
    return h


def test_four_ticks_baseline_flake_escalation_then_existing_issue(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    ht.add_sync("1", "salesforce-contacts")
    ht.add_sync("2", "hubspot-deals")
    ht.add_sync("3", "iterable-users", disabled=True)
    ht.add_run("1", 101, "success", minute=1)
    ht.add_run("1", 102, "success", minute=2)
    ht.add_run("2", 201, "success", minute=1)
    ht.add_run("3", 301, "failed", minute=1)
    h = Harness(tmp_path, world)

    # Tick 1: baseline, nothing sent. Both enabled syncs are healthy (their latest run
    # succeeded): no failure streak to count, so their runs are not read until they run again.
    code, out = h.tick()
    assert code == 0, out
    assert "baseline" in out
    assert ht.requests == ["GET /syncs?offset=0"]
    assert world.slack.messages == [] and world.linear.calls == []
    state = h.saved()
    assert state["version"] == 2
    assert state["baseline_at"] == "2026-11-23T09:00:00Z"
    assert state["syncs"]["1"]["since"] == "2026-11-23T09:00:00Z"  # runs before this are history
    assert state["syncs"]["1"]["consecutive_failures"] == 0
    assert "3" not in state["syncs"]  # disabled: never looked at

    # Tick 2: a one-off failure of sync 1 pings Slack only. Sync 2 did not run: no runs request.
    ht.requests.clear()
    ht.add_run("1", 103, "failed", minute=20, error="INVALID_EMAIL_ADDRESS on 3 rows")
    code, out = h.tick()
    assert code == 0, out
    assert ht.requests == [
        "GET /syncs?offset=0",
        "GET /syncs/1/runs?offset=0",  # the runs since its boundary, less a margin: it is younger than that
        "GET /destinations/10",
        "GET /models/20",
    ]
    assert len(world.slack.messages) == 1
    message = world.slack.messages[0]
    assert message["channel"] == "#data-alerts"
    assert message["link_names"] is False and message["unfurl_links"] is False
    text = world.slack.texts()[0]
    assert "salesforce-contacts" in text
    assert "https://app.hightouch.test/acme/syncs/1" in text
    assert "INVALID_EMAIL_ADDRESS on 3 rows" in text
    assert world.linear.calls == []
    assert h.saved()["syncs"]["1"]["consecutive_failures"] == 1
    assert h.saved()["syncs"]["1"]["cursor_run_id"] == "103"

    # Tick 3: two more failures cross the threshold: Linear search and create first, then one
    # escalation reply in the incident's thread naming the issue, and the first message
    # updated to the incident as it stands (3 in a row, the issue).
    ht.add_run("1", 104, "failed", minute=35)
    ht.add_run("1", 105, "failed", minute=40)
    code, out = h.tick()
    assert code == 0, out
    assert len(world.slack.messages) == 2
    first, escalation = world.slack.messages
    assert escalation["thread_ts"] == first["ts"]
    assert "failing 3×" in world.slack.texts()[1] and "escalated to DATA-1" in world.slack.texts()[1]
    assert "3 runs in a row" in world.slack.texts()[0] and "DATA-1" in world.slack.texts()[0]
    assert first["posted_text"] != first["text"]  # edited in place: nobody notified again
    assert world.linear.operations() == ["teams", "issues", "issueCreate"]
    created = world.linear.calls[2][1]["input"]
    assert created["title"] == "Hightouch sync salesforce-contacts failing repeatedly"
    assert created["priority"] == 2
    assert created["teamId"] == "team-1"
    assert "Salesforce Production" in created["description"]
    assert "Active contacts" in created["description"]
    state = h.saved()["syncs"]["1"]
    assert state["consecutive_failures"] == 3
    assert state["incident"]["issue"]["identifier"] == "DATA-1"
    assert not state["incident"].get("issue_pending")

    # Tick 4: a fourth failure finds the open issue: a one-line reply, no second issue.
    ht.add_run("1", 106, "failed", minute=50)
    code, out = h.tick()
    assert code == 0, out
    assert len(world.slack.messages) == 3
    assert world.slack.messages[2]["thread_ts"] == first["ts"]
    assert "4 in a row" in world.slack.texts()[2]
    # Found open; no comment: the error is the same and the streak did not double since the
    # issue was filed (3 → 4).
    assert world.linear.operations()[3:] == ["teams", "issues"]
    assert len(world.linear.issues) == 1
    assert h.saved()["syncs"]["1"]["consecutive_failures"] == 4
    assert "found: 1" in out

    # Tick 5: nothing new: no runs requests, nothing sent.
    ht.requests.clear()
    code, _ = h.tick()
    assert code == 0
    assert ht.runs_requests() == []
    assert len(world.slack.messages) == 3


def test_existing_open_issue_means_no_create_but_slack_is_still_sent(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    ht.add_sync("1", "salesforce-contacts")
    ht.add_run("1", 101, "failed", minute=1)
    ht.add_run("1", 102, "failed", minute=2)
    world.linear.open_issue("Salesforce contacts broken", "The sync salesforce-contacts keeps failing")
    h = Harness(tmp_path, world)
    h.tick()
    ht.add_run("1", 103, "failed", minute=20)
    code, out = h.tick()
    assert code == 0, out
    assert len(world.slack.messages) == 1
    assert world.linear.operations() == ["teams", "issues", "commentCreate"]
    assert h.saved()["syncs"]["1"]["incident"]["issue"]["identifier"] == "DATA-1"


def test_closed_issue_does_not_count_and_a_new_one_is_created(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    ht.add_sync("1", "salesforce-contacts")
    for run_id in (101, 102):
        ht.add_run("1", run_id, "failed", minute=run_id - 100)
    world.linear.open_issue("Hightouch sync salesforce-contacts failing repeatedly", state="completed")
    h = Harness(tmp_path, world)
    h.tick()
    ht.add_run("1", 103, "failed", minute=20)
    h.tick()
    assert world.linear.operations() == ["teams", "issues", "issueCreate"]


def test_issue_naming_a_longer_sync_name_is_not_a_match(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    ht.add_sync("1", "contacts")
    for run_id in (101, 102):
        ht.add_run("1", run_id, "failed", minute=run_id - 100)
    world.linear.open_issue("Hightouch sync salesforce-contacts failing repeatedly")
    h = Harness(tmp_path, world)
    h.tick()
    ht.add_run("1", 103, "failed", minute=20)
    h.tick()
    assert world.linear.operations()[-1] == "issueCreate"


def test_rate_limit_past_the_budget_defers_the_rest_and_the_next_tick_finishes(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    for sync_id in ("1", "2", "3"):
        ht.add_sync(sync_id, f"sync-{sync_id}")
        ht.add_run(sync_id, int(sync_id) * 100, "success", minute=1)
    h = Harness(tmp_path, world, "triage:\n  wait_budget_seconds: 30\n")
    h.tick()
    for sync_id in ("1", "2", "3"):
        ht.add_run(sync_id, int(sync_id) * 100 + 1, "failed", minute=20)
    ht.faults["/syncs/2/runs"] = [reply(429, {"error": "rate limited"}, {"Retry-After": "600"})]

    code, out = h.tick()
    assert code == 0, out
    # Every sync is read before the plan: the ones read (1 and 3) are handled, the one whose
    # read hit the limit waits for the next tick.
    assert "deferred to the next tick: 1 (2)" in out
    names = sorted(t.split("|", 1)[1].split(">", 1)[0] for t in world.slack.texts())
    assert names == ["sync-1", "sync-3"]
    saved = h.saved()
    assert saved["syncs"]["1"]["cursor_run_id"] == "101"
    assert saved["syncs"]["3"]["cursor_run_id"] == "301"
    assert saved["syncs"]["2"]["cursor_run_id"] != "201"  # its failure is not handled yet
    assert saved["deferred"] == ["2"]
    assert h.sleeps == [] or max(h.sleeps) < 30  # never waited out the 600 s

    ht.requests.clear()
    code, out = h.tick()
    assert code == 0, out
    # The deferred sync is read first.
    assert ht.runs_requests()[:1] == ["GET /syncs/2/runs?offset=0"]
    names = sorted(t.split("|", 1)[1].split(">", 1)[0] for t in world.slack.texts())
    assert names == ["sync-1", "sync-2", "sync-3"]  # each alerted exactly once
    assert "deferred" not in h.saved()


def test_short_429_without_retry_after_is_waited_out_within_the_budget(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    ht.add_sync("1", "sync-1")
    ht.add_run("1", 100, "success")
    ht.faults["/syncs"] = [reply(429, {"error": "rate limited"})]
    h = Harness(tmp_path, world)
    code, out = h.tick()
    assert code == 0, out
    assert len(h.sleeps) >= 1
    assert "1" in h.saved()["syncs"]  # the baseline was recorded once the listing came


def test_rate_limited_sync_listing_defers_the_whole_tick_and_writes_nothing(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    ht.add_sync("1", "sync-1")
    ht.faults["/syncs"] = [reply(429, {"error": "rate limited"}, {"Retry-After": "3600"})]
    h = Harness(tmp_path, world)
    code, out = h.tick()
    assert code == 0
    assert "Tick deferred" in out
    assert not h.state.exists()


def test_slack_failure_keeps_the_cursor_so_the_alert_is_sent_next_tick(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    h = after_baseline(tmp_path, world)
    ht.add_run("1", 101, "failed", minute=20)
    world.slack.errors = ["fatal_error"]
    code, out = h.tick()
    assert code == 1
    assert "sync-1" in out and "fatal_error" in out
    assert h.saved()["syncs"]["1"]["cursor_run_id"] != "101"  # the failed run is not handled yet
    code, _ = h.tick()
    assert code == 0
    assert len(world.slack.messages) == 1
    code, _ = h.tick()
    assert len(world.slack.messages) == 1


def test_failed_linear_step_is_retried_next_tick_without_a_second_slack_message(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    h = after_baseline(tmp_path, world, history=("failed", "failed"))
    ht.add_run("1", 102, "failed", minute=20)
    world.linear.fail_next = [reply(200, {"errors": [{"message": "boom", "extensions": {"type": "internal error"}}]})]
    code, _ = h.tick()
    assert code == 1
    assert len(world.slack.messages) == 1
    saved = h.saved()["syncs"]["1"]
    assert saved["incident"]["issue_pending"] is True
    assert saved["cursor_run_id"] == "102"

    code, out = h.tick()
    assert code == 0, out
    assert len(world.slack.messages) == 1
    assert world.linear.operations()[-1] == "issueCreate"
    incident = h.saved()["syncs"]["1"]["incident"]
    assert not incident.get("issue_pending")
    assert incident["issue"]["identifier"] == "DATA-1"


def test_slack_channel_error_stops_the_tick_naming_the_channel(
    tmp_path: Path, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    ht = world.hightouch
    h = after_baseline(tmp_path, world, 'slack:\n  channel: "#nowhere"\n')
    ht.add_run("1", 101, "failed", minute=20)
    world.slack.errors = ["channel_not_found"]
    code, _ = h.tick()
    assert code == 2
    assert "'#nowhere'" in capsys.readouterr().err
    assert h.saved()["syncs"]["1"]["cursor_run_id"] != "101"  # the failed run is not handled yet


def test_dry_run_prints_what_it_would_send_and_writes_nothing(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    h = after_baseline(tmp_path, world, history=("failed", "failed"))
    before = h.state.read_text()
    ht.add_run("1", 102, "failed", minute=20)
    env = {k: v for k, v in ENV.items() if k not in ("SLACK_BOT_TOKEN", "LINEAR_API_KEY")}
    code, out = h.tick("--dry-run", env=env)
    assert code == 0, out
    assert "[dry run] Slack message to #data-alerts" in out
    assert "Hightouch sync sync-1 failing repeatedly" in out
    assert "Slack messages that would be sent: 1; Linear escalations due: 1" in out
    assert world.slack.messages == [] and world.linear.calls == []
    assert h.state.read_text() == before
    assert not h.state.with_suffix(".journal").exists()


def test_bad_credentials_stop_the_tick_with_exit_1(tmp_path: Path, world: World) -> None:
    world.hightouch.add_sync("1", "sync-1")
    h = Harness(tmp_path, world)
    code, _ = h.tick(env={**ENV, "HIGHTOUCH_API_KEY": "wrong-key-value"})
    assert code == 1
    assert not h.state.exists()


def test_secrets_never_appear_in_output_logs_or_state(
    tmp_path: Path, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    ht = world.hightouch
    ht.add_sync("1", "sync-1")
    ht.add_run("1", 100, "failed")
    ht.add_run("1", 101, "failed", minute=1)
    h = Harness(tmp_path, world)
    outputs = [h.tick("--log-level", "debug")[1]]
    ht.add_run("1", 102, "failed", minute=20)
    world.slack.errors = ["invalid_auth"]
    outputs.append(h.tick("--log-level", "debug")[1])
    world.linear.fail_next = [
        reply(401, {"errors": [{"message": "bad key", "extensions": {"type": "authentication error"}}]})
    ]
    outputs.append(h.tick("--log-level", "debug")[1])
    ht.faults["/syncs"] = [reply(500, {"message": "down"})] * 10
    outputs.append(h.tick("--log-level", "debug")[1])
    outputs.append(h.tick("--log-level", "debug", env={**ENV, "HIGHTOUCH_API_KEY": "ht-wrong-secret-value"})[1])
    summary = tmp_path / "summary.md"
    ht.faults["/syncs"] = [reply(500, {"message": "down"})] * 10
    outputs.append(h.tick("--log-level", "debug", env={**ENV, "GITHUB_STEP_SUMMARY": str(summary)})[1])
    captured = capsys.readouterr()
    everything = "\n".join([*outputs, captured.out, captured.err, h.state.read_text(), summary.read_text()])
    assert "error" in everything  # the failures were reported...
    for secret in (ENV["HIGHTOUCH_API_KEY"], ENV["SLACK_BOT_TOKEN"], ENV["LINEAR_API_KEY"], "ht-wrong-secret-value"):
        assert secret not in everything  # ...without the secrets


def test_tick_time_limit_defers_everything_left_and_exits_0(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    for sync_id in ("1", "2"):
        ht.add_sync(sync_id, f"sync-{sync_id}")
        ht.add_run(sync_id, int(sync_id) * 100, "failed")  # a streak to count: the baseline reads runs
    h = Harness(tmp_path, world)
    config = load_config(h.config)
    env = load_environment(ENV, need_senders=True)
    readings = iter([0.0])  # the tick starts at 0; every later reading is past its 600 s
    tick = Tick(
        config=config,
        services=build_services(config, env, dry_run=False, sleep=h.sleeps.append),
        store=StateStore(h.state),
        renderer=Renderer(config),
        now=START,
        out=io.StringIO(),
        clock=lambda: next(readings, 10_000.0),
    )
    summary = tick.run()
    assert summary.deferred == ["1", "2"] and not summary.errors
    assert "deferred to the next tick: 2 (1, 2)" in format_summary(summary, dry_run=False)
    assert h.saved()["deferred"] == ["1", "2"]
    assert ht.runs_requests() == []


def test_quiet_tick_leaves_the_state_file_alone_until_the_weekly_heartbeat(tmp_path: Path, world: World) -> None:
    h = after_baseline(tmp_path, world)
    first, inode = h.state.read_text(), h.state.stat().st_ino
    code, out = h.tick()
    assert code == 0, out
    assert h.state.read_text() == first  # last_tick_at was not moved on
    assert h.state.stat().st_ino == inode  # and the file was not replaced

    code, _ = h.tick(now=START + timedelta(days=7, minutes=1))
    assert code == 0
    assert h.saved()["last_tick_at"] == "2026-11-30T09:01:00Z"
    assert h.saved()["syncs"] == yaml.safe_load(first)["syncs"]


def test_job_summary_is_written_as_a_markdown_table(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    h = after_baseline(tmp_path, world)
    ht.add_run("1", 101, "failed", minute=20)
    summary = tmp_path / "summary.md"
    code, _ = h.tick(env={**ENV, "GITHUB_STEP_SUMMARY": str(summary)})
    assert code == 0
    text = summary.read_text()
    assert "| --- | ---: |" in text
    assert "| Syncs checked | 1 |" in text
    assert "| New failures | 1 |" in text
    assert "| Slack messages | 1 |" in text
    assert "| Linear issues created | 0 |" in text
    assert "| Deferred (rate or time limit) | 0 |" in text


def test_remembered_open_issue_is_reused_when_search_misses_it(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    h = after_baseline(tmp_path, world, history=("failed", "failed", "failed"))
    # The tick before recorded DATA-1, but its title no longer names the sync (someone renamed it).
    world.linear.open_issue("Salesforce pipeline broken")
    state = h.saved()
    state["syncs"]["1"]["incident"]["issue"] = {"identifier": "DATA-1", "team": "DATA"}
    h.state.write_text(yaml.safe_dump(state))
    world.linear.calls.clear()
    ht.add_run("1", 103, "failed", minute=20)
    code, out = h.tick()
    assert code == 0, out
    assert world.linear.operations() == ["teams", "issues", "issue", "commentCreate"]
    assert len(world.linear.issues) == 1


def test_create_whose_answer_was_lost_is_looked_up_by_its_id_next_tick(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    h = after_baseline(tmp_path, world, history=("failed", "failed"))
    ht.add_run("1", 102, "failed", minute=20)
    # The gateway times out after Linear created the issue: did it land? Only a later search can say.
    world.linear.create_then_fail = reply(504, {"message": "gateway timeout"})
    code, _ = h.tick()
    assert code == 1
    assert world.linear.operations() == ["teams", "issues", "issueCreate"]
    saved = h.saved()["syncs"]["1"]
    assert saved["incident"]["issue_pending"] is True
    create_id = world.linear.calls[2][1]["input"]["id"]
    assert saved["incident"]["issue_create_id"] == create_id  # journaled before the call

    code, out = h.tick()
    assert code == 0, out
    assert world.linear.calls[3:] == [("teams", {"key": "DATA"}), ("issue", {"id": create_id})]  # found by its id
    assert len(world.linear.issues) == 1
    assert len(world.slack.messages) == 1
    assert "DATA-1 already open" in out


def test_hostile_names_and_huge_errors_neither_crash_nor_break_the_message(tmp_path: Path, world: World) -> None:
    ht = world.hightouch
    name = "<!channel> ünïcødé 🚨 <b>bold</b> " + "x" * 5000
    ht.add_sync("1", name)
    ht.add_run("1", 100, "success")
    h = Harness(tmp_path, world)
    h.tick()
    ht.add_run("1", 101, "failed", minute=20, error="<!here> " + "é" * 1_000_000)
    ht.world.syncs["1"].runs[-1].rows = {"added": None, "rejected": None}  # counts sent as null
    code, out = h.tick()
    assert code == 0, out
    (message,) = world.slack.messages
    assert all(len(block["text"]["text"]) <= 3000 for block in message["blocks"])
    assert len(message["text"]) <= 400
    text = world.slack.texts()[0]
    assert "<!channel>" not in text and "<!here>" not in text and "<b>" not in text
    assert "&lt;!channel&gt; ünïcødé 🚨 &lt;b&gt;bold&lt;/b&gt;" in text
    assert "n/a rejected" in text
    assert read_yaml(h.state)["syncs"]["1"]["name"] == name
