"""No lost alert, no silent incident, no stuck sync: the corners a bad day finds, each told
through the sandbox as a person would see it."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.sandboxed import START, Workspace, mounted
from tests.slack_payloads import is_health, top_level
from triage import tick
from triage.decide import decide_sync
from triage.sandbox import World
from triage.sandbox.world import Fault

CHANNEL = 'slack:\n  channel: "#data-alerts"\n'


def test_a_sync_that_fails_and_recovers_between_two_ticks_is_told_opened_and_closed(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = Workspace(tmp_path, world, CHANNEL)
        ws.failing_after_baseline()
        world.add_run("1", "success")
        assert ws.tick()[0] == 0
        first, recovery = world.slack_messages
        assert "thread_ts" not in first and recovery["thread_ts"] == first["ts"]
        assert "recovered" in recovery["text"]
        assert "incident" not in ws.saved()["syncs"]["1"]
        # Days later, the next outage is a message of its own in the channel, not a stale reply.
        world.add_run("1", "failed")
        assert ws.tick()[0] == 0
    assert len(top_level(world)) == 2


def test_a_new_sync_whose_first_read_fails_keeps_its_failure_for_the_next_tick(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = Workspace(tmp_path, world, CHANNEL + "triage:\n  wait_budget_seconds: 0\n")
        world.add_sync("9", "old")
        world.add_run("9", "success")
        ws.tick()  # baseline
        world.add_sync("1", "newcomer")
        world.add_run("1", "failed")
        world.faults.append(Fault(api="hightouch", path="/syncs/1/runs", status=500, times=10))
        assert ws.tick()[0] == 1  # its runs could not be read: it waits for the next tick
        world.faults.clear()
        assert ws.tick()[0] == 0
    assert [m for m in world.slack_messages if "newcomer" in m["text"]]


def test_a_sync_whose_read_failed_is_read_again_next_tick_whatever_the_listing_says(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = Workspace(tmp_path, world, CHANNEL)
        world.add_sync("1", "contacts")
        world.add_run("1", "success")
        ws.tick()  # baseline: a full listing
        world.add_run("1", "failed")
        world.faults.append(Fault(api="hightouch", path="/syncs/1/runs", status=500, times=10))
        ws.tick()  # the read fails
        world.faults.clear()
        # The next ticks list only syncs that ran since the full listing, less a margin:
        # nothing new ran, yet the sync is read again and alerted now, not an hour later.
        world.now = lambda: world.syncs["1"].runs[-1].created_at  # no new run
        assert ws.tick()[0] == 0
    assert [m for m in world.slack_messages if "contacts" in m["text"]]


def test_a_retired_channel_abandons_the_old_thread_and_the_incident_goes_on(tmp_path: Path) -> None:
    world = World()
    world.channels.add("#new-alerts")
    with mounted(world):
        ws = Workspace(tmp_path, world, CHANNEL)
        ws.failing_after_baseline()
        ws.tick()  # told in #data-alerts
        ws.config.write_text('hightouch:\n  workspace_slug: acme\nslack:\n  channel: "#new-alerts"\n')
        world.channels -= {"#data-alerts", "data-alerts", "C0DATAALERTS"}
        world.add_run("1", "success")
        code, out = ws.tick()
        assert code == 0
        assert "abandoned" in out
        world.add_run("1", "failed")
        assert ws.tick()[0] == 0
    assert [m["channel"] for m in top_level(world)] == ["#data-alerts", "#new-alerts"]


def test_an_unreachable_dm_never_holds_the_channel_alert_or_the_issue(tmp_path: Path) -> None:
    world = World()  # U0LEFTCO is no user of this workspace any more
    config = CHANNEL + "  dm_on_escalation: [U0LEFTCO]\nlinear:\n  escalation_threshold: 1\n"
    with mounted(world):
        ws = Workspace(tmp_path, world, config)
        ws.failing_after_baseline()
        code, out = ws.tick()
    assert code == 0
    assert "U0LEFTCO" in out and "dm_on_escalation" in out
    assert len(world.linear_issues) == 1
    assert [m["channel"] for m in world.slack_messages] == ["#data-alerts"]


def test_linear_down_never_holds_a_recovery_or_the_next_incident(tmp_path: Path) -> None:
    world = World()
    config = CHANNEL + "linear:\n  escalation_threshold: 1\n"
    with mounted(world):
        ws = Workspace(tmp_path, world, config)
        ws.failing_after_baseline()
        ws.tick()  # told, issue filed
        world.add_run("1", "success")
        world.faults.append(Fault(api="linear", status=503, times=50))
        code, _ = ws.tick()  # the recovery's comment fails
        assert code == 1
        world.add_run("1", "failed", error="a new incident")
        ws.tick()  # Linear still down
    texts = [m["text"] for m in world.slack_messages]
    assert any("recovered" in t for t in texts)
    alerts = [m for m in top_level(world) if not is_health(m)]
    assert len(alerts) == 2  # the next incident was told while Linear was down


def test_after_a_crash_the_next_message_counts_only_failures_not_yet_reported(tmp_path: Path) -> None:
    world = World()
    killed: list[str] = []

    def die_after_the_post(api: str, method: str, path: str, body: bytes) -> None:
        if path.endswith("chat.postMessage") and not killed:
            killed.append(path)
            raise KeyboardInterrupt  # the process dies once Slack took the message

    with mounted(world):
        ws = Workspace(tmp_path, world, CHANNEL)
        ws.failing_after_baseline()
        world.on_request = die_after_the_post
        with pytest.raises(KeyboardInterrupt):
            ws.tick()
        world.on_request = None
        world.add_run("1", "failed")
        assert ws.tick()[0] == 0
    first, reply = world.slack_messages
    assert "new failed runs" not in first["text"]
    assert reply["thread_ts"] == first["ts"] and "2 in a row" in reply["text"]


def test_an_escalation_is_not_folded_into_an_issue_the_tool_wrote_for_other_syncs(tmp_path: Path) -> None:
    world = World()
    config = CHANNEL + "linear:\n  escalation_threshold: 1\n"
    with mounted(world):
        ws = Workspace(tmp_path, world, config)
        ws.healthy_at_baseline({"1": "contacts", "2": "orders"})
        world.add_run("1", "failed", error="lookup into orders failed")  # names the other sync
        ws.tick()
        world.add_run("2", "failed")
        ws.tick()
    assert len(world.linear_issues) == 2
    assert "orders" in world.linear_issues[1]["title"]


def test_a_dm_whose_answer_was_lost_is_never_sent_twice(tmp_path: Path) -> None:
    world = World()
    world.users.add("U0ONCALL1")
    lost: list[str] = []

    def lose_the_dm(api: str, method: str, path: str, body: bytes) -> None:
        if path.endswith("chat.postMessage") and b"U0ONCALL1" in body and not lost:
            lost.append(path)
            raise requests.ReadTimeout("read timed out")

    config = CHANNEL + "  dm_on_escalation: [U0ONCALL1]\nlinear:\n  escalation_threshold: 1\n"
    with mounted(world):
        ws = Workspace(tmp_path, world, config)
        ws.failing_after_baseline()
        world.on_request = lose_the_dm
        assert ws.tick()[0] == 0
        world.on_request = None
        world.add_run("1", "failed")
        assert ws.tick()[0] == 0
    assert len([m for m in world.slack_messages if m["channel"] == "U0ONCALL1"]) == 1


def test_a_recovery_found_in_history_still_marks_the_first_message_resolved(tmp_path: Path) -> None:
    world = World()
    lost: list[str] = []

    def lose_the_recovery(api: str, method: str, path: str, body: bytes) -> None:
        if path.endswith("chat.postMessage") and b"recovered" in body and not lost:
            lost.append(path)
            raise requests.ReadTimeout("read timed out")

    with mounted(world):
        ws = Workspace(tmp_path, world, CHANNEL)
        ws.failing_after_baseline()
        ws.tick()
        world.add_run("1", "success")
        world.on_request = lose_the_recovery
        assert ws.tick()[0] == 0
        world.on_request = None
        assert ws.tick()[0] == 0
    first = top_level(world)[0]
    assert "recovered" in first["text"]  # updated in place, by the tick that found the reply
    assert len([m for m in world.slack_messages if "thread_ts" in m and "recovered" in m["text"]]) == 1


def test_an_outage_costs_one_linear_search_per_team_not_one_per_sync(tmp_path: Path) -> None:
    world = World()
    operations: list[str] = []

    def note(api: str, method: str, path: str, body: bytes) -> None:
        if api == "linear":
            operations.append(body.decode().split("(", 1)[0].split()[-1])  # the operation's name

    config = CHANNEL + "  storm_threshold: 100\nlinear:\n  escalation_threshold: 1\n"
    with mounted(world):
        ws = Workspace(tmp_path, world, config)
        for index in range(20):
            world.add_sync(str(index + 1), f"sync-{index}")
            world.add_run(str(index + 1), "success")
        ws.tick()
        for index in range(20):
            world.add_run(str(index + 1), "failed", error=f"Snowflake: warehouse WH is suspended ({index})")
        world.on_request = note
        assert ws.tick()[0] == 0
    assert len(world.linear_issues) == 1
    assert operations.count("OpenIssuesOf") == 1  # 20 members: one search (chunks of 25)
    assert operations.count("OpenIssues") == 0


def test_a_tick_never_spends_its_time_reading_what_it_cannot_send(tmp_path: Path) -> None:
    """400 syncs fail at once while Hightouch rate-limits: reads stop once what they found
    needs the time left to post, so every 20 s tick alerts some, instead of reading all
    tick long and alerting next to nothing."""
    world = World()
    with mounted(world):
        ws = Workspace(tmp_path, world)
        # One read at a time, so the virtual clock (the tool's own waits) is the wall clock.
        ws.config.write_text(
            "hightouch: {workspace_slug: acme, concurrency: 1}\nslack:\n  channel: '#data-alerts'\n"
            "triage:\n  tick_time_limit_seconds: 20\n  wait_budget_seconds: 20\n"
        )
        world.slack_rate = 1.0
        world.clock = ws.clock
        for number in range(1, 401):
            world.add_sync(str(number), f"sync-{number}")
            world.add_run(str(number), "success")
        ws.tick()
        for number in range(1, 401):
            world.add_run(str(number), "failed", error=f"error {number % 7}")
        world.rate_limit, world.rate_limit_requests, world.rate_limit_window = True, 20, 10.0
        alerted = []
        for _ in range(4):
            before = len(world.slack_messages)
            assert ws.tick()[0] == 0
            alerted.append(len(world.slack_messages) - before)
    assert min(alerted) >= 5 and sum(alerted) >= 24, alerted  # back-offs are jittered: some slack


def test_a_create_linear_says_exists_but_never_shows_does_not_leave_the_sync_stuck(tmp_path: Path) -> None:
    world = World()
    lost: list[str] = []

    def lose_the_create(api: str, method: str, path: str, body: bytes) -> None:
        if api == "linear" and b"issueCreate" in body and not lost:
            lost.append(path)
            raise requests.ReadTimeout("read timed out")

    with mounted(world):
        ws = Workspace(tmp_path, world, CHANNEL + "linear:\n  escalation_threshold: 1\n")
        ws.failing_after_baseline()
        world.linear_lagging = True  # what it creates stays unreadable for a while
        world.on_request = lose_the_create
        assert ws.tick()[0] == 1  # the create's answer was lost: retried next tick
        world.on_request = None
        world.add_run("1", "failed")
        code, out = ws.tick()
    assert code == 0, out
    assert "issue_pending" not in ws.saved()["syncs"]["1"]["incident"]
    assert len(world.linear_issues) == 1


def test_a_refused_linear_key_never_holds_back_slack_and_escalates_once_it_works(tmp_path: Path) -> None:
    world = World()
    with mounted(world):
        ws = Workspace(tmp_path, world, CHANNEL + "linear:\n  escalation_threshold: 1\n")
        ws.healthy_at_baseline({"1": "contacts", "2": "orders"})
        good_key = world.linear_key
        world.linear_key = "lin_api_rotated_elsewhere"  # the key in the secrets is refused now
        world.add_run("1", "failed")
        world.add_run("2", "failed")
        code, out = ws.tick()
        assert code == 1 and "Linear" in out
        assert {m["channel"] for m in world.slack_messages if not is_health(m)} == {"#data-alerts"}
        assert len([m for m in world.slack_messages if not is_health(m)]) == 2  # both syncs told
        assert not world.linear_issues
        world.linear_key = good_key
        assert ws.tick()[0] == 0  # no new run: the pending escalations are retried
    assert len(world.linear_issues) == 2


def test_a_checked_sync_reads_its_recent_runs_whatever_order_the_api_lists_them_in(tmp_path: Path) -> None:
    """A month of 15-minute runs listed oldest first: the tick reads the runs since the cursor
    (less a margin), not the whole history page by page."""
    world = World()
    world.newest_first = False
    with mounted(world):
        ws = Workspace(tmp_path, world, CHANNEL)
        world.add_sync("1", "contacts")
        for step in range(30 * 96, 0, -1):
            world.add_run("1", "failed" if step == 7 else "success", at=START - timedelta(minutes=15 * step))
        ws.tick()  # the baseline
        world.add_run("1", "failed")
        assert ws.tick()[0] == 0
        reads = [r for r in world.request_log if r == "hightouch GET /syncs/1/runs"]
    assert len(world.slack_messages) == 1
    assert len(reads) <= 2


# -- reads and posts overlap (a storm still seen whole) -------------------------------------

QUIET = ("q1", "q2", "q3")  # listed as a success, nothing open: read after the rest
NORMAL = {"added": 9000, "changed": 1000, "query_size": 2_000_000}
REMOVING = {"planned_removed": 1_800_000, "removed": 1_800_000, "query_size": 200_000}


def storm_world(failing: int, opened_and_closed: int = 0, removing: int = 0) -> World:
    """Syncs healthy at the baseline; `failing` of them fail once (the listing says failed),
    `opened_and_closed` fail and recover, `removing` succeed removing most of their records
    (both listed as a success), and the QUIET ones run well."""
    world = World()
    kinds = {"f": failing, "c": opened_and_closed, "r": removing}
    for kind, count in kinds.items():
        for n in range(count):
            world.add_sync(f"{kind}{n}", f"{kind}-sync-{n}")
    for sync_id in QUIET:
        world.add_sync(sync_id, f"quiet-{sync_id}")
    for sync_id in world.syncs:
        world.add_run(sync_id, "success", rows=NORMAL)
    return world


def break_syncs(world: World) -> None:
    for sync_id in world.syncs:
        kind = sync_id[0]
        if kind == "f":
            world.add_run(sync_id, "failed", error="Snowflake warehouse suspended")
        elif kind == "c":
            world.add_run(sync_id, "failed", error=f"HubSpot timeout {sync_id}")
            world.add_run(sync_id, "success", rows=NORMAL)
        elif kind == "r":
            world.add_run(sync_id, "success", rows=REMOVING)
        else:
            world.add_run(sync_id, "success", rows=NORMAL)


def test_a_storm_is_posted_while_the_quiet_syncs_are_still_read(tmp_path: Path) -> None:
    """Reads and posts overlap: the failing syncs are read first, and once they make a storm
    for certain its messages go out while the syncs listed as a success are still read.
    Each read of a quiet sync waits here for the first post; read-everything-first would
    keep them waiting until the timeout."""
    world = storm_world(failing=12)
    posted = threading.Event()
    waited: list[bool] = []

    def hold_quiet_reads(api: str, method: str, path: str, body: bytes) -> None:
        if api == "slack" and path.endswith("/chat.postMessage"):
            posted.set()
        if api == "hightouch" and any(path.startswith(f"/syncs/{q}/runs") for q in QUIET):
            waited.append(posted.wait(timeout=10))

    with mounted(world):
        ws = Workspace(tmp_path, world, CHANNEL)
        ws.tick()
        break_syncs(world)
        world.on_request = hold_quiet_reads
        assert ws.tick()[0] == 0
    assert waited == [True] * len(QUIET)
    summary, *replies = world.slack_messages
    assert "thread_ts" not in summary and len(replies) == 12
    assert all(r["thread_ts"] == summary["ts"] for r in replies)


def told(world: World, since: int = 0) -> tuple[list[tuple[str, str]], list[str]]:
    """What people were told from message `since` on: each message's text beside the first
    line of its thread's start, and every Linear issue's title."""
    starts = {m["ts"]: m["text"].split("\n")[0] for m in world.slack_messages if "thread_ts" not in m}
    messages = sorted((starts.get(m.get("thread_ts", ""), ""), m["text"]) for m in world.slack_messages[since:])
    return messages, sorted(issue["title"] for issue in world.linear_issues)


def told_both_ways(
    path: Path, monkeypatch: pytest.MonkeyPatch, config: str, syncs: list[str], ticks: list[Any]
) -> tuple[tuple[list[tuple[str, str]], list[str]], ...]:
    """The same story told with reads and posts overlapped (split) and with every sync read
    before any post (whole): what the last tick of each said."""
    outcomes = []
    for split in (True, False):
        world = World()
        world.channels |= {"#b", "b"}
        if not split:
            monkeypatch.setattr(tick, "read_first", lambda syncs, state: (syncs, []))
        (path / str(split)).mkdir()
        with mounted(world):
            ws = Workspace(path / str(split), world, CHANNEL + config)
            ws.healthy_at_baseline(named(*syncs), rows=NORMAL)
            for step in ticks:
                since = len(world.slack_messages)
                step(world)
                assert ws.tick()[0] == 0
        monkeypatch.undo()
        outcomes.append(told(world, since))
    return tuple(outcomes)


def named(*sync_ids: str) -> dict[str, str]:
    return {sync_id: f"sync-{sync_id}" for sync_id in sync_ids}


def runs(**by_sync: str) -> Any:
    """New runs: "failed:<error>", "removing", "success", or "failed:<error>,success"."""

    def step(world: World) -> None:
        for sync_id, spec in by_sync.items():
            for one in spec.split(","):
                if one == "removing":
                    world.add_run(sync_id, "success", rows=REMOVING)
                elif one == "success":
                    world.add_run(sync_id, "success", rows=NORMAL)
                else:
                    world.add_run(sync_id, "failed", error=one.removeprefix("failed:"))

    return step


SNOWFLAKE = "failed:Snowflake warehouse suspended"
F = [f"f{n}" for n in range(12)]
STORIES = {
    # a storm for certain from the first reads; the rest's own trouble joins it
    "storm-then-rest-joins": (
        "",
        [*F, "c0", "r0", "q1"],
        [runs(**dict.fromkeys(F, SNOWFLAKE), c0="failed:x,success", r0="removing", q1="success")],
    ),
    # the first reads alone are short of a storm: the rest make it one
    "rest-makes-the-storm": (
        "",
        [*F[:6], "r0", "r1", "r2", "r3", "q1"],
        [
            runs(
                **dict.fromkeys(F[:6], SNOWFLAKE),
                r0="removing",
                r1="removing",
                r2="removing",
                r3="removing",
                q1="success",
            )
        ],
    ),
    "no-storm": (
        "",
        [*F[:3], "c0", "q1"],
        [runs(**dict.fromkeys(F[:3], SNOWFLAKE), c0="failed:x,success", q1="success")],
    ),
    # one member also posts to a quiet channel: the storm channel must not fall short for it
    "a-member-in-two-channels": (
        "routes:\n  - match: {sync: [f0]}\n    slack: {channel: ['#data-alerts', '#b']}\n",
        [*F[:10], "q1"],
        [runs(**dict.fromkeys(F[:10], SNOWFLAKE), q1="success")],
    ),
    # a storm still open from the tick before: this tick's first reads make one more storm's worth
    "storm-open-from-before": (
        "",
        [*F[:10], *(f"a{n}" for n in range(10)), "r0"],
        [
            runs(**{f"a{n}": "failed:HubSpot auth expired" for n in range(10)}),
            runs(**dict.fromkeys(F[:10], SNOWFLAKE), r0="removing"),
        ],
    ),
    # an escalation whose cause the held new incidents share: together they are an outage
    "escalation-and-held-incidents-are-one-outage": (
        "linear:\n  escalation_threshold: 2\n",
        ["a0", "a1", "n0", "n1", "n2", "q1"],
        [runs(a0=SNOWFLAKE, a1=SNOWFLAKE), runs(a0=SNOWFLAKE, n0=SNOWFLAKE, n1=SNOWFLAKE, n2=SNOWFLAKE, q1="success")],
    ),
}


@pytest.mark.parametrize("story", STORIES)
def test_overlapping_reads_and_posts_changes_when_messages_go_never_what_they_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, story: str
) -> None:
    """Told with reads and posts overlapped or with every sync read first, a tick says the same
    messages, in the same threads, with the same storm summaries and Linear issues."""
    config, syncs, ticks = STORIES[story]
    split, whole = told_both_ways(tmp_path, monkeypatch, config, syncs, ticks)
    assert split == whole
    assert split[0], "the story tells something"


def test_a_first_read_that_fails_holds_back_no_alert_read_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read of the first part rate-limited past the budget defers that sync alone: the new
    incident read fine, held for the rest, still goes out this tick."""

    def limited(world: World) -> None:
        runs(f0="failed:boom", f1=SNOWFLAKE, q1="success")(world)
        world.faults.append(Fault(api="hightouch", path="/syncs/f0/runs", status=429, times=50))

    split, whole = told_both_ways(
        tmp_path, monkeypatch, "triage:\n  wait_budget_seconds: 0\n", ["f0", "f1", "q1"], [limited]
    )
    assert split == whole
    assert [text for _, text in split[0] if "sync-f1" in text]


