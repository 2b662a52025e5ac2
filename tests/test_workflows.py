"""The GitHub Actions workflows keep their contract."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from triage.schedule import minutes_of_day

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"


def load(name: str) -> dict[Any, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True)  # YAML 1.1 reads the key `on` as true
    return dict(doc)


def steps(doc: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in doc["jobs"].values() for step in job["steps"]]


def test_the_schedule_is_yours_any_valid_cron_lines_will_do() -> None:
    """The cadence is the team's to change: only that each line is a cron line is checked
    here; `validate` checks that a tick fits the fastest interval."""
    schedule = load("triage.yml")["on"]["schedule"]
    assert schedule
    for item in schedule:
        assert minutes_of_day(item["cron"])


def test_manual_runs_take_dry_run_and_log_level() -> None:
    inputs = load("triage.yml")["on"]["workflow_dispatch"]["inputs"]
    assert inputs["dry_run"]["type"] == "boolean" and inputs["dry_run"]["default"] is False
    assert inputs["log_level"]["type"] == "choice"
    assert set(inputs["log_level"]["options"]) == {"debug", "info", "warning", "error"}


def test_ticks_never_overlap_and_are_never_cancelled() -> None:
    assert load("triage.yml")["concurrency"] == {"group": "hightouch-triage", "cancel-in-progress": False}


def test_permissions_are_exactly_contents_write() -> None:
    doc = load("triage.yml")
    assert doc["permissions"] == {}
    (job,) = doc["jobs"].values()
    assert job["permissions"] == {"contents": "write"}
    assert job["timeout-minutes"] < 15


@pytest.mark.parametrize("name", ["triage.yml", "ci.yml"])
def test_every_action_is_pinned_to_a_full_commit_sha(name: str) -> None:
    uses = [step["uses"] for step in steps(load(name)) if "uses" in step]
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref
    text = (WORKFLOWS / name).read_text()
    assert all(re.search(re.escape(ref) + r" # v\d", text) for ref in uses)  # the version in a comment


def test_secrets_reach_only_the_tick_step() -> None:
    doc = load("triage.yml")
    (job,) = doc["jobs"].values()
    tick = [step for step in job["steps"] if step.get("name") == "Tick"]
    assert len(tick) == 1
    assert {k: v for k, v in tick[0]["env"].items() if "secrets." in v} == {
        "HIGHTOUCH_API_KEY": "${{ secrets.HIGHTOUCH_API_KEY }}",
        "SLACK_BOT_TOKEN": "${{ secrets.SLACK_BOT_TOKEN }}",
        "LINEAR_API_KEY": "${{ secrets.LINEAR_API_KEY }}",
    }
    others = [step for step in job["steps"] if step is not tick[0]]
    assert "secrets." not in yaml.safe_dump([others, job.get("env"), doc.get("env")])
    assert "secrets." not in tick[0]["run"]


def test_state_is_committed_even_after_a_failed_tick_but_never_on_a_dry_run() -> None:
    (job,) = load("triage.yml")["jobs"].values()
    commit = job["steps"][-1]
    assert "commit_state save" in commit["run"]
    condition = commit["if"].replace(" ", "")
    assert "always()" in condition and "inputs.dry_run!=true" in condition


def test_pip_cache_is_keyed_on_requirements() -> None:
    setup = [s for s in steps(load("triage.yml")) if "setup-python" in s.get("uses", "")]
    assert setup[0]["with"]["cache"] == "pip"
    assert setup[0]["with"]["cache-dependency-path"] == "requirements.txt"


def test_ci_runs_the_same_script_as_everyone_else() -> None:
    doc = load("ci.yml")
    assert {"pull_request", "push"} <= set(doc["on"])
    assert any(step.get("run") == "bash .ci/run" for step in steps(doc))


def test_any_ref_reads_and_commits_the_state_the_schedule_uses() -> None:
    (job,) = load("triage.yml")["jobs"].values()
    assert job["env"]["DEFAULT_BRANCH"] == "${{ github.event.repository.default_branch }}"
    assert job["env"]["STATE_BRANCH"] == "${{ vars.TRIAGE_STATE_BRANCH }}"
    (restore,) = [s for s in job["steps"] if "commit_state restore" in s.get("run", "")]
    assert "if" not in restore  # every run restores: commit_state picks the branch (see state_branch)
    tick = [s["name"] for s in job["steps"] if "name" in s]
    assert tick.index(restore["name"]) < tick.index("Tick")
