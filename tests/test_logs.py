"""What each log level adds on stderr: warning is quiet, info tells each sync, wait and
progress, debug every request — and no level prints a secret."""

from __future__ import annotations

import logging
import re

import pytest

from tests.sandboxed import Workspace
from triage.http import Meter
from triage.tick import Progress


def failing_tick(workspace: Workspace, level: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    world = workspace.world
    workspace.failing_after_baseline()
    world.apply({"faults": [{"api": "hightouch", "path": "/syncs/1/runs", "status": 429, "retry_after": "2"}]})
    capsys.readouterr()
    code, out = workspace.tick("--log-level", level)
    assert code == 0, out
    return capsys.readouterr().err.splitlines()


def test_warning_is_quiet_on_a_good_tick(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert failing_tick(workspace, "warning", capsys) == []


def test_info_tells_each_sync_handled_and_each_wait(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    lines = failing_tick(workspace, "info", capsys)
    assert "INFO sync contacts (1): 1 new failed run, 1 in a row; Slack: #data-alerts (open)" in lines
    (wait,) = [line for line in lines if "waiting" in line]
    # Retry-After plus up to a second of jitter, so clients do not come back in step
    assert re.fullmatch(
        r"INFO Hightouch GET /syncs/1/runs: rate limited \(HTTP 429\): waiting [23]\.\d s, 11\d s of wait budget left",
        wait,
    )
    assert not any(line.startswith("DEBUG") for line in lines)


def test_debug_adds_every_request_redacted(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    lines = failing_tick(workspace, "debug", capsys)
    requests = [line for line in lines if line.startswith("DEBUG ") and " ms" in line]
    assert any(line.startswith("DEBUG Hightouch GET ") and "/syncs/1/runs: 429 in" in line for line in requests)
    assert any(line.startswith("DEBUG Slack POST ") and "/chat.postMessage: 200 in" in line for line in requests)
    assert any(line.startswith("INFO sync contacts (1)") for line in lines)
    text = "\n".join(lines)
    for secret in (workspace.env["HIGHTOUCH_API_KEY"], workspace.env["SLACK_BOT_TOKEN"]):
        assert secret not in text


def test_a_long_tick_says_how_far_it_is_every_10_seconds(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    meter = Meter()
    progress = Progress(500, meter, lambda: now[0])
    caplog.set_level(logging.INFO, logger="triage")
    for done in range(1, 60):
        now[0] += 0.5
        meter.request()
        progress.tell("read the runs of", done)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert lines == [
        "progress: read the runs of 21 of 500 syncs; 21 requests, 0 waits (0 s)",
        "progress: read the runs of 41 of 500 syncs; 41 requests, 0 waits (0 s)",
    ]
