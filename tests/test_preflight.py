"""`validate --online`: the setup checked against the APIs (the sandbox), each problem named
with its setting and its fix, and nothing sent."""

from __future__ import annotations

import io

from tests.sandboxed import Workspace
from triage.cli import main

GOOD = """\
hightouch: {workspace_slug: acme}
slack: {channel: "#data-alerts"}
linear: {team: DATA}
"""


def preflight(workspace: Workspace, config: str = GOOD, **env: str) -> tuple[int, str]:
    workspace.config.write_text(config)
    out = io.StringIO()
    code = main(
        ["validate", "--online", "--config", str(workspace.config)],
        environ={**workspace.env, **env},
        stdout=out,
        sleep=lambda s: None,
    )
    return code, out.getvalue()


def test_a_good_setup_passes_every_check_and_sends_nothing(workspace: Workspace) -> None:
    code, out = preflight(workspace)
    assert code == 0, out
    assert "ok    Hightouch: HIGHTOUCH_API_KEY accepted" in out
    assert "ok    Slack: SLACK_BOT_TOKEN accepted" in out
    assert "ok    Slack channel '#data-alerts'" in out and "the bot is a member" in out
    assert "ok    Linear team 'DATA'" in out and "Ready: every check passed." in out
    assert workspace.world.slack_messages == [] and workspace.world.linear_issues == []


def test_a_refused_hightouch_key_names_the_variable_and_the_fix(workspace: Workspace) -> None:
    code, out = preflight(workspace, HIGHTOUCH_API_KEY="wrong-key")
    assert code == 2
    assert "FAIL  Hightouch: HIGHTOUCH_API_KEY refused" in out and "Settings → API keys" in out
    assert "wrong-key" not in out


def test_a_refused_slack_token_and_a_missing_linear_key_are_each_named(workspace: Workspace) -> None:
    code, out = preflight(workspace, SLACK_BOT_TOKEN="xoxb-wrong", LINEAR_API_KEY="")
    assert code == 2
    assert "FAIL  Slack: SLACK_BOT_TOKEN refused" in out
    assert "FAIL  Linear: LINEAR_API_KEY is not set" in out
    assert "xoxb-wrong" not in out


def test_a_missing_channel_a_channel_without_the_bot_and_a_missing_team_and_label(workspace: Workspace) -> None:
    world = workspace.world
    world.channels.add("#crm-alerts")
    world.slack_outside.add("CCRMALERTS")
    config = GOOD + (
        "routes:\n"
        "  - match: {sync: [sf-*]}\n"
        '    slack: {channel: ["#crm-alerts", "#no-such-channel"]}\n'
        "    linear: {team: CRM, labels: [hightouch]}\n"
        "  - match: {sync: [hs-*]}\n"
        "    linear: {labels: [no-such-label]}\n"
    )
    code, out = preflight(workspace, config)
    assert code == 2
    assert "FAIL  Slack channel '#no-such-channel' not found — check slack.channel (and routes)" in out
    assert "FAIL  Slack channel '#crm-alerts': the bot is not a member — invite it" in out
    assert "FAIL  Linear team 'CRM' not found" in out
    assert "FAIL  Linear labels ['no-such-label'] not found in team DATA" in out
    assert "ok    Slack channel '#data-alerts'" in out  # every check runs: one pass lists everything
    assert "4 problem(s) to fix." in out


def test_the_placeholder_workspace_slug_is_a_warning_online_and_offline(workspace: Workspace) -> None:
    code, out = preflight(workspace, GOOD.replace("acme", "my-workspace"))
    assert code == 0, out
    assert "warn  hightouch.workspace_slug is the placeholder 'my-workspace'" in out
    out_offline = io.StringIO()
    assert main(["validate", "--config", str(workspace.config)], environ={}, stdout=out_offline) == 0
    assert "placeholder 'my-workspace'" in out_offline.getvalue()


def test_without_a_channel_read_scope_a_channel_is_a_warning_not_a_failure(workspace: Workspace) -> None:
    workspace.world.slack_scopes = {"chat:write"}
    code, out = preflight(workspace)
    assert code == 0, out
    assert "warn  Slack channel '#data-alerts': not checked (the token lacks channels:read / groups:read)" in out


def test_a_dm_user_who_left_fails_and_one_who_is_here_passes(workspace: Workspace) -> None:
    workspace.world.users.add("U0ONCALL1")
    config = GOOD.replace(
        'slack: {channel: "#data-alerts"}', 'slack: {channel: "#data-alerts", dm_on_escalation: [U0ONCALL1, U0LEFTCO]}'
    )
    code, out = preflight(workspace, config)
    assert code == 2
    assert "ok    Slack user 'U0ONCALL1' (slack.dm_on_escalation)" in out
    assert "FAIL  Slack user 'U0LEFTCO' (slack.dm_on_escalation) is not in the workspace" in out


def test_talking_back_needs_reactions_read_and_the_watchdog_needs_scheduling(workspace: Workspace) -> None:
    code, out = preflight(workspace)
    assert "ok    Slack: reactions:read granted" in out
    assert "ok    Slack: the watchdog message in '#data-alerts' can be scheduled" in out
    workspace.world.slack_scopes.discard("reactions:read")
    code, out = preflight(workspace)
    assert code == 0 and "warn  Slack: reactions:read is missing" in out
