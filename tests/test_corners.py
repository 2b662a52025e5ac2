"""Rare corners where an alert could be lost or sent twice: each pinned by a test."""

from __future__ import annotations

import fcntl
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
import yaml

from tests.sandboxed import Workspace
from tests.slack_payloads import is_health
from triage import commit_state
from triage.commit_state import GitError
from triage.errors import ApiError, OutOfTime
from triage.hightouch import HightouchClient
from triage.http import HttpClient, RetryPolicy, WaitBudget
from triage.render import markdown_escape
from triage.sandbox import SandboxServer, World


def healthy_syncs(workspace: Workspace, numbers: range) -> None:
    """Healthy syncs, read one page at a time (concurrency 1), and the baseline tick."""
    workspace.config.write_text("hightouch:\n  workspace_slug: acme\n  concurrency: 1\n")
    for number in numbers:
        workspace.world.add_sync(str(number), f"sync-{number}")
        workspace.world.add_run(str(number), "success")
    assert workspace.tick()[0] == 0


def test_sync_skipped_by_a_listing_that_shifted_while_paged_is_still_alerted(workspace: Workspace) -> None:
    world = workspace.world
    healthy_syncs(workspace, range(1, 151))

    world.add_run("101", "failed")  # the first sync of page 2
    workspace.ticks += 4  # an hour later: a full listing, where absence is evidence to check

    def delete_sync_5_after_page_1(api: str, method: str, path: str, body: bytes) -> None:
        if path == "/syncs" and "5" in world.syncs:
            with world.lock:
                del world.syncs["5"]  # page 2 now starts one sync later: 101 is never listed

    world.on_request = delete_sync_5_after_page_1
    code, out = workspace.tick()
    assert code == 0, out
    assert "hightouch GET /syncs/101" in world.request_log  # asked for by id...
    assert len(world.slack_messages) == 1 and "sync-101" in world.slack_messages[0]["text"]  # ...and alerted
    assert workspace.saved()["syncs"]["101"]["consecutive_failures"] == 1

    world.on_request = None
    workspace.ticks += 4  # the next full listing (ticks between list only syncs that ran)
    assert workspace.tick()[0] == 0
    assert "5" not in workspace.saved()["syncs"]  # deleted for real: forgotten once the listing lacks it


def test_sync_listed_twice_is_handled_once(workspace: Workspace) -> None:
    world = workspace.world
    healthy_syncs(workspace, range(10, 110))
    world.add_run("109", "failed")
    world.add_sync("200", "sync-200")

    def new_sync_with_a_low_id_after_page_1(api: str, method: str, path: str, body: bytes) -> None:
        if path == "/syncs" and "1" not in world.syncs:
            with world.lock:
                new = world.add_sync("1", "sync-1")
                world.syncs = {"1": new, **world.syncs}  # lists first: page 2 repeats sync 109

    world.on_request = new_sync_with_a_low_id_after_page_1
    code, out = workspace.tick()
    assert code == 0, out
    assert len(world.slack_messages) == 1 and "sync-109" in world.slack_messages[0]["text"]
    assert world.request_log.count("hightouch GET /syncs/109/runs") == 1


def test_a_server_that_ignores_offset_ends_paging_with_a_clear_error(workspace: Workspace) -> None:
    world = workspace.world
    world.add_sync("1", "sync-1")
    world.add_run("1", "success")
    world.apply({"faults": [{"api": "hightouch", "path": "/syncs", "ignore_offset": True, "times": 100_000}]})
    code, _ = workspace.tick()
    assert code == 1
    assert world.request_log.count("hightouch GET /syncs") == 2  # the second page repeated the first
    assert not workspace.state.exists()


