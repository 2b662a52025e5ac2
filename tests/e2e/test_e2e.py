"""End to end: the real CLI, as a subprocess, against the sandbox on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.slack_payloads import assert_slack_accepts, is_health
from triage.sandbox import SandboxServer, World

ROOT = Path(__file__).resolve().parents[2]
# The tool's waits (back-offs, Retry-After, Slack's pace) pass on a virtual clock: no tick sleeps.
TESTING = {"PYTHONPATH": str(ROOT), "TRIAGE_VIRTUAL_SLEEP": "1"}


class Deployment:
    """One workspace in the sandbox, and the CLI run against it tick by tick."""

    def __init__(self, server: SandboxServer, tmp_path: Path, config: str = "") -> None:
        self.server = server
        self.world: World = server.world
        self.config = tmp_path / "config.yaml"
        self.config.write_text("hightouch:\n  workspace_slug: acme\ntriage:\n  wait_budget_seconds: 5\n" + config)
        self.state = tmp_path / "state" / "state.yaml"

    def tick(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        self.world.request_log.clear()
        env = {**os.environ, **self.server.environment(), **TESTING, **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "triage", "run", "--config", str(self.config), "--state", str(self.state), *extra],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def ok_tick(self, *extra: str) -> str:
        result = self.tick(*extra)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def saved(self, sync_id: str) -> dict[str, Any]:
        return dict(yaml.safe_load(self.state.read_text())["syncs"][sync_id])

    def messages(self) -> list[str]:
        return ["\n\n".join(b["text"]["text"] for b in m["blocks"]) for m in self.world.slack_messages]

    def runs_requests(self) -> list[str]:
        return [r for r in self.world.request_log if r.endswith("/runs")]

    def linear_titles(self) -> list[str]:
        return [i["title"] for i in self.world.linear_issues]


@pytest.fixture
def deploy(tmp_path: Path) -> Iterator[Deployment]:
    with SandboxServer() as server:
        yield Deployment(server, tmp_path)
        for message in server.world.slack_messages:
            assert_slack_accepts(message)


def test_baseline_then_flake_then_escalation_then_existing_issue(deploy: Deployment) -> None:
    world = deploy.world
    world.add_sync("1", "salesforce-contacts", destination="Salesforce Production", model="Active contacts")
    world.add_sync("2", "hubspot-deals", destination="HubSpot", model="Deals")
    for _ in range(2):
        world.add_run("1", "success")
        world.add_run("2", "failed")

    out = deploy.ok_tick()
    assert "baseline" in out
    assert world.slack_messages == [] and world.linear_issues == []
    assert deploy.saved("2")["consecutive_failures"] == 2  # counted from history, not alerted

    deploy.ok_tick()
    assert world.slack_messages == []  # the same runs again: nothing

    world.add_run("1", "failed", error="INVALID_EMAIL_ADDRESS on 3 rows")
    deploy.ok_tick()
    assert len(world.slack_messages) == 1
    text = deploy.messages()[0]
    for expected in ("salesforce-contacts", "Salesforce Production", "Active contacts", "INVALID_EMAIL_ADDRESS"):
        assert expected in text
    assert f"{deploy.server.base_url}/app/acme/syncs/1" in text
    assert world.linear_issues == []  # one failure: Slack only

    world.add_run("1", "failed")
    world.add_run("1", "failed")
    deploy.ok_tick()
    assert len(world.slack_messages) == 2
    assert "2 new failed runs" in deploy.messages()[1]
    assert deploy.linear_titles() == ["Hightouch sync salesforce-contacts failing repeatedly"]
    assert world.linear_issues[0]["priority"] == 2
    assert deploy.saved("1")["linear_issue"] == "DATA-1"

    world.add_run("1", "failed")
    out = deploy.ok_tick()
    assert len(world.slack_messages) == 3
    assert len(world.linear_issues) == 1  # found, not duplicated
    assert "DATA-1 already open" in out
    assert deploy.saved("1")["consecutive_failures"] == 4


def test_success_resets_and_cancelled_leaves_the_count(deploy: Deployment) -> None:
    world = deploy.world
    world.add_sync("1", "s1")
    world.add_run("1", "failed")
    world.add_run("1", "failed")
    deploy.ok_tick()
    world.add_run("1", "cancelled")
    deploy.ok_tick()
    assert deploy.saved("1")["consecutive_failures"] == 2
    assert world.slack_messages == []
    world.add_run("1", "success")
    deploy.ok_tick()
    assert deploy.saved("1")["consecutive_failures"] == 0
    world.add_run("1", "failed")
    deploy.ok_tick()
    assert len(world.slack_messages) == 1 and world.linear_issues == []


def test_disabled_and_unchanged_syncs_cost_no_runs_request(deploy: Deployment) -> None:
    world = deploy.world
    world.add_sync("1", "active")
    world.add_sync("2", "paused", disabled=True)
    world.add_sync("3", "failing")
    world.add_run("1", "success")
    world.add_run("2", "failed")
    world.add_run("3", "failed")
    deploy.ok_tick()
    # The baseline reads runs only where a failure streak may be: a healthy sync's can wait.
    assert deploy.runs_requests() == ["hightouch GET /syncs/3/runs"]

    deploy.ok_tick()
    assert deploy.runs_requests() == []  # lastRunAt unchanged

    world.add_run("1", "failed")
    deploy.ok_tick()
    assert deploy.runs_requests() == ["hightouch GET /syncs/1/runs"]  # it ran: its new run is news
    assert len(world.slack_messages) == 1
    world.slack_messages.clear()

    world.add_run("2", "failed")
    deploy.ok_tick()
    assert deploy.runs_requests() == []
    assert world.slack_messages == []


def test_run_still_processing_is_alerted_when_it_fails_exactly_once(deploy: Deployment) -> None:
    world = deploy.world
    world.add_sync("1", "s1")
    world.add_run("1", "success")
    deploy.ok_tick()
    world.add_run("1", "processing")
    deploy.ok_tick()
    assert world.slack_messages == []
    assert deploy.saved("1")["pending_run_id"]

    world.finish_run("1", "failed", error="warehouse query timed out")
    deploy.ok_tick()
    assert len(world.slack_messages) == 1
    assert "warehouse query timed out" in deploy.messages()[0]
    deploy.ok_tick()
    assert len(world.slack_messages) == 1


def test_sync_created_after_the_baseline_is_alerted(deploy: Deployment) -> None:
    world = deploy.world
    world.add_sync("1", "old")
    world.add_run("1", "success")
    deploy.ok_tick()
    world.add_sync("9", "brand-new")
    world.add_run("9", "failed")
    deploy.ok_tick()
    assert len(world.slack_messages) == 1
    assert "brand-new" in deploy.messages()[0]


def test_rate_limited_tick_exits_0_and_the_next_tick_finishes(deploy: Deployment) -> None:
    world = deploy.world
    for sync_id in ("1", "2", "3"):
        world.add_sync(sync_id, f"sync-{sync_id}")
        world.add_run(sync_id, "success")
    deploy.ok_tick()
    for sync_id in ("1", "2", "3"):
        world.add_run(sync_id, "failed")
    world.apply({"faults": [{"api": "hightouch", "path": "/syncs/2/runs", "status": 429, "retry_after": "120"}]})

    out = deploy.ok_tick()
    assert "deferred to the next tick: 2" in out
    assert len(world.slack_messages) == 1

    deploy.ok_tick()
    first_two = sorted(deploy.runs_requests()[:2])  # read in parallel: no order between them
    assert first_two == ["hightouch GET /syncs/2/runs", "hightouch GET /syncs/3/runs"]  # deferred syncs go first
    alerted = sorted(m.split("|", 1)[1].split(">", 1)[0] for m in deploy.messages())
    assert alerted == ["sync-1", "sync-2", "sync-3"]


def test_dry_run_sends_nothing_and_writes_nothing(deploy: Deployment) -> None:
    world = deploy.world
    world.add_sync("1", "s1")
    world.add_run("1", "success")
    deploy.ok_tick()
    before = deploy.state.read_text()
    world.add_run("1", "failed")
    out = deploy.ok_tick("--dry-run")
    assert "[dry run] Slack message to #data-alerts" in out
    assert world.slack_messages == []
    assert deploy.state.read_text() == before


def test_wrong_channel_exits_2_and_the_alert_waits(tmp_path: Path) -> None:
    with SandboxServer() as server:
        deploy = Deployment(server, tmp_path, 'slack:\n  channel: "#typo"\n')
        server.world.add_sync("1", "s1")
        server.world.add_run("1", "success")
        deploy.ok_tick()
        server.world.add_run("1", "failed")
        result = deploy.tick()
        assert result.returncode == 2
        assert "'#typo'" in result.stderr and "channel_not_found" in result.stderr
        assert deploy.saved("1")["consecutive_failures"] == 0


def test_demo_tells_the_whole_story_and_leaves_nothing_behind(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "triage", "demo"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "baseline recorded" in out
    assert "salesforce-contacts  101  crm      #crm-alerts   S0CRMTEAM  CRM" in out  # the routes table
    assert "stg-orders           105  staging  #data-alerts  -          -     -          no" in out
    assert out.count("Slack message in #data-alerts") == 4 and out.count("Slack message in #crm-alerts") == 1
    assert out.count("Reply in the incident's thread in #crm-alerts, also shown in the channel") == 1
    assert out.count("Reply in the incident's thread in #crm-alerts:") == 1
    assert "hubspot-deals (http" in out.split("Reply in the incident's thread in #data-alerts:")[1].split("\n")[1]
    assert "recovered: run" in out  # hubspot-deals recovers: said in its thread
    assert out.count("Direct message to U0ONCALL1") == 1
    assert "@S0CRMTEAM ● Hightouch sync salesforce-contacts" in out  # the team is mentioned
    assert (
        "Linear issue CRM-1 (team CRM, priority Urgent): Hightouch sync salesforce-contacts failing repeatedly" in out
    )
    assert "CRM-1 already open" in out
    assert "stg-orders failing repeatedly" not in out  # the staging route never escalates
    assert "deferred to the next tick: 1 (104)" in out
    assert "iterable-users" not in out.split("state file after")[1].split("Slack messages:")[0]
    assert list(tmp_path.iterdir()) == []


def test_a_name_no_encoder_can_write_is_alerted_once_and_every_output_survives(
    deploy: Deployment, tmp_path: Path
) -> None:
    world = deploy.world
    world.add_sync("1", "contacts-\ud800-sync")  # a lone surrogate: valid JSON, unencodable text
    world.add_sync("2", "deals")
    world.add_run("1", "success")
    world.add_run("2", "success")
    deploy.ok_tick()
    world.add_run("1", "failed", error="bad \udfff byte")
    world.add_run("2", "failed")
    summary = tmp_path / "summary.md"
    env = {"PYTHONIOENCODING": "utf-8", "GITHUB_STEP_SUMMARY": str(summary)}  # strict, as in Actions
    for _ in range(2):
        result = deploy.tick("--log-level", "debug", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(m["text"].split("|")[1].split(">")[0] for m in world.slack_messages) == [
        "contacts-\ufffd-sync",
        "deals",
    ]  # each alerted once, the one after the odd name too
    assert "| New failures | 2 |" in summary.read_text()
    assert deploy.saved("1")["consecutive_failures"] == 1


ROUTED = """\
routes:
  - name: crm
    match: {destination_type: [salesforce, hubspot], tags: {env: production}}
    slack: {channel: "#crm-alerts", mention: [S0123ABCD, U024BE7LH], dm_on_escalation: [U024BE7LH]}
    linear: {team: CRM, escalation_threshold: 2, priority: urgent, labels: [hightouch]}
  - name: staging
    match: {tags: {env: staging}}
    slack: {channel: "#staging"}
    linear: {escalate: false}
  - name: legacy
    match: {sync: ["legacy-*"]}
    mute_until: MUTE
