"""Slack's own Block Kit models judge every payload the tests produce, so a message that
Slack would reject (a block too long, too many blocks) fails the suite, not a tick."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block

MAX_BLOCKS = 50
MAX_TEXT = 40_000


def assert_slack_accepts(payload: dict[str, Any]) -> None:
    blocks = payload.get("blocks") or []
    assert len(blocks) <= MAX_BLOCKS, f"{len(blocks)} blocks: Slack takes {MAX_BLOCKS}"
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()  # raises SlackObjectFormationError past a limit
    text = payload.get("text") or ""
    assert text or blocks, "no_text"
    assert len(text) <= MAX_TEXT


def is_health(message: dict[str, Any]) -> bool:
    """Whether a message is the tool speaking of itself, not an alert about a sync."""
    return "*hightouch-triage " in str(message.get("text", ""))


def posted(message: dict[str, Any]) -> str:
    """The text a message notified people with when it was posted (the first message is
    edited as things change, and an edit notifies no one)."""
    return str(message.get("posted_text") or message["text"])


def text_of(message: dict[str, Any]) -> str:
    """A message's blocks as it shows them now."""
    return "\n\n".join(b["text"]["text"] for b in message.get("blocks") or [])


def top_level(world: Any, channel: str | None = None) -> list[dict[str, Any]]:
    """Every message that starts a thread, in `channel` or in any."""
    return [m for m in world.slack_messages if "thread_ts" not in m and channel in (None, m["channel"])]


def replies(world: Any) -> list[dict[str, Any]]:
    """Every thread reply the sandbox's Slack holds."""
    return [m for m in world.slack_messages if "thread_ts" in m]
