"""A release: one version, a CHANGELOG section as its notes, a tag that must match, and an
action `init` pins to the release's commit."""

from __future__ import annotations

import io
import json
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

import triage
from tests.tools import run_zizmor, zizmor
from triage import release
from triage.cli import main
from triage.release import ActionRef, ReleaseError, check_tag, parse_action, release_action, release_notes, stamp

ROOT = Path(__file__).resolve().parent.parent
SHA = "0123456789abcdef0123456789abcdef01234567"
SHA_PIN = re.compile(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}")


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), environ={}, stdout=out, sleep=lambda s: None)
    return code, out.getvalue()


def test_version_prints_the_one_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli("--version")
    assert code == 0
    assert capsys.readouterr().out.strip() == f"hightouch-triage {triage.__version__}"


def test_the_package_metadata_reads_the_same_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "triage.__version__"}
    assert project["project"]["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_changelog_has_an_unreleased_section_and_one_for_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    notes = release_notes(changelog, triage.__version__)
    assert notes.startswith("The first release") and "## [" not in notes and "]: https://" not in notes


CHANGELOG = """\
# Changelog

## [Unreleased]

### Added
- next thing

## [1.1.0] - 2026-12-01

### Fixed
- a bug

## [1.0.0] - 2026-11-01

- first

[Unreleased]: https://example.com/compare/v1.1.0...HEAD
[1.1.0]: https://example.com/v1.1.0
"""


def test_release_notes_are_the_versions_section_alone() -> None:
    assert release_notes(CHANGELOG, "1.1.0") == "### Fixed\n- a bug\n"
    assert release_notes(CHANGELOG, "1.0.0") == "- first\n"


def test_a_release_without_its_changelog_section_is_refused() -> None:
    with pytest.raises(ReleaseError, match=r"no section ## \[2.0.0\]: move the Unreleased entries"):
        release_notes(CHANGELOG, "2.0.0")
    with pytest.raises(ReleaseError, match="is empty"):
        release_notes("## [3.0.0] - 2026-01-01\n\n## [2.0.0]\n- x\n", "3.0.0")


def test_a_tag_that_is_not_the_version_is_refused() -> None:
    check_tag("v1.2.3", "1.2.3")
    with pytest.raises(ReleaseError, match=r"tag 'v1.2.4' does not match the version .* \(1.2.3\)"):
        check_tag("v1.2.4", "1.2.3")
    with pytest.raises(ReleaseError):
        check_tag("1.2.3", "1.2.3")


def test_stamp_records_the_repository_and_commit_in_a_copy_of_the_module(tmp_path: Path) -> None:
    copy = tmp_path / "release.py"
    shutil.copy(Path(release.__file__), copy)
    stamp(copy, "acme/hightouch-triage", SHA)
    text = copy.read_text()
    assert f'RELEASE_COMMIT = "{SHA}"' in text and 'ACTION_REPOSITORY = "acme/hightouch-triage"' in text
    with pytest.raises(ReleaseError, match="full 40-character"):
        stamp(copy, "acme/hightouch-triage", "v1")
    with pytest.raises(ReleaseError, match="OWNER/REPO"):
        stamp(copy, "acme", SHA)


def test_the_repository_itself_holds_no_release_commit() -> None:
    """A commit cannot name itself: only the release workflow's build is stamped."""
    assert release.RELEASE_COMMIT == ""


def test_a_stamped_build_pins_its_own_commit_with_its_version() -> None:
    action, warning = release_action("1.2.3", commit=SHA, repository="acme/ht")
    assert warning is None
    assert action.uses() == f"acme/ht@{SHA} # v1.2.3"
    assert action.uses("/check") == f"acme/ht/check@{SHA} # v1.2.3"


def git_install(requested: str) -> str:
    return json.dumps(
        {
            "url": "https://github.com/acme/hightouch-triage.git",
            "vcs_info": {"vcs": "git", "requested_revision": requested, "commit_id": SHA},
        }
    )


def test_a_pip_install_from_the_release_tag_pins_the_commit_pip_checked_out() -> None:
    action, warning = release_action("1.2.3", commit="", direct_url=lambda: git_install("v1.2.3"))
    assert warning is None and action == ActionRef("acme/hightouch-triage", SHA, "1.2.3")


@pytest.mark.parametrize("installed", [None, git_install("main"), '{"url": "file:///src", "dir_info": {}}', "{"])
def test_otherwise_the_tag_is_used_with_a_warning(installed: str | None) -> None:
    action, warning = release_action("1.2.3", commit="", repository="acme/ht", direct_url=lambda: installed)
    assert action.uses() == "acme/ht@v1.2.3"
    assert warning is not None and "does not know the commit of release v1.2.3" in warning
    assert "--action OWNER/REPO@SHA" in warning


def test_action_given_by_sha_gets_this_versions_comment_and_a_mutable_ref_a_warning() -> None:
    action, warning = parse_action(f"acme/ht@{SHA}", "1.2.3")
    assert (action.uses(), warning) == (f"acme/ht@{SHA} # v1.2.3", None)
    for mutable in ("acme/ht@v0", "acme/ht@main"):
        action, warning = parse_action(mutable, "1.2.3")
        assert action.uses() == mutable
        assert warning is not None and "can be moved" in warning and "unpinned-uses" in warning
    for bad in ("acme", "acme/ht@", "@v1", "acme/ht/sub@v1"):
        with pytest.raises(ReleaseError, match="expected OWNER/REPO@REF"):
            parse_action(bad)


def test_init_pins_a_sha_with_its_version_comment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli("init", str(tmp_path / "team"), "--action", f"acme/hightouch-triage@{SHA}")
    assert code == 0
    workflow = (tmp_path / "team" / ".github" / "workflows" / "triage.yml").read_text()
    assert f"uses: acme/hightouch-triage@{SHA} # v{triage.__version__}" in workflow
    assert "warning" not in capsys.readouterr().err


def test_init_warns_when_it_can_only_call_the_action_by_a_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_cli("init", str(tmp_path / "team"), "--action", "acme/hightouch-triage@v0")
    assert code == 0
    assert "warning: the workflow calls acme/hightouch-triage@v0: a tag or branch can be moved" in (
        capsys.readouterr().err
    )
    assert run_cli("init", str(tmp_path / "other"), "--action", "acme")[0] == 2


def load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True)
    return dict(doc)


RELEASE = ROOT / ".github" / "workflows" / "release.yml"


def test_the_release_workflow_runs_on_version_tags_with_least_privilege() -> None:
    doc = load(RELEASE)
    assert doc["on"] == {"push": {"tags": ["v*"]}}
    assert doc["permissions"] == {}
    (job,) = doc["jobs"].values()
    assert job["permissions"] == {"contents": "write"}
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "triage.release notes --tag" in runs and "triage.release stamp" in runs and "gh release create" in runs
    assert "${{" not in runs  # every value reaches the shell through env, never spliced into the script
    text = RELEASE.read_text()
    for step in job["steps"]:
        if "uses" in step:
            assert SHA_PIN.fullmatch(step["uses"]) and re.search(re.escape(step["uses"]) + r" # v\d", text)
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


@pytest.mark.skipif(zizmor() is None, reason="zizmor is not installed")
def test_the_release_workflow_passes_zizmor() -> None:
    result = run_zizmor(str(RELEASE))
    assert result.returncode == 0, result.stdout + result.stderr
