"""The steady listing: only syncs that ran since the last full listing (List Syncs `after=`),
with a full listing every hour — and nothing it leaves out is missed."""

from __future__ import annotations

from datetime import timedelta

from tests.sandboxed import START, Workspace


def hour(workspace: Workspace) -> None:
    """Let an hour pass before the next tick (ticks are 15 minutes apart)."""
    workspace.ticks += 3


def busy(workspace: Workspace, syncs: int = 250) -> None:
    """A workspace whose state changes every tick (a busy one: the listing's time is kept)."""
    for number in range(1, syncs + 1):
        workspace.world.add_sync(str(number), f"sync-{number}")
        workspace.world.add_run(str(number), "success", at=START - timedelta(hours=2))
    workspace.world.add_run("1", "failed", at=START - timedelta(hours=1))  # unhealthy: read at the baseline


def test_steady_ticks_list_only_syncs_that_ran_and_an_hourly_tick_lists_them_all(workspace: Workspace) -> None:
    world = workspace.world
    busy(workspace)
    workspace.tick()  # the baseline: a full listing
    assert world.request_log.count("hightouch GET /syncs") == 3  # 250 syncs: 3 pages
    world.add_run("7", "failed", at=START + timedelta(minutes=5))
    world.stats.clear()
    code, out = workspace.tick()
    assert code == 0, out
    assert world.stats["hightouch_after_listing"] == 1  # one page: the syncs that ran since
    assert len(world.slack_messages) == 1 and "sync-7" in world.slack_messages[0]["text"]
    assert world.request_log.count("hightouch GET /syncs") == 1
    hour(workspace)
    world.stats.clear()
    world.add_run("9", "failed", at=START + timedelta(hours=1, minutes=20))
    assert workspace.tick()[0] == 0
    assert world.stats["hightouch_after_listing"] == 0  # an hour on: the full listing
    assert world.request_log.count("hightouch GET /syncs") == 3
    assert len(world.slack_messages) == 2


def test_a_run_in_flight_is_judged_though_its_sync_did_not_run_again(workspace: Workspace) -> None:
    world = workspace.world
    busy(workspace)
    world.add_run("7", "processing", at=START - timedelta(minutes=30))
    workspace.tick()
    assert workspace.saved()["syncs"]["7"]["pending_run_id"]
    world.finish_run("7", "failed")  # its lastRunAt stays before the listing's `after`: not listed
    world.request_log.clear()
    code, out = workspace.tick()
    assert code == 0, out
    assert world.stats["hightouch_after_listing"] >= 1
    assert "hightouch GET /syncs/7" in world.request_log  # asked for by id
    assert any("sync-7" in m["text"] for m in world.slack_messages)


def test_a_quiet_workspace_commits_nothing_for_the_listing(workspace: Workspace) -> None:
    world = workspace.world
    world.add_sync("1", "contacts")
    world.add_run("1", "success", at=START - timedelta(hours=1))
    workspace.tick()
    before = workspace.state.read_text()
    for _ in range(3):
        assert workspace.tick()[0] == 0
    assert workspace.state.read_text() == before  # quiet ticks list in full and write nothing


def test_a_sync_renamed_or_paused_without_running_is_noticed_by_the_hourly_full_listing(
    workspace: Workspace,
) -> None:
    world = workspace.world
    busy(workspace)
    workspace.tick()
    world.add_run("2", "failed", at=START + timedelta(minutes=5))  # keeps the state changing
    world.syncs["3"].slug = "sync-3-renamed"
    world.syncs["4"].disabled = True
    workspace.tick()
    saved = workspace.saved()["syncs"]
    assert saved["3"]["name"] == "sync-3"  # not listed: it did not run
    hour(workspace)
    world.add_run("4", "failed", at=START + timedelta(hours=1, minutes=20))  # paused: never alerted
    world.add_run("5", "failed", at=START + timedelta(hours=1, minutes=20))
    workspace.tick()
    assert workspace.saved()["syncs"]["3"]["name"] == "sync-3-renamed"
    assert not any("sync-4" in m["text"] for m in world.slack_messages)
