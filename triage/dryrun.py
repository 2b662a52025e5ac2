"""Dry run: Slack and Linear stand-ins that print what would be sent instead of sending it.
The tick runs exactly as it would — the same plan, the same executor — against these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from triage.linear import Issue, LinearClient, Team
from triage.slack import PostedMessage, SlackClient


def _blocks_text(text: str, blocks: list[dict[str, Any]]) -> str:
    return "\n\n".join(str(b.get("text", {}).get("text", "")) for b in blocks) or text


class PrintingSlack(SlackClient):
    """Prints each message; answers as Slack would, with made-up message ids."""

    def __init__(self, out: TextIO) -> None:  # no HTTP client: nothing is sent
        self.out = out
        self._count = 0

    def post_message(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        *,
        thread_ts: str | None = None,
        broadcast: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> PostedMessage:
        self._count += 1
        where = f"{channel}{' (thread reply)' if thread_ts else ''}"
        self.out.write(f"\n--- [dry run] Slack message to {where} ---\n{_blocks_text(text, blocks)}\n")
        return PostedMessage(channel=channel, ts=f"dry-run.{self._count:06d}")

    def update_message(self, channel_id: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        self.out.write(f"\n--- [dry run] Slack update of a message in {channel_id} ---\n{_blocks_text(text, blocks)}\n")

    def permalink(self, channel_id: str, ts: str) -> str:
        return ""

    def find_sent(
        self, channel_id: str, metadata: dict[str, Any], since: float, *, thread_ts: str | None = None
    ) -> str | None:
        return None

    def find_channel_id(self, name: str) -> str | None:
        return None

    def reactions(self, channel_id: str, ts: str) -> dict[str, tuple[str, ...]]:
        return {}  # a dry run answers no one

    def auth_test(self) -> dict[str, Any]:
        return {}


class PrintingLinear(LinearClient):
    """Prints each search, issue, comment and close; finds nothing open."""

    def __init__(self, out: TextIO) -> None:  # no HTTP client: nothing is sent
        self.out = out

    def find_team(self, key_or_name: str) -> Team:
        return Team(id=key_or_name, key=key_or_name, name=key_or_name)

    def find_open_issue(self, team: Team, sync_name: str, sync_id: str) -> Issue | None:
        self.out.write(
            f"\n--- [dry run] Linear: search team {team.key} for an open issue naming {sync_name!r}; "
            "if none, create ---\n"
        )
        return None

    def find_open_issues(self, team: Team, syncs: list[tuple[str, str]]) -> dict[str, Issue]:
        names = ", ".join(repr(name) for name, _ in syncs)
        self.out.write(f"\n--- [dry run] Linear: search team {team.key} once for open issues naming {names} ---\n")
        return {}

    def issue(self, id_or_identifier: str) -> Issue | None:
        return None

    def labels(self, team: Team) -> dict[str, str]:
        return _Anything()

    def comment(self, issue_id: str, body: str, comment_id: str | None = None) -> None:
        self.out.write(f"\n--- [dry run] Linear comment on {issue_id} ---\n{body}\n")

    def close(self, issue_id: str, team_id: str) -> None:
        self.out.write(f"\n--- [dry run] Linear: close {issue_id} ---\n")

    def create_issue(
        self,
        team: Team,
        *,
        sync_id: str | tuple[str, ...],
        title: str,
        description: str,
        priority: int,
        issue_id: str,
        label_ids: tuple[str, ...] = (),
    ) -> Issue:
        self.out.write(f"\n--- [dry run] Linear issue in {team.key} ---\n{title}\n\n{description}\n")
        return Issue(id=issue_id, identifier=f"{team.key}-?", title=title, url="", team=team.key)


def printing_trigger(out: TextIO) -> Callable[[str], str]:
    """A sync's run triggered, as a dry run does it: said, not done."""

    def trigger(sync_id: str) -> str:
        out.write(f"\n--- [dry run] Hightouch: trigger one run of sync {sync_id} ---\n")
        return "dry-run"

    return trigger


class _Anything(dict[str, str]):
    """Every label name exists in a dry run (it is checked by `validate --online`)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return key
