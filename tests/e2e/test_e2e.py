"""End to end: the real CLI, as a subprocess, against the sandbox on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.slack_payloads import assert_slack_accepts
from tests.yaml_files import read_yaml
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
            cwd=self.config.parent,  # outside the repository: its config.yaml and templates/ play no part
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
        return dict(read_yaml(self.state)["syncs"][sync_id])


@pytest.fixture
def deploy(tmp_path: Path) -> Iterator[Deployment]:
    with SandboxServer() as server:
        yield Deployment(server, tmp_path)
        for message in server.world.slack_messages:
            assert_slack_accepts(message)


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
    # Five incidents' first messages and one storm summary in #data-alerts; one in #crm-alerts.
    assert out.count("Slack message in #data-alerts") == 6 and out.count("Slack message in #crm-alerts") == 1
    # The escalation is the one reply shown in the channel; the fourth failure and the recovery stay in the thread.
    assert out.count("Reply in the incident's thread in #crm-alerts, also shown in the channel") == 1
    assert out.count("Reply in the incident's thread in #crm-alerts:") == 2
    assert "@S0CRMTEAM ⚠ salesforce-contacts failing 3× since" in out and "· escalated to CRM-1" in out
    assert "failed · 4 in a row" in out  # a repeat is one quiet line
    # The issue first, then the direct message, then the escalation reply that names the issue.
    tick_4 = out.split("Tick 4:")[1].split("Tick 5:")[0]
    assert tick_4.index("Linear issue CRM-1 created") < tick_4.index("direct message sent to U0ONCALL1")
    assert tick_4.index("direct message sent to U0ONCALL1") < tick_4.index("Slack message sent to #crm-alerts (thread")
    assert "hubspot-deals (http" in out.split("Reply in the incident's thread in #data-alerts:")[1].split("\n")[1]
    assert "recovered: run" in out  # hubspot-deals recovers: said in its thread
    assert out.count("Direct message to U0ONCALL1") == 1
    assert "@S0CRMTEAM ● Hightouch sync salesforce-contacts" in out  # the team is mentioned
    # The storm: one summary, each alert a reply in its thread, the summary updated as they recover.
    assert out.count("4 Hightouch syncs started failing at once — their alerts are in this thread") == 1
    assert out.count("Reply in the incident's thread in #data-alerts:") == 7
    # Trouble a green run hides: a warning that pings no one, then a mass removal, critical.
    assert "hubspot-companies (http" in out and "rejected 8 % of its rows · warning" in out
    assert "hubspot-companies is now critical: is removing 45,000 records (90 % of the last run's)" in out
    assert "4 Hightouch syncs started failing at once — 2 failing, 2 recovered" in out
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