def test_a_sync_first_seen_keeps_its_boundary_when_the_tick_dies_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tick that dies on another sync (a bug, a revoked key) before it got to a sync first
    seen this tick leaves it its boundary: its failure is alerted by the next tick."""
    real = decide_sync
    broken: list[str] = []

    def decide(sync: Any, *args: Any, **kwargs: Any) -> Any:
        if sync.id in broken:
            raise RuntimeError("a bug")
        return real(sync, *args, **kwargs)

    monkeypatch.setattr(tick, "decide_sync", decide)
    world = World()
    with mounted(world):
        ws = Workspace(tmp_path, world, CHANNEL)
        ws.healthy_at_baseline(named("f0", "q1"), rows=NORMAL)
        world.add_sync("n1", "newcomer")
        runs(n1="failed:x", f0="failed:y", q1="success")(world)
        broken.append("f0")
        assert ws.tick()[0] != 0  # the tick dies on f0
        broken.clear()
        assert ws.tick()[0] == 0
    assert [m for m in world.slack_messages if "newcomer" in m["text"]]


def test_the_people_of_a_storms_later_member_are_pinged_in_its_reply(tmp_path: Path) -> None:
    """A storm's summary pings the people of the members it starts with; a member that joins
    later — read after the first part of the tick, or at a later tick — pings in its reply
    those of its people the summary did not."""
    config = CHANNEL + "routes:\n  - match: {sync: [r0, late]}\n    slack: {mention: [U024BE7LH]}\n"
    world = World()
    with mounted(world):
        ws = Workspace(tmp_path, world, config)
        ws.healthy_at_baseline(named(*F, "r0", "late", "q1"), rows=NORMAL)
        runs(**dict.fromkeys(F, SNOWFLAKE), r0="removing", q1="success")(world)
        assert ws.tick()[0] == 0
        summary = next(m for m in world.slack_messages if "started failing" in m["text"])
        pinged = [m for m in world.slack_messages if "<@U024BE7LH>" in m["text"]]
        assert [m.get("thread_ts") for m in pinged] == [summary["ts"]]  # r0's reply, read after
        assert "<@U024BE7LH>" not in summary["text"]
        since = len(world.slack_messages)
        runs(late=SNOWFLAKE)(world)  # a tick later, the storm's cause
        assert ws.tick()[0] == 0
    (reply,) = [m for m in world.slack_messages[since:] if "sync-late" in m["text"] and "thread_ts" in m]
    assert reply["thread_ts"] == summary["ts"] and "<@U024BE7LH>" in reply["text"]
