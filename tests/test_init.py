"""`init` scaffolds a team repository that is complete and safe as written — tick, CI,
templates, Dependabot, .gitignore — and `init --existing` completes one without overwriting
anything; `templates export` copies a shipped template for editing."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import run_zizmor, zizmor
from triage import __version__
from triage.cli import main
from triage.render import SHIPPED_TEMPLATES

ROOT = Path(__file__).resolve().parent.parent
SHA = "0123456789abcdef0123456789abcdef01234567"
ACTION = f"acme/hightouch-triage@{SHA}"
SHA_PIN = re.compile(r"[\w.-]+/[\w.-]+(/[\w.-]+)?@[0-9a-f]{40}")


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), environ={}, stdout=out, sleep=lambda s: None)
    return code, out.getvalue()


def load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text())
    if True in doc:
        doc["on"] = doc.pop(True)
    return dict(doc)


@pytest.fixture
def team(tmp_path: Path) -> Path:
    directory = tmp_path / "team"
    code, out = run_cli("init", str(directory), "--action", ACTION)
    assert code == 0, out
    return directory


EXPECTED = [
    "config.yaml",
    ".github/workflows/triage.yml",
    ".github/workflows/ci.yml",
    ".github/dependabot.yml",
    ".gitignore",
    "templates/README.md",
    "state/.gitkeep",
]


def test_init_writes_the_tick_ci_templates_gitignore_and_dependabot(team: Path) -> None:
    assert sorted(str(p.relative_to(team)) for p in team.rglob("*") if p.is_file()) == sorted(EXPECTED)
    assert "templates export" in (team / "templates" / "README.md").read_text()
    assert "state/*.tmp" in (team / ".gitignore").read_text().splitlines()


def test_both_workflows_call_the_release_by_its_sha_with_its_version(team: Path) -> None:
    tick = (team / ".github" / "workflows" / "triage.yml").read_text()
    ci = (team / ".github" / "workflows" / "ci.yml").read_text()
    assert f"uses: acme/hightouch-triage@{SHA} # v{__version__}" in tick
    assert f"uses: acme/hightouch-triage/check@{SHA} # v{__version__}" in ci


def test_the_ci_workflow_checks_every_pull_request_with_read_only_rights(team: Path) -> None:
    doc = load(team / ".github" / "workflows" / "ci.yml")
    assert "pull_request" in doc["on"]
    assert doc["permissions"] == {}
    (job,) = doc["jobs"].values()
    assert job["permissions"] == {"contents": "read"}
    checkout, check = job["steps"]
    assert checkout["with"]["persist-credentials"] is False
    assert SHA_PIN.fullmatch(checkout["uses"]) and SHA_PIN.fullmatch(check["uses"])


def test_the_check_action_validates_renders_and_audits_with_the_release_it_is_part_of() -> None:
    doc = load(ROOT / "check" / "action.yml")
    runs = "\n".join(step.get("run", "") for step in doc["runs"]["steps"])
    assert "$GITHUB_ACTION_PATH/.." in runs  # this release's own code, not whatever pip finds
    assert "hightouch-triage validate --config" in runs and "zizmor --offline" in runs
    text = (ROOT / "check" / "action.yml").read_text()
    for step in doc["runs"]["steps"]:
        if "uses" in step:
            assert SHA_PIN.fullmatch(step["uses"]) and re.search(re.escape(step["uses"]) + r" # v\d", text)
    assert "${{" not in runs  # inputs reach the shell through env only


def test_dependabot_watches_the_pinned_action(team: Path) -> None:
    doc = yaml.safe_load((team / ".github" / "dependabot.yml").read_text())
    (update,) = doc["updates"]
    assert update["package-ecosystem"] == "github-actions" and update["cooldown"]["default-days"] >= 7


def test_what_init_writes_validates(team: Path) -> None:
    code, out = run_cli("validate", "--config", str(team / "config.yaml"))
    assert code == 0, out


@pytest.mark.skipif(zizmor() is None, reason="zizmor is not installed")
def test_what_init_writes_passes_zizmor_with_the_default_persona(team: Path) -> None:
    result = run_zizmor(str(team))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(zizmor() is None, reason="zizmor is not installed")
def test_the_check_action_passes_zizmor() -> None:
    result = run_zizmor(str(ROOT / "check" / "action.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_init_refuses_an_existing_repository_and_points_to_existing(
    team: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (team / "config.yaml").read_text()
    code, _ = run_cli("init", str(team), "--action", ACTION)
    assert code == 2
    assert "use init --existing" in capsys.readouterr().err
    assert (team / "config.yaml").read_text() == before


def test_init_existing_adds_what_is_missing_and_overwrites_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    mine = {
        "config.yaml": "slack:\n  channel: '#ours'\n",
        ".gitignore": "node_modules/\n.venv/\n",
        ".github/dependabot.yml": "version: 2\nupdates:\n  - package-ecosystem: npm\n    directory: /\n",
        ".github/workflows/triage.yml": "name: ours\non: push\njobs: {}\n",
        "README.md": "# ours\n",
    }
    for path, text in mine.items():
        (repo / path).write_text(text)
    code, out = run_cli("init", str(repo), "--existing", "--action", ACTION)
    assert code == 0, out
    for path, text in mine.items():
        assert (repo / path).read_text() == text, path  # never overwritten
    for added in (".github/workflows/ci.yml", "templates/README.md", "state/.gitkeep"):
        assert (repo / added).exists() and f"  {added}\n" in out
    assert ".gitignore exists and was kept; merge by hand — add these lines:\n__pycache__/" in out
    assert ".venv/\n" not in out.split(".gitignore exists")[1].split("\n\n")[0]  # already there
    assert ".github/dependabot.yml exists and was kept; merge by hand — add this entry under `updates:`" in out
    assert "  - package-ecosystem: github-actions" in out
    assert ".github/workflows/triage.yml exists and was kept; merge by hand" in out
    assert f"+        uses: acme/hightouch-triage@{SHA} # v{__version__}" in out
    assert "config.yaml exists" not in out  # the team's own settings: nothing to merge


def test_init_existing_twice_finds_nothing_missing(team: Path) -> None:
    code, out = run_cli("init", str(team), "--existing", "--action", ACTION)
    assert code == 0
    assert out.startswith(f"Nothing was missing in {team}/.") and "merge by hand" not in out


def test_templates_export_copies_a_shipped_template_for_editing(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("")
    code, out = run_cli("templates", "export", "slack_message", "linear_title.txt.j2", "--config", str(config))
    assert code == 0, out
    for name in ("slack_message.md.j2", "linear_title.txt.j2"):
        assert (tmp_path / "templates" / name).read_text() == (SHIPPED_TEMPLATES / name).read_text()
    code, out = run_cli("templates", "list", "--config", str(config))
    assert re.search(r"slack_message\.md\.j2 +overridden", out) and re.search(r"slack_storm\.md\.j2 +shipped", out)


def test_templates_export_never_overwrites_an_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.yaml").write_text("")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "linear_title.txt.j2").write_text("ours\n")
    code, _ = run_cli("templates", "export", "slack_message", "linear_title", "--config", str(tmp_path / "config.yaml"))
    assert code == 2
    assert "linear_title.txt.j2 exists: it is your override already" in capsys.readouterr().err
    assert (tmp_path / "templates" / "linear_title.txt.j2").read_text() == "ours\n"
    assert not (tmp_path / "templates" / "slack_message.md.j2").exists()  # all or nothing


def test_templates_export_names_the_closest_template_for_a_typo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_cli("templates", "export", "slack_mesage", "--config", str(tmp_path / "config.yaml"))
    assert code == 2
    assert "no shipped template 'slack_mesage': did you mean slack_message.md.j2?" in capsys.readouterr().err
