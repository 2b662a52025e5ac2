"""State that cannot be saved is loud: git's own words, a protected branch recognised on the
first refusal and not retried, TRIAGE_STATE_BRANCH named with how to set it, a failing step,
and the Slack channel told that alerts will repeat or be missed; `validate --online` warns of
a protected state branch before the first tick."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

from tests.sandboxed import SANDBOX_URL, handled
from triage.cli import main
from triage.commit_state import GitError, ProtectedBranch, save
from triage.commit_state import main as commit_state_main
from triage.config import Config
from triage.preflight import state_branch_findings
from triage.render import Renderer
from triage.sandbox import Sandbox, environment
from triage.sandbox import World as SandboxWorld
from triage.state_alarm import UnsavedContext, unsaved_message

STATE = "version: 1\nsyncs:\n  '1': {name: a, consecutive_failures: 0}\n"
GH006 = (
    "remote: error: GH006: Protected branch update failed for refs/heads/main.\n"
    "remote: error: Changes must be made through a pull request."
)


def sh(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "d@example.com"}
    env |= {"GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "d@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def refusing_origin(tmp_path: Path, message: str) -> tuple[Path, Path]:
    """A bare 'GitHub' whose pre-receive hook refuses every push with `message`, counting
    the pushes it saw; and a runner's clone whose state changed."""
    bare = tmp_path / "origin.git"
    sh(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    sh(tmp_path, "clone", "-q", str(bare), str(seed))
    (seed / "state").mkdir()
    (seed / "state" / "state.yaml").write_text(STATE)
    (seed / "config.yaml").write_text("slack:\n  channel: '#data-alerts'\n")
    sh(seed, "add", ".")
    sh(seed, "commit", "-q", "-m", "seed")
    sh(seed, "push", "-q", "origin", "HEAD:main")
    hook = bare / "hooks" / "pre-receive"
    lines = "".join(f"echo '{line.removeprefix('remote: ')}' >&2\n" for line in message.splitlines())
    hook.write_text(f"#!/bin/sh\necho push >> '{tmp_path / 'pushes'}'\n{lines}exit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    runner = tmp_path / "runner"
    sh(tmp_path, "clone", "-q", "-b", "main", str(bare), str(runner))
    (runner / "state" / "state.yaml").write_text(STATE.replace("0}", "1}"))
    return bare, runner


def pushes(tmp_path: Path) -> int:
    path = tmp_path / "pushes"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_protected_branch_is_recognised_at_once_and_says_what_to_set(tmp_path: Path) -> None:
    _, runner = refusing_origin(tmp_path, GH006)
    with pytest.raises(ProtectedBranch) as caught:
        save(runner, sleep=lambda s: pytest.fail("a protected branch is not retried"), out=lambda s: None)
    assert pushes(tmp_path) == 1
    message = str(caught.value)
    assert message.startswith("could not save the state: the branch main is protected")
    assert "alerts will repeat or be missed" in message
    assert "set the repository variable TRIAGE_STATE_BRANCH" in message
    assert "gh variable set TRIAGE_STATE_BRANCH --body triage-state" in message
    assert "GH006: Protected branch update failed for refs/heads/main." in message  # git's own words


def test_a_protected_state_branch_of_its_own_says_to_lift_its_protection(tmp_path: Path) -> None:
    _, runner = refusing_origin(tmp_path, "remote: error: GH013: Repository rule violations found for refs/heads/x.")
    with pytest.raises(ProtectedBranch, match="lift its protection"):
        save(runner, branch="triage-state", configured=True, sleep=lambda s: None, out=lambda s: None)
    assert pushes(tmp_path) == 1


def test_another_refusal_is_retried_and_its_last_words_are_shown(tmp_path: Path) -> None:
    _, runner = refusing_origin(tmp_path, "remote: the disk is full")
    said: list[str] = []
    with pytest.raises(GitError) as caught:
        save(runner, attempts=3, sleep=lambda s: None, out=said.append)
    assert not isinstance(caught.value, ProtectedBranch)
    assert pushes(tmp_path) == 3
    assert "the push to main failed 3 times" in str(caught.value) and "the disk is full" in str(caught.value)
    assert any("the disk is full" in line for line in said)  # each refusal, as git said it


@pytest.fixture
def slack() -> Iterator[SandboxWorld]:
    world = SandboxWorld()
    handler = Sandbox(world)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(
            responses.POST, re.compile(re.escape(SANDBOX_URL) + r"/.*"), callback=lambda r: handled(handler, r)
        )
        yield world


def test_the_save_step_fails_annotates_and_tells_slack(
    tmp_path: Path,
    slack: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, runner = refusing_origin(tmp_path, GH006)
    env = environment(SANDBOX_URL, slack)
    for name in ("STATE_BRANCH", "DEFAULT_BRANCH", "GITHUB_REF_NAME", "CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", env["SLACK_BOT_TOKEN"])
    monkeypatch.setenv("SLACK_API_URL", env["SLACK_API_URL"])
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/triage")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    code = commit_state_main(["save", "--repo", str(runner), "--config", str(runner / "config.yaml")])
    assert code == 1
    captured = capsys.readouterr()
    assert "error: could not save the state: the branch main is protected" in captured.err
    assert "::error title=hightouch-triage: state not saved: protected branch::could not save" in captured.out
    assert pushes(tmp_path) == 1
    (message,) = slack.slack_messages
    assert message["channel"] in ("#data-alerts", slack.channel_id("#data-alerts"))
    text = json.dumps(message["blocks"])
    assert "could not save its state" in text and "alerts will repeat or be missed" in text
    assert "TRIAGE_STATE_BRANCH" in text and "GH006" in text
    assert "https://github.com/acme/triage/actions/runs/42" in text
    assert env["SLACK_BOT_TOKEN"] not in captured.out + captured.err


def test_without_a_slack_token_the_step_still_fails_and_says_slack_was_not_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, runner = refusing_origin(tmp_path, GH006)
    for name in ("SLACK_BOT_TOKEN", "STATE_BRANCH", "DEFAULT_BRANCH", "GITHUB_REF_NAME", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    assert commit_state_main(["save", "--repo", str(runner)]) == 1
    assert "warning: SLACK_BOT_TOKEN is not set in this step: Slack was not told" in capsys.readouterr().err


def test_the_message_renders_protected_or_not_with_and_without_a_link(tmp_path: Path) -> None:
    renderer = Renderer(Config(base_dir=tmp_path))
    for protected in (True, False):
        for link in ("", "https://github.com/a/b/actions/runs/1"):
            text, blocks = unsaved_message(renderer, UnsavedContext("main", "<!channel> GH006", protected, link))
            shown = json.dumps(blocks)
            assert text.startswith(":rotating_light: *hightouch-triage could not save its state*")
            assert ("TRIAGE_STATE_BRANCH" in shown) is protected and ("workflow run" in shown) is bool(link)
            assert "<!channel>" not in shown  # git's words are escaped like any other


API = "https://api.github.test"
ACTIONS = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_TOKEN": "ghs_" + "t" * 36,
    "GITHUB_REPOSITORY": "acme/triage",
    "GITHUB_API_URL": API,
    "GITHUB_REF_NAME": "main",
    "DEFAULT_BRANCH": "main",
}


@responses.activate
def test_validate_online_warns_when_the_state_branch_is_protected() -> None:
    responses.get(f"{API}/repos/acme/triage/branches/main", json={"name": "main", "protected": True})
    (finding,) = state_branch_findings(ACTIONS, sleep=lambda s: None)
    assert finding.level == "warn"
    assert "GitHub: state branch 'main' is protected" in finding.line()
    assert "set the repository variable TRIAGE_STATE_BRANCH" in finding.line()
    (call,) = responses.calls
    assert call.request.headers["Authorization"] == f"Bearer {ACTIONS['GITHUB_TOKEN']}"


@responses.activate
def test_an_unprotected_or_not_yet_created_state_branch_is_fine() -> None:
    responses.get(f"{API}/repos/acme/triage/branches/main", json={"name": "main", "protected": False})
    responses.get(f"{API}/repos/acme/triage/branches/triage-state", status=404, json={"message": "Branch not found"})
    assert [f.level for f in state_branch_findings(ACTIONS, sleep=lambda s: None)] == ["ok"]
    (finding,) = state_branch_findings({**ACTIONS, "STATE_BRANCH": "triage-state"}, sleep=lambda s: None)
    assert finding.level == "ok" and "the first tick creates it" in finding.what


def test_outside_actions_nothing_is_asked() -> None:
    assert state_branch_findings({k: v for k, v in ACTIONS.items() if k != "GITHUB_ACTIONS"}) == []


def test_validate_online_lists_the_protected_branch_with_the_other_checks(tmp_path: Path) -> None:
    world = SandboxWorld()
    handler = Sandbox(world)
    config = tmp_path / "config.yaml"
    config.write_text("hightouch: {workspace_slug: acme}\nslack: {channel: '#data-alerts'}\nlinear: {team: DATA}\n")
    out = io.StringIO()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for method in (responses.GET, responses.POST):
            rsps.add_callback(
                method, re.compile(re.escape(SANDBOX_URL) + r"/.*"), callback=lambda r: handled(handler, r)
            )
        rsps.get(f"{API}/repos/acme/triage/branches/main", json={"protected": True})
        code = main(
            ["validate", "--online", "--config", str(config)],
            environ={**environment(SANDBOX_URL, world), **ACTIONS},
            stdout=out,
            sleep=lambda s: None,
        )
    assert code == 0  # a warning: the setup works, the state commit is what is at risk
    assert "warn  GitHub: state branch 'main' is protected" in out.getvalue()
    assert ACTIONS["GITHUB_TOKEN"] not in out.getvalue()
