"""Slack Web API client: chat.postMessage and chat.update.

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


class MessageGone(ApiError):
    """The message to update was deleted, or can no longer be edited."""


GONE_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


class SlackClient:
    """chat.postMessage (threads, broadcast) and chat.update, through the one HTTP policy.

    The hand-written client is kept over slack_sdk: every call must share the tick's wait
    budget, throttle and idempotency rules, which slack_sdk's own retry handlers do not know.
    """

    def __init__(self, http: HttpClient, base_url: str, token: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"}

    def post_message(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        *,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> PostedMessage:
        """Post one message, or a reply in a thread. Retried by the HTTP policy only when
        Slack provably did not post it."""
        payload: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
            "link_names": False,
        }
        if thread_ts is not None:
            payload["thread_ts"] = thread_ts
            payload["reply_broadcast"] = broadcast
        body = self._call("chat.postMessage", channel, payload, idempotent=False)
        return PostedMessage(channel=str(body.get("channel") or channel), ts=str(body.get("ts") or ""))

    def update_message(self, channel_id: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """Replace a message the bot posted. Raises MessageGone when it no longer exists.
        An update is idempotent: sending it twice leaves the same message."""
        payload = {"channel": channel_id, "ts": ts, "text": text, "blocks": blocks}
        self._call("chat.update", channel_id, payload, idempotent=True)

    def permalink(self, channel_id: str, ts: str) -> str:
        """A link to a message (chat.getPermalink), for the Linear issue to point at its thread."""
        # A read method: Slack takes its arguments as a query, not a JSON body.
        params = {"channel": channel_id, "message_ts": ts}
        body = self._call("chat.getPermalink", channel_id, params, idempotent=True, method="GET")
        return str(body.get("permalink") or "")

    def _call(
        self, endpoint: str, channel: str, payload: dict[str, Any], *, idempotent: bool, method: str = "POST"
    ) -> dict[str, Any]:
        response = self.http.request(
            method,
            f"{self.base_url}/{endpoint}",
            endpoint=endpoint,
            idempotent=idempotent,
            headers=self._headers,
            json=payload if method == "POST" else None,
            params=payload if method == "GET" else None,
        )
        try:
            body = response.json()
        except ValueError:
            raise ApiError(f"Slack {endpoint}: HTTP {response.status_code}, response is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError(f"Slack {endpoint}: unexpected response")
        if body.get("ok") is True:
            return body
        error = str(body.get("error") or f"HTTP {response.status_code}")
        if error in AUTH_ERRORS:
            raise AuthError(f"Slack {endpoint}: {error}: the bot token was refused (SLACK_BOT_TOKEN)")
        if error in CHANNEL_ERRORS:
            raise ConfigError(f"Slack channel {channel!r} {CHANNEL_ERRORS[error]} [{error}]")
        if error in GONE_ERRORS:
            raise MessageGone(f"Slack {endpoint} in {channel!r}: {error}")
        raise ApiError(f"Slack {endpoint} to {channel!r} failed: {error}")
