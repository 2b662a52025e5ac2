"""`status` and `trigger`: every exit code, the artifact, inputs, and waiting."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.fakes import ENV, HT
from triage.cli import main
from triage.sandbox import SandboxServer
from triage.status import parse_duration


class FakeClock:
    """now() moves only when the code sleeps: waiting is instant and exact."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.moment += timedelta(seconds=seconds)


def cli(*argv: str, env: dict[str, str] | None = None, clock: FakeClock | None = None) -> tuple[int, str]:
    out = io.StringIO()
    clock = clock or FakeClock()
    code = main(list(argv), environ=ENV if env is None else env, stdout=out, sleep=clock.sleep, now=clock.now)
    return code, out.getvalue()


def run_json(run_id: int, status: str, *, finished: bool = True, minute: int = 0, **extra: Any) -> dict[str, Any]:
    created = f"2026-11-24T08:{minute:02d}:00Z"
    return {
        "id": run_id,
        "status": status,
        "createdAt": created,
        "startedAt": created,
        "finishedAt": created if finished else None,
        "error": "Salesforce said no" if status == "failed" else None,
        "successfulRows": {"addedCount": 10, "changedCount": 2, "removedCount": 0},
        "failedRows": {"addedCount": 3, "changedCount": None, "removedCount": None},
        **extra,
    }


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def serve_run(rsps: responses.RequestsMock, run: dict[str, Any], sync_id: str = "7") -> None:
    rsps.get(
        f"{HT}/syncs/{sync_id}/runs",
        match=[responses.matchers.query_param_matcher({"runId": str(run["id"])})],
        json={"data": [run], "hasMore": False},
    )


@pytest.mark.parametrize(
    ("status", "finished", "flags", "code"),
    [
        ("success", True, [], 0),
        ("warning", True, [], 0),
        ("warning", True, ["--warning-is-error"], 210),
        ("failed", True, [], 210),
        ("interrupted", True, [], 210),
        ("cancelled", True, [], 210),
        ("processing", False, [], 211),
        ("queued", False, [], 211),
        ("completed_with_surprises", True, [], 212),
    ],
)
def test_status_exit_codes(
    rsps: responses.RequestsMock, tmp_path: Path, status: str, finished: bool, flags: list[str], code: int
) -> None:
    serve_run(rsps, run_json(42, status, finished=finished))
    exit_code, out = cli("status", "--sync-id", "7", "--run-id", "42", "--artifacts-dir", str(tmp_path), *flags)
    assert exit_code == code
    assert out.startswith(f"sync 7 run 42: {status} · 10 added, 2 changed, 0 removed, 3 rejected")
    assert len(out.strip().splitlines()) == 1