def test_a_request_that_trickles_its_answer_ends_at_the_request_timeout() -> None:
    world = World()
    world.add_sync("1", "sync-1")
    # 1 byte every 0.2 s: about two minutes for the whole page, each read well inside the timeout.
    world.apply({"faults": [{"api": "hightouch", "path": "/syncs", "trickle": 0.2}]})
    with SandboxServer(world) as server:
        http = HttpClient(
            name="Hightouch", secrets=[], budget=WaitBudget(0), policy=RetryPolicy(max_attempts=1), read_timeout=1
        )
        client = HightouchClient(http, server.environment()["HIGHTOUCH_API_URL"], world.hightouch_key)
        with pytest.raises(ApiError, match="no whole answer within 1s"):
            client.list_syncs()


def test_past_the_tick_time_limit_no_request_is_started() -> None:
    budget = WaitBudget(60, deadline=100.0, clock=lambda: 100.0)
    http = HttpClient(name="Hightouch", secrets=[], budget=budget)
    with responses.RequestsMock() as rsps:  # any request sent would fail here: none is registered
        with pytest.raises(OutOfTime, match="time limit"):
            http.request("GET", "https://api.hightouch.test/syncs", endpoint="GET /syncs", idempotent=True)
        assert len(rsps.calls) == 0


def test_a_back_off_that_would_pass_the_time_limit_defers_instead_of_sleeping() -> None:
    now = [0.0]
    budget = WaitBudget(600, deadline=10.0, clock=lambda: now[0])
    http = HttpClient(name="Hightouch", secrets=[], budget=budget, sleep=lambda s: now.__setitem__(0, now[0] + s))
    with responses.RequestsMock() as rsps:
        rsps.get("https://api.hightouch.test/syncs", status=429, headers={"Retry-After": "30"})
        with pytest.raises(OutOfTime):
            http.request("GET", "https://api.hightouch.test/syncs", endpoint="GET /syncs", idempotent=True)
    assert now[0] == 0.0  # never slept past the limit


def test_a_git_call_that_hangs_ends_with_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\nexec sleep 30\n")
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setattr(commit_state, "GIT_TIMEOUT", 0.5)
    with pytest.raises(GitError, match=r"no answer within 0\.5s"):
        commit_state.git(tmp_path, "push", "origin", "HEAD")


def test_a_second_tick_on_the_same_state_waits_then_stops_without_sending(workspace: Workspace) -> None:
    world = workspace.world
    workspace.failing_after_baseline("sync-1")
    before = workspace.state.read_text()
    holder = os.open(workspace.state.parent, os.O_RDONLY)  # the first tick, still running
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        code, out = workspace.tick()
    finally:
        os.close(holder)
    assert code == 0
    assert "another tick is running" in out
    assert world.slack_messages == [] and workspace.state.read_text() == before
    assert 0 < sum(workspace.sleeps) <= 10  # it waited a little first
    code, _ = workspace.tick()  # once the first is done, the alert goes out once
    assert code == 0 and len(world.slack_messages) == 1


