"""The fault matrix: every API and every fault, and kill -9 at each step of handling a sync.

Each case runs against the sandbox on 127.0.0.1: a clean baseline tick, then new
failed runs (alpha fails 3 times: Slack and a Linear issue; beta once: Slack
only), one tick with the fault — the real CLI in its own process, so it can be
killed or cut off — and ticks until nothing changes any more (in-process: they
only read what the faulty process left behind). Then:
every failed run was alerted exactly once — also where a send's answer was lost
(a kill right after Slack took the message, a Slack timeout), since the next
tick finds it in the channel's history; one extra message is allowed only when
the token lacks the history scope. No sync has two Linear issues, the state
file parsed after every tick, and a rate limit never failed a tick.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.slack_payloads import assert_slack_accepts, is_health
from tests.yaml_files import read_yaml
from triage.cli import main
from triage.sandbox import SandboxServer, World
from triage.virtual_time import clocks_from

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
hightouch:
  workspace_slug: acme
linear:
  escalation_threshold: 3
triage:
  wait_budget_seconds: 3
  request_timeout_seconds: 1
"""
SYNCS = {"1": "alpha", "2": "beta", "3": "gamma"}
NEW_FAILURES = {"alpha": 3, "beta": 1}


@dataclass(frozen=True)
class Case:
    name: str
    api: str
    fault: dict[str, Any] | None = None  # a sandbox fault, injected before the faulty tick
    refuse: bool = False  # the API's URL points at a closed port for the faulty tick
    kill_on: tuple[str, str] | None = None  # (api, path prefix): SIGKILL the CLI when it arrives
    duplicate_allowed: bool = False  # a send whose answer was lost may be repeated once
    slack_scopes: tuple[str, ...] | None = None  # the bot token's scopes, when not all of them


# Where each API's faults strike: alpha's runs, the Slack post, and Linear's issue create
# (the one request whose retry could file a duplicate).
TARGETS = {
    "hightouch": {"api": "hightouch", "path": "/syncs/1/runs"},
    "slack": {"api": "slack", "path": "/chat.postMessage"},
    "linear": {"api": "linear", "body": "issueCreate"},
}


def fault_cases() -> list[Case]:
    cases = []
    for api, target in TARGETS.items():
        cases += [
            Case(f"{api}-429-short", api, {**target, "status": 429, "retry_after": "0"}),
            Case(f"{api}-429-past-budget", api, {**target, "status": 429, "retry_after": "3600"}),
            # Reads are retried within a tick, so outlast that; a create or post gets one try a tick.
            Case(f"{api}-500", api, {**target, "status": 500, "times": 6 if api == "hightouch" else 2}),
            Case(f"{api}-timeout", api, {**target, "delay": 1.5}),  # done remotely; the answer never came
            Case(f"{api}-malformed-json", api, {**target, "malformed": True, "times": 2}),
            Case(f"{api}-connection-refused", api, refuse=True),
        ]
    return cases