"""


def test_routes_send_each_sync_to_its_owners(deploy: Deployment) -> None:
    world = deploy.world
    world.channels |= {"#crm-alerts", "#staging"}
    world.users.add("U024BE7LH")
    world.add_team("CRM", "Customer data")
    world.add_label("hightouch", "CRM")
    prod, staging = {"env": "production"}, {"env": "staging"}
    world.add_sync("1", "sf-contacts", destination="Salesforce", tags=prod)
    world.add_sync("2", "hs-deals", destination="HubSpot", tags=prod)
    world.add_sync("3", "stg-orders", destination="Salesforce", tags=staging)
    world.add_sync("4", "legacy-users", destination="Braze")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    deploy.config.write_text(deploy.config.read_text() + ROUTED.replace("MUTE", tomorrow))
    for sync_id in "1234":
        world.add_run(sync_id, "success")
    deploy.ok_tick()

    for sync_id in "1234":
        world.add_run(sync_id, "failed")
    deploy.ok_tick()
    # Channels take turns (one's pace never holds up another's), so compare as sets per channel.
    assert sorted(m["channel"] for m in world.slack_messages) == ["#crm-alerts", "#crm-alerts", "#staging"]
    first = next(m for m in world.slack_messages if "sf-contacts" in m["text"])
    assert first["text"].startswith("<!subteam^S0123ABCD> <@U024BE7LH> :red_circle:")

    seen = len(world.slack_messages)
    for sync_id in "134":
        world.add_run(sync_id, "failed")
    for _ in range(3):
        world.add_run("3", "failed")  # the staging sync: 5 in a row
    deploy.ok_tick()
    new = {m["channel"]: m for m in world.slack_messages[seen:]}
    assert len(world.slack_messages) - seen == 3 and set(new) == {"#crm-alerts", "U024BE7LH", "#staging"}  # a DM at 2
    crm = new["#crm-alerts"]
    assert (crm["thread_ts"], crm["reply_broadcast"]) == (first["ts"], True)  # crossing: shown in channel
    assert "thread_ts" not in new["U024BE7LH"]  # the DM stands alone
    assert new["#staging"]["reply_broadcast"] is False  # staging never escalates: a quiet reply
    (issue,) = world.linear_issues
    assert (issue["team"]["key"], issue["priority"], issue["labelIds"]) == ("CRM", 1, ["label-1"])
    assert issue["url"] in str(first["blocks"])  # the first message now names the issue
    assert deploy.saved("1")["linear_team"] == "CRM"
    assert deploy.saved("3")["consecutive_failures"] == 5  # never escalated
    assert deploy.saved("4")["consecutive_failures"] == 2  # muted: judged, not told

    seen = len(world.slack_messages)
    deploy.config.write_text(deploy.config.read_text().replace(tomorrow, "2020-01-01"))  # the mute ends
    deploy.ok_tick()
    assert world.slack_messages[seen:] == []  # nothing from the mute is alerted after it
    world.add_run("4", "failed")
    deploy.ok_tick()
    assert [m["channel"] for m in world.slack_messages[seen:]] == ["#data-alerts"]
    assert "3 runs in a row" in deploy.messages()[-1]


def test_a_broken_route_holds_only_its_syncs_until_it_is_fixed(deploy: Deployment) -> None:
    world = deploy.world
    world.add_sync("1", "sf-contacts")
    world.add_sync("2", "hs-deals")
    for sync_id in "12":
        world.add_run(sync_id, "success")
    good = deploy.config.read_text()
    deploy.config.write_text(
        good + 'routes:\n  - name: deals\n    match: {sync: [hs-*]}\n    slack: {channel: "#dealz"}\n'
    )
    deploy.ok_tick()
    for sync_id in "12":
        world.add_run(sync_id, "failed")
    result = deploy.tick()
    assert result.returncode == 2
    assert "route 'deals'" in result.stdout + result.stderr and "'#dealz'" in result.stderr
    alerts = [m for m in world.slack_messages if not is_health(m)]
    assert [m["channel"] for m in alerts] == ["#data-alerts"]  # the other route went out
    assert deploy.saved("2")["consecutive_failures"] == 0  # held, not lost

    deploy.config.write_text(good)  # fixed by pull request
    deploy.ok_tick()
    deploy.ok_tick()
    alerts = [m for m in world.slack_messages if not is_health(m)]
    assert sorted(m["text"].split("|")[1].split(">")[0] for m in alerts) == ["hs-deals", "sf-contacts"]
    assert [m["text"].split("*")[1] for m in world.slack_messages if is_health(m)] == [
        "hightouch-triage cannot run:",
        "hightouch-triage works again",
    ]  # the tool said it was stuck, once, and when it was not


def test_one_incident_is_one_thread_that_ends_with_a_recovery(deploy: Deployment) -> None:
    world = deploy.world
    world.add_sync("1", "sf-contacts")
    world.add_run("1", "success")
    deploy.ok_tick()
    messages = world.slack_messages

    world.add_run("1", "failed", error="first error")
    deploy.ok_tick()
    (first,) = messages  # the incident's first message: top level
    assert "thread_ts" not in first

    world.add_run("1", "failed")
    deploy.ok_tick()
    assert (messages[1]["thread_ts"], messages[1]["reply_broadcast"]) == (first["ts"], False)  # a quiet reply

    world.add_run("1", "failed", error="third error")
    deploy.ok_tick()
    assert (messages[2]["thread_ts"], messages[2]["reply_broadcast"]) == (first["ts"], True)  # escalation: shown
    (issue,) = world.linear_issues
    live = "\n".join(b["text"]["text"] for b in first["blocks"])
    assert f"<{issue['url']}|{issue['identifier']}>" in live  # the first message names the issue...
    assert "3 runs in a row since" in live and "third error" in live  # ...and where things stand
    thread_link = f"/archives/{first['channel_id']}/p{first['ts'].replace('.', '')}"
    assert thread_link in issue["description"]  # and the issue links back to the thread

    world.add_run("1", "failed")
    deploy.ok_tick()
    assert messages[3]["thread_ts"] == first["ts"] and len(issue["comments"]) == 1  # failed again: a comment

    world.add_run("1", "success")
    deploy.ok_tick()
    recovery = messages[4]
    assert recovery["thread_ts"] == first["ts"] and "recovered" in recovery["text"]
    assert "after 4 failed runs" in recovery["text"]
    assert "recovered" in first["text"]  # the first message is marked resolved
    assert len(issue["comments"]) == 2 and "Recovered" in issue["comments"][1]
    assert "threads" not in deploy.saved("1")

    world.add_run("1", "success")
    deploy.ok_tick()
    assert len(messages) == 5  # never a second recovery

    world.apply({"linear_state": {issue["identifier"]: "completed"}})
    for _ in range(3):
        world.add_run("1", "failed")
    deploy.ok_tick()
    assert "thread_ts" not in messages[5]  # a new incident: a new top-level message
    assert len(world.linear_issues) == 2  # the old issue was closed: a new one


def test_the_virtual_clock_rides_out_a_long_retry_after_without_sleeping(deploy: Deployment) -> None:
    """TRIAGE_VIRTUAL_SLEEP, the testing knob these cases run with: a 100 s Retry-After is
    waited out as the tool would, on a virtual clock (the subprocess would time out after
    60 s of real sleep)."""
    world = deploy.world
    world.add_sync("1", "contacts")
    world.add_run("1", "success")
    deploy.ok_tick()
    world.add_run("1", "failed")
    world.apply({"faults": [{"api": "slack", "path": "/chat.postMessage", "status": 429, "retry_after": "100"}]})
    result = deploy.tick("--log-level", "info")
    assert result.returncode == 0, result.stderr
    assert "Slack chat.postMessage: rate limited (HTTP 429): waiting 10" in result.stderr
    assert len(world.slack_messages) == 1
