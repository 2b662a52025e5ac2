"""What a tick did, for people: the summary on stdout, the job summary's Markdown and the
workflow commands (annotations) a GitHub Actions run shows."""

from __future__ import annotations

from dataclasses import dataclass, field

from triage.output import workflow_command
from triage.render import TriageContext, markdown_escape


@dataclass
class TickSummary:
    baseline: bool = False
    listed: int = 0
    disabled: int = 0
    unchanged: int = 0
    checked: int = 0
    new_failures: int = 0
    slack_sent: int = 0
    linear_found: int = 0
    linear_created: int = 0
    escalations: int = 0  # Linear steps due (found + created, or what a dry run would do)
    deferred: list[str] = field(default_factory=list)
    deferred_why: str = ""  # the rate or time limit that deferred them
    deferred_names: list[str] = field(default_factory=list)  # "name (id)" of each, for people
    alerted: list[TriageContext] = field(default_factory=list)  # this tick's alerts, as their messages show them
    errors: list[str] = field(default_factory=list)
    config_errors: list[str] = field(default_factory=list)  # routes to fix: exit 2 once the tick is done
    listing_deferred: str = ""  # why the sync listing could not be read (a rate or time limit)
    unconfirmed: list[str] = field(default_factory=list)  # messages whose answer was lost: checked next tick
    recovered: list[str] = field(default_factory=list)  # "name (id)" of each sync whose recovery was told
    linear_errors: list[str] = field(default_factory=list)  # Linear steps that failed: retried next tick
    dm_errors: list[str] = field(default_factory=list)  # direct messages that could not be delivered
    abandoned: list[str] = field(default_factory=list)  # threads in channels the bot can no longer reach
    errors_noted: list[str] = field(default_factory=list)  # refused requests people were told of (a retry)


def format_summary(summary: TickSummary, dry_run: bool) -> str:
    if summary.listing_deferred:
        return f"Tick deferred: {summary.listing_deferred}; the next tick starts over.\n"
    lines = [
        "Tick finished" + (" (dry run: nothing sent, no state written)" if dry_run else "") + ".",
        f"  syncs: {summary.listed} listed, {summary.disabled} disabled (skipped), "
        f"{summary.unchanged} unchanged, {summary.checked} checked",
        (
            f"  new failures: {summary.new_failures}; Slack messages that would be sent: {summary.slack_sent}; "
            f"Linear escalations due: {summary.escalations}"
            if dry_run
            else f"  new failures: {summary.new_failures}; Slack messages sent: {summary.slack_sent}"
            + (f" ({len(summary.unconfirmed)} unconfirmed)" if summary.unconfirmed else "")
            + f"; Linear issues found: {summary.linear_found}, created: {summary.linear_created}"
        ),
        f"  deferred to the next tick: {len(summary.deferred)}"
        + (
            f" ({', '.join(summary.deferred[:20])}{' …' if len(summary.deferred) > 20 else ''})"
            if summary.deferred
            else ""
        ),
    ]
    if summary.baseline:
        lines.insert(1, "  first tick: baseline recorded, no alerts sent")
    if summary.recovered:
        lines.append(f"  recovered: {', '.join(summary.recovered)}")
    # Each kind of trouble: its count in the heading, then one line per item.
    for items, heading in (
        (
            summary.unconfirmed,
            "unconfirmed: {} Slack message(s) whose answer was lost; "
            "the next tick looks them up in Slack before sending anything again",
        ),
        (summary.linear_errors, "Linear failed: {} (those escalations are retried next tick)"),
        (summary.abandoned, "threads abandoned (their channel cannot be reached): {}"),
        (summary.errors_noted, "refused and said so in the thread: {}"),
        (summary.dm_errors, "direct messages not delivered: {}"),
        (summary.errors, "errors: {} (those syncs are retried next tick)"),
        (summary.config_errors, "configuration errors: {} (those alerts wait until config.yaml is fixed)"),
    ):
        if items:
            lines += ["  " + heading.format(len(items)), *(f"    - {e}" for e in items)]
    return "\n".join(lines) + "\n"


