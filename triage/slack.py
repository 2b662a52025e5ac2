"""Slack Web API client: chat.postMessage only.

Slack answers HTTP 200 with `ok: false` for most errors; each error code is
classified here, once: bad credentials stop the tick, a bad channel is a
config problem that names the channel, the rest are API errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from triage.errors import ApiError, AuthError, ConfigError
from triage.http import HttpClient

AUTH_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "no_permission",
    }
)
CHANNEL_ERRORS = {
    "channel_not_found": "was not found (check slack.channel in config.yaml; a channel ID survives renames)",
    "not_in_channel": "does not have the bot as a member (invite it: /invite @your-bot)",
    "is_archived": "is archived (set another slack.channel in config.yaml)",
    "restricted_action": "does not allow the bot to post",
}


@dataclass(frozen=True)
class PostedMessage:
    channel: str
    ts: str


class SlackClient:
    def __init__(self, http: HttpClient, base_url: str, token: str) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + "/chat.postMessage"
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"}

    def post_message(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> PostedMessage:
        """Post one message. Retried by the HTTP policy only when Slack provably did not post it."""
        payload = {
            "channel": channel,
            "text": text,
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
            "link_names": False,
        }
        endpoint = "chat.postMessage"
        response = self.http.request(
            "POST", self.url, endpoint=endpoint, idempotent=False, headers=self._headers, json=payload
        )
        try:
            body = response.json()
        except ValueError:
            raise ApiError(f"Slack {endpoint}: HTTP {response.status_code}, response is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError(f"Slack {endpoint}: unexpected response")
        if body.get("ok") is True:
            return PostedMessage(channel=str(body.get("channel") or channel), ts=str(body.get("ts") or ""))
        error = str(body.get("error") or f"HTTP {response.status_code}")
        if error in AUTH_ERRORS:
            raise AuthError(f"Slack {endpoint}: {error}: the bot token was refused (SLACK_BOT_TOKEN)")
        if error in CHANNEL_ERRORS:
            raise ConfigError(f"Slack channel {channel!r} {CHANNEL_ERRORS[error]} [{error}]")
        raise ApiError(f"Slack {endpoint} to {channel!r} failed: {error}")
