"""Whole stories told tick by tick through the CLI's `run`, in-process against the sandbox:
routes, a route that points nowhere, and one incident from its first message to its
recovery. (The real process adds nothing to them; the fault matrix and kill -9 cases in
tests/e2e run it.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.sandboxed import Workspace
from tests.slack_payloads import is_health


def ok(workspace: Workspace) -> str:
    code, out = workspace.tick()
    assert code == 0, out
    return out


def saved(workspace: Workspace, sync_id: str) -> dict[str, Any]:
    return dict(workspace.saved()["syncs"][sync_id])


def texts(workspace: Workspace) -> list[str]:
    return ["\n\n".join(b["text"]["text"] for b in m["blocks"]) for m in workspace.world.slack_messages]


ROUTED = """\
routes:
  - name: crm
    match: {destination_type: [salesforce, hubspot], tags: {env: production}}
    slack: {channel: "#crm-alerts", mention: [S0123ABCD, U024BE7LH], dm_on_escalation: [U024BE7LH]}
    linear: {team: CRM, escalation_threshold: 2, priority: urgent, labels: [hightouch]}
  - name: staging
    match: {tags: {env: staging}}
    slack: {channel: "#staging"}
    linear: {escalate: false}
  - name: legacy
    match: {sync: ["legacy-*"]}
    mute_until: MUTE