def summary_markdown(summary: TickSummary, dry_run: bool) -> str:
    """The tick's summary as a Markdown table, for a GitHub Actions job summary."""
    if summary.listing_deferred:
        return f"### hightouch-triage tick\n\nDeferred: {markdown_escape(summary.listing_deferred)}.\n"
    title = "### hightouch-triage tick" + (" (dry run: nothing sent)" if dry_run else "")
    if summary.baseline:
        title += " (first tick: baseline recorded)"
    rows = [
        ("Syncs listed", summary.listed),
        ("Skipped: disabled", summary.disabled),
        ("Skipped: unchanged", summary.unchanged),
        ("Syncs checked", summary.checked),
        ("New failures", summary.new_failures),
        ("Slack messages", summary.slack_sent),
        ("Slack messages unconfirmed (checked next tick)", len(summary.unconfirmed)),
        ("Recoveries", len(summary.recovered)),
        ("Linear issues found", summary.linear_found),
        ("Linear issues created", summary.linear_created),
        ("Deferred (rate or time limit)", len(summary.deferred)),
        ("Errors", len(summary.errors)),
        ("Configuration errors", len(summary.config_errors)),
    ]
    lines = [title, "", "| | |", "| --- | ---: |", *(f"| {label} | {value} |" for label, value in rows)]
    if summary.alerted:
        lines += [
            "",
            "Alerted this tick:",
            "",
            "| Sync | Destination | Failing | Linear |",
            "| --- | --- | --- | --- |",
        ]
        lines += [_alert_row(ctx) for ctx in summary.alerted[:SUMMARY_ROWS]]
        if len(summary.alerted) > SUMMARY_ROWS:
            lines.append(f"| … and {len(summary.alerted) - SUMMARY_ROWS} more | | | |")
    if summary.deferred:
        why = f" ({markdown_escape(summary.deferred_why)})" if summary.deferred_why else ""
        names = summary.deferred_names or summary.deferred
        shown = ", ".join(markdown_escape(n) for n in names[:SUMMARY_ROWS])
        more = f" … and {len(names) - SUMMARY_ROWS} more" if len(names) > SUMMARY_ROWS else ""
        lines += ["", f"Deferred to the next tick{why}: {shown}{more}"]
    for heading, items in (
        ("Unconfirmed Slack messages (their answer was lost; looked up next tick)", summary.unconfirmed),
        ("Linear failed (retried next tick)", summary.linear_errors),
        ("Direct messages not delivered", summary.dm_errors),
        ("Errors (retried next tick)", summary.errors),
    ):
        if items:
            lines += ["", f"{heading}:", *(f"- {markdown_escape(e)}" for e in items)]
    if summary.config_errors:
        lines += ["", "Configuration errors (fix config.yaml):"]
        lines += [f"- {markdown_escape(e)}" for e in summary.config_errors]
    return "\n".join(lines) + "\n"


SUMMARY_ROWS = 50  # a job summary is for people: the rest is in the log
ALERT_TABLE_HEAD = ("| Sync | Destination | Failing | Linear |", "| --- | --- | --- | --- |")


def _alert_row(ctx: TriageContext) -> str:
    cell = markdown_escape  # also escapes |, so a name cannot break the table
    sync = f"[{cell(ctx.sync_name)}]({ctx.sync_url})"
    failing = f"{ctx.consecutive_failures} in a row ({ctx.new_failures} new)"
    issue = ""
    if ctx.linear_issue:
        issue = f"[{cell(ctx.linear_issue)}]({ctx.linear_url})" if ctx.linear_url else cell(ctx.linear_issue)
    return f"| {sync} | {cell(ctx.destination)} | {failing} | {issue} |"


def workflow_commands(summary: TickSummary, failure: str | None) -> str:
    """GitHub Actions workflow commands for the run's page: an error when the tick failed,
    a warning when a limit deferred part of it. Marked as the tool's own, so the output
    streams write them as commands (and only them)."""
    if failure:
        return workflow_command("error", failure, title="hightouch-triage tick failed")
    if summary.listing_deferred or summary.deferred:
        why = summary.listing_deferred or summary.deferred_why
        count = len(summary.deferred)
        what = "the sync listing" if summary.listing_deferred else f"{count} sync{'s' if count != 1 else ''}"
        return workflow_command(
            "warning", f"{what} deferred to the next tick: {why}", title="hightouch-triage tick deferred"
        )
    return ""
