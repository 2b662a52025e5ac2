"""The record that picks the tests `.ci/customised` runs on a customised copy: a test that
reads a team's file, itself or through a process it starts, is on it; no other test is."""

from __future__ import annotations

from pathlib import Path

from tests.user_files import ROOT, Recorder


def reads(event: str, *args: object) -> bool:
    recorder = Recorder()
    recorder.current = "tests/test_x.py::test_y"
    recorder.audit(event, args)
    return recorder.readers == {"tests/test_x.py::test_y"}


def test_opening_the_teams_config_templates_or_workflows_is_recorded() -> None:
    assert reads("open", str(ROOT / "config.yaml"), "r", 0)
    assert reads("open", ROOT / "templates" / "slack_message.md.j2", "r", 0)
    assert reads("open", str(ROOT / ".github" / "workflows" / "triage.yml"), "r", 0)


def test_the_products_own_files_and_a_tests_fixtures_are_not() -> None:
    assert not reads("open", str(ROOT / "triage" / "templates" / "slack_message.md.j2"), "r", 0)
    assert not reads("open", "/elsewhere/config.yaml", "r", 0)
    assert not reads("open", 3, "r", 0)  # a file descriptor
    assert not reads("import", "os")


def test_a_process_that_names_a_teams_file_or_starts_in_the_repository_without_a_config_is_recorded(
    tmp_path: Path,
) -> None:
    python = "python"
    assert reads("subprocess.Popen", python, [python, "-m", "triage", f"--config={ROOT / 'config.yaml'}"], None, None)
    assert reads("subprocess.Popen", python, [python, "-m", "triage", "validate"], str(ROOT), None)
    assert not reads(
        "subprocess.Popen", python, [python, "-m", "triage", "--config", str(tmp_path / "c.yaml")], str(ROOT), None
    )
    assert not reads("subprocess.Popen", python, [python, "-m", "triage", "validate"], str(tmp_path), None)


def test_nothing_is_recorded_between_tests_and_the_record_lists_each_test_once(tmp_path: Path) -> None:
    recorder = Recorder()
    recorder.audit("open", (str(ROOT / "config.yaml"), "r", 0))
    assert recorder.readers == set()
    recorder.current = "tests/test_x.py::test_y[a]"
    recorder.audit("open", (str(ROOT / "config.yaml"), "r", 0))
    recorder.audit("open", (str(ROOT / "templates" / "x.j2"), "r", 0))
    recorder.save(tmp_path / "readers", "gw0")
    assert (tmp_path / "readers" / "gw0.txt").read_text() == "tests/test_x.py::test_y[a]\n"
