"""Incidents as people see them, through the sandbox: pinged once per change of state, one
issue per team for one cause, complete storm summaries, and the previous release's state."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import requests

from tests.sandboxed import START, Workspace, mounted
from tests.slack_payloads import posted, replies, text_of, top_level
from triage.sandbox import World

FIXTURES = Path(__file__).parent / "fixtures"


def test_a_ten_failure_incident_pings_twice_dms_once_and_replies_in_one_line(tmp_path: Path) -> None:
    world = World()
    world.users.add("U0ONCALL1")
    config = 'slack:\n  channel: "#data-alerts"\n  mention: [S0DATATEAM]\n  dm_on_escalation: [U0ONCALL1]\n'
    with mounted(world):
        ws = Workspace(tmp_path, world, config)
        world.add_sync("1", "salesforce-contacts")
        world.add_run("1", "success")
        ws.tick()
        for _ in range(10):
            world.add_run("1", "failed", error="UNABLE_TO_LOCK_ROW: unable to obtain exclusive access")
            assert ws.tick()[0] == 0
        world.add_run("1", "success")
        assert ws.tick()[0] == 0

    group_pings = [m for m in world.slack_messages if "<!subteam^S0DATATEAM>" in posted(m)]
    assert len(group_pings) == 2  # the incident opened, and it escalated
    assert len([m for m in world.slack_messages if m["channel"] == "U0ONCALL1"]) == 1
    first = top_level(world, "#data-alerts")
    assert len(first) == 1
    failure_replies = [m for m in replies(world) if "recovered" not in m["text"]]
    assert len(failure_replies) == 9
    for reply in failure_replies:
        assert "\n" not in reply["text"]
    escalation = [m for m in failure_replies if "escalated" in m["text"]]
    assert len(escalation) == 1
    assert posted(escalation[0]) != posted(first[0])
    assert "failing 3×" in escalation[0]["text"]
    (issue,) = world.linear_issues
    failure_comments = [c for c in issue.get("comments", []) if "failed again" in c]
    assert len(failure_comments) <= 3
    recovery = [m for m in replies(world) if "recovered" in m["text"]]
    assert len(recovery) == 1
    assert " over 2 h 30 min" in text_of(recovery[0])


def test_one_cause_in_two_teams_files_one_issue_per_team_and_a_later_sync_joins(tmp_path: Path) -> None:
    world = World()
    world.add_team("CRM", "CRM")
    world.channels.add("#crm-alerts")
    config = (
        'slack:\n  channel: "#data-alerts"\nlinear:\n  team: DATA\n'
        'routes:\n  - name: crm\n    match: {sync: ["crm-*"]}\n'
        '    slack: {channel: "#crm-alerts"}\n    linear: {team: CRM}\n'
    )
    data = [f"data-{i}" for i in range(8)]
    crm = [f"crm-{i}" for i in range(5)]
    error = "Snowflake: warehouse ACME_WH is suspended (query 01b2-{n})"
    with mounted(world):
        ws = Workspace(tmp_path, world, config)
        for index, name in enumerate([*data, *crm, "data-late"]):
            world.add_sync(str(index + 1), name)
            world.add_run(str(index + 1), "success")
        ws.tick()
        for tick in range(3):
            for index in range(13):
                world.add_run(str(index + 1), "failed", error=error.format(n=tick * 100 + index))
            assert ws.tick()[0] == 0
        issues = {issue["team"]["key"]: issue for issue in world.linear_issues}
        assert len(world.linear_issues) == 2
        assert all(name in issues["DATA"]["description"] for name in data)
        assert all(name in issues["CRM"]["description"] for name in crm)
        data_issue, crm_issue = issues["DATA"], issues["CRM"]
        assert (
            data_issue["identifier"] in crm_issue["description"] or crm_issue["identifier"] in data_issue["description"]
        )
        before = len(top_level(world, "#data-alerts"))
        ws.tick()  # 15 minutes later
        world.add_run("14", "failed", error=error.format(n=999))
        assert ws.tick()[0] == 0  # 30 minutes later

    assert len(top_level(world, "#data-alerts")) == before  # it joined the cause's thread
    joined = [m for m in world.slack_messages if "data-late" in m["text"]]
    assert joined and "thread_ts" in joined[0]


CAUSES = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee",
]  # fmt: skip


def test_a_storm_summary_counts_every_sync_and_cause_and_a_lost_answer_leaves_one(tmp_path: Path) -> None:
    world = World()
    lost: list[str] = []

    def lose_the_summary_answer(api: str, method: str, path: str, body: bytes) -> None:
        if path.endswith("chat.postMessage") and b"hightouch_storm_summary" in body and not lost:
            lost.append(path)
            raise requests.ReadTimeout("read timed out")

    with mounted(world):
        ws = Workspace(tmp_path, world, 'slack:\n  channel: "#data-alerts"\n')
        for index in range(40):
            world.add_sync(str(index + 1), f"sync-{index}")
            world.add_run(str(index + 1), "success")
        ws.tick()
        for index in range(40):
            cause = CAUSES[index % 25]
            world.add_run(str(index + 1), "failed", error=f"HubSpot property {cause} does not exist")
        world.on_request = lose_the_summary_answer
        code, out = ws.tick()
        assert code == 0
        assert "unconfirmed" in out
        world.on_request = None
        assert ws.tick()[0] == 0
        summaries = [m for m in top_level(world, "#data-alerts") if "started failing at once" in m["text"]]
        assert len(summaries) == 1
        summary = text_of(summaries[0])
        assert "40 Hightouch syncs" in summary
        assert "(25)" in summary and "+17 more causes" in summary
        assert "HubSpot property alpha does not exist" in summary  # real words, not a key
        assert len(replies(world)) == 40
        for index in range(10):
            world.add_run(str(index + 1), "success")
        assert ws.tick()[0] == 0

    updated = summaries[0]  # the world keeps a message as last edited
    assert "30 failing, 10 recovered" in updated["text"]


def test_a_state_file_of_the_previous_release_carries_on_without_repeats(tmp_path: Path) -> None:
    """Both files as the previous release wrote them: its state file and its config.yaml."""
    world = World()
    state = tmp_path / "state" / "state.yaml"
    state.parent.mkdir()
    state.write_text((FIXTURES / "state_v1.yaml").read_text())
    with mounted(world):
        ws = Workspace(tmp_path, world)
        ws.config.write_text((FIXTURES / "config_v1.yaml").read_text())
        world.add_sync("1", "contacts")
        world.add_sync("2", "deals")
        world.add_sync("3", "orders")
        world.next_run_id = 2000
        world.linear_issues.append(
            {
                "id": "issue-1",
                "identifier": "DATA-1",
                "title": "Hightouch sync contacts failing repeatedly",
                "description": "hightouch-triage sync-id 1",
                "priority": 2,
                "labelIds": [],
                "url": "https://linear.app/sandbox/issue/DATA-1",
                "state": {"type": "started"},
                "archivedAt": None,
                "trashed": False,
                "team": {"id": "team-data", "key": "DATA"},
            }
        )
        for ts, text in (("1796045295.087184", "contacts failed"), ("1796045295.215590", "deals failed")):
            parent = {"channel": "#data-alerts", "channel_id": "CDATAALERTS", "ts": ts, "text": text, "blocks": []}
            world.slack_messages.append(parent)
        seeded = len(world.slack_messages)
        ws.ticks = 700  # a week on: after the times the file was written at
        world.now = lambda: START + timedelta(minutes=15 * 700 - 5)
        world.add_run("1", "failed", error="Salesforce: UNABLE_TO_LOCK_ROW on record 3")
        world.add_run("2", "success")
        code, _ = ws.tick()

    assert code == 0
    sent = world.slack_messages[seeded:]
    assert len(sent) == 2  # a repeat and a recovery, each in its incident's thread
    by_thread = {m.get("thread_ts"): m["text"] for m in sent}
    assert "4 in a row" in by_thread["1796045295.087184"]
    assert "recovered" in by_thread["1796045295.215590"]
    assert len(world.linear_issues) == 1
    assert "version: 2" in state.read_text()


@pytest.mark.parametrize("where", ["chat.postMessage"])
def test_a_lost_answer_on_an_alert_is_not_the_tool_failing(tmp_path: Path, where: str) -> None:
    world = World()
    lost: list[str] = []

    def lose_one(api: str, method: str, path: str, body: bytes) -> None:
        if path.endswith(where) and not lost:
            lost.append(path)
            raise requests.ReadTimeout("read timed out")

    with mounted(world):
        ws = Workspace(tmp_path, world, 'slack:\n  channel: "#data-alerts"\n')
        ws.failing_after_baseline()
        world.on_request = lose_one
        code, out = ws.tick()
        world.on_request = None
        assert code == 0
        assert "Slack messages sent: 1 (1 unconfirmed)" in out
        assert len(world.slack_messages) == 1
        code, out = ws.tick()

    assert code == 0
    assert len(world.slack_messages) == 1  # found in history: not sent again, no health message
    assert "cannot run" not in str(world.slack_messages)
