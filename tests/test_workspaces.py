"""Several Hightouch workspaces from one repository: each its own config (overrides of the
top-level keys), key, state file and job; a single-workspace config works as before."""

from __future__ import annotations

import io
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sandboxed import SANDBOX_URL
from tests.tools import run_zizmor, zizmor
from triage.cli import main
from triage.commit_state import save
from triage.config import parse_config
from triage.errors import ConfigError
from triage.sandbox import World, environment

ROOT = Path(__file__).resolve().parent.parent
SHA = "0123456789abcdef0123456789abcdef01234567"

TWO = """\
hightouch: {workspace_slug: unused}
slack:
  channel: "#data-alerts"
  threads: false
linear: {team: DATA}
routes:
  - name: crm
    match: {sync: ["sf-*"]}
    slack: {channel: "#crm-alerts"}
workspaces:
  - name: production
    api_key_env: HIGHTOUCH_API_KEY_PRODUCTION
    workspace_slug: acme-prod
  - name: staging
    api_key_env: HIGHTOUCH_API_KEY_STAGING
    workspace_slug: acme-staging
    slack: {channel: "#staging-alerts"}
    linear: {escalate: false}
    routes: []
"""


def test_each_workspace_is_the_top_level_config_with_its_own_overrides() -> None:
    config = parse_config(TWO, Path("config.yaml"))
    production, staging = config.workspaces
    assert (production.name, production.api_key_env) == ("production", "HIGHTOUCH_API_KEY_PRODUCTION")
    assert production.config.hightouch.workspace_slug == "acme-prod"
    assert production.config.slack.channel == "#data-alerts" and production.config.linear.escalate
    assert [r.name for r in production.config.routes] == ["crm"]
    assert staging.config.hightouch.workspace_slug == "acme-staging"
    assert staging.config.slack.channel == "#staging-alerts"
    assert staging.config.slack.threads is False  # inherited key by key
    assert staging.config.linear.escalate is False and staging.config.linear.team == "DATA"
    assert staging.config.routes == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "workspaces:\n  - name: a\n    workspace_slug: a\n",
            r"config.yaml:2: workspaces\[0\]: api_key_env is required",
        ),
        (
            "workspaces:\n  - {name: a, api_key_env: KEY_A, workspace_slug: a}\n",
            r"config.yaml:2: workspaces\[0\] \(a\).api_key_env: 'KEY_A': an environment variable named "
            r"HIGHTOUCH_API_KEY_…, e.g. HIGHTOUCH_API_KEY_A",
        ),
        (
            "workspaces:\n  - {name: a, api_key_env: HIGHTOUCH_API_KEY_A, workspace_slug: a}\n"
            "  - {name: a, api_key_env: HIGHTOUCH_API_KEY_B, workspace_slug: b}\n",
            r"config.yaml:3: workspaces\[1\].name: 'a' is the name of workspaces\[0\] too",
        ),
        ("workspaces:\n  - {name: Prod, api_key_env: HIGHTOUCH_API_KEY_P, workspace_slug: p}\n", r"lowercase"),
        (
            "workspaces:\n  - name: a\n    api_key_env: HIGHTOUCH_API_KEY_A\n    workspace_slug: a\n"
            "    slack: {chanel: '#x'}\n",
            r"config.yaml:5: slack.chanel: unknown key",
        ),
        (
            "workspaces:\n  - name: a\n    api_key_env: HIGHTOUCH_API_KEY_A\n    workspace_slug: a\n"
            "    slack: {channel: '#Bad Name'}\n",
            r"config.yaml:5: slack.channel: '#Bad Name' is not a Slack channel",
        ),
        ("workspaces: []\n", r"config.yaml:1: workspaces: expected a list of workspaces"),
    ],
)
def test_a_bad_workspace_names_the_file_line_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text, Path("config.yaml"))


