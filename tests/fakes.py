"""In-memory stand-ins for Hightouch, Slack and Linear, served through `responses`.

They speak the documented shapes (paging with limit/offset/hasMore, Slack's
ok:false errors, GraphQL errors) and record every request, so tests can
assert on exactly what was sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
import responses

from tests.slack_payloads import assert_slack_accepts

HT = "https://api.hightouch.test/api/v1"
SLACK = "https://slack.test/api"
LINEAR = "https://linear.test/graphql"
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

Reply = tuple[int, dict[str, str], str]


def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body)


@dataclass
class FakeHightouch:
    syncs: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # "/destinations/10" -> "Salesforce"
    newest_first: bool = True
    requests: list[str] = field(default_factory=list)  # "GET /syncs?offset=0", ...
    # path prefix -> replies to give before behaving normally again
    faults: dict[str, list[Reply]] = field(default_factory=dict)

    def add_sync(self, sync_id: str, name: str, *, disabled: bool = False) -> None:
        self.syncs.append(
            {
                "id": sync_id,
                "slug": name,
                "disabled": disabled,
                "status": "success",
                "lastRunAt": None,
                "destinationId": "10",
                "modelId": "20",
                "workspaceId": "1",
            }
        )
        self.runs.setdefault(sync_id, [])
        self.names.setdefault("/destinations/10", "Salesforce Production")
        self.names.setdefault("/models/20", "Active contacts")

    def add_run(self, sync_id: str, run_id: int, status: str, *, error: str | None = None, minute: int = 0) -> None:
        created = f"2026-11-23T{6 + minute // 60:02d}:{minute % 60:02d}:00Z"
        settled = status not in ("queued", "querying", "processing", "reporting")
        self.runs[sync_id].append(
            {
                "id": run_id,
                "status": status,
                "createdAt": created,
                "startedAt": created,
                "finishedAt": created if settled else None,
                "error": error
                if error is not None
                else ("Destination rejected the batch" if status == "failed" else None),
                "plannedRows": {"addedCount": 12, "changedCount": 3, "removedCount": 0},
                "successfulRows": {"addedCount": 9, "changedCount": 3, "removedCount": 0},
                "failedRows": {"addedCount": 3, "changedCount": None, "removedCount": None},
                "completionRatio": 1,
            }
        )
        for item in self.syncs:
            if item["id"] == sync_id:
                item["lastRunAt"] = created

    def set_status(self, sync_id: str, run_id: int, status: str) -> None:
        for item in self.runs[sync_id]:
            if item["id"] == run_id:
                item["status"] = status
                item["finishedAt"] = item["createdAt"]
        for item in self.syncs:
            if item["id"] == sync_id:
                item["lastRunAt"] = item["lastRunAt"][:-1] + ".5Z"  # Hightouch bumps it when a run ends

    def handle(self, request: requests.PreparedRequest) -> Reply:
        url = urlparse(str(request.url))
        path = url.path.removeprefix(urlparse(HT).path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.requests.append(
            f"{request.method} {path}" + (f"?offset={query.get('offset', '0')}" if "offset" in query else "")
        )
        for prefix, queued in self.faults.items():
            if path.startswith(prefix) and queued:
                return queued.pop(0)
        if request.headers.get("Authorization") != f"Bearer {ENV['HIGHTOUCH_API_KEY']}":
            return reply(401, {"message": "Authentication error"})
        if path == "/syncs":
            return self._page(self.syncs, query)
        match = re.fullmatch(r"/syncs/([^/]+)/runs", path)
        if match:
            runs = sorted(self.runs.get(match.group(1), []), key=lambda r: r["id"], reverse=self.newest_first)
            if "runId" in query:
                runs = [r for r in runs if str(r["id"]) == query["runId"]]
            return self._page(runs, query)
        if path in self.names:
            return reply(200, {"id": path.rsplit("/", 1)[1], "name": self.names[path]})
        return reply(404, {"message": "Not found"})

    @staticmethod
    def _page(items: list[dict[str, Any]], query: dict[str, str]) -> Reply:
        limit = min(int(query.get("limit", "100")), 100)
        offset = int(query.get("offset", "0"))
        page = items[offset : offset + limit]
        return reply(200, {"data": page, "hasMore": offset + limit < len(items)})

    def runs_requests(self) -> list[str]:
        return [r for r in self.requests if "/runs" in r]


@dataclass
class FakeSlack:
    messages: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # ok:false codes to answer with, in turn

    def handle(self, request: requests.PreparedRequest) -> Reply:
        body = json.loads(request.body or b"{}")
        if self.errors:
            return reply(200, {"ok": False, "error": self.errors.pop(0)})
        if request.headers.get("Authorization") != f"Bearer {ENV['SLACK_BOT_TOKEN']}":
            return reply(200, {"ok": False, "error": "invalid_auth"})
        assert_slack_accepts(body)
        self.messages.append(body)
        return reply(200, {"ok": True, "channel": "C024BE91L", "ts": f"1700000000.{len(self.messages):06d}"})

    def texts(self) -> list[str]:
        return ["\n\n".join(b["text"]["text"] for b in m["blocks"]) for m in self.messages]


@dataclass
class FakeLinear:
    issues: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    team: dict[str, str] = field(default_factory=lambda: {"id": "team-1", "key": "DATA", "name": "Data"})
    fail_next: list[Reply] = field(default_factory=list)
    create_then_fail: Reply | None = None  # carry out the next create, then answer with this

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
                "teamId": self.team["id"],
            }
        )

    def handle(self, request: requests.PreparedRequest) -> Reply:
        body = json.loads(request.body or b"{}")
        query, variables = body["query"], body.get("variables", {})
        if "issueCreate" in query:
            operation = "issueCreate"
        elif "issues(" in query:
            operation = "issues"
        elif "issue(" in query:
            operation = "issue"
        else:
            operation = "teams"
        self.calls.append((operation, variables))
        if self.fail_next:
            return self.fail_next.pop(0)
        if request.headers.get("Authorization") != ENV["LINEAR_API_KEY"]:
            return reply(
                400,
                {"errors": [{"message": "Authentication required", "extensions": {"type": "authentication error"}}]},
            )
        if operation == "teams":
            key = variables["key"]
            matches = key == self.team["key"] or key.lower() == self.team["name"].lower()
            nodes = [self.team] if matches else []
            return reply(200, {"data": {"teams": {"nodes": nodes}}})
        if operation == "issues":
            name = variables["name"].lower()
            nodes = [
                i
                for i in self.issues
                if i["teamId"] == variables["teamId"]
                and i["state"]["type"] not in ("completed", "canceled", "duplicate")
                and (name in i["title"].lower() or name in i["description"].lower())
            ]
            return reply(200, {"data": {"issues": {"nodes": nodes}}})
        if operation == "issue":
            found = [i for i in self.issues if variables["id"] in (i["id"], i["identifier"])]
            if not found:
                return reply(
                    200, {"errors": [{"message": "Entity not found", "extensions": {"type": "invalid input"}}]}
                )
            return reply(200, {"data": {"issue": found[0]}})
        payload = variables["input"]
        self.open_issue(payload["title"], payload["description"], state="triage")
        self.issues[-1]["priority"] = payload["priority"]
        self.issues[-1]["id"] = payload.get("id") or self.issues[-1]["id"]
        if self.create_then_fail is not None:
            answer, self.create_then_fail = self.create_then_fail, None
            return answer
        return reply(200, {"data": {"issueCreate": {"success": True, "issue": self.issues[-1]}}})

    def operations(self) -> list[str]:
        return [op for op, _ in self.calls]


@dataclass
class World:
    hightouch: FakeHightouch = field(default_factory=FakeHightouch)
    slack: FakeSlack = field(default_factory=FakeSlack)
    linear: FakeLinear = field(default_factory=FakeLinear)

    def register(self, rsps: responses.RequestsMock) -> None:
        rsps.add_callback(responses.GET, re.compile(re.escape(HT) + r"/.*"), callback=self.hightouch.handle)
        rsps.add_callback(responses.POST, f"{SLACK}/chat.postMessage", callback=self.slack.handle)
        rsps.add_callback(responses.POST, LINEAR, callback=self.linear.handle)
