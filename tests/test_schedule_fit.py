"""A new cron line never fails `validate`: unless config.yaml sets the tick's time limit, it
is fitted to the workflow beside config.yaml; set past the schedule's fastest interval, it is
a warning naming both numbers; past the job's timeout, still an error."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from triage.cli import main
from triage.config import fit_to_workflow, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent

EVERY_5_IN_BUSINESS_HOURS = """\
on:
  schedule:
    - cron: "*/5 8-18 * * 1-5"
    - cron: "7 19-23,0-7 * * *"
jobs:
  tick:
    timeout-minutes: 12
    steps: []
"""


def team(tmp_path: Path, config: str, workflow: str = EVERY_5_IN_BUSINESS_HOURS) -> Path:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "triage.yml").write_text(workflow)
    (tmp_path / "config.yaml").write_text(config)
    return tmp_path / "config.yaml"


def test_an_unset_time_limit_fits_the_fastest_interval_less_a_request(tmp_path: Path) -> None:
    path = team(tmp_path, "slack: {channel: '#data-alerts'}\n")
    fit = fit_to_workflow(path, load_config(path))
    assert fit.config.triage.tick_time_limit_seconds == 5 * 60 - 30
    assert fit.warnings == ()


def test_an_unset_time_limit_keeps_its_default_when_the_schedule_leaves_room(tmp_path: Path) -> None:
    path = team(tmp_path, "", EVERY_5_IN_BUSINESS_HOURS.replace('    - cron: "*/5 8-18 * * 1-5"\n', ""))
    assert "*/5" not in (tmp_path / ".github" / "workflows" / "triage.yml").read_text()
    assert fit_to_workflow(path, load_config(path)).config.triage.tick_time_limit_seconds == 600


def test_an_unset_time_limit_also_fits_a_shorter_job_timeout(tmp_path: Path) -> None:
    workflow = "on: {schedule: [{cron: '7 * * * *'}]}\njobs: {tick: {timeout-minutes: 5, steps: []}}\n"
    path = team(tmp_path, "triage: {request_timeout_seconds: 20}\n", workflow)
    assert fit_to_workflow(path, load_config(path)).config.triage.tick_time_limit_seconds == 5 * 60 - 20 - 60


def test_a_job_timeout_that_leaves_no_time_is_an_error_naming_the_workflow(tmp_path: Path) -> None:
    path = team(tmp_path, "", "jobs: {tick: {timeout-minutes: 1, steps: []}}\n")
    with pytest.raises(Exception, match=r"triage.yml: the 1-minute timeout-minutes .* leaves no time for a tick"):
        fit_to_workflow(path, load_config(path))


def test_a_set_time_limit_past_the_interval_is_kept_with_a_warning_naming_both_numbers(tmp_path: Path) -> None:
    path = team(tmp_path, "triage:\n  tick_time_limit_seconds: 600\n")
    fit = fit_to_workflow(path, load_config(path))
    assert fit.config.triage.tick_time_limit_seconds == 600
    (warning,) = fit.warnings
    assert warning.startswith(f"{path}:2: triage.tick_time_limit_seconds: 600 s is longer than")
    assert "(5 minutes) less a request (30 s), 270 s" in warning and "set at most 270" in warning


def test_run_ticks_with_the_fitted_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`run` fits the limit the same way, so the tick stops in time for the next one."""
    path = team(tmp_path, "triage:\n  tick_time_limit_seconds: 600\n")
    code = main(["run", "--dry-run", "--config", str(path)], environ={}, stdout=io.StringIO())
    assert code == 2  # no key: but the warning came first, before anything else was checked
    assert "600 s is longer than the fastest interval" in capsys.readouterr().err


def test_the_scaffold_config_leaves_the_limit_to_the_schedule() -> None:
    config = parse_config((ROOT / "triage" / "scaffold" / "config.yaml").read_text(), Path("config.yaml"))
    assert not config.triage.tick_time_limit_set and config.triage.tick_time_limit_seconds == 600


def in_a_git_checkout() -> bool:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return False
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not in_a_git_checkout(), reason=".ci/customised copies the repository's tracked files")
def test_ci_customised_adds_its_route_to_a_config_that_has_routes_and_the_copy_validates(tmp_path: Path) -> None:
    """The customised copy (what .ci/run then tests) keeps one `routes:` list: a team's route,
    and the customisation's, after it; a changed template and a */5 cron line validate."""
    copy = tmp_path / "copy"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        ["bash", str(ROOT / ".ci" / "customised"), "--prepare-only", str(copy)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = (copy / "config.yaml").read_text()
    assert text.count("routes:") == 1
    names = [route["name"] for route in yaml.safe_load(text)["routes"]]
    assert names[-1] == "crm" and len(names) >= 2
    assert "*/5 8-18" in (copy / ".github" / "workflows" / "triage.yml").read_text()
    assert (copy / "templates" / "slack_message.md.j2").exists()
    code = main(["validate", "--config", str(copy / "config.yaml")], environ={}, stdout=io.StringIO())
    assert code == 0