def run(tmp_path: Path, world: World, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = main(
        ["run", "--config", str(tmp_path / "config.yaml"), *argv],
        environ=env if env is not None else keys(world),
        stdout=out,
        sleep=lambda s: None,
        now=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
    )
    return code, out.getvalue()


def keys(world: World) -> dict[str, str]:
    """Both workspaces' keys (the sandbox is one workspace: both read it), and no HIGHTOUCH_API_KEY."""
    env = {k: v for k, v in environment(SANDBOX_URL, world).items() if k != "HIGHTOUCH_API_KEY"}
    return env | {"HIGHTOUCH_API_KEY_PRODUCTION": world.hightouch_key, "HIGHTOUCH_API_KEY_STAGING": world.hightouch_key}


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "team"  # apart from the sandbox workspace's own config.yaml
    directory.mkdir()
    (directory / "config.yaml").write_text(TWO)
    monkeypatch.chdir(directory)  # state/ is relative, as in the workflow's checkout
    return directory


def test_each_workspace_ticks_into_its_own_state_file_and_touches_no_other(team: Path, workspace: Any) -> None:
    world = workspace.world
    world.add_sync("1", "contacts")
    world.add_run("1", "success")
    code, out = run(team, world, "--workspace", "production")
    assert code == 0, out
    production = team / "state" / "production.yaml"
    assert production.exists() and not (team / "state" / "staging.yaml").exists()
    assert not (team / "state" / "state.yaml").exists()
    before = production.read_bytes()
    code, out = run(team, world, "--workspace", "staging")
    assert code == 0, out
    assert (team / "state" / "staging.yaml").exists()
    assert production.read_bytes() == before


def test_a_workspaces_config_needs_a_workspace_and_names_them(
    team: Path, workspace: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(team, workspace.world)[0] == 2
    assert "config.yaml defines the workspaces production, staging: pass --workspace NAME" in (capsys.readouterr().err)
    assert run(team, workspace.world, "--workspace", "prodution")[0] == 2
    assert "did you mean production?" in capsys.readouterr().err


def test_a_workspace_without_its_key_is_refused_naming_the_variable(
    team: Path, workspace: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {k: v for k, v in keys(workspace.world).items() if k != "HIGHTOUCH_API_KEY_STAGING"}
    env["HIGHTOUCH_API_KEY"] = workspace.world.hightouch_key  # another key is never used instead
    assert run(team, workspace.world, "--workspace", "staging", env=env)[0] == 2
    assert "missing environment variable HIGHTOUCH_API_KEY_STAGING: the API key of workspace staging" in (
        capsys.readouterr().err
    )


def test_a_workspaces_key_is_redacted_like_any_other(
    team: Path, workspace: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    env = keys(workspace.world) | {"HIGHTOUCH_API_KEY_STAGING": "ht-wrong-staging-key-0123"}
    code, out = run(team, workspace.world, "--workspace", "staging", "--log-level", "debug", env=env)
    assert code == 1
    assert "ht-wrong-staging-key-0123" not in out + capsys.readouterr().err


def test_a_single_workspace_config_keeps_state_yaml(tmp_path: Path, workspace: Any, monkeypatch: Any) -> None:
    directory = tmp_path / "one"
    directory.mkdir()
    (directory / "config.yaml").write_text("hightouch: {workspace_slug: acme}\n")
    monkeypatch.chdir(directory)
    env = environment(SANDBOX_URL, workspace.world)
    assert run(directory, workspace.world, env=env)[0] == 0
    assert (directory / "state" / "state.yaml").exists()
    assert run(directory, workspace.world, "--workspace", "x", env=env)[0] == 2


def test_the_workspaces_command_says_which_variable_holds_a_key(team: Path) -> None:
    out = io.StringIO()
    assert main(["workspaces", "--key-env", "staging"], environ={}, stdout=out) == 0
    assert out.getvalue() == "HIGHTOUCH_API_KEY_STAGING\n"
    out = io.StringIO()
    assert main(["workspaces"], environ={}, stdout=out) == 0
    assert "staging     HIGHTOUCH_API_KEY_STAGING     state/staging.yaml     acme-staging  #staging-alerts" in (
        out.getvalue()
    )


def load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True)
    return dict(doc)


def matrix_contract(path: Path, names: list[str]) -> None:
    doc = load(path)
    assert doc["permissions"] == {} and "concurrency" not in doc  # a run-wide group would queue every workspace
    (job,) = doc["jobs"].values()
    assert job["strategy"]["matrix"]["workspace"] == names and job["strategy"]["fail-fast"] is False
    assert job["concurrency"] == {"group": "hightouch-triage-${{ matrix.workspace }}", "cancel-in-progress": False}
    assert job["permissions"] == {"contents": "write"}
    (tick,) = [s for s in job["steps"] if s.get("name") == "Tick"]
    given = tick["with"]
    assert given["workspace"] == "${{ matrix.workspace }}"
    assert given["state"] == "state/${{ matrix.workspace }}.yaml"
    for name in names:
        secret = f"secrets.HIGHTOUCH_API_KEY_{name.upper()}"
        assert f"matrix.workspace == '{name}' && {secret}" in given["hightouch-api-key"]
    assert "secrets[" not in path.read_text()  # no job can reach another workspace's key by name


@pytest.fixture
def matrix_team(tmp_path: Path) -> Path:
    out = io.StringIO()
    argv = ["init", str(tmp_path / "team"), "--action", f"acme/ht@{SHA}", "--workspace", "production"]
    assert main([*argv, "--workspace", "staging"], environ={}, stdout=out) == 0
    return tmp_path / "team"


def test_init_with_workspaces_writes_a_matrix_workflow_one_job_each(matrix_team: Path) -> None:
    matrix_contract(matrix_team / ".github" / "workflows" / "triage.yml", ["production", "staging"])
    config = parse_config((matrix_team / "config.yaml").read_text(), matrix_team / "config.yaml")
    assert [(w.name, w.api_key_env) for w in config.workspaces] == [
        ("production", "HIGHTOUCH_API_KEY_PRODUCTION"),
        ("staging", "HIGHTOUCH_API_KEY_STAGING"),
    ]
    out = io.StringIO()
    assert main(["validate", "--config", str(matrix_team / "config.yaml")], environ={}, stdout=out) == 0


@pytest.mark.skipif(zizmor() is None, reason="zizmor is not installed")
def test_the_matrix_workflow_passes_zizmor(matrix_team: Path) -> None:
    result = run_zizmor(str(matrix_team))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_forks_workspaces_workflow_is_a_matrix_that_runs_only_by_hand_until_adopted() -> None:
    path = ROOT / ".github" / "workflows" / "triage-workspaces.yml"
    matrix_contract(path, ["production", "staging"])
    assert set(load(path)["on"]) == {"workflow_dispatch"}  # the fork's triage.yml holds the schedule


@pytest.mark.skipif(zizmor() is None, reason="zizmor is not installed")
def test_the_forks_workspaces_workflow_passes_zizmor() -> None:
    result = run_zizmor("--min-severity", "medium", str(ROOT / ".github" / "workflows" / "triage-workspaces.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def sh(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "D", "GIT_AUTHOR_EMAIL": "d@x", "GIT_COMMITTER_NAME": "D"}
    env |= {"GIT_COMMITTER_EMAIL": "d@x"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("branch", [None, "triage-state"])
def test_two_workspace_jobs_commit_only_their_own_files(tmp_path: Path, branch: str | None) -> None:
    """Both jobs start from the same state/; each commits its own file only, so the second
    never puts back the first one's old state (on the default branch or a state branch)."""
    bare = tmp_path / "origin.git"
    sh(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    sh(tmp_path, "clone", "-q", str(bare), str(seed))
    (seed / "state").mkdir()
    for name in ("production", "staging"):
        (seed / "state" / f"{name}.yaml").write_text(f"version: 1\nsyncs: {{}}\n# {name} v1\n")
    sh(seed, "add", ".")
    sh(seed, "commit", "-q", "-m", "seed")
    sh(seed, "push", "-q", "origin", "HEAD:main")
    if branch:
        sh(seed, "push", "-q", "origin", f"HEAD:{branch}")
    jobs = {}
    for name in ("production", "staging"):
        jobs[name] = tmp_path / name
        sh(tmp_path, "clone", "-q", "-b", "main", str(bare), str(jobs[name]))
        (jobs[name] / "state" / f"{name}.yaml").write_text(f"version: 1\nsyncs: {{}}\n# {name} v2\n")
        (jobs[name] / "state" / f"{name}.health.yaml").write_text("failing_since: x\n")
    for name, repo in jobs.items():
        assert save(repo, workspace=name, branch=branch, sleep=lambda s: None, out=lambda s: None) is True
    ref = branch or "main"
    for name in ("production", "staging"):
        assert f"# {name} v2" in sh(bare, "show", f"{ref}:state/{name}.yaml")
        assert sh(bare, "show", f"{ref}:state/{name}.health.yaml") == "failing_since: x\n"
    assert sh(bare, "log", "--format=%s", "-2", ref).splitlines() == [
        "state (staging): heartbeat, no sync changed [skip ci]",
        "state (production): heartbeat, no sync changed [skip ci]",
    ]