def test_secrets_echoed_by_a_failing_server_reach_no_output_raw_or_escaped(
    workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = workspace.world
    world.add_sync("1", "sync-1")
    world.add_sync("2", "sync-2")
    for _ in range(2):
        world.add_run("1", "failed")
    world.add_run("2", "success")
    workspace.tick()
    world.add_run("1", "failed")  # the third failure: an escalation
    world.add_run("2", "failed")
    echo = "bad request, headers were Authorization: {authorization}"
    world.apply(
        {
            "faults": [
                {"api": "hightouch", "path": "/syncs/2/runs", "status": 500, "message": echo, "times": 10},
                {"api": "linear", "body": "issueCreate", "status": 500, "message": echo},
            ]
        }
    )
    summary = tmp_path / "summary.md"
    code, out = workspace.tick("--log-level", "debug", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert code == 1
    everything = "\n".join([out, *capsys.readouterr(), summary.read_text(), workspace.state.read_text()])
    assert "[redacted]" in everything  # the echoed errors were shown...
    for secret in (world.hightouch_key, world.linear_key, world.slack_token):
        for form in (secret, markdown_escape(secret), json.dumps(secret)[1:-1]):
            assert form not in everything  # ...without the secrets, in any form


def test_a_template_that_fails_on_real_data_falls_back_for_that_sync_only(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = workspace.config.parent / "templates"
    templates.mkdir()
    # Passes validate (the sample has two previous runs), fails on a sync with fewer.
    (templates / "slack_message.md.j2").write_text("{{ sync_name | slack }} failed after run {{ history[1].id }}\n")
    world = workspace.world
    for sync_id, history in (("1", 1), ("2", 3)):
        world.add_sync(sync_id, f"sync-{sync_id}")
        for _ in range(history):
            world.add_run(sync_id, "success")
    workspace.tick()
    world.add_run("1", "failed", error="boom <!channel>")
    world.add_run("2", "failed")
    code, out = workspace.tick()
    assert code == 0, out
    first, second = world.slack_messages  # every sync handled, in order
    assert "|sync-1>" in first["text"] and "template failed" in str(first["blocks"])  # the plain fallback
    assert "boom &lt;!channel&gt;" in str(first["blocks"])
    assert second["text"] == "sync-2 failed after run 1003"  # the template, where it works
    assert "ERROR template slack_message.md.j2: tuple object has no element 1; sync 1 gets the built-in" in (
        capsys.readouterr().err
    )


def escalating(workspace: Workspace, name: str = "contacts", config: str = "") -> None:
    """Sync 1 with two failed runs at the baseline: its next failure escalates."""
    workspace.config.write_text("hightouch:\n  workspace_slug: acme\n" + config)
    workspace.world.add_sync("1", name)
    for _ in range(2):
        workspace.world.add_run("1", "failed")
    assert workspace.tick()[0] == 0


def test_a_create_whose_answer_was_lost_is_found_by_its_id_even_when_renamed(workspace: Workspace) -> None:
    world = workspace.world
    escalating(workspace)
    world.add_run("1", "failed")

    def lose_the_answer(api: str, method: str, path: str, body: bytes) -> None:
        if b"issueCreate" in body:
            raise requests.ConnectionError("connection reset after the request was sent")

    world.on_request = lose_the_answer
    assert workspace.tick()[0] == 1
    world.on_request = None
    (issue,) = world.linear_issues
    issue["title"], issue["description"] = "Someone renamed this", "and rewrote it"  # no name, no marker
    assert workspace.saved()["syncs"]["1"]["incident"]["issue_create_id"] == issue["id"]

    code, out = workspace.tick()
    assert code == 0, out
    assert len(world.linear_issues) == 1  # exactly once
    incident = workspace.saved()["syncs"]["1"]["incident"]
    assert incident["issue"]["identifier"] == issue["identifier"]
    assert "issue_create_id" not in incident


def test_the_search_reads_every_page_before_deciding_to_create(workspace: Workspace) -> None:
    world = workspace.world
    escalating(workspace, config="linear: {comment_on_failure: false}\n")
    team = world.teams[0]
    for number in range(60):  # issues about a longer name: all match the text filter, none names `contacts`
        world.linear_issues.append(
            {
                "id": f"other-{number}",
                "identifier": f"DATA-{100 + number}",
                "title": f"crm-contacts problem {number}",
                "description": "",
                "url": "",
                "state": {"type": "started"},
                "team": team,
            }
        )
    world.linear_issues.append(
        {
            "id": "ours",
            "identifier": "DATA-7",
            "title": "Hightouch sync contacts failing repeatedly",
            "description": "",
            "url": "",
            "state": {"type": "started"},
            "team": team,
        }
    )
    world.add_run("1", "failed")
    code, out = workspace.tick()
    assert code == 0, out
    assert len(world.linear_issues) == 61  # nothing created
    assert workspace.saved()["syncs"]["1"]["incident"]["issue"]["identifier"] == "DATA-7"
    assert world.request_log.count("linear POST ") == 3  # the team, then two pages


def test_a_name_the_renderer_changes_still_finds_the_tools_own_issue(workspace: Workspace) -> None:
    world = workspace.world
    name = "  big_sync  " + "x" * 260  # spaces folded in the title, `_` escaped, the title cut
    escalating(workspace, name=name)
    world.add_run("1", "failed")
    assert workspace.tick()[0] == 0
    assert len(world.linear_issues) == 1
    state = workspace.saved()
    del state["syncs"]["1"]["incident"]["issue"]  # not even remembered: only the search can find it
    workspace.state.write_text(yaml.safe_dump(state))
    world.add_run("1", "failed")
    code, out = workspace.tick()
    assert code == 0, out
    assert len(world.linear_issues) == 1  # found by the marker


def test_a_deleted_remembered_issue_counts_as_not_found(workspace: Workspace) -> None:
    world = workspace.world
    escalating(workspace, config="linear:\n  team: data\n")  # the key, typed in lower case
    state = workspace.saved()
    state["syncs"]["1"]["incident"]["issue"] = {"identifier": "DATA-99", "team": "DATA"}  # deleted in Linear since
    workspace.state.write_text(yaml.safe_dump(state))
    world.add_run("1", "failed")
    code, out = workspace.tick()
    assert code == 0, out
    assert [i["identifier"] for i in world.linear_issues] == ["DATA-1"]


def test_a_trashed_or_archived_issue_is_not_open(workspace: Workspace) -> None:
    world = workspace.world
    escalating(workspace)
    for flag in ({"trashed": True}, {"archivedAt": "2026-11-20T00:00:00Z"}):
        world.linear_issues.append(
            {
                "id": f"gone-{len(world.linear_issues)}",
                "identifier": f"DATA-{50 + len(world.linear_issues)}",
                "title": "Hightouch sync contacts failing repeatedly",
                "description": "",
                "url": "",
                "state": {"type": "started"},
                "team": world.teams[0],
                **flag,
            }
        )
    world.add_run("1", "failed")
    assert workspace.tick()[0] == 0
    assert len(world.linear_issues) == 3  # neither counted: a new one was created


def test_the_tool_says_once_when_it_cannot_run_and_once_when_it_works_again(workspace: Workspace) -> None:
    world = workspace.world
    world.add_sync("1", "sync-1")
    world.add_run("1", "success")
    workspace.tick()
    actions = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/triage", "GITHUB_RUN_ID": "42"}
    revoked = {"HIGHTOUCH_API_KEY": "revoked-key", **actions}
    for _ in range(4):
        code, _ = workspace.tick(env=revoked)
        assert code == 1
    (told,) = world.slack_messages  # once for the streak, not once per tick
    assert told["channel"] == "#data-alerts" and "cannot run" in told["text"]
    shown = "".join(b["text"]["text"] for b in told["blocks"]).replace("\u200b", "")
    assert "HIGHTOUCH_API_KEY" in shown and "revoked-key" not in shown
    assert "https://github.com/acme/triage/actions/runs/42" in str(told["blocks"])
    assert (workspace.state.parent / "health.yaml").exists()

    assert workspace.tick()[0] == 0
    again = world.slack_messages[1]
    assert again["thread_ts"] == told["ts"] and "works again" in again["text"]
    assert not (workspace.state.parent / "health.yaml").exists()
    assert workspace.tick()[0] == 0 and len(world.slack_messages) == 2


def test_a_recovery_can_close_the_issue_in_the_teams_first_done_state(workspace: Workspace) -> None:
    world = workspace.world
    escalating(workspace, config="linear: {close_on_recovery: true}\n")
    world.add_run("1", "failed")
    assert workspace.tick()[0] == 0
    (issue,) = world.linear_issues
    world.add_run("1", "success")
    code, out = workspace.tick()
    assert code == 0, out
    assert issue["state"] == {"type": "completed", "name": "Done", "id": "team-data-done"}  # lowest position
    assert "closed" in out


def test_a_storm_is_one_summary_with_every_alert_in_its_thread_once(workspace: Workspace) -> None:
    world = workspace.world
    for number in range(1, 41):
        world.add_sync(str(number), f"sync-{number}", destination="Snowflake" if number % 2 else "Salesforce")
        world.add_run(str(number), "success")
    world.add_sync("99", "calm")
    world.add_run("99", "success")
    workspace.tick()
    for number in range(1, 41):
        world.add_run(str(number), "failed", error=f"Warehouse unreachable after {number} s")
    code, out = workspace.tick()
    assert code == 0, out
    summary, *replies = world.slack_messages
    assert "40 Hightouch syncs started failing" in summary["text"] and "thread_ts" not in summary
    text = "\n".join(b["text"]["text"] for b in summary["blocks"])
    # One cause, one group, shown by a real error line of one of its syncs.
    assert "*By cause* (1)" in text and re.search(r"`Warehouse unreachable after \d+ s` — 40", text)
    assert "Snowflake — 20" in text and "Salesforce — 20" in text
    assert len(replies) == 40 and {r["thread_ts"] for r in replies} == {summary["ts"]}
    assert not any(r["reply_broadcast"] for r in replies)
    assert sorted(r["text"].split("|")[1].split(">")[0] for r in replies) == sorted(f"sync-{n}" for n in range(1, 41))
    workspace.tick()
    assert len(world.slack_messages) == 41  # none twice


def alerts(world: World) -> list[dict[str, Any]]:
    """The messages about syncs (a tick that exits 1 also reports the tool's own health)."""
    return [m for m in world.slack_messages if not is_health(m)]


def lose_slack_answers(world: World, times: int = 1) -> None:
    """Slack takes the next post(s), and the answer never reaches the tool (a timeout)."""
    lost = [times]

    def on_request(api: str, method: str, path: str, body: bytes) -> None:
        if api == "slack" and path == "/chat.postMessage" and lost[0] > 0:
            lost[0] -= 1
            raise requests.ReadTimeout("no answer within the read timeout")

    world.on_request = on_request


def test_a_post_whose_answer_was_lost_is_found_in_history_and_not_sent_again(workspace: Workspace) -> None:
    world = workspace.world
    workspace.failing_after_baseline()
    lose_slack_answers(world)
    code, out = workspace.tick()
    assert code == 0, out  # as far as anyone knows it went out: counted, and looked up next tick
    assert "Slack messages sent: 1 (1 unconfirmed)" in out and "unconfirmed: 1" in out
    (first,) = world.slack_messages  # no "cannot run" health message
    assert first == alerts(world)[0]
    assert first["metadata"] == {
        "event_type": "hightouch_sync_failure",
        "event_payload": {"sync_id": "1", "run_id": first["metadata"]["event_payload"]["run_id"]},
    }
    (unconfirmed,) = workspace.saved()["syncs"]["1"]["sent"]
    assert unconfirmed["channel"] == "#data-alerts" and "ts" not in unconfirmed

    code, out = workspace.tick()
    assert code == 0, out
    assert len(alerts(world)) == 1  # found in the channel's history: not sent again
    assert "slack GET /conversations.history" in world.request_log
    assert "went out in an earlier tick" in out
    saved = workspace.saved()["syncs"]["1"]
    assert "sent" not in saved and saved["incident"]["threads"][0]["ts"] == first["ts"]  # the incident's first

    world.add_run("1", "failed")
    workspace.tick()
    assert alerts(world)[1]["thread_ts"] == first["ts"]  # later failures reply to it


def test_a_lost_answer_for_a_post_slack_refused_is_sent_next_tick(workspace: Workspace) -> None:
    world = workspace.world
    workspace.failing_after_baseline()
    world.apply({"faults": [{"api": "slack", "path": "/chat.postMessage", "status": 500}]})
    code, out = workspace.tick()
    assert code == 0, out  # a 5xx may have posted it: unconfirmed, not an error
    assert "(1 unconfirmed)" in out
    assert world.slack_messages == []  # nothing posted, and no "cannot run" message
    code, out = workspace.tick()
    assert code == 0, out
    assert len(alerts(world)) == 1  # not in history, so sent: nothing lost
    assert "slack GET /conversations.history" in world.request_log


def test_without_the_history_scope_a_lost_answer_means_one_repeat_and_one_warning(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    world = workspace.world
    world.slack_scopes = {"chat:write"}
    for number in ("1", "2"):
        world.add_sync(number, f"sync-{number}")
        world.add_run(number, "success")
    workspace.tick()
    for number in ("1", "2"):
        world.add_run(number, "failed")
    lose_slack_answers(world, times=2)
    code, out = workspace.tick()
    assert code == 0 and "(2 unconfirmed)" in out, out
    capsys.readouterr()
    assert workspace.tick()[0] == 0
    assert len(alerts(world)) == 4  # each alert at most twice
    warnings = [line for line in capsys.readouterr().err.splitlines() if "channels:history" in line]
    assert len(warnings) == 1  # one warning per tick, not one per message
    assert workspace.tick()[0] == 0 and len(alerts(world)) == 4


def test_a_sync_posting_to_two_channels_sends_only_the_one_that_did_not_go_out(workspace: Workspace) -> None:
    world = workspace.world
    world.channels.add("#crm-alerts")
    workspace.config.write_text(
        'hightouch:\n  workspace_slug: acme\nslack:\n  channel: ["#data-alerts", "#crm-alerts"]\n'
    )
    world.add_sync("1", "contacts")
    world.add_run("1", "success")
    workspace.tick()
    world.add_run("1", "failed")
    refuse_crm = {"api": "slack", "path": "/chat.postMessage", "body": "#crm-alerts", "slack_error": "fatal_error"}
    world.apply({"faults": [refuse_crm]})
    assert workspace.tick()[0] == 1  # Slack refused the second channel's post
    assert [m["channel"] for m in alerts(world)] == ["#data-alerts"]
    assert workspace.tick()[0] == 0
    assert [m["channel"] for m in alerts(world)] == ["#data-alerts", "#crm-alerts"]  # the first not again
    assert world.request_log.count("slack GET /conversations.history") == 1  # only the unanswered one is looked up


def test_a_storm_paced_at_slacks_rate_goes_on_in_one_thread_with_one_linear_issue_and_each_sync_recovers_there(
    workspace: Workspace,
) -> None:
    world = workspace.world
    # No Hightouch throttle: its waits, taken on parallel threads, would add up on the virtual clock.
    settings = "hightouch: {workspace_slug: acme, max_requests_per_10s: 0}\ntriage: {tick_time_limit_seconds: 20}\n"
    workspace.config.write_text(settings)
    world.slack_rate = 1.0  # Slack: about one message a second per channel, in short bursts
    world.clock = workspace.clock  # the channel's seconds are the tool's waits
    for number in range(1, 41):
        world.add_sync(str(number), f"sync-{number}")
        for _ in range(2):  # already failing: the next failure escalates
            world.add_run(str(number), "failed", error="Warehouse unreachable")
    workspace.tick()
    for number in range(1, 41):
        world.add_run(str(number), "failed", error="Warehouse unreachable")
    posted: list[int] = []
    while len(posted) < 12:
        code, out = workspace.tick()
        assert code == 0, out  # Slack's pace is not a failure
        posted.append(len(world.slack_messages) - sum(posted))
        if not workspace.saved().get("deferred"):
            break
    # Paced at Slack's rate, never into its 429s: about 20 s of messages per 20 s tick, no more.
    assert posted == [21, 20] and world.stats["slack_429"] == 0
    summary, *replies = world.slack_messages
    assert "40 Hightouch syncs started failing" in summary["text"]
    assert len(replies) == 40 and {r["thread_ts"] for r in replies} == {summary["ts"]}  # one thread
    assert not any(r["reply_broadcast"] for r in replies)  # quiet replies, though each crossed its threshold
    (outage,) = world.linear_issues  # one outage, one issue: the second tick's syncs found it by name
    issues = {s["incident"]["issue"]["identifier"] for s in workspace.saved()["syncs"].values()}
    assert issues == {outage["identifier"]}
    assert sorted(r["text"].split("|")[1].split(">")[0] for r in replies) == sorted(f"sync-{n}" for n in range(1, 41))
    # The storm is fully told, and stays open (its summary kept up to date) while its syncs fail.
    (storm,) = workspace.saved()["storms"].values()
    assert storm["thread"]["ts"] == summary["ts"] and "sent" not in storm and len(storm["members"]) == 40

    world.add_run("7", "success")
    world.add_run("8", "failed", error="Warehouse unreachable")
    world.add_run("9", "failed", error="Warehouse unreachable")
    workspace.tick()
    recovery, again, nine = world.slack_messages[41:]
    assert recovery["thread_ts"] == summary["ts"] and "recovered" in recovery["text"]
    assert (
        again["thread_ts"] == summary["ts"] and "*sync-8*: <" in again["text"] and "/syncs/8|run " in again["text"]
    )  # a one-line repeat
    assert nine["thread_ts"] == summary["ts"] and "/syncs/9|run " in nine["text"]
    mine = next(r for r in replies if "|sync-7>" in r["text"])
    assert mine.get("edits") and "recovered" in mine["text"]  # its own message marked resolved...
    # ...and the summary, which speaks for all forty, updated to count it, never marked resolved.
    assert summary.get("edits") and "40 Hightouch syncs started failing" in summary["text"]
    assert "39 failing, 1 recovered" in summary["text"]
    # At most one failure comment a tick (the second tick's 20, then sync-8 and sync-9), and
    # sync-7's recovery.
    kinds = ["Failed" if " failed again: " in c else c.split(":")[0] for c in outage["comments"]]
    assert kinds == ["Failed", "Recovered", "Failed"]
    assert outage["comments"][1].startswith("Recovered: **sync-7**")


def test_an_outage_is_one_linear_issue_naming_every_sync_and_a_sync_with_its_own_issue_keeps_it(
    workspace: Workspace,
) -> None:
    world = workspace.world
    workspace.config.write_text("hightouch: {workspace_slug: acme, max_requests_per_10s: 0}\n")
    for number in range(1, 41):
        world.add_sync(str(number), f"sync-{number}", destination="Snowflake")
        for _ in range(2):
            world.add_run(str(number), "failed", error="Warehouse unreachable")
    world.linear_issues.append(
        {
            "id": "own",
            "identifier": "DATA-5",
            "title": "Hightouch sync sync-5 failing repeatedly",
            "description": "",
            "url": "https://linear.app/acme/issue/DATA-5",
            "state": {"type": "started"},
            "team": world.teams[0],
        }
    )
    workspace.tick()
    for number in range(1, 41):
        world.add_run(str(number), "failed", error=f"Warehouse unreachable after {number} s")
    code, out = workspace.tick()
    assert code == 0, out
    _own, outage = world.linear_issues
    # Named by a real error line of its syncs (the grouping key, with its numbers set aside, is not for reading).
    assert re.fullmatch(
        r"Hightouch outage: 40 syncs failing repeatedly \(Warehouse unreachable after \d+ s\)", outage["title"]
    )
    description = outage["description"]
    for number in range(1, 41):  # every sync named as a word, and marked: each one's search finds it
        assert f"[sync-{number}]" in description and f"hightouch-triage sync-id {number}\n" in description + "\n"
    saved = workspace.saved()["syncs"]
    assert saved["5"]["incident"]["issue"]["identifier"] == "DATA-5"  # it had its own: it keeps it
    issues = {saved[str(n)]["incident"]["issue"]["identifier"] for n in range(1, 41) if n != 5}
    assert issues == {outage["identifier"]}

    for number in range(1, 41):
        world.add_run(str(number), "failed", error="Warehouse unreachable")
    assert workspace.tick()[0] == 0
    assert len(world.linear_issues) == 2  # found by each sync's search: nothing duplicated
    assert len(outage.get("comments", [])) == 1  # and told once, not 39 times