KILL_POINTS = [
    Case("kill-on-runs-request", "hightouch", kill_on=("hightouch", "/syncs/1/runs")),
    Case("kill-on-name-lookup", "hightouch", kill_on=("hightouch", "/destinations/")),
    Case("kill-after-slack-took-the-message", "slack", kill_on=("slack", "/chat.postMessage")),
    Case(
        "kill-after-slack-took-the-message-without-history-scope",
        "slack",
        kill_on=("slack", "/chat.postMessage"),
        duplicate_allowed=True,
        slack_scopes=("chat:write",),
    ),
    Case("kill-on-linear-search", "linear", kill_on=("linear", "issues")),
    Case("kill-after-linear-created-the-issue", "linear", kill_on=("linear", "issueCreate")),
]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Harness:
    def __init__(self, server: SandboxServer, tmp_path: Path) -> None:
        self.server = server
        self.world: World = server.world
        self.config = tmp_path / "config.yaml"
        self.config.write_text(CONFIG)
        self.state = tmp_path / "state" / "state.yaml"
        self.exit_codes: list[int] = []

    def in_process_tick(self) -> int:
        """A tick run by `main` in this process: the baseline every case starts from, and the
        ticks that carry on after the faulty one (which alone needs a real process, to be
        killed or cut off). Same code, same sandbox over HTTP; its waits on a virtual clock."""
        assert self.world.wait_idle()
        code = main(
            ["run", "--config", str(self.config), "--state", str(self.state)],
            environ=self.server.environment(),
            stdout=io.StringIO(),
            **clocks_from({"TRIAGE_VIRTUAL_SLEEP": "1"}),
        )
        self.exit_codes.append(code)
        self._check_state_parses()
        return code

    def tick(self, *, refuse: str | None = None, kill_on: tuple[str, str] | None = None) -> int:
        # Ticks are minutes apart in real life: let any answer still on its way land first.
        assert self.world.wait_idle()
        # The tool's waits (back-offs, Retry-After) pass on a virtual clock: no tick sleeps.
        env = {**os.environ, **self.server.environment(), "PYTHONPATH": str(ROOT), "TRIAGE_VIRTUAL_SLEEP": "1"}
        if refuse is not None:
            env[f"{refuse.upper()}_API_URL"] = f"http://127.0.0.1:{closed_port()}/x"
        process = subprocess.Popen(
            [sys.executable, "-m", "triage", "run", "--config", str(self.config), "--state", str(self.state)],
            env=env,
            cwd=self.config.parent,  # outside the repository: its config.yaml and templates/ play no part
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if kill_on is not None:
            self.world.on_request = self._killer(process, kill_on)
        try:
            process.communicate(timeout=60)
        finally:
            self.world.on_request = None
        self.exit_codes.append(process.returncode)
        self._check_state_parses()
        return process.returncode

    def _killer(self, process: subprocess.Popen[str], kill_on: tuple[str, str]) -> Any:
        fired: list[bool] = []

        def on_request(api: str, method: str, path: str, body: bytes) -> None:
            target_api, marker = kill_on
            hit = path.startswith(marker) if api == "hightouch" else marker in (path + body.decode(errors="replace"))
            if api == target_api and hit and not fired:
                fired.append(True)
                os.kill(process.pid, signal.SIGKILL)
                process.wait()  # dead before its answer is sent

        return on_request

    def _check_state_parses(self) -> None:
        if self.state.exists():
            doc = read_yaml(self.state)
            assert doc["version"] == 2

    def snapshot(self) -> tuple[int, int, str]:
        text = self.state.read_text() if self.state.exists() else ""
        return len(self.world.slack_messages), len(self.world.linear_issues), text

    def settle(self, limit: int = 6) -> None:
        """Tick until a tick changes nothing (and no fault is left to fire): the faulty tick's
        process is gone, and what it left (state, journal, messages, issues) is all there is."""
        for _ in range(limit):
            before = self.snapshot()
            code = self.in_process_tick()
            if code == 0 and self.snapshot() == before and not any(f.times > 0 for f in self.world.faults):
                return
        raise AssertionError("the scenario did not settle")

    def alerted_failures(self) -> dict[str, list[int]]:
        """Per sync, the failure counts its Slack messages reported."""
        counts: dict[str, list[int]] = {}
        for message in self.world.slack_messages:
            if is_health(message):
                continue
            text = message.get("posted_text") or message["text"]  # as it notified people, before any edit
            name = re.search(r"\|([^>]+)>", text)
            many = re.search(r"\((\d+) new failed runs", text)
            assert name is not None
            counts.setdefault(name.group(1), []).append(int(many.group(1)) if many else 1)
        return counts


def start(tmp_path: Path) -> tuple[SandboxServer, Harness]:
    server = SandboxServer().start()
    for sync_id, name in SYNCS.items():
        server.world.add_sync(sync_id, name, destination=f"Dest {name}", model=f"Model {name}")
        server.world.add_run(sync_id, "success")
    harness = Harness(server, tmp_path)
    assert harness.in_process_tick() == 0  # the baseline
    world = server.world
    for _ in range(NEW_FAILURES["alpha"]):
        world.add_run("1", "failed", error="INVALID_EMAIL_ADDRESS")
    world.add_run("2", "failed", error="HubSpot timeout")
    world.add_run("3", "success")
    return server, harness


def check_invariants(harness: Harness, case: Case) -> None:
    for message in harness.world.slack_messages:
        assert_slack_accepts(message)
    alerted = harness.alerted_failures()
    for name, expected in NEW_FAILURES.items():
        reported = alerted.get(name, [])
        assert reported, f"{name}: its failures were never alerted"
        if case.duplicate_allowed:
            assert sum(reported) - expected in (0, reported[0]), f"{name}: {reported}"
            assert len(reported) <= 2, f"{name}: {reported}"
        else:
            assert sum(reported) == expected, f"{name}: alerted {reported}, failed {expected}"
    assert "gamma" not in alerted
    titles = [issue["title"] for issue in harness.world.linear_issues]
    assert titles == ["Hightouch sync alpha failing repeatedly"], titles
    state = read_yaml(harness.state)
    assert state["syncs"]["1"]["consecutive_failures"] == 3
    incident = state["syncs"]["1"]["incident"]
    assert incident["issue"]["identifier"] == "DATA-1"
    assert not incident.get("issue_pending")


@pytest.mark.parametrize("case", fault_cases(), ids=lambda c: c.name)
def test_fault_matrix(case: Case, tmp_path: Path) -> None:
    server, harness = start(tmp_path)
    try:
        if case.fault is not None:
            server.world.apply({"faults": [case.fault]})
        code = harness.tick(refuse=case.api if case.refuse else None)
        if "429" in case.name:
            assert code == 0, f"a rate limit failed the tick: exit {code}"
        assert code in (0, 1)
        if case.refuse:
            assert code == 1  # nothing reached the service: the tick says so
        else:
            assert server.world.stats[f"fault_{case.api}"] >= 1, "the fault never fired"
        harness.settle()
        check_invariants(harness, case)
    finally:
        server.stop()


@pytest.mark.parametrize("case", KILL_POINTS, ids=lambda c: c.name)
def test_kill_9_at_each_step(case: Case, tmp_path: Path) -> None:
    server, harness = start(tmp_path)
    try:
        if case.slack_scopes is not None:
            server.world.slack_scopes = set(case.slack_scopes)
        code = harness.tick(kill_on=case.kill_on)
        assert code == -signal.SIGKILL
        harness.settle()
        check_invariants(harness, case)
    finally:
        server.stop()
