"""The sandbox behaves like the services it stands in for."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from triage.sandbox import Sandbox, World
from triage.sandbox.world import SCENARIOS, ScenarioError, load_scenario_file

HT_AUTH = {"Authorization": "Bearer sandbox-hightouch-key"}


def call(
    sandbox: Sandbox, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    status, answer_headers, payload = sandbox.handle(
        method, path, headers or {}, json.dumps(body).encode() if body is not None else b""
    )
    try:
        return status, answer_headers, json.loads(payload)
    except ValueError:
        return status, answer_headers, payload


def workspace(syncs: int = 0) -> tuple[World, Sandbox]:
    world = World()
    for i in range(syncs):
        world.add_sync(str(i), f"s{i}")
    return world, Sandbox(world)


def test_sync_pages_cap_the_limit_at_100_and_say_has_more() -> None:
    _, sandbox = workspace(150)
    status, _, body = call(sandbox, "GET", "/hightouch/api/v1/syncs?limit=500", HT_AUTH)
    assert status == 200 and len(body["data"]) == 100 and body["hasMore"] is True
    _, _, body = call(sandbox, "GET", "/hightouch/api/v1/syncs?limit=100&offset=100", HT_AUTH)
    assert len(body["data"]) == 50 and body["hasMore"] is False


def test_wrong_hightouch_key_is_401() -> None:
    _, sandbox = workspace(1)
    status, _, body = call(sandbox, "GET", "/hightouch/api/v1/syncs", {"Authorization": "Bearer nope"})
    assert status == 401 and body["message"] == "Authentication error"


def test_rate_limit_answers_429_without_retry_after_past_200_requests() -> None:
    world, sandbox = workspace(1)
    world.rate_limit = True
    statuses = [call(sandbox, "GET", "/hightouch/api/v1/syncs", HT_AUTH)[0] for _ in range(201)]
    assert statuses[:200] == [200] * 200
    status, headers, _ = call(sandbox, "GET", "/hightouch/api/v1/syncs", HT_AUTH)
    assert status == 429 and "Retry-After" not in headers
    assert world.stats["hightouch_429"] == 2


def test_faults_fire_the_given_number_of_times() -> None:
    world, sandbox = workspace(1)
    world.apply(
        {
            "faults": [
                {"api": "hightouch", "path": "/syncs/0/runs", "status": 429, "retry_after": "7", "times": 2},
                {"api": "hightouch", "path": "/syncs", "malformed": True},
            ]
        }
    )
    assert call(sandbox, "GET", "/hightouch/api/v1/syncs/0/runs", HT_AUTH)[1]["Retry-After"] == "7"
    assert call(sandbox, "GET", "/hightouch/api/v1/syncs/0/runs", HT_AUTH)[0] == 429
    status, _, body = call(sandbox, "GET", "/hightouch/api/v1/syncs", HT_AUTH)
    assert status == 200 and isinstance(body, bytes)  # not JSON
    assert call(sandbox, "GET", "/hightouch/api/v1/syncs/0/runs", HT_AUTH)[0] == 200
    assert isinstance(call(sandbox, "GET", "/hightouch/api/v1/syncs", HT_AUTH)[2], dict)


def test_slack_checks_token_and_channel_and_records_messages() -> None:
    world, sandbox = workspace()
    good = {"Authorization": "Bearer xoxb-sandbox-token"}
    assert call(sandbox, "POST", "/slack/api/chat.postMessage", {}, {"channel": "#data-alerts", "text": "x"})[2] == {
        "ok": False,
        "error": "invalid_auth",
    }
    _, _, body = call(sandbox, "POST", "/slack/api/chat.postMessage", good, {"channel": "#nope", "text": "x"})
    assert body["error"] == "channel_not_found"
    _, _, body = call(sandbox, "POST", "/slack/api/chat.postMessage", good, {"channel": "#data-alerts", "text": "hi"})
    assert body["ok"] is True
    assert [m["text"] for m in world.slack_messages] == ["hi"]


def test_linear_finds_created_issues_until_they_are_closed() -> None:
    world, sandbox = workspace()
    auth = {"Authorization": "lin_api_sandbox_key"}
    create = {
        "query": "mutation { issueCreate(input: $input) { success } }",
        "variables": {"input": {"teamId": "team-data", "title": "Hightouch sync s1 failing repeatedly", "priority": 2}},
    }
    _, _, body = call(sandbox, "POST", "/linear/graphql", auth, create)
    assert body["data"]["issueCreate"]["issue"]["identifier"] == "DATA-1"
    search = {
        "query": "query { issues(filter: {}) { nodes { id } } }",
        "variables": {"teamId": "team-data", "name": "s1"},
    }
    assert len(call(sandbox, "POST", "/linear/graphql", auth, search)[2]["data"]["issues"]["nodes"]) == 1
    world.apply({"linear_state": {"DATA-1": "completed"}})
    assert call(sandbox, "POST", "/linear/graphql", auth, search)[2]["data"]["issues"]["nodes"] == []
    status, _, body = call(sandbox, "POST", "/linear/graphql", {"Authorization": "bad"}, search)
    assert status == 400 and body["errors"][0]["extensions"]["type"] == "authentication error"


def test_demo_scenario_loads_and_advances_to_the_end() -> None:
    world = World()
    world.load_scenario(load_scenario_file(SCENARIOS / "demo.yaml"))
    notes = []
    while (step := world.advance()) is not None:
        notes.append(step.note)
    assert len(notes) == 11
    assert world.syncs["103"].disabled


def runs_of(sandbox: Sandbox, query: str) -> tuple[int, Any]:
    status, _, body = call(sandbox, "GET", f"/hightouch/api/v1/syncs/0/runs?{query}", HT_AUTH)
    return status, body


def test_runs_are_listed_in_the_order_the_scenario_sets_and_filtered_by_start_time() -> None:
    world, sandbox = workspace(1)
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    for minute in range(4):
        world.add_run("0", "success", at=start + timedelta(minutes=15 * minute))
    _, body = runs_of(sandbox, "")
    assert [r["id"] for r in body["data"]] == [1004, 1003, 1002, 1001]
    world.load_scenario({"options": {"runs_order": "oldest_first"}})
    _, body = runs_of(sandbox, "orderBy=createdAt")
    assert [r["id"] for r in body["data"]] == [1001, 1002, 1003, 1004]
    # `after` and `before` select runs started after / before a time; the bound itself is out
    _, body = runs_of(sandbox, "after=2026-11-23T09:15:00.000Z&before=2026-11-23T09:45:00Z")
    assert [r["id"] for r in body["data"]] == [1003]
    _, body = runs_of(sandbox, "within=60")
    assert body["data"] == []  # every run started more than an hour ago


def test_what_hightouch_cannot_read_in_a_query_is_its_validation_error() -> None:
    _, sandbox = workspace(1)
    for query, name in [("after=yesterday", "after"), ("orderBy=status", "orderBy"), ("limit=ten", "limit")]:
        status, body = runs_of(sandbox, query)
        assert status == 422 and body["message"] == "Validation failed", query
        assert body["details"][name]["value"] == query.split("=")[1]
    status, _, body = call(sandbox, "GET", "/hightouch/api/v1/syncs?after=soon", HT_AUTH)
    assert status == 422 and set(body["details"]) == {"after"}


def test_a_scenario_names_a_runs_order_the_sandbox_knows() -> None:
    with pytest.raises(ScenarioError, match="runs_order"):
        World().load_scenario({"options": {"runs_order": "random"}}, "s.yaml")
