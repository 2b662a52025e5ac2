"""The GitHub Actions workflows and the reusable action keep their contract.

Two workflows run the tick: this repository's own (`.github/workflows/triage.yml`, for a
fork) and the one `init` writes into a team's repository. Both are checked against the
same contract — the cadence is the team's (any valid cron lines), the rest is not:
overlap, permissions, pins, secrets and the commit-back that keeps alerts from repeating.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from triage.scaffold import scaffold
from triage.schedule import minutes_of_day

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
SHA_PIN = re.compile(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}")


def load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text())
    if True in doc:
        doc["on"] = doc.pop(True)  # YAML 1.1 reads the key `on` as true
    return dict(doc)


def steps(doc: dict[Any, Any]) -> list[dict[str, Any]]:
    if "runs" in doc:
        return list(doc["runs"]["steps"])
    return [step for job in doc["jobs"].values() for step in job["steps"]]


@pytest.fixture(scope="module", params=["fork", "init"])
def tick_workflow(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workflow that runs the tick: this repository's, or one `init` scaffolded."""
    if request.param == "fork":
        return WORKFLOWS / "triage.yml"
    directory = tmp_path_factory.mktemp("team")
    scaffold(directory, "acme/hightouch-triage@0123456789abcdef0123456789abcdef01234567")
    return directory / ".github" / "workflows" / "triage.yml"


def the_tick_step(doc: dict[Any, Any]) -> dict[str, Any]:
    (tick,) = [s for s in steps(doc) if s.get("name") == "Tick"]
    return tick


def test_the_schedule_is_yours_any_valid_cron_lines_will_do(tick_workflow: Path) -> None:
    """Only that each line is a cron line is checked here; `validate` checks that a tick
    fits the fastest interval."""
    schedule = load(tick_workflow)["on"]["schedule"]
    assert schedule
    for item in schedule:
        assert minutes_of_day(item["cron"])


def test_manual_runs_take_dry_run_and_log_level_and_hand_them_to_the_action(tick_workflow: Path) -> None:
    doc = load(tick_workflow)
    inputs = doc["on"]["workflow_dispatch"]["inputs"]
    assert inputs["dry_run"]["type"] == "boolean" and inputs["dry_run"]["default"] is False
    assert inputs["log_level"]["type"] == "choice"
    assert set(inputs["log_level"]["options"]) == {"debug", "info", "warning", "error"}
    given = the_tick_step(doc)["with"]
    assert "inputs.dry_run" in given["dry-run"] and "inputs.log_level" in given["log-level"]
    assert given["state-branch"] == "${{ vars.TRIAGE_STATE_BRANCH }}"


def test_ticks_never_overlap_and_are_never_cancelled(tick_workflow: Path) -> None:
    assert load(tick_workflow)["concurrency"] == {"group": "hightouch-triage", "cancel-in-progress": False}


def test_permissions_are_exactly_contents_write(tick_workflow: Path) -> None:
    doc = load(tick_workflow)
    assert doc["permissions"] == {}
    (job,) = doc["jobs"].values()
    assert job["permissions"] == {"contents": "write"}
    assert job["timeout-minutes"] < 15


def test_the_checkout_keeps_the_token_for_the_commit_back(tick_workflow: Path) -> None:
    first = steps(load(tick_workflow))[0]
    assert first["uses"].startswith("actions/checkout@") and first["with"]["persist-credentials"] is True


@pytest.mark.parametrize("path", [WORKFLOWS / "triage.yml", WORKFLOWS / "ci.yml", ROOT / "action.yml"])
def test_every_third_party_action_is_pinned_to_a_full_commit_sha(path: Path) -> None:
    uses = [step["uses"] for step in steps(load(path)) if "uses" in step and step["uses"] != "./"]
    assert uses
    text = path.read_text()
    for ref in uses:
        assert SHA_PIN.fullmatch(ref), ref
        assert re.search(re.escape(ref) + r" # v\d", text), f"{ref}: say its version in a comment"


def test_the_scaffold_calls_the_action_by_the_ref_it_was_given(tick_workflow: Path) -> None:
    uses = the_tick_step(load(tick_workflow))["uses"]
    assert uses == "./" or SHA_PIN.fullmatch(uses), uses
    checkout = steps(load(tick_workflow))[0]["uses"]
    assert SHA_PIN.fullmatch(checkout)


def test_secrets_reach_only_the_action_and_inside_it_only_the_steps_that_call_the_apis(tick_workflow: Path) -> None:
    doc = load(tick_workflow)
    tick = the_tick_step(doc)
    assert {k: v for k, v in tick["with"].items() if "secrets." in v} == {
        "hightouch-api-key": "${{ secrets.HIGHTOUCH_API_KEY }}",
        "slack-bot-token": "${{ secrets.SLACK_BOT_TOKEN }}",
        "linear-api-key": "${{ secrets.LINEAR_API_KEY }}",
    }
    others = [step for step in steps(doc) if step is not tick]
    jobs = [{k: v for k, v in job.items() if k != "steps"} for job in doc["jobs"].values()]
    assert "secrets." not in yaml.safe_dump([others, tick.get("env"), jobs, doc.get("env")])

    action = load(ROOT / "action.yml")
    keyed = {s["name"] for s in steps(action) if "inputs." in str(s.get("env")) and "-key" in str(s.get("env"))}
    assert keyed == {"Preflight", "Tick"}
    for step in steps(action):
        assert "api-key" not in step.get("run", "") and "bot-token" not in step.get("run", "")


def test_the_action_restores_state_before_the_tick_and_commits_it_even_after_a_failed_tick() -> None:
    names = [s["name"] for s in steps(load(ROOT / "action.yml")) if "name" in s]
    assert names.index("Restore state from the branch that holds it") < names.index("Tick")
    commit = steps(load(ROOT / "action.yml"))[-1]
    assert "commit_state save" in commit["run"]
    condition = commit["if"].replace(" ", "")
    assert "always()" in condition and "inputs.dry-run!='true'" in condition
    restore = next(s for s in steps(load(ROOT / "action.yml")) if "commit_state restore" in s.get("run", ""))
    assert "if" not in restore  # every run restores: commit_state picks the branch (see state_branch)
    assert restore["env"]["DEFAULT_BRANCH"] == "${{ github.event.repository.default_branch }}"


def test_a_dry_run_checks_the_setup_online_first() -> None:
    preflight = next(s for s in steps(load(ROOT / "action.yml")) if s.get("name") == "Preflight")
    assert "validate --online" in preflight["run"] and "dry-run" in preflight["if"]


def test_ci_runs_the_same_script_as_everyone_else_on_every_supported_python() -> None:
    doc = load(WORKFLOWS / "ci.yml")
    assert {"pull_request", "push"} <= set(doc["on"])
    assert any(step.get("run") == "bash .ci/run" for step in steps(doc))
    (job,) = doc["jobs"].values()
    assert job["strategy"]["matrix"]["python"] == ["3.11", "3.12", "3.13"]


def test_dependabot_keeps_actions_and_requirements_current() -> None:
    doc = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert {u["package-ecosystem"] for u in doc["updates"]} == {"github-actions", "pip"}
