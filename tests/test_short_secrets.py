"""Redaction only of secrets long enough to be secrets: a value too short to be a key is
refused at start, naming its variable, instead of being cut out of every word it is in."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import ENV
from triage.cli import main
from triage.demo import DEMO_CONFIG, run_demo


def run_cli(*argv: str, env: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), environ=env, stdout=out, sleep=lambda s: None)
    return code, out.getvalue()


@pytest.mark.parametrize("name", ["HIGHTOUCH_API_KEY", "SLACK_BOT_TOKEN", "LINEAR_API_KEY"])
def test_a_secret_too_short_to_be_one_is_refused_at_start_naming_its_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("")
    code, _ = run_cli("run", "--config", str(config), "--state", str(tmp_path / "s.yaml"), env={**ENV, name: "ab"})
    assert code == 2
    err = capsys.readouterr().err
    assert f"error: {name} is set to 2 characters: too short to be a real key or token" in err
    assert f"or unset {name}" in err
    assert not (tmp_path / "s.yaml").exists()


def test_a_dry_run_refuses_a_short_token_it_would_not_even_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("")
    code, _ = run_cli("run", "--dry-run", "--config", str(config), env={**ENV, "SLACK_BOT_TOKEN": "x"})
    assert code == 2 and "SLACK_BOT_TOKEN is set to 1 character:" in capsys.readouterr().err


def test_status_refuses_it_with_its_usage_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli("status", "--sync-id", "1", env={**ENV, "HIGHTOUCH_API_KEY": "a"})
    assert code == 2 and "HIGHTOUCH_API_KEY is set to 1 character" in capsys.readouterr().err


def test_commands_that_use_no_secret_print_ordinary_words_whole(tmp_path: Path) -> None:
    """A short value in the environment is not a secret of theirs: it is never redacted."""
    code, out = run_cli(
        "init",
        str(tmp_path / "team"),
        "--action",
        "acme/hightouch-triage@0123456789abcdef0123456789abcdef01234567",
        env={"HIGHTOUCH_API_KEY": "a", "LINEAR_API_KEY": "c"},
    )
    assert code == 0
    assert "  config.yaml\n" in out and "[redacted]" not in out


def test_a_secret_of_eight_characters_or_more_is_redacted_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("slack:\n  channel: '#data alerts'\n")  # fails: the error echoes nothing secret
    code, _ = run_cli("run", "--config", str(config), env={**ENV, "LINEAR_API_KEY": "channel:"})
    assert code == 2
    assert "[redacted]" in capsys.readouterr().err  # "channel:" is treated as the secret it claims to be


def test_the_demo_prints_the_config_it_runs_with() -> None:
    out = io.StringIO()

    def no_ticks(argv: list[str], **kwargs: Any) -> int:
        """Each tick only leaves a state file behind: the story's words are not the point here."""
        if "--state" in argv:
            state = Path(argv[argv.index("--state") + 1])
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text("version: 1\n")
        return 0

    assert run_demo(out, no_ticks) == 0
    text = out.getvalue()
    assert "The config it runs with (config.yaml" in text
    assert "\n".join(f"  {line}" for line in DEMO_CONFIG.splitlines()) in text
