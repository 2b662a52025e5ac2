"""No outside text becomes a command of the GitHub Actions log: a run error or an API
error holding `::add-mask::…` or `::stop-commands::…` is printed, never obeyed; the
tool's own annotations still are."""

from __future__ import annotations

import io
import re

import pytest

from tests.sandboxed import Workspace
from triage.output import SafeWriter, workflow_command
from triage.summary import TickSummary, workflow_commands

ATTACKS = [
    "::add-mask::the-whole-log",
    "  ::error title=pwned::forged annotation",
    "\t::stop-commands::attacker-token",
    "\u00a0\u2003::warning::behind Unicode spaces",
    "::set-output name=x::y",
    "text before ##[add-mask]the old syntax anywhere in a line",
    "##[group]grouped",
]


def commands(output: str) -> list[str]:
    """The lines the Actions runner would take as workflow commands: it splits the output
    at CR, LF or CRLF, trims leading whitespace and looks for `::name…::`, or for the
    older `##[name…]` anywhere in the line (stricter here: any name counts)."""
    found = []
    for line in re.split(r"\r\n|\r|\n", output):
        trimmed = line.lstrip()
        if trimmed.startswith("::") and trimmed.find("::", 2) > 2:
            found.append(trimmed)
        elif re.search(r"##\[[^\]]+\]", line):
            found.append(line)
    return found


def written(*pieces: str) -> str:
    stream = io.StringIO()
    writer = SafeWriter(stream, secrets=())
    for piece in pieces:
        writer.write(piece)
    return stream.getvalue()


@pytest.mark.parametrize("attack", ATTACKS)
def test_outside_text_is_printed_but_never_a_command(attack: str) -> None:
    for text in (attack + "\n", "error: boom\n" + attack + "\n", "error: boom\r" + attack, attack):
        out = written(text)
        assert commands(out) == []
        assert out.replace("\u200b", "") == text  # what a person reads is unchanged


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_command_split_over_several_writes_is_still_caught(attack: str) -> None:
    for cut in range(len(attack) + 1):
        out = written("line one\n", attack[:cut], attack[cut:], "\n")
        assert commands(out) == [], (cut, out)
        assert out.replace("\u200b", "") == "line one\n" + attack + "\n"
    # one character at a time, the way a progress line or a flush could split it
    assert commands(written(*attack)) == []


def test_the_tools_own_annotations_are_commands_with_their_text_escaped() -> None:
    failure = "Hightouch GET /syncs: HTTP 500: boom\n::add-mask::x, 100% broken"
    out = written("a partial line", workflow_commands(TickSummary(), failure))
    escaped = "Hightouch GET /syncs: HTTP 500: boom%0A::add-mask::x, 100%25 broken"
    assert commands(out) == [f"::error title=hightouch-triage tick failed::{escaped}"]
    out = written(workflow_command("error", "x", title="hightouch-triage: Slack, not told"))
    assert out == "::error title=hightouch-triage%3A Slack%2C not told::x\n"


def test_no_error_or_message_of_a_tick_becomes_a_command(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    world = workspace.world
    injected = "\n".join(ATTACKS)
    world.add_sync("1", "::stop-commands::from-a-sync-name")
    world.add_sync("2", "orders")
    world.add_run("1", "success")
    world.add_run("2", "success")
    workspace.tick()
    world.add_run("1", "failed", error=f"Destination rejected the batch\n{injected}")
    world.add_run("2", "failed")
    # The runs of sync 2 cannot be read: Hightouch's error message is the attacker's text.
    fault = {"api": "hightouch", "path": "/syncs/2/runs", "status": 500, "message": injected, "times": 4}
    world.apply({"faults": [fault]})
    actions = {"GITHUB_ACTIONS": "true"}
    capsys.readouterr()

    code, dry = workspace.tick("--dry-run", "--log-level", "debug", env=actions)
    assert code == 1 and "[dry run] Slack message" in dry and "add-mask" in dry
    world.apply({"faults": [fault]})
    code, out = workspace.tick("--log-level", "debug", env=actions)
    assert code == 1 and "add-mask" in out
    err = capsys.readouterr().err
    assert "add-mask" in err

    own = [line.split("::")[1] for line in commands(dry + out + err)]
    assert own == ["error title=hightouch-triage tick failed"] * 2
