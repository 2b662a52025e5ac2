"""Rare corners where an alert could be lost or sent twice: each pinned by a test."""

from __future__ import annotations

from tests.sandboxed import Workspace


def test_sync_skipped_by_a_listing_that_shifted_while_paged_is_still_alerted(workspace: Workspace) -> None:
    world = workspace.world
    workspace.config.write_text("hightouch:\n  workspace_slug: acme\n  concurrency: 1\n")
    for number in range(1, 151):
        world.add_sync(str(number), f"sync-{number}")
        world.add_run(str(number), "success")
    assert workspace.tick()[0] == 0  # baseline

    world.add_run("101", "failed")  # the first sync of page 2

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
    assert workspace.tick()[0] == 0
    assert "5" not in workspace.saved()["syncs"]  # deleted for real: forgotten once the listing lacks it


def test_sync_listed_twice_is_handled_once(workspace: Workspace) -> None:
    world = workspace.world
    workspace.config.write_text("hightouch:\n  workspace_slug: acme\n  concurrency: 1\n")
    for number in range(10, 110):
        world.add_sync(str(number), f"sync-{number}")
        world.add_run(str(number), "success")
    workspace.tick()
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
