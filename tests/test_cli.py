"""Exit codes and messages of the command line for bad input."""

from __future__ import annotations

import io
import logging
import re
import tomllib
from pathlib import Path

import pytest

from tests.fakes import ENV
from triage import __main__ as module_main
from triage.cli import _configure_logging, entry_point, main
from triage.config import load_config, parse_config
from triage.scaffold import SCAFFOLD

# The commented config `init` writes: the product's documented defaults. The repository's own
# config.yaml is the user's, read only by the test that checks it is valid.
GOOD = SCAFFOLD / "config.yaml"
USERS = Path(__file__).resolve().parent.parent / "config.yaml"


def run_cli(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), environ=ENV if env is None else env, stdout=out, sleep=lambda s: None)
    return code, out.getvalue()


def test_shipped_config_is_valid_and_holds_the_documented_defaults() -> None:
    config = load_config(GOOD)
    assert config.slack.channel == "#data-alerts"
    assert config.linear.team == "DATA"
    assert config.linear.escalation_threshold == 3
    assert config.linear.priority_value == 2
    assert config.triage.failure_statuses == ("failed", "interrupted", "aborted")
    assert config.triage.history_window == 5


def test_validate_accepts_the_shipped_config() -> None:
    code, out = run_cli("validate", "--config", str(GOOD), env={})
    assert code == 0
    assert "valid" in out


def test_the_repositorys_own_config_and_templates_are_valid() -> None:
    code, out = run_cli("validate", "--config", str(USERS), env={})
    assert code == 0, out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("slack:\n  channnel: '#x'\n", r"config.yaml:2: slack.channnel: unknown key"),
        ("linear:\n  escalation_threshold: three\n", r"config.yaml:2: linear.escalation_threshold: expected a whole"),
        ("triage:\n  failure_statuses: failed\n", r"config.yaml:2: triage.failure_statuses: expected a non-empty list"),
        ("colour: blue\n", r"config.yaml:1: colour: unknown key"),
        ("linear: [1, 2]\n", r"config.yaml:1: linear: expected a mapping"),
        ("slack:\n  channel: '#x\n", r"config.yaml:\d+: not valid YAML"),
    ],
)
def test_bad_config_exits_2_naming_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    code, _ = run_cli("run", "--config", str(path), "--state", str(tmp_path / "s.yaml"))
    assert code == 2
    assert re.search(message, capsys.readouterr().err)


def test_missing_config_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli("run", "--config", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "nope.yaml: config file not found" in capsys.readouterr().err


def test_missing_api_key_exits_2_naming_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    env = {k: v for k, v in ENV.items() if k != "HIGHTOUCH_API_KEY"}
    code, _ = run_cli("run", "--config", str(GOOD), env=env)
    assert code == 2
    assert "HIGHTOUCH_API_KEY" in capsys.readouterr().err


def test_dry_run_needs_only_the_hightouch_key(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli("run", "--config", str(GOOD), env={})
    err = capsys.readouterr().err
    assert code == 2
    assert "SLACK_BOT_TOKEN" in err and "LINEAR_API_KEY" in err
    code, _ = run_cli("run", "--dry-run", "--config", str(GOOD), env={})
    err = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN" not in err and "HIGHTOUCH_API_KEY" in err


def test_corrupt_state_exits_1_and_leaves_the_file_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.yaml"
    state.write_text("version: 1\nsyncs: {unclosed\n")
    before = state.read_bytes()
    code, _ = run_cli("run", "--config", str(GOOD), "--state", str(state))
    assert code == 1
    assert f"{state}:" in capsys.readouterr().err
    assert state.read_bytes() == before


def test_unknown_state_version_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.yaml"
    state.write_text("version: 9\nsyncs: {}\n")
    code, _ = run_cli("run", "--config", str(GOOD), "--state", str(state))
    assert code == 1
    assert "unknown state version 9" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error() -> None:
    code, _ = run_cli("explode")
    assert code == 2


def test_validate_names_the_key_of_a_broken_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("linear:\n  team: DATA\n  priority: sky-high\n")
    code, _ = run_cli("validate", "--config", str(path), env={})
    assert code == 2
    assert "config.yaml:3: linear.priority: expected one of urgent | high | medium | low" in capsys.readouterr().err


def test_validate_names_the_line_of_a_broken_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.yaml").write_text("")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "linear_description.md.j2").write_text("line one\nline two\n{{ sync_name | nope }}\n")
    code, _ = run_cli("validate", "--config", str(tmp_path / "config.yaml"), env={})
    assert code == 2
    assert "linear_description.md.j2:3: template error" in capsys.readouterr().err


def test_every_documented_key_of_the_shipped_config_is_read() -> None:
    text = GOOD.read_text().replace("request_timeout_seconds: 30", "request_timeout_seconds: 7")
    text = text.replace("# tick_time_limit_seconds: 600", "tick_time_limit_seconds: 9")  # unset: fits the schedule
    text = text.replace("max_requests_per_10s: 190", "max_requests_per_10s: 0").replace(
        "concurrency: 8", "concurrency: 3"
    )
    config = parse_config(text, GOOD)
    assert config.triage.request_timeout_seconds == 7
    assert config.triage.tick_time_limit_seconds == 9
    assert config.hightouch.max_requests_per_10s == 0
    assert config.hightouch.concurrency == 3


def test_tracebacks_in_debug_logs_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    _configure_logging("debug", ("s3cret-token",))
    try:
        raise RuntimeError("failed with header Bearer s3cret-token")
    except RuntimeError:
        logging.getLogger("triage").debug("unexpected error", exc_info=True)
    err = capsys.readouterr().err
    assert "RuntimeError" in err and "Traceback" in err
    assert "s3cret-token" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "triage:\n  tick_time_limit_seconds: 0\n",
            r"config.yaml:2: triage.tick_time_limit_seconds: .* from 1 to 3600",
        ),
        ("triage:\n  request_timeout_seconds: 0\n", r"config.yaml:2: triage.request_timeout_seconds: .* from 1 to 300"),
        ("triage:\n  wait_budget_seconds: .inf\n", r"config.yaml:2: triage.wait_budget_seconds: .* got inf"),
        ("triage:\n  tick_time_limit_seconds: .nan\n", r"config.yaml:2: triage.tick_time_limit_seconds: .* got nan"),
        (
            "triage:\n  failure_statuses: [failed, faild]\n",
            r"config.yaml:2: triage.failure_statuses: unknown run status 'faild' .* allowed: aborted, canceled",
        ),
        (
            "slack:\n  channel: '#a'\n  channel: '#b'\n",
            r"config.yaml:3: slack.channel: duplicate key \(first set on line 2\)",
        ),
        ("linear:\n  team: A\nlinear:\n  team: B\n", r"config.yaml:3: linear: duplicate key \(first set on line 1\)"),
        (
            "hightouch:\n  concurrency: 1000\n",
            r"config.yaml:2: hightouch.concurrency: expected a whole number from 1 to 64",
        ),
    ],
)
def test_values_that_would_silence_the_tool_fail_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    code, _ = run_cli("validate", "--config", str(path), env={})
    assert code == 2
    assert re.search(message, capsys.readouterr().err)


