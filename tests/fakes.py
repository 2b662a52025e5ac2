"""Hightouch, Slack and Linear for unit tests: the sandbox's own request handler, answering
through `responses` at fixed test URLs, so there is one emulator of the APIs.

What is here is harness, not emulation: builders in the shape the unit tests speak
(explicit run ids and minutes), a log of requests as the tests assert on them, and
queues of canned answers that stand in front of the handler to inject a fault.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
import responses

from tests.sandboxed import handled, request_body
from tests.slack_payloads import is_health
from triage.sandbox import Sandbox
from triage.sandbox import World as SandboxWorld
from triage.sandbox.server import HIGHTOUCH
from triage.sandbox.server import LINEAR as LINEAR_PATH
from triage.sandbox.server import SLACK as SLACK_PATH

HOST = "https://sandbox.test"
HT = HOST + HIGHTOUCH
SLACK = HOST + SLACK_PATH
LINEAR = HOST + LINEAR_PATH
APP = "https://app.hightouch.test"

ENV = {
    "HIGHTOUCH_API_KEY": "ht-secret-key-0123456789",
    "SLACK_BOT_TOKEN": "xoxb-secret-slack-token-0123456789",
    "LINEAR_API_KEY": "lin_api_secret_0123456789",
    "HIGHTOUCH_API_URL": HT,
    "SLACK_API_URL": SLACK,
    "LINEAR_API_URL": LINEAR,
    "HIGHTOUCH_APP_URL": APP,
}

T0 = datetime(2026, 11, 23, 8, 50, tzinfo=UTC)  # runs at minute 10 and later come after the first tick
# Every run's rows: 9 added, 3 changed, 0 removed; 3 rejected.
ROWS: dict[str, int | None] = {"added": 9, "changed": 3, "removed": 0, "rejected": 3}

Reply = tuple[int, dict[str, str], str]


def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body)


class FakeHightouch:
    def __init__(self, world: SandboxWorld) -> None:
        self.world = world
        self.requests: list[str] = []  # "GET /syncs?offset=0", ...
        self.faults: dict[str, list[Reply]] = {}  # path prefix -> answers to give first

    @property
    def newest_first(self) -> bool:
        return self.world.newest_first

    @newest_first.setter
    def newest_first(self, value: bool) -> None:
        self.world.newest_first = value

    def add_sync(self, sync_id: str, name: str, *, disabled: bool = False) -> None:
        self.world.add_sync(
            sync_id,
            name,
            destination="Salesforce Production",
            model="Active contacts",
            disabled=disabled,
            destination_id="10",
            model_id="20",
        )

    def add_run(self, sync_id: str, run_id: int, status: str, *, error: str | None = None, minute: int = 0) -> None:
        self.world.add_run(
            sync_id, status, error=error, rows=dict(ROWS), at=T0 + timedelta(minutes=minute), run_id=run_id
        )

    def set_status(self, sync_id: str, run_id: int, status: str) -> None:
        """Settle one run; Hightouch moves the sync's lastRunAt when a run ends."""
        sync = self.world.syncs[sync_id]
        run = next(r for r in sync.runs if r.id == run_id)
        run.status, run.finished_at = status, run.created_at + timedelta(seconds=1)
        assert sync.last_run_at is not None
        sync.last_run_at += timedelta(milliseconds=500)

    def log(self, method: str, path: str, query: dict[str, str]) -> None:
        offset = f"?offset={query['offset']}" if "offset" in query else ""
        self.requests.append(f"{method} {path}{offset}")

    def runs_requests(self) -> list[str]:
        return [r for r in self.requests if "/runs" in r]


class FakeSlack:
    def __init__(self, world: SandboxWorld) -> None:
        self.world = world
        self.errors: list[str] = []  # ok:false codes to answer with, in turn

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The alerts posted (the tool's health messages are in `health`)."""
        return [m for m in self.world.slack_messages if not is_health(m)]

    @property
    def health(self) -> list[dict[str, Any]]:
        return [m for m in self.world.slack_messages if is_health(m)]

    def texts(self) -> list[str]:
        return ["\n\n".join(b["text"]["text"] for b in m["blocks"]) for m in self.messages]


class FakeLinear:
    def __init__(self, world: SandboxWorld) -> None:
        self.world = world
        world.teams = [{"id": "team-1", "key": "DATA", "name": "Data"}]
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_next: list[Reply] = []
        self.create_then_fail: Reply | None = None  # carry out the next create, then answer with this

    @property
    def issues(self) -> list[dict[str, Any]]:
        return self.world.linear_issues

    @property
    def team(self) -> dict[str, str]:
        return self.world.teams[0]

    def open_issue(self, title: str, description: str = "", state: str = "started") -> None:
        number = len(self.issues) + 1
        self.issues.append(
            {
                "id": f"issue-{number}",
                "identifier": f"DATA-{number}",
                "title": title,
                "description": description,
                "url": f"https://linear.test/issue/DATA-{number}",
                "state": {"type": state},
                "archivedAt": None,
                "trashed": False,
                "team": self.team,
            }
        )

    def log(self, body: bytes) -> str:
        request = json.loads(body or b"{}")
        query = request["query"]
        operations = ("issueCreate", "commentCreate", "issueLabels", "issues", "issue", "teams")
        operation = next((op for op in operations if re.search(rf"\b{op}\s*\(", query)), "other")
        self.calls.append((operation, request.get("variables", {})))
        return operation

    def operations(self) -> list[str]:
        return [op for op, _ in self.calls]


class World:
    """The three APIs as the sandbox answers them, with the tests' hooks in front."""

    def __init__(self) -> None:
        self.sandbox = SandboxWorld()
        self.sandbox.hightouch_key = ENV["HIGHTOUCH_API_KEY"]
        self.sandbox.slack_token = ENV["SLACK_BOT_TOKEN"]
        self.sandbox.linear_key = ENV["LINEAR_API_KEY"]
        self.handler = Sandbox(self.sandbox)
        self.hightouch = FakeHightouch(self.sandbox)
        self.slack = FakeSlack(self.sandbox)
        self.linear = FakeLinear(self.sandbox)

    def register(self, rsps: responses.RequestsMock) -> None:
        pattern = re.compile(re.escape(HOST) + r"/.*")
        for method in (responses.GET, responses.POST):
            rsps.add_callback(method, pattern, callback=self.answer)

    def answer(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes | str]:
        url = urlparse(str(request.url))
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        canned = self._hooks(str(request.method), url.path, query, request_body(request))
        if canned is not None:
            return canned
        answer: tuple[int, dict[str, str], bytes | str] = handled(self.handler, request)
        if url.path == LINEAR_PATH and b"issueCreate" in request_body(request) and self.linear.create_then_fail:
            answer, self.linear.create_then_fail = self.linear.create_then_fail, None
        return answer

    def _hooks(self, method: str, path: str, query: dict[str, str], body: bytes) -> Reply | None:
        """Log the request as the tests read it; answer from a fault queue if one applies."""
        if path.startswith(HIGHTOUCH):
            sub = path.removeprefix(HIGHTOUCH)
            self.hightouch.log(method, sub, query)
            for prefix, queued in self.hightouch.faults.items():
                if sub.startswith(prefix) and queued:
                    return queued.pop(0)
        elif path.startswith(SLACK_PATH):
            if self.slack.errors:
                return reply(200, {"ok": False, "error": self.slack.errors.pop(0)})
        elif path == LINEAR_PATH:
            self.linear.log(body)
            if self.linear.fail_next:
                return self.linear.fail_next.pop(0)
        return None