def test_status_saves_the_raw_response(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    run = run_json(42, "failed", querySize=1234)
    serve_run(rsps, run)
    code, out = cli("status", "--sync-id", "7", "--run-id", "42", "--artifacts-dir", str(tmp_path))
    assert code == 210
    assert "error: Salesforce said no" in out
    saved = json.loads((tmp_path / "responses" / "sync_run_42_response.json").read_text())
    assert saved == {"data": [run], "hasMore": False}


def test_status_defaults_to_the_latest_run(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    runs = [run_json(41, "success", minute=1), run_json(43, "failed", minute=3), run_json(42, "success", minute=2)]
    rsps.get(
        f"{HT}/syncs/7/runs",
        match=[responses.matchers.query_param_matcher({"limit": "100", "offset": "0"})],
        json={"data": runs, "hasMore": False},
    )
    serve_run(rsps, runs[1])
    code, _ = cli("status", "--sync-id", "7", "--artifacts-dir", str(tmp_path))
    assert code == 210
    assert (tmp_path / "responses" / "sync_run_43_response.json").exists()


def test_flags_win_over_the_environment(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    serve_run(rsps, run_json(42, "success"), sync_id="8")
    env = {**ENV, "HIGHTOUCH_SYNC_ID": "7", "HIGHTOUCH_SYNC_RUN_ID": "41"}
    code, out = cli("status", "--sync-id", "8", "--run-id", "42", "--artifacts-dir", str(tmp_path), env=env)
    assert code == 0
    assert out.startswith("sync 8 run 42")


def test_environment_supplies_missing_inputs(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    serve_run(rsps, run_json(41, "failed"))
    env = {**ENV, "HIGHTOUCH_SYNC_ID": "7", "HIGHTOUCH_SYNC_RUN_ID": "41"}
    code, out = cli("status", "--artifacts-dir", str(tmp_path), env=env)
    assert code == 210
    assert out.startswith("sync 7 run 41")


def test_missing_sync_id_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = cli("status")
    assert code == 2
    assert "HIGHTOUCH_SYNC_ID" in capsys.readouterr().err


@pytest.mark.parametrize(("status", "code"), [(401, 200), (404, 201), (422, 202), (400, 202), (500, 3)])
def test_status_error_codes(
    rsps: responses.RequestsMock, tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int, code: int
) -> None:
    rsps.get(f"{HT}/syncs/7/runs", status=status, json={"message": "nope"})
    exit_code, _ = cli("status", "--sync-id", "7", "--run-id", "42", "--artifacts-dir", str(tmp_path))
    assert exit_code == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert ENV["HIGHTOUCH_API_KEY"] not in err


def test_unknown_run_id_is_201(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    rsps.get(f"{HT}/syncs/7/runs", json={"data": [], "hasMore": False})
    code, _ = cli("status", "--sync-id", "7", "--run-id", "999", "--artifacts-dir", str(tmp_path))
    assert code == 201


def test_sync_that_never_ran_is_201(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    rsps.get(f"{HT}/syncs/7/runs", json={"data": [], "hasMore": False})
    code, _ = cli("status", "--sync-id", "7", "--artifacts-dir", str(tmp_path))
    assert code == 201


# -- trigger -------------------------------------------------------------------


def polled(rsps: responses.RequestsMock, *runs: dict[str, Any]) -> None:
    for run in runs:
        rsps.get(f"{HT}/syncs/7/runs", json={"data": [run], "hasMore": False})


def test_trigger_without_wait_prints_the_run_id(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{HT}/syncs/7/trigger", json={"id": "55"})
    code, out = cli("trigger", "--sync-id", "7", "--full-resync")
    assert code == 0
    assert out == "triggered sync 7: run 55\n"
    assert json.loads(rsps.calls[0].request.body) == {"fullResync": True}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "code"), [("success", 0), ("warning", 0), ("failed", 210), ("completed_with_surprises", 212)]
)
def test_trigger_wait_polls_until_the_run_settles(
    rsps: responses.RequestsMock, tmp_path: Path, outcome: str, code: int
) -> None:
    rsps.post(f"{HT}/syncs/7/trigger", json={"id": "55"})
    polled(
        rsps, run_json(55, "queued", finished=False), run_json(55, "processing", finished=False), run_json(55, outcome)
    )
    clock = FakeClock()
    exit_code, out = cli(
        "trigger", "--sync-id", "7", "--wait", "--poll-interval", "10s", "--artifacts-dir", str(tmp_path), clock=clock
    )
    assert exit_code == code
    assert clock.sleeps == [10, 10]
    assert out.splitlines()[-1].startswith(f"sync 7 run 55: {outcome}")


def test_trigger_wait_times_out_with_211(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    rsps.post(f"{HT}/syncs/7/trigger", json={"id": "55"})
    rsps.get(f"{HT}/syncs/7/runs", json={"data": [run_json(55, "processing", finished=False)], "hasMore": False})
    clock = FakeClock()
    code, out = cli(
        "trigger", "--sync-id", "7", "--wait", "--timeout", "1m", "--poll-interval", "20s",
        "--artifacts-dir", str(tmp_path), clock=clock,
    )  # fmt: skip
    assert code == 211
    assert sum(clock.sleeps) <= 60
    assert "gave up waiting" in out


def test_trigger_wait_rides_out_a_429_while_polling(rsps: responses.RequestsMock, tmp_path: Path) -> None:
    rsps.post(f"{HT}/syncs/7/trigger", json={"id": "55"})
    rsps.get(f"{HT}/syncs/7/runs", json={"data": [run_json(55, "queued", finished=False)], "hasMore": False})
    rsps.get(f"{HT}/syncs/7/runs", status=429, json={"error": "slow down"}, headers={"Retry-After": "5"})
    rsps.get(f"{HT}/syncs/7/runs", json={"data": [run_json(55, "success")], "hasMore": False})
    clock = FakeClock()
    code, _ = cli(
        "trigger", "--sync-id", "7", "--wait", "--poll-interval", "10s", "--artifacts-dir", str(tmp_path), clock=clock
    )
    assert code == 0
    assert any(5 <= s < 6 for s in clock.sleeps)  # honoured Retry-After


@pytest.mark.parametrize(("status", "code"), [(401, 200), (404, 201), (400, 202), (422, 202), (503, 3)])
def test_trigger_error_codes(rsps: responses.RequestsMock, status: int, code: int) -> None:
    rsps.post(f"{HT}/syncs/7/trigger", status=status, json={"message": "nope"})
    assert cli("trigger", "--sync-id", "7")[0] == code


def test_durations() -> None:
    assert parse_duration("90", "--t") == 90
    assert parse_duration("45s", "--t") == 45
    assert parse_duration("30m", "--t") == 1800
    assert parse_duration("1h30m", "--t") == 5400


def test_bad_duration_is_a_usage_error() -> None:
    assert cli("trigger", "--sync-id", "7", "--wait", "--timeout", "soon")[0] == 2


# -- against the sandbox -----------------------------------------------------------


def test_sandbox_trigger_moves_queued_processing_outcome(tmp_path: Path) -> None:
    with SandboxServer() as server:
        server.world.add_sync("7", "s7")
        server.world.trigger_outcomes["7"] = "failed"
        env = server.environment()
        clock = FakeClock()
        code, out = cli(
            "trigger", "--sync-id", "7", "--wait", "--poll-interval", "5s", "--artifacts-dir", str(tmp_path),
            env=env, clock=clock,
        )  # fmt: skip
        assert code == 210
        lines = out.splitlines()
        assert "queued" in lines[1] and "processing" in lines[2]
        run_id = lines[0].rsplit(" ", 1)[1]
        code, out = cli("status", "--sync-id", "7", "--artifacts-dir", str(tmp_path), env=env)
        assert code == 210
        assert out.startswith(f"sync 7 run {run_id}: failed")
        assert (tmp_path / "responses" / f"sync_run_{run_id}_response.json").exists()


def test_sandbox_status_of_an_unknown_sync_is_201(tmp_path: Path) -> None:
    with SandboxServer() as server:
        assert cli("status", "--sync-id", "404", "--artifacts-dir", str(tmp_path), env=server.environment())[0] == 201
