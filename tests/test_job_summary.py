"""The job summary a person reads on the workflow run's page, and the annotations on it."""

from __future__ import annotations

from pathlib import Path

from tests.sandboxed import Workspace


def test_the_summary_lists_each_alerted_sync_linked_with_its_destination_count_and_issue(
    workspace: Workspace, tmp_path: Path
) -> None:
    world = workspace.world
    world.add_sync("1", "sf|contacts", destination="Salesforce Production")
    world.add_sync("2", "hubspot-deals", destination="HubSpot")
    for _ in range(2):
        world.add_run("1", "failed")
    world.add_run("2", "success")
    workspace.tick()
    world.add_run("1", "failed")
    world.add_run("2", "failed")
    summary = tmp_path / "summary.md"
    code, _ = workspace.tick(env={"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"})
    assert code == 0
    text = summary.read_text()
    assert "| Sync | Destination | Failing | Linear |" in text
    issue = world.linear_issues[0]
    assert (
        f"| [sf\\|contacts](http://sandbox.test/app/acme/syncs/1) | Salesforce Production | 3 in a row (1 new) "
        f"| [{issue['identifier']}]({issue['url']}) |"
    ) in text
    assert "| [hubspot-deals](http://sandbox.test/app/acme/syncs/2) | HubSpot | 1 in a row (1 new) |  |" in text


def test_a_failed_tick_is_an_error_annotation_and_a_deferred_one_a_warning(workspace: Workspace) -> None:
    world = workspace.world
    world.add_sync("1", "contacts")
    world.add_run("1", "success")
    workspace.tick()
    actions = {"GITHUB_ACTIONS": "true"}

    code, out = workspace.tick(env={**actions, "HIGHTOUCH_API_KEY": "revoked-key"})
    assert code == 1
    (error,) = [line for line in out.splitlines() if line.startswith("::error")]
    assert error.startswith("::error title=hightouch-triage tick failed::") and "HIGHTOUCH_API_KEY" in error
    assert "revoked" not in out

    world.add_run("1", "failed")
    world.apply({"faults": [{"api": "slack", "path": "/chat.postMessage", "status": 429, "retry_after": "3600"}]})
    code, out = workspace.tick(env=actions)
    assert code == 0
    (warning,) = [line for line in out.splitlines() if line.startswith("::")]
    assert warning.startswith("::warning title=hightouch-triage tick deferred::1 sync deferred to the next tick: ")

    code, out = workspace.tick()  # outside Actions: no workflow commands at all
    assert code == 0 and "::" not in out


def test_a_failure_a_limit_deferred_counts_in_the_tick_that_alerts_it(workspace: Workspace) -> None:
    world = workspace.world
    workspace.failing_after_baseline()
    world.apply({"faults": [{"api": "slack", "path": "/chat.postMessage", "status": 429, "retry_after": "3600"}]})
    code, out = workspace.tick()
    assert code == 0 and "new failures: 0;" in out and "deferred to the next tick: 1" in out
    code, out = workspace.tick()
    assert code == 0 and "new failures: 1;" in out