def test_a_tick_time_limit_past_the_workflow_timeout_fails_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "triage.yml").write_text("on: push\njobs:\n  tick:\n    timeout-minutes: 12\n    steps: []\n")
    path = tmp_path / "config.yaml"
    path.write_text("triage:\n  tick_time_limit_seconds: 630\n")
    assert run_cli("validate", "--config", str(path), env={})[0] == 0  # 630 + 30 + 60 fits 12 minutes
    path.write_text("triage:\n  request_timeout_seconds: 30\n  tick_time_limit_seconds: 700\n")
    code, _ = run_cli("validate", "--config", str(path), env={})
    assert code == 2
    err = capsys.readouterr().err
    assert "config.yaml:3: triage.tick_time_limit_seconds: 700 s does not fit the 12-minute timeout-minutes" in err
    assert "set at most 630" in err


def test_a_template_that_reaches_for_the_environment_fails_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.yaml").write_text("")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "linear_title.txt.j2").write_text("{{ cycler.__init__.__globals__.os.environ }}\n")
    code, out = run_cli("validate", "--config", str(tmp_path / "config.yaml"), env={"LINEAR_API_KEY": "lin_api_x"})
    assert code == 2
    err = capsys.readouterr().err
    assert "linear_title.txt.j2" in err and "unsafe" in err
    assert "lin_api_x" not in out + err


BUSINESS_HOURS = """\
on:
  schedule:
    - cron: "*/5 8-18 * * 1-5"   # every 5 minutes in business hours
    - cron: "7 19-23,0-7 * * *"  # hourly overnight
jobs:
  tick:
    timeout-minutes: 12
    steps: []
"""


def test_validate_warns_when_the_time_limit_is_past_the_fastest_interval_of_the_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "triage.yml").write_text(BUSINESS_HOURS)
    path = tmp_path / "config.yaml"
    path.write_text("triage:\n  tick_time_limit_seconds: 240\n")
    assert run_cli("validate", "--config", str(path), env={})[0] == 0
    path.write_text("triage:\n  tick_time_limit_seconds: 600\n")
    code, out = run_cli("validate", "--config", str(path), env={})
    assert code == 0  # a tick past the interval only delays the next one: a warning naming both numbers
    assert "config.yaml:2: triage.tick_time_limit_seconds: 600 s is longer than the fastest interval of the " in out
    assert "schedule in .github/workflows/triage.yml (5 minutes) less a request (30 s), 270 s" in out
    (workflows / "triage.yml").write_text(BUSINESS_HOURS.replace("*/5 8-18", "*/5 8-25"))
    assert run_cli("validate", "--config", str(path), env={})[0] == 2
    assert "on.schedule: '*/5 8-25 * * 1-5': '8-25' is out of range 0-23" in capsys.readouterr().err


def test_init_scaffolds_a_repository_that_validates_and_overwrites_nothing(tmp_path: Path) -> None:
    team = tmp_path / "team"
    code, out = run_cli("init", str(team), "--action", "acme/hightouch-triage@v1", env={})
    assert code == 0, out
    assert (team / "state").is_dir() and (team / ".github" / "dependabot.yml").exists()
    workflow = (team / ".github" / "workflows" / "triage.yml").read_text()
    assert "uses: acme/hightouch-triage@v1" in workflow and len(workflow.splitlines()) <= 30
    assert run_cli("validate", "--config", str(team / "config.yaml"), env={})[0] == 0
    before = (team / "config.yaml").read_text()
    assert run_cli("init", str(team), env={})[0] == 2  # a team's settings are theirs
    assert (team / "config.yaml").read_text() == before


def test_hightouch_triage_and_python_m_triage_are_one_cli() -> None:
    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"hightouch-triage": "triage.cli:entry_point"}
    assert module_main.entry_point is entry_point
