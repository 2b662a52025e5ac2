"""Slack Web API client: chat.postMessage, chat.update, chat.getPermalink and the
history reads that tell whether a message whose answer was lost went out.

Slack answers HTTP 200 with `ok: false` for most errors; each error code is
classified here, once: bad credentials stop the tick, a bad channel is a
config problem that names the channel, the rest are API errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from triage.errors import AnswerLost, ApiError, AuthError, ConfigError, OutOfTime
from triage.http import HttpClient, Pacer, Verdict, default_verdict, parse_retry_after, parsed_json
from triage.slack_ids import CHANNEL_ID as CHANNEL_ID  # re-exported for callers
from triage.slack_ids import USER_ID as USER_ID

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


class MissingScope(ApiError):
    """The token may post but not read history (channels:history / groups:history)."""


# A message's metadata names what it is about, so Slack's history can answer "was it sent?".
EVENT_TYPES = {
    "failure": "hightouch_sync_failure",
    "recovery": "hightouch_sync_recovery",
    "repost": "hightouch_sync_failure_repost",  # a first message posted again after it was deleted
    "dm": "hightouch_sync_escalation_dm",
    "storm": "hightouch_storm_summary",
    "health": "hightouch_triage_health",
    "digest": "hightouch_triage_digest",
}
# Slack takes about one chat.postMessage a second per channel, with short bursts: the pacer
# keeps just under it, so a storm is delivered at Slack's rate instead of into its 429s.
SLACK_MESSAGES_PER_SECOND = 1.0
SLACK_BURST = 2
# A channel (C…), private channel (G…) or DM (D…) id, as opposed to a #name.
# History is read from this long before a send was attempted (clocks differ a little).
HISTORY_MARGIN_SECONDS = 120
HISTORY_PAGES = 10  # 200 messages each: far more than one channel receives around one send


# Reads whose missing scope is a warning (a feature off), not refused credentials.
OPTIONAL_READS = ("conversations.", "reactions.", "chat.scheduled", "users.")

GONE_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
# Errors Slack answers with HTTP 200 that are about the moment, not the request: a rate limit
# (chat.postMessage and chat.update list `rate_limited`; `ratelimited` is the 429's code)
# proves nothing was done and is waited out; a server error is retried when the call is
# idempotent (it may have taken effect: "some aspect of the operation succeeded").
RATE_LIMIT_ERRORS = frozenset({"rate_limited", "ratelimited"})
TRANSIENT_ERRORS = frozenset({"fatal_error", "request_timeout"})


class SlackClient:
    """chat.postMessage (threads, broadcast) and chat.update, through the one HTTP policy.

    The hand-written client is kept over slack_sdk: every call must share the tick's wait
    budget, throttle and idempotency rules, which slack_sdk's own retry handlers do not know.
    """

    def __init__(self, http: HttpClient, base_url: str, token: str, *, pacer: Pacer | None = None) -> None:
        self.http = http
        self.pacer = pacer  # Slack's per-channel message rate, kept rather than run into
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
        metadata: dict[str, Any] | None = None,
    ) -> PostedMessage:
        """Post one message, or a reply in a thread. Retried by the HTTP policy only when
        Slack provably did not post it. `metadata` ({event_type, event_payload}) lets
        `find_sent` recognise the message later."""
        payload: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
            "link_names": False,
        }
        if metadata is not None:
            payload["metadata"] = metadata
        if self.pacer is not None:
            try:
                self.http.pace(self.pacer.reserve(channel), "chat.postMessage")
            except OutOfTime:
                self.pacer.give_back(channel)
                raise
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

    def find_sent(
        self, channel_id: str, metadata: dict[str, Any], since: float, *, thread_ts: str | None = None
    ) -> str | None:
        """The ts of a message carrying `metadata` posted in the channel (or in the thread)
        since `since` (Unix time, less a margin), or None. Raises MissingScope when the token
        may not read the channel's history."""
        endpoint = "conversations.replies" if thread_ts else "conversations.history"
        params: dict[str, Any] = {
            "channel": channel_id,
            "oldest": f"{max(since - HISTORY_MARGIN_SECONDS, 0):.6f}",
            "include_all_metadata": "true",
            "limit": 200,
        }
        if thread_ts:
            params["ts"] = thread_ts
        for _ in range(HISTORY_PAGES):
            body = self._call(endpoint, channel_id, params, idempotent=True, method="GET")
            for message in body.get("messages") or []:
                if isinstance(message, dict) and _carries(message.get("metadata"), metadata):
                    return str(message.get("ts") or "") or None
            cursor = (body.get("response_metadata") or {}).get("next_cursor")
            if not body.get("has_more") or not cursor:
                return None
            params = {**params, "cursor": cursor}
        return None

    def reactions(self, channel_id: str, ts: str) -> dict[str, tuple[str, ...]]:
        """The reactions on a message (reactions.get, scope reactions:read): emoji name → the
        users who reacted, in Slack's order. Raises MessageGone when the message was deleted."""
        params = {"channel": channel_id, "timestamp": ts, "full": "true"}
        body = self._call("reactions.get", channel_id, params, idempotent=True, method="GET")
        message = body.get("message") or {}
        found: dict[str, tuple[str, ...]] = {}
        for reaction in message.get("reactions") or []:
            if isinstance(reaction, dict) and reaction.get("name"):
                found[str(reaction["name"])] = tuple(str(u) for u in reaction.get("users") or ())
        return found

    def schedule_message(self, channel: str, post_at: int, text: str, blocks: list[dict[str, Any]]) -> tuple[str, str]:
        """Schedule a message for Slack to post by itself at `post_at` (Unix seconds): its
        channel id and scheduled message id. No metadata: Slack never posts a scheduled
        message that carries it."""
        payload = {"channel": channel, "post_at": post_at, "text": text, "blocks": blocks}
        body = self._call("chat.scheduleMessage", channel, payload, idempotent=False)
        return str(body.get("channel") or channel), str(body.get("scheduled_message_id") or "")

    def delete_scheduled(self, channel_id: str, scheduled_id: str) -> bool:
        """Delete a scheduled message; False when it is gone already (posted, or deleted)."""
        payload = {"channel": channel_id, "scheduled_message_id": scheduled_id}
        try:
            self._call("chat.deleteScheduledMessage", channel_id, payload, idempotent=True)
        except ApiError as exc:
            if "invalid_scheduled_message_id" in str(exc):
                return False
            raise
        return True

    def scheduled_messages(self, channel_id: str) -> list[dict[str, Any]]:
        """The messages scheduled in a channel and not yet posted."""
        body = self._call("chat.scheduledMessages.list", channel_id, {"channel": channel_id}, idempotent=True)
        return [m for m in body.get("scheduled_messages") or [] if isinstance(m, dict)]

    def user(self, user_id: str) -> dict[str, Any] | None:
        """users.info (scope users:read): the user, or None when there is no such user."""
        try:
            body = self._call("users.info", user_id, {"user": user_id}, idempotent=True, method="GET")
        except ApiError as exc:
            if "user_not_found" in str(exc):
                return None
            raise
        found = body.get("user")
        return found if isinstance(found, dict) else None

    def auth_test(self) -> dict[str, Any]:
        """auth.test: who the token is (team, user); raises AuthError when it is refused."""
        return self._call("auth.test", "", {}, idempotent=True)

    def channel(self, channel: str) -> dict[str, Any] | None:
        """A channel as Slack describes it (id, name, is_member, is_archived), by id
        (conversations.info) or by #name (conversations.list); None when it does not exist
        for the bot. Raises MissingScope without channels:read / groups:read."""
        if CHANNEL_ID.fullmatch(channel):
            try:
                body = self._call("conversations.info", channel, {"channel": channel}, idempotent=True, method="GET")
            except ConfigError:  # channel_not_found
                return None
            found = body.get("channel")
            return found if isinstance(found, dict) else None
        wanted = channel.removeprefix("#")
        for item in self._channels():
            if item.get("name") == wanted:
                return item
        return None

    def _channels(self) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"types": "public_channel,private_channel", "exclude_archived": "true", "limit": 1000}
        found: list[dict[str, Any]] = []
        for _ in range(HISTORY_PAGES):
            body = self._call("conversations.list", "", params, idempotent=True, method="GET")
            found += [c for c in body.get("channels") or [] if isinstance(c, dict)]
            cursor = (body.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
            params = {**params, "cursor": cursor}
        return found

    def find_channel_id(self, name: str) -> str | None:
        """The id of a channel configured by name (conversations.list), or None. Raises
        MissingScope without channels:read / groups:read."""
        found = self.channel(name)
        return str(found.get("id") or "") or None if found else None

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
            classify=slack_verdict,
        )
        if response.status_code >= 500 and not idempotent:
            # Slack may have posted it before failing to answer: looked up, never re-sent blind.
            raise AnswerLost(f"Slack {endpoint} to {channel!r}: HTTP {response.status_code}")
        try:
            body = parsed_json(response)
        except ValueError:
            raise ApiError(f"Slack {endpoint}: HTTP {response.status_code}, response is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError(f"Slack {endpoint}: unexpected response")
        if body.get("ok") is True:
            return body
        error = str(body.get("error") or f"HTTP {response.status_code}")
        # A read the tool can do without (history, reactions): a warning naming the scope, not a dead tick.
        if error == "missing_scope" and endpoint.startswith(
            ("conversations.", "reactions.", "chat.scheduled", "users.")
        ):
            needed = body.get("needed") or "a history scope"
            raise MissingScope(f"Slack {endpoint}: missing_scope: the bot token lacks {needed}")
        if error in AUTH_ERRORS:
            raise AuthError(f"Slack {endpoint}: {error}: the bot token was refused (SLACK_BOT_TOKEN)")
        if error in CHANNEL_ERRORS:
            raise ConfigError(f"Slack channel {channel!r} {CHANNEL_ERRORS[error]} [{error}]")
        if error in GONE_ERRORS:
            raise MessageGone(f"Slack {endpoint} in {channel!r}: {error}")
        raise ApiError(f"Slack {endpoint} to {channel!r} failed: {error}")


def slack_verdict(response: requests.Response) -> Verdict:
    """As `default_verdict`, and an `ok: false` answer whose error is a rate limit or a
    server error means the same as the HTTP status would have (see RATE_LIMIT_ERRORS)."""
    verdict = default_verdict(response)
    if verdict.retry is not None or response.status_code >= 400:
        return verdict
    try:
        body = parsed_json(response)
    except ValueError:
        return verdict
    error = body.get("error") if isinstance(body, dict) and body.get("ok") is False else None
    if error in RATE_LIMIT_ERRORS:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return Verdict("rate_limited", retry_after, f"rate limited ({error})")
    if error in TRANSIENT_ERRORS:
        return Verdict("transient", reason=str(error))
    return verdict


def message_metadata(kind: str, sync_id: str, run_id: str) -> dict[str, Any]:
    """What a message of `kind` about a sync's run carries, for `find_sent` to recognise it."""
    return {"event_type": EVENT_TYPES[kind], "event_payload": {"sync_id": sync_id, "run_id": run_id}}


def _carries(found: Any, wanted: dict[str, Any]) -> bool:
    """Whether a message's metadata is `wanted`: its event type, and every payload field
    (Slack may add fields of its own)."""
    if not isinstance(found, dict) or found.get("event_type") != wanted["event_type"]:
        return False
    payload = found.get("event_payload")
    return isinstance(payload, dict) and all(str(payload.get(k)) == str(v) for k, v in wanted["event_payload"].items())