"""


def test_routes_send_each_sync_to_its_owners(workspace: Workspace) -> None:
    world = workspace.world
    world.channels |= {"#crm-alerts", "#staging"}
    world.users.add("U024BE7LH")
    world.add_team("CRM", "Customer data")
    world.add_label("hightouch", "CRM")
    prod, staging = {"env": "production"}, {"env": "staging"}
    world.add_sync("1", "sf-contacts", destination="Salesforce", tags=prod)
    world.add_sync("2", "hs-deals", destination="HubSpot", tags=prod)
    world.add_sync("3", "stg-orders", destination="Salesforce", tags=staging)
    world.add_sync("4", "legacy-users", destination="Braze")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    workspace.config.write_text(workspace.config.read_text() + ROUTED.replace("MUTE", tomorrow))
    for sync_id in "1234":
        world.add_run(sync_id, "success")
    ok(workspace)

    for sync_id in "1234":
        world.add_run(sync_id, "failed")
    ok(workspace)
    # Channels take turns (one's pace never holds up another's), so compare as sets per channel.
    assert sorted(m["channel"] for m in world.slack_messages) == ["#crm-alerts", "#crm-alerts", "#staging"]
    first = next(m for m in world.slack_messages if "sf-contacts" in m["text"])
    assert first["text"].startswith("<!subteam^S0123ABCD> <@U024BE7LH> :red_circle:")

    seen = len(world.slack_messages)
    for sync_id in "134":
        world.add_run(sync_id, "failed")
    for _ in range(3):
        world.add_run("3", "failed")  # the staging sync: 5 in a row
    ok(workspace)
    new = {m["channel"]: m for m in world.slack_messages[seen:]}
    assert len(world.slack_messages) - seen == 3 and set(new) == {"#crm-alerts", "U024BE7LH", "#staging"}  # a DM at 2
    crm = new["#crm-alerts"]
    assert (crm["thread_ts"], crm["reply_broadcast"]) == (first["ts"], True)  # crossing: shown in channel
    assert "thread_ts" not in new["U024BE7LH"]  # the DM stands alone
    assert new["#staging"]["reply_broadcast"] is False  # staging never escalates: a quiet reply
    (issue,) = world.linear_issues
    assert (issue["team"]["key"], issue["priority"], issue["labelIds"]) == ("CRM", 1, ["label-1"])
    assert issue["url"] in str(first["blocks"])  # the first message now names the issue
    assert saved(workspace, "1")["incident"]["issue"]["team"] == "CRM"
    assert saved(workspace, "3")["consecutive_failures"] == 5  # never escalated
    assert saved(workspace, "4")["consecutive_failures"] == 2  # muted: judged, not told

    seen = len(world.slack_messages)
    workspace.config.write_text(workspace.config.read_text().replace(tomorrow, "2020-01-01"))  # the mute ends
    ok(workspace)
    assert world.slack_messages[seen:] == []  # nothing from the mute is alerted after it
    world.add_run("4", "failed")
    ok(workspace)
    assert [m["channel"] for m in world.slack_messages[seen:]] == ["#data-alerts"]
    assert "3 runs in a row" in texts(workspace)[-1]


def test_a_broken_route_holds_only_its_syncs_until_it_is_fixed(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    world = workspace.world
    world.add_sync("1", "sf-contacts")
    world.add_sync("2", "hs-deals")
    for sync_id in "12":
        world.add_run(sync_id, "success")
    good = workspace.config.read_text()
    workspace.config.write_text(
        good + 'routes:\n  - name: deals\n    match: {sync: [hs-*]}\n    slack: {channel: "#dealz"}\n'
    )
    ok(workspace)
    for sync_id in "12":
        world.add_run(sync_id, "failed")
    code, out = workspace.tick()
    err = capsys.readouterr().err
    assert code == 2
    assert "route 'deals'" in out + err and "'#dealz'" in err
    alerts = [m for m in world.slack_messages if not is_health(m)]
    assert [m["channel"] for m in alerts] == ["#data-alerts"]  # the other route went out
    assert saved(workspace, "2")["consecutive_failures"] == 0  # held, not lost

    workspace.config.write_text(good)  # fixed by pull request
    ok(workspace)
    ok(workspace)
    alerts = [m for m in world.slack_messages if not is_health(m)]
    assert sorted(m["text"].split("|")[1].split(">")[0] for m in alerts) == ["hs-deals", "sf-contacts"]
    assert [m["text"].split("*")[1] for m in world.slack_messages if is_health(m)] == [
        "hightouch-triage cannot run:",
        "hightouch-triage works again",
    ]  # the tool said it was stuck, once, and when it was not


def test_one_incident_is_one_thread_that_ends_with_a_recovery(workspace: Workspace) -> None:
    world = workspace.world
    world.add_sync("1", "sf-contacts")
    world.add_run("1", "success")
    ok(workspace)
    messages = world.slack_messages

    world.add_run("1", "failed", error="first error")
    ok(workspace)
    (first,) = messages  # the incident's first message: top level
    assert "thread_ts" not in first

    world.add_run("1", "failed")
    ok(workspace)
    assert (messages[1]["thread_ts"], messages[1]["reply_broadcast"]) == (first["ts"], False)  # a quiet reply

    world.add_run("1", "failed", error="third error")
    ok(workspace)
    assert (messages[2]["thread_ts"], messages[2]["reply_broadcast"]) == (first["ts"], True)  # escalation: shown
    (issue,) = world.linear_issues
    live = "\n".join(b["text"]["text"] for b in first["blocks"])
    assert f"<{issue['url']}|{issue['identifier']}>" in live  # the first message names the issue...
    assert "3 runs in a row since" in live and "third error" in live  # ...and where things stand
    thread_link = f"/archives/{first['channel_id']}/p{first['ts'].replace('.', '')}"
    assert thread_link in issue["description"]  # and the issue links back to the thread

    world.add_run("1", "failed")
    ok(workspace)
    assert messages[3]["thread_ts"] == first["ts"] and len(issue["comments"]) == 1  # failed again: a comment

    world.add_run("1", "success")
    ok(workspace)
    recovery = messages[4]
    assert recovery["thread_ts"] == first["ts"] and "recovered" in recovery["text"]
    assert "after 4 failed runs" in recovery["text"]
    assert "recovered" in first["text"]  # the first message is marked resolved
    assert len(issue["comments"]) == 2 and "Recovered" in issue["comments"][1]
    assert "threads" not in saved(workspace, "1")

    world.add_run("1", "success")
    ok(workspace)
    assert len(messages) == 5  # never a second recovery

    world.apply({"linear_state": {issue["identifier"]: "completed"}})
    for _ in range(3):
        world.add_run("1", "failed")
    ok(workspace)
    assert "thread_ts" not in messages[5]  # a new incident: a new top-level message
    assert len(world.linear_issues) == 2  # the old issue was closed: a new one
