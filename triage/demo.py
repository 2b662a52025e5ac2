"""`python -m triage demo`: a scripted story against the built-in sandbox.

Needs no credentials and no network beyond 127.0.0.1; everything it writes
lives in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import html
import io
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from triage.sandbox import SCENARIOS, SandboxServer, World, load_scenario_file

DEMO_CONFIG = """\
hightouch:
  workspace_slug: demo-workspace
slack:
  channel: "#data-alerts"
  storm_threshold: 4
linear:
  team: DATA
  escalation_threshold: 3
triage:
  wait_budget_seconds: 5
routes:
  - name: crm
    match: {destination_type: [salesforce], tags: {env: production}}
    slack: {channel: "#crm-alerts", mention: [S0CRMTEAM], dm_on_escalation: [U0ONCALL1]}
    linear: {team: CRM, priority: urgent, labels: [hightouch]}
  - name: staging
    match: {tags: {env: staging}}
    linear: {escalate: false}
"""

RULE = "─" * 78


def run_demo(out: TextIO, run_cli: Callable[..., int], scenario: Path | None = None) -> int:
    """Play the scenario tick by tick, showing what Slack and Linear received."""
    world = World()
    # The story runs on its own clock (TRIAGE_NOW): ticks 15 minutes apart, each step's runs
    # a few minutes before its tick, so times and durations read as they would in a day.
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    world.now = lambda: start - timedelta(minutes=5)
    world.load_scenario(load_scenario_file(scenario or SCENARIOS / "demo.yaml"))
    with tempfile.TemporaryDirectory(prefix="hightouch-triage-demo-") as tmp, SandboxServer(world) as server:
        config = Path(tmp) / "config.yaml"
        config.write_text(DEMO_CONFIG, encoding="utf-8")
        state = Path(tmp) / "state" / "state.yaml"
        env = server.environment()
        out.write(
            "hightouch-triage demo: a sandbox of Hightouch, Slack and Linear runs on "
            f"{server.base_url}.\nEach tick below is one `python -m triage run`, "
            "as the scheduled workflow runs it every 15 minutes.\n"
        )
        # What the story runs with, so what follows can be read against it (and copied).
        out.write(f"\nThe config it runs with ({config.name}, as a team's repository would hold it):\n")
        out.write(_indent(DEMO_CONFIG, "  "))
        routes = io.StringIO()
        run_cli(["routes", "--log-level", "error", "--config", str(config)], environ=env, stdout=routes)
        out.write(f"\nWhere each sync's alerts go (`python -m triage routes`):\n{_indent(routes.getvalue(), '  ')}")
        out.write(f"\nThe config it runs with ({config.name}):\n{_indent(DEMO_CONFIG, '  ')}")
        tick = 0
        while True:
            now = start + timedelta(minutes=15 * tick)
            world.now = lambda: now - timedelta(minutes=5)  # noqa: B023 (read before the next turn)
            step = world.advance()
            if step is None:
                break
            world.now = lambda: now  # noqa: B023
            tick += 1
            seen_messages, seen_issues = len(world.slack_messages), len(world.linear_issues)
            edits = [m.get("edits", 0) for m in world.slack_messages]
            out.write(f"\n{RULE}\nTick {tick}: {step.note}\n{RULE}\n")
            buffer = io.StringIO()
            code = run_cli(
                ["run", "--log-level", "error", "--config", str(config), "--state", str(state)],
                environ={**env, "TRIAGE_NOW": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
                stdout=buffer,
            )
            for line in buffer.getvalue().splitlines():
                out.write(f"  | {line}\n")
            if code != 0:
                out.write(f"The tick exited with code {code}; the demo stops here.\n")
                return code
            for message in world.slack_messages[seen_messages:]:
                where = message["channel"]
                heading = f"Direct message to {where}" if where in world.users else f"Slack message in {where}"
                if "thread_ts" in message:
                    shown = ", also shown in the channel" if message.get("reply_broadcast") else ""
                    heading = f"Reply in the incident's thread in {where}{shown}"
                out.write(f"\n  {heading}:\n")
                out.write(_indent(slack_as_seen(message), "    "))
            for message, before in zip(world.slack_messages, edits, strict=False):
                if message.get("edits", 0) > before:
                    headline = slack_as_seen({"text": message.get("text", "")}).splitlines()[0]
                    out.write(f"\n  Updated in place (chat.update) in {message['channel']}: {headline}\n")
            for issue in world.linear_issues[seen_issues:]:
                team = issue["team"]["key"]
                out.write(
                    f"\n  Linear issue {issue['identifier']} (team {team}, priority {_priority(issue)}): "
                    f"{issue['title']}\n"
                )
                out.write(_indent(issue["description"], "    "))
            edited = any(m.get("edits", 0) > b for m, b in zip(world.slack_messages, edits, strict=False))
            if len(world.slack_messages) == seen_messages and len(world.linear_issues) == seen_issues and not edited:
                out.write("\n  Nothing sent to Slack or Linear.\n")
        out.write(f"\n{RULE}\nThe state file after {tick} ticks ({state.name}), as the workflow commits it:\n{RULE}\n")
        out.write(state.read_text(encoding="utf-8"))
        out.write(
            f"\nSlack messages: {len(world.slack_messages)}; Linear issues: {len(world.linear_issues)}; "
            f"Hightouch requests: {world.stats['hightouch']}.\n"
        )
    return 0


def slack_as_seen(message: dict[str, Any]) -> str:
    """Slack mrkdwn roughly as the Slack client shows it: links as text, no markup."""
    text = "\n\n".join(b["text"]["text"] for b in message.get("blocks") or []) or str(message.get("text", ""))
    text = re.sub(r"<!date\^\d+\^[^|>]*\|([^>]+)>", r"\1", text)  # as a reader in UTC sees it
    text = re.sub(r"<([^|>]+)\|([^>]+)>", r"\2 (\1)", text)
    text = text.replace("```", "").replace(":red_circle: ", "● ").replace(":large_green_circle: ", "✔ ")
    text = text.replace(":x: ", "✗ ").replace(":rotating_light: ", "⚠ ")
    text = text.replace("\u200b", "")
    text = re.sub(r"<!subteam\^(\w+)>", r"@\1", re.sub(r"<@(\w+)>", r"@\1", text))
    text = re.sub(r"\*([^*\n]+)\*", r"\1", text)
    return html.unescape(text)


def _priority(issue: dict[str, Any]) -> str:
    return {1: "Urgent", 2: "High", 3: "Medium", 4: "Low"}.get(int(issue.get("priority") or 0), "None")


def _indent(text: str, prefix: str) -> str:
    return "".join(f"{prefix}{line}\n" for line in text.splitlines())
