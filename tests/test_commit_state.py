"""The workflow's commit-back step against real local git repositories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import responses

from tests.fakes import ENV, World
from triage.cli import main
from triage.commit_state import GitError, changed_syncs, commit_message, restore, save, state_branch
from triage.commit_state import main as commit_state_main

STATE_V1 = "version: 1\nsyncs:\n  '1': {name: a, consecutive_failures: 0}\n  '2': {name: b, consecutive_failures: 0}\n"
STATE_V2 = "version: 1\nsyncs:\n  '1': {name: a, consecutive_failures: 1}\n  '2': {name: b, consecutive_failures: 0}\n"


def sh(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare 'GitHub' repository with main holding config.yaml and state/state.yaml."""
    bare = tmp_path / "origin.git"
    sh(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    sh(tmp_path, "clone", "-q", str(bare), str(seed))
    (seed / "state").mkdir()
    (seed / "state" / "state.yaml").write_text(STATE_V1)
    (seed / "config.yaml").write_text("slack:\n  channel: '#a'\n")
    sh(seed, "add", ".")
    sh(seed, "commit", "-q", "-m", "seed")
    sh(seed, "push", "-q", "origin", "HEAD:main")
    return bare


def clone(origin: Path, name: str) -> Path:
    path = origin.parent / name
    sh(origin.parent, "clone", "-q", "-b", "main", str(origin), str(path))
    return path


def log(origin: Path, ref: str = "main") -> list[str]:
    return sh(origin, "log", "--format=%s", ref).splitlines()


def test_state_commit_lands_on_top_of_a_concurrent_push(origin: Path) -> None:
    runner = clone(origin, "runner")
    (runner / "state" / "state.yaml").write_text(STATE_V2)  # the tick ran

    person = clone(origin, "person")  # meanwhile a config PR is merged
    (person / "config.yaml").write_text("slack:\n  channel: '#b'\n")
    sh(person, "commit", "-qam", "config: move alerts to #b")
    sh(person, "push", "-q", "origin", "HEAD:main")

    messages: list[str] = []
    assert save(runner, sleep=lambda s: None, out=messages.append) is True
    assert log(origin)[:3] == ["state: 1 sync changed [skip ci]", "config: move alerts to #b", "seed"]
    assert sh(origin, "show", "main:config.yaml") == "slack:\n  channel: '#b'\n"
    assert sh(origin, "show", "main:state/state.yaml") == STATE_V2
    assert any("rejected" in m for m in messages)
    assert sh(origin, "show", "--format=%an", "-s", "main") == "github-actions[bot]\n"


def test_unchanged_state_makes_no_commit(origin: Path) -> None:
    runner = clone(origin, "runner")
    (runner / "config.yaml").write_text("changed by hand, not state\n")
    messages: list[str] = []
    assert save(runner, out=messages.append) is False
    assert log(origin) == ["seed"]
    assert messages == ["state unchanged: nothing to commit"]


def test_only_state_is_committed(origin: Path) -> None:
    runner = clone(origin, "runner")
    (runner / "state" / "state.yaml").write_text(STATE_V2)
    (runner / "state" / "state.journal").write_text('{"sync_id": "1"}\n')  # a crashed tick's journal
    (runner / "scratch.txt").write_text("not state")
    save(runner, out=lambda m: None)
    files = sh(origin, "show", "--name-only", "--format=", "main").split()
    assert files == ["state/state.journal", "state/state.yaml"]


def test_dry_run_commits_nothing(origin: Path, tmp_path: Path) -> None:
    runner = clone(origin, "runner")
    world = World()
    world.hightouch.add_sync("1", "a")
    world.hightouch.add_run("1", 5, "failed")
    env = {k: v for k, v in ENV.items() if k not in ("SLACK_BOT_TOKEN", "LINEAR_API_KEY")}
    config = tmp_path / "config.yaml"
    config.write_text("")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        world.register(rsps)
        code = main(
            ["run", "--dry-run", "--config", str(config), "--state", str(runner / "state" / "state.yaml")],
            environ=env,
            sleep=lambda s: None,
        )
    assert code == 0
    assert save(runner, out=lambda m: None) is False
    assert log(origin) == ["seed"]


def test_state_branch_is_created_then_updated_and_restored(origin: Path) -> None:
    runner = clone(origin, "runner")
    (runner / "state" / "state.yaml").write_text(STATE_V2)
    assert save(runner, branch="triage-state", out=lambda m: None) is True
    assert log(origin) == ["seed"]  # main untouched
    assert log(origin, "triage-state") == ["state: baseline of 2 syncs [skip ci]"]
    assert sh(origin, "ls-tree", "-r", "--name-only", "triage-state").split() == ["state/state.yaml"]

    next_runner = clone(origin, "runner2")  # a later tick: main's state/ is stale
    assert restore(next_runner, branch="triage-state") is True
    assert (next_runner / "state" / "state.yaml").read_text() == STATE_V2
    (next_runner / "state" / "state.yaml").write_text(STATE_V1)
    assert save(next_runner, branch="triage-state", out=lambda m: None) is True
    assert log(origin, "triage-state")[0] == "state: 1 sync changed [skip ci]"
    assert save(next_runner, branch="triage-state", out=lambda m: None) is False


def test_restore_from_a_missing_branch_keeps_the_local_state(origin: Path) -> None:
    runner = clone(origin, "runner")
    assert restore(runner, branch="nope") is False
    assert (runner / "state" / "state.yaml").read_text() == STATE_V1


def test_conflicting_state_edit_fails_loudly(origin: Path) -> None:
    runner = clone(origin, "runner")
    (runner / "state" / "state.yaml").write_text(STATE_V2)
    person = clone(origin, "person")
    (person / "state" / "state.yaml").write_text("version: 1\nsyncs: {}\n")
    sh(person, "commit", "-qam", "hand edit of state")
    sh(person, "push", "-q", "origin", "HEAD:main")
    with pytest.raises(GitError, match="conflicted"):
        save(runner, sleep=lambda s: None, out=lambda m: None)


def test_commit_messages_count_changed_syncs() -> None:
    assert changed_syncs(STATE_V1, STATE_V2) == 1
    assert commit_message(STATE_V1, STATE_V1) == "state: heartbeat, no sync changed [skip ci]"
    assert commit_message(None, STATE_V1) == "state: baseline of 2 syncs [skip ci]"


def test_a_manual_run_from_another_branch_reads_and_commits_the_default_branchs_state(
    origin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = clone(origin, "person")  # a branch made before the last ticks: its state/ is stale
    sh(person, "checkout", "-q", "-b", "tweak-templates")
    sh(person, "push", "-q", "origin", "tweak-templates")
    ticker = clone(origin, "ticker")  # the schedule moves main's state on meanwhile
    (ticker / "state" / "state.yaml").write_text(STATE_V2)
    assert save(ticker, out=lambda m: None) is True

    runner = clone(origin, "runner")  # workflow_dispatch on the branch
    sh(runner, "checkout", "-q", "tweak-templates")
    monkeypatch.chdir(runner)
    monkeypatch.setenv("GITHUB_REF_NAME", "tweak-templates")
    monkeypatch.setenv("DEFAULT_BRANCH", "main")
    monkeypatch.delenv("STATE_BRANCH", raising=False)
    assert commit_state_main(["restore"]) == 0
    assert (runner / "state" / "state.yaml").read_text() == STATE_V2  # main's state, not the branch's
    (runner / "state" / "state.yaml").write_text(STATE_V1)  # the tick records an alert
    assert commit_state_main(["save"]) == 0
    assert sh(origin, "show", "main:state/state.yaml") == STATE_V1  # where the next scheduled tick reads
    assert log(origin, "tweak-templates") == ["seed"]  # the branch is left alone


def test_state_branch_is_the_configured_one_else_the_default_off_it_else_the_checkout() -> None:
    assert state_branch("triage-state", "feature", "main") == "triage-state"
    assert state_branch("", "feature", "main") == "main"
    assert state_branch(None, "main", "main") is None
    assert state_branch(None, "main", "") is None  # a scheduled run: no payload, on the default branch
