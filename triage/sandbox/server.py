"""A local stand-in for the Hightouch, Slack and Linear APIs, on 127.0.0.1 only.

One process serves all three under path prefixes, so pointing the CLI at it
is a matter of the *_URL environment variables (see `Sandbox.environment`):

    /hightouch/api/v1/...        Hightouch REST (syncs, runs, destinations, models, trigger)
    /slack/api/chat.postMessage  Slack Web API
    /linear/graphql              Linear GraphQL (teams, issues, issueCreate)
    /_sandbox/...                control: state, advance, apply (for harnesses)
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from triage.sandbox.world import PENDING, Fault, SandboxRun, SandboxSync, ScenarioError, World

Answer = tuple[int, dict[str, str], bytes]

HIGHTOUCH = "/hightouch/api/v1"
SLACK = "/slack/api"
SLACK_METHODS = (
    "/chat.postMessage",
    "/chat.update",
    "/chat.getPermalink",
    "/conversations.history",
    "/conversations.replies",
    "/conversations.list",
    "/conversations.info",
    "/auth.test",
    "/reactions.get",
    "/chat.scheduleMessage",
    "/chat.deleteScheduledMessage",
    "/chat.scheduledMessages.list",
    "/users.info",
)
LINEAR = "/linear/graphql"
SCHEDULE_AHEAD_DAYS = 120  # Slack refuses a post_at further ahead (time_too_far)
CONTROL = "/_sandbox"
MAX_PAGE = 100
LINEAR_PAGE = 50
# Linear's answer for an id that names nothing (a deleted issue), on HTTP 200 (or 400).
LINEAR_NOT_FOUND = {
    "errors": [
        {
            "message": "Entity not found: Issue",
            "extensions": {"code": "INPUT_ERROR", "userPresentableMessage": "Could not find referenced Issue."},
        }
    ],
    "data": None,
}
# Set on an answer by a `trickle` fault; the HTTP handler strips it and sends the body slowly.
TRICKLE_HEADER = "X-Sandbox-Trickle"


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Answer:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


def _validation_failed(name: str, message: str, value: str) -> Answer:
    """Hightouch's answer to a query parameter it cannot read (its `ValidateErrorJSON`)."""
    return _json(422, {"message": "Validation failed", "details": {name: {"message": message, "value": value}}})


def _query_time(query: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 time from the query (UTC when it names no zone), or None when it is not one."""
    try:
        moment = datetime.fromisoformat(query[name].replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _invalid_time(query: Mapping[str, str], name: str) -> Answer:
    return _validation_failed(name, "invalid ISO 8601 datetime format, i.e. YYYY-MM-DDTHH:mm:ss", query[name])


# List Sync Runs' orderBy values, as the sort key of a sandbox run (startedAt is createdAt here).
RUN_ORDERS: dict[str, Callable[[SandboxRun], Any]] = {
    "id": lambda run: run.id,
    "createdAt": lambda run: (run.created_at, run.id),
    "startedAt": lambda run: (run.created_at, run.id),
    "finishedAt": lambda run: (run.finished_at or datetime.max.replace(tzinfo=UTC), run.id),
}


@dataclass(frozen=True)
class _Named:
    """A destination or model on a page of its list."""

    body: dict[str, str]

    def to_json(self) -> dict[str, str]:
        return self.body


class Sandbox:
    """Routing and behaviour, independent of the HTTP server that carries it."""

    def __init__(self, world: World) -> None:
        self.world = world

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer:
        with self.world.lock:
            self.world.in_flight += 1
        try:
            return self._handle(method, target, headers, body)
        finally:
            with self.world.idle:
                self.world.in_flight -= 1
                self.world.idle.notify_all()

    def _handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer:
        url = urlparse(target)
        path, query = url.path, {k: v[0] for k, v in parse_qs(url.query).items()}
        if path.startswith(CONTROL):
            return self._control(method, path.removeprefix(CONTROL), body)
        if path.startswith(HIGHTOUCH):
            api, sub = "hightouch", path.removeprefix(HIGHTOUCH)
        elif path.startswith(SLACK):
            api, sub = "slack", path.removeprefix(SLACK)
        elif path.startswith(LINEAR):
            api, sub = "linear", path.removeprefix(LINEAR)
        else:
            return _json(404, {"message": f"no such sandbox path {path}"})

        with self.world.lock:
            self.world.stats[api] += 1
            self.world.request_log.append(f"{api} {method} {sub}")
            fault = next((f for f in self.world.faults if f.matches(api, sub, body)), None)
            if fault is not None:
                fault.times -= 1
                self.world.stats[f"fault_{fault.api}"] += 1
            limited = api == "hightouch" and self._rate_limited()
            latency = self.world.latency
        if latency or (fault and fault.delay):
            time.sleep(latency + (fault.delay if fault else 0.0))
        if limited:
            with self.world.lock:
                self.world.stats["hightouch_429"] += 1
            # Hightouch's observed 429s carry no Retry-After and no rate-limit headers.
            return _json(429, {"error": "Too many requests"})
        if fault is not None and (answer := self._fault(fault, headers)) is not None:
            return answer
        if fault is not None and fault.ignore_offset:
            query = {**query, "offset": "0", "_always_more": "yes"}
        if api == "hightouch":
            answer = self._hightouch(method, sub, query, headers, body)
        elif api == "slack":
            answer = self._slack(sub, query, headers, body)
        else:
            answer = self._linear(headers, body)
        if self.world.on_request is not None:
            # After the request took effect, before its answer leaves: a harness can kill
            # the client here to test a crash between "done remotely" and "recorded locally".
            self.world.on_request(api, method, sub, body)
        if fault is not None and fault.trickle:
            status, headers, payload = answer
            answer = status, {**headers, TRICKLE_HEADER: str(fault.trickle)}, payload
        return answer

    # -- faults and limits ---------------------------------------------------

    def _rate_limited(self) -> bool:
        world = self.world
        if not world.rate_limit:
            return False
        now = world.clock()  # a harness may run the world on its virtual clock
        while world.recent_requests and now - world.recent_requests[0] >= world.rate_limit_window:
            world.recent_requests.popleft()
        if len(world.recent_requests) >= world.rate_limit_requests:
            return True
        world.recent_requests.append(now)
        return False

    def _fault(self, fault: Fault, request_headers: Mapping[str, str]) -> Answer | None:
        if fault.malformed:
            return 200, {"Content-Type": "application/json"}, b'{"data": [ {"id": 1, "stat'
        if fault.slack_error:
            return _json(200, {"ok": False, "error": fault.slack_error})
        if fault.status:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            # Some servers echo the request in their errors: the tool must not pass that on.
            message = (fault.message or "").replace("{authorization}", request_headers.get("Authorization", ""))
            if fault.api == "linear":
                kind = "ratelimited" if fault.status == 429 else "internal error"
                text = message or ("Rate limit exceeded" if fault.status == 429 else "Internal error")
                body: Any = {"errors": [{"message": text, "extensions": {"type": kind}}]}
            elif fault.api == "slack":
                body = {"ok": False, "error": "ratelimited" if fault.status == 429 else "fatal_error"}
            else:
                default = "Too many requests" if fault.status == 429 else "Internal error"
                body = {"error": message or default} if fault.status == 429 else {"message": message or default}
            return _json(fault.status, body, headers)
        return None  # a pure delay

    # -- Hightouch -------------------------------------------------------------

    def _hightouch(
        self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str], body: bytes
    ) -> Answer:
        world = self.world
        if headers.get("Authorization") != f"Bearer {world.hightouch_key}":
            return _json(401, {"message": "Authentication error", "details": "invalid API key"})
        with world.lock:
            if method == "GET" and path == "/syncs":
                syncs = list(world.syncs.values())
                if "after" in query:  # syncs that ran after the given time
                    after = _query_time(query, "after")
                    if after is None:
                        return _invalid_time(query, "after")
                    syncs = [s for s in syncs if s.last_run_at is not None and s.last_run_at > after]
                    world.stats["hightouch_after_listing"] += 1
                if query.get("orderBy") == "id":
                    syncs.sort(key=lambda s: (len(s.id), s.id))  # numeric ids, compared as numbers
                return self._page(syncs, query)
            match = re.fullmatch(r"/syncs/([^/]+)", path)
            if match and method == "GET":
                sync = world.syncs.get(match.group(1))
                if sync is None:
                    return _json(404, {"message": "Sync not found"})
                return _json(200, sync.to_json())
            match = re.fullmatch(r"/syncs/([^/]+)/(runs|trigger)", path)
            if match:
                sync = world.syncs.get(match.group(1))
                if sync is None:
                    return _json(404, {"message": "Sync not found"})
                if match.group(2) == "trigger" and method == "POST":
                    return self._trigger(sync.id)
                if method != "GET":
                    return _json(405, {"message": "Method not allowed"})
                return self._runs(sync, query)
            if method == "GET" and path in ("/destinations", "/models"):
                kind = path[1:]
                table = world.destinations if kind == "destinations" else world.models
                ids = sorted(table, key=lambda i: (len(i), i))  # orderBy id, numeric ids as numbers
                return self._page([_Named(self._named(kind, i)) for i in ids], query)
            match = re.fullmatch(r"/(destinations|models)/([^/]+)", path)
            if match and method == "GET":
                found = self._named(match.group(1), match.group(2))
                if not found:
                    return _json(404, {"message": "Not found"})
                return _json(200, found)
        return _json(404, {"message": f"no such endpoint {method} {path}"})

    def _runs(self, sync: SandboxSync, query: dict[str, str]) -> Answer:
        """List Sync Runs: `runId`, the time filters on startedAt (`after`, `before`,
        `within` minutes), `orderBy`, in the direction the scenario sets (`runs_order`:
        Hightouch documents none, and its reference's example lists runs oldest first)."""
        world = self.world
        order = query.get("orderBy", "id")
        if order not in RUN_ORDERS:
            return _validation_failed("orderBy", f"should be one of the following; {list(RUN_ORDERS)}", order)
        runs = list(sync.runs)
        for name in ("after", "before"):
            if name in query:
                bound = _query_time(query, name)
                if bound is None:
                    return _invalid_time(query, name)
                runs = [r for r in runs if (r.created_at > bound if name == "after" else r.created_at < bound)]
        if "within" in query:
            try:
                since = datetime.now(UTC) - timedelta(minutes=float(query["within"]))
            except (ValueError, OverflowError):
                return _validation_failed("within", "invalid float number", query["within"])
            runs = [r for r in runs if r.created_at > since]
        runs.sort(key=RUN_ORDERS[order], reverse=world.newest_first)
        if "runId" in query:
            runs = [r for r in runs if str(r.id) == query["runId"]]
            for run in runs:
                self._progress_triggered(sync.id, run.id)
        return self._page(runs, query)

    def _named(self, kind: str, object_id: str) -> dict[str, str]:
        """A destination or model as Get Destination / Get Model answer it ({} when there is none)."""
        world = self.world
        name = (world.destinations if kind == "destinations" else world.models).get(object_id)
        if name is None:
            return {}
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        found = {"id": object_id, "name": name, "slug": slug, "workspaceId": "1"}
        if kind == "destinations":
            found["type"] = world.destination_types.get(object_id, slug)
        return found

    def _page(self, items: Sequence[SandboxSync | SandboxRun | _Named], query: dict[str, str]) -> Answer:
        """One page, as Hightouch pages: limit (capped at 100), offset, hasMore."""
        for name in ("limit", "offset"):
            try:
                float(query.get(name, 0))
            except ValueError:
                return _validation_failed(name, "invalid float number", query[name])
        limit = min(max(int(float(query.get("limit", MAX_PAGE))), 1), MAX_PAGE)
        offset = max(int(float(query.get("offset", 0))), 0)
        page = [item.to_json() for item in items[offset : offset + limit]]
        has_more = offset + limit < len(items) or "_always_more" in query
        return _json(200, {"data": page, "hasMore": has_more})

    def _trigger(self, sync_id: str) -> Answer:
        world = self.world
        if world.syncs[sync_id].disabled:
            return _json(400, {"message": "Sync is disabled"})
        run = world.add_run(sync_id, "queued")
        world.polls[run.id] = 0
        return _json(200, {"id": str(run.id)})

    def _progress_triggered(self, sync_id: str, run_id: int) -> None:
        """A triggered run moves queued → processing → its outcome over a few polls."""
        world = self.world
        if run_id not in world.polls:
            return
        world.polls[run_id] += 1
        run = next(r for r in world.syncs[sync_id].runs if r.id == run_id)
        if run.status not in PENDING:
            return
        if world.polls[run_id] == 2:
            run.status = "processing"
        elif world.polls[run_id] >= 3:
            outcome = world.trigger_outcomes.get(sync_id, "success")
            world.finish_run(sync_id, outcome)

    # -- Slack ---------------------------------------------------------------

    def _slack(self, path: str, query: dict[str, str], headers: Mapping[str, str], body: bytes) -> Answer:
        """chat.postMessage (threads with thread_ts and reply_broadcast, DMs to a user id,
        metadata, the per-channel rate limit), chat.update, chat.getPermalink and the history
        reads, with Slack's ok:false errors."""
        world = self.world
        if path not in SLACK_METHODS:
            return _json(200, {"ok": False, "error": "unknown_method"})
        if headers.get("Authorization") != f"Bearer {world.slack_token}":
            return _json(200, {"ok": False, "error": "invalid_auth"})
        if path in ("/conversations.history", "/conversations.replies"):
            return self._slack_history(path, query)
        if path == "/conversations.list":
            return self._slack_channels()
        if path == "/conversations.info":
            return self._slack_channel_info(query.get("channel", ""))
        if path == "/auth.test":
            return _json(200, {"ok": True, "team": "Sandbox", "user": "triage-bot", "bot_id": "B0SANDBOX"})
        if path == "/users.info":
            if "users:read" not in world.slack_scopes:
                return _json(200, {"ok": False, "error": "missing_scope", "needed": "users:read"})
            user = query.get("user", "")
            if user not in world.users:
                return _json(200, {"ok": False, "error": "user_not_found"})
            return _json(200, {"ok": True, "user": {"id": user, "name": user.lower(), "deleted": False}})
        if path == "/reactions.get":
            return self._slack_reactions(query)
        if path in ("/chat.scheduleMessage", "/chat.deleteScheduledMessage", "/chat.scheduledMessages.list"):
            return self._slack_scheduled(path, query, body)
        if path == "/chat.getPermalink":
            with world.lock:
                channel_id = world.channel_id(query.get("channel", ""))
                ts = query.get("message_ts", "")
                if channel_id is None:
                    return _json(200, {"ok": False, "error": "channel_not_found"})
                if not any(m["channel_id"] == channel_id and m["ts"] == ts for m in world.slack_messages):
                    return _json(200, {"ok": False, "error": "message_not_found"})
            link = f"https://sandbox.slack.com/archives/{channel_id}/p{ts.replace('.', '')}"
            return _json(200, {"ok": True, "channel": channel_id, "permalink": link})
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return _json(200, {"ok": False, "error": "invalid_json"})
        with world.lock:
            channel_id = world.channel_id(str(payload.get("channel") or ""))
            if channel_id is None:
                return _json(200, {"ok": False, "error": "channel_not_found"})
            if path == "/chat.postMessage" and channel_id in world.slack_outside:
                return _json(200, {"ok": False, "error": "not_in_channel"})
            if not payload.get("text") and not payload.get("blocks"):
                return _json(200, {"ok": False, "error": "no_text"})
            for block in payload.get("blocks") or []:
                text = (block.get("text") or {}).get("text", "")
                if len(text) > 3000:
                    return _json(200, {"ok": False, "error": "invalid_blocks"})
            if path == "/chat.update":
                found = next(
                    (m for m in world.slack_messages if m["channel_id"] == channel_id and m["ts"] == payload.get("ts")),
                    None,
                )
                if found is None:
                    return _json(200, {"ok": False, "error": "message_not_found"})
                found.setdefault("posted_text", found.get("text"))  # what notified people: edits notify no one
                found.update(text=payload.get("text"), blocks=payload.get("blocks"), edits=found.get("edits", 0) + 1)
                return _json(200, {"ok": True, "channel": channel_id, "ts": found["ts"], "text": payload.get("text")})
            if path == "/chat.postMessage" and not world.slack_post_allowed(channel_id):
                world.stats["slack_429"] += 1
                return _json(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
            # Unique and increasing, as Slack's are within a channel.
            ts = f"{max(world.now().timestamp(), world.last_ts + 0.000001):.6f}"
            world.last_ts = float(ts)
            world.slack_messages.append({**payload, "ts": ts, "channel_id": channel_id})
        return _json(200, {"ok": True, "channel": channel_id, "ts": ts, "message": {"text": payload.get("text")}})

    def _slack_reactions(self, query: dict[str, str]) -> Answer:
        """reactions.get: a message and its reactions (no `reactions` key when it has none)."""
        world = self.world
        if "reactions:read" not in world.slack_scopes:
            return _json(200, {"ok": False, "error": "missing_scope", "needed": "reactions:read"})
        with world.lock:
            channel_id = world.channel_id(query.get("channel", ""))
            if channel_id is None:
                return _json(200, {"ok": False, "error": "channel_not_found"})
            ts = query.get("timestamp", "")
            if not ts:
                return _json(200, {"ok": False, "error": "no_item_specified"})
            found = next((m for m in world.slack_messages if m["channel_id"] == channel_id and m["ts"] == ts), None)
            if found is None:
                return _json(200, {"ok": False, "error": "message_not_found"})
            message: dict[str, Any] = {"type": "message", "ts": ts, "text": found.get("text")}
            if found.get("reactions"):
                message["reactions"] = [dict(r, users=list(r["users"])) for r in found["reactions"]]
        return _json(200, {"ok": True, "type": "message", "channel": channel_id, "message": message})

    def _slack_scheduled(self, path: str, query: dict[str, str], body: bytes) -> Answer:
        """chat.scheduleMessage, chat.deleteScheduledMessage and chat.scheduledMessages.list,
        with Slack's errors; `World.post_scheduled` is Slack posting them when their time comes."""
        world = self.world
        try:
            payload = {**query, **json.loads(body or b"{}")}
        except ValueError:
            return _json(200, {"ok": False, "error": "invalid_json"})
        with world.lock:
            if path == "/chat.scheduledMessages.list":
                wanted = world.channel_id(str(payload.get("channel") or "")) if payload.get("channel") else None
                pending = [
                    {k: m[k] for k in ("id", "channel_id", "post_at", "date_created", "text")}
                    for m in world.slack_scheduled
                    if wanted is None or m["channel_id"] == wanted
                ]
                return _json(200, {"ok": True, "scheduled_messages": pending, "response_metadata": {"next_cursor": ""}})
            channel_id = world.channel_id(str(payload.get("channel") or ""))
            if channel_id is None:
                return _json(200, {"ok": False, "error": "channel_not_found"})
            if path == "/chat.deleteScheduledMessage":
                wanted_id = payload.get("scheduled_message_id")
                found = next((m for m in world.slack_scheduled if m["id"] == wanted_id), None)
                if found is None or found["channel_id"] != channel_id:
                    return _json(200, {"ok": False, "error": "invalid_scheduled_message_id"})
                world.slack_scheduled.remove(found)
                return _json(200, {"ok": True})
            try:
                post_at = int(payload.get("post_at") or "")
            except (TypeError, ValueError):
                return _json(200, {"ok": False, "error": "invalid_time"})
            now = world.now().timestamp()
            if post_at <= now:
                return _json(200, {"ok": False, "error": "time_in_past"})
            if post_at > now + SCHEDULE_AHEAD_DAYS * 86400:
                return _json(200, {"ok": False, "error": "time_too_far"})
            world.scheduled_count += 1
            message = {
                "id": f"Q{world.scheduled_count:08d}",
                "channel_id": channel_id,
                "channel": payload.get("channel"),
                "post_at": post_at,
                "date_created": int(now),
                "text": payload.get("text"),
                "blocks": payload.get("blocks"),
                # Slack's own known bug: a message scheduled with metadata is never posted.
                "never_posts": "metadata" in payload,
            }
            world.slack_scheduled.append(message)
        return _json(
            200, {"ok": True, "channel": channel_id, "scheduled_message_id": message["id"], "post_at": post_at}
        )

    def _slack_channels(self) -> Answer:
        """conversations.list: every channel the bot can see, by id and name (one page)."""
        world = self.world
        if not {"channels:read", "groups:read"} & world.slack_scopes:
            return _json(200, {"ok": False, "error": "missing_scope", "needed": "channels:read"})
        with world.lock:
            named = {world.channel_id(c): c.removeprefix("#") for c in world.channels if not c.startswith("C")}
        channels = [self._channel_json(channel_id, name) for channel_id, name in sorted(named.items()) if channel_id]
        return _json(200, {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}})

    def _slack_channel_info(self, channel_id: str) -> Answer:
        """conversations.info: a channel by id (names are not accepted, as in Slack)."""
        world = self.world
        if not {"channels:read", "groups:read"} & world.slack_scopes:
            return _json(200, {"ok": False, "error": "missing_scope", "needed": "channels:read"})
        with world.lock:
            names = {world.channel_id(c): c.removeprefix("#") for c in world.channels}
        if channel_id not in names:
            return _json(200, {"ok": False, "error": "channel_not_found"})
        return _json(200, {"ok": True, "channel": self._channel_json(channel_id, names[channel_id])})

    def _channel_json(self, channel_id: str, name: str) -> dict[str, Any]:
        member = channel_id not in self.world.slack_outside
        return {"id": channel_id, "name": name, "is_member": member, "is_archived": False, "is_private": False}

    def _slack_history(self, path: str, query: dict[str, str]) -> Answer:
        """conversations.history (a channel's messages and broadcast replies, newest first) and
        conversations.replies (a thread: its parent, then replies, oldest first). Both need a
        channel id and a history scope; metadata only with include_all_metadata."""
        world = self.world
        if not {"channels:history", "groups:history"} & world.slack_scopes:
            return _json(
                200,
                {
                    "ok": False,
                    "error": "missing_scope",
                    "needed": "channels:history",
                    "provided": ",".join(sorted(world.slack_scopes)),
                },
            )
        channel_id = query.get("channel", "")
        oldest = float(query.get("oldest") or 0)
        limit = min(int(query.get("limit") or 100), 1000)
        offset = int(query.get("cursor") or 0)
        with world.lock:
            if channel_id not in world.channel_ids():
                return _json(200, {"ok": False, "error": "channel_not_found"})
            mine = [m for m in world.slack_messages if m["channel_id"] == channel_id and float(m["ts"]) >= oldest]
            if path == "/conversations.history":
                found = [m for m in reversed(mine) if "thread_ts" not in m or m.get("reply_broadcast")]
            else:
                thread = query.get("ts", "")
                parent = [m for m in world.slack_messages if m["channel_id"] == channel_id and m["ts"] == thread]
                if not parent:
                    return _json(200, {"ok": False, "error": "thread_not_found"})
                found = parent + [m for m in mine if m.get("thread_ts") == thread]
            page = found[offset : offset + limit]
        with_metadata = query.get("include_all_metadata") in ("true", "1")
        messages = [
            {
                "type": "message",
                "ts": m["ts"],
                "text": m.get("text"),
                **({"thread_ts": m["thread_ts"]} if "thread_ts" in m else {}),
                **({"metadata": m["metadata"]} if with_metadata and "metadata" in m else {}),
            }
            for m in page
        ]
        more = offset + limit < len(found)
        return _json(
            200,
            {
                "ok": True,
                "messages": messages,
                "has_more": more,
                "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
            },
        )

    # -- Linear --------------------------------------------------------------

    def _linear(self, headers: Mapping[str, str], body: bytes) -> Answer:
        world = self.world
        auth = headers.get("Authorization", "")
        if auth not in (world.linear_key, f"Bearer {world.linear_key}"):
            return _json(
                400,
                {
                    "errors": [
                        {
                            "message": "Authentication required, not authenticated",
                            "extensions": {
                                "type": "authentication error",
                                "userPresentableMessage": "You need to authenticate",
                            },
                        }
                    ]
                },
            )
        try:
            request = json.loads(body or b"{}")
            query, variables = str(request["query"]), dict(request.get("variables") or {})
        except (ValueError, KeyError, TypeError):
            return _json(
                400,
                {"errors": [{"message": "Body must be JSON with a query", "extensions": {"type": "invalid input"}}]},
            )
        with world.lock:
            if "issueCreate" in query:
                return self._linear_create(variables)
            if re.search(r"\bworkflowStates\s*\(", query):
                states = [
                    {"id": f"{variables.get('teamId')}-shipped", "name": "Shipped", "position": 3},
                    {"id": f"{variables.get('teamId')}-done", "name": "Done", "position": 2},
                ]
                return _json(200, {"data": {"workflowStates": {"nodes": states}}})
            if "issueUpdate" in query:
                issue = next((i for i in world.linear_issues if i["id"] == variables.get("id")), None)
                if issue is None:
                    return _json(200, LINEAR_NOT_FOUND)
                issue["state"] = {"type": "completed", "name": "Done", "id": variables.get("stateId")}
                return _json(200, {"data": {"issueUpdate": {"success": True}}})
            if "commentCreate" in query:
                payload = variables.get("input") or {}
                issue = next((i for i in world.linear_issues if i["id"] == payload.get("issueId")), None)
                if issue is None:
                    return _json(200, LINEAR_NOT_FOUND)
                comment_id = payload.get("id")
                if comment_id and comment_id in issue.setdefault("comment_ids", []):
                    return _json(200, _already_exists("A comment with this id already exists."))
                if comment_id:
                    issue["comment_ids"].append(comment_id)
                issue.setdefault("comments", []).append(str(payload.get("body") or ""))
                return _json(200, {"data": {"commentCreate": {"success": True}}})
            if re.search(r"\bissues\s*\(", query):
                return self._linear_issues(variables)
            if re.search(r"\bissue\s*\(", query):
                wanted = variables.get("id")
                found = next(
                    (i for i in world.linear_issues if wanted in (i["id"], i["identifier"]) and not i.get("lagging")),
                    None,
                )
                if found is None:
                    return _json(200, LINEAR_NOT_FOUND)
                return _json(200, {"data": {"issue": found}})
            if re.search(r"\bissueLabels\s*\(", query):
                team_id = variables.get("teamId")
                nodes = [
                    {"id": label["id"], "name": label["name"]}
                    for label in world.labels
                    if label["team"] is None or label["team"]["id"] == team_id
                ]
                return _json(200, {"data": {"issueLabels": {"nodes": nodes}}})
            if re.search(r"\bteams\s*\(", query):
                key = str(variables.get("key") or variables.get("team") or "").lower()
                nodes = [t for t in world.teams if key in (t["key"].lower(), t["name"].lower())]
                return _json(200, {"data": {"teams": {"nodes": nodes}}})
        return _json(
            400,
            {"errors": [{"message": "Unsupported operation in the sandbox", "extensions": {"type": "invalid input"}}]},
        )

    def _linear_issues(self, variables: dict[str, Any]) -> Answer:
        """Open issues of a team whose title or description contains the name (any case)
        or whose description contains the marker, paged like Linear (first/after)."""
        if isinstance(variables.get("filter"), dict):
            matches = [
                i
                for i in self.world.linear_issues
                if not i.get("archivedAt") and not i.get("lagging") and _fits(i, variables["filter"])
            ]
        else:
            team_id = variables.get("teamId")
            team_key = variables.get("team")
            name = str(variables.get("name") or "").lower()
            marker = variables.get("marker")
            matches = [
                issue
                for issue in self.world.linear_issues
                if (team_id is None or issue["team"]["id"] == team_id)
                and (team_key is None or issue["team"]["key"] == team_key)
                and issue["state"]["type"] not in ("completed", "canceled", "duplicate")
                and not issue.get("archivedAt")  # Linear leaves archived issues out unless asked
                and not issue.get("lagging")
                and (
                    name in issue["title"].lower()
                    or name in (issue["description"] or "").lower()
                    or (marker is not None and marker in (issue["description"] or ""))
                )
            ]
        size = int(variables.get("first") or LINEAR_PAGE)
        start = int(variables.get("after") or 0)
        page = matches[start : start + size]
        more = start + size < len(matches)
        info = {"hasNextPage": more, "endCursor": str(start + size) if page else None}
        return _json(200, {"data": {"issues": {"nodes": page, "pageInfo": info}}})

    def _linear_create(self, variables: dict[str, Any]) -> Answer:
        payload = variables.get("input") or {}
        team = next((t for t in self.world.teams if t["id"] == payload.get("teamId")), None)
        if team is None or not payload.get("title"):
            return _json(
                200,
                {
                    "errors": [
                        {
                            "message": "Argument Validation Error",
                            "extensions": {
                                "type": "invalid input",
                                "userPresentableMessage": "teamId and title are required",
                            },
                        }
                    ],
                    "data": None,
                },
            )
        issue_id = payload.get("id") or f"issue-{team['key'].lower()}-{len(self.world.linear_issues) + 1}"
        if any(i["id"] == issue_id for i in self.world.linear_issues):
            return _json(200, _already_exists("An issue with this id already exists."))
        number = sum(1 for i in self.world.linear_issues if i["team"]["id"] == team["id"]) + 1
        issue = {
            "id": issue_id,
            "identifier": f"{team['key']}-{number}",
            "title": payload["title"],
            "description": payload.get("description") or "",
            "priority": payload.get("priority", 0),
            "labelIds": list(payload.get("labelIds") or []),
            "url": f"https://linear.app/sandbox/issue/{team['key']}-{number}",
            "state": {"type": "triage", "name": "Triage"},
            "archivedAt": None,
            "trashed": False,
            "team": team,
        }
        if self.world.linear_lagging:
            issue["lagging"] = True
        self.world.linear_issues.append(issue)
        return _json(200, {"data": {"issueCreate": {"success": True, "issue": issue}}})

    # -- control -------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> Answer:
        world = self.world
        if method == "GET" and path == "/state":
            return _json(200, world.snapshot())
        if method == "POST" and path == "/advance":
            try:
                step = world.advance()
            except ScenarioError as exc:
                return _json(400, {"error": str(exc)})
            return _json(200, {"advanced": step is not None, "note": step.note if step else None})
        if method == "POST" and path == "/apply":
            try:
                world.apply(json.loads(body or b"{}"))
            except (ScenarioError, ValueError, KeyError) as exc:
                return _json(400, {"error": str(exc)})
            return _json(200, {"ok": True})
        return _json(404, {"error": f"no control endpoint {method} {path}"})


def environment(base_url: str, world: World) -> dict[str, str]:
    """Environment variables that point the CLI at a sandbox served at `base_url`."""
    return {
        "HIGHTOUCH_API_URL": base_url + HIGHTOUCH,
        "HIGHTOUCH_APP_URL": base_url + "/app",
        "SLACK_API_URL": base_url + SLACK,
        "LINEAR_API_URL": base_url + LINEAR,
        "HIGHTOUCH_API_KEY": world.hightouch_key,
        "SLACK_BOT_TOKEN": world.slack_token,
        "LINEAR_API_KEY": world.linear_key,
    }


class _Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.server.sandbox.handle(self.command, self.path, dict(self.headers), body)
        trickle = float(headers.pop(TRICKLE_HEADER, 0))
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if not trickle:
                self.wfile.write(payload)
            for index in range(len(payload) if trickle else 0):
                # A server that keeps the connection alive without ever finishing the answer.
                self.wfile.write(payload[index : index + 1])
                self.wfile.flush()
                time.sleep(trickle)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (timed out, or was killed)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class SandboxServer(ThreadingHTTPServer):
    """The sandbox on 127.0.0.1 (port 0: any free port). Use as a context manager."""

    daemon_threads = True

    def __init__(self, world: World | None = None, port: int = 0, *, verbose: bool = False) -> None:
        self.world = world or World()
        self.sandbox = Sandbox(self.world)
        self.verbose = verbose
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def environment(self) -> dict[str, str]:
        """Environment variables that point the CLI at this sandbox, credentials included."""
        return environment(self.base_url, self.world)

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _already_exists(presentable: str) -> dict[str, Any]:
    """Linear's answer to a create whose client-chosen id is taken."""
    return {
        "errors": [
            {
                "message": "Entity already exists",
                "extensions": {"code": "INPUT_ERROR", "userPresentableMessage": presentable},
            }
        ],
        "data": None,
    }


def _fits(issue: dict[str, Any], issue_filter: dict[str, Any]) -> bool:
    """Linear's IssueFilter, as far as the tool uses it: team id, state type, and `or` of
    title / description comparators (contains, containsIgnoreCase, eq)."""
    team = (issue_filter.get("team") or {}).get("id") or {}
    if "eq" in team and issue["team"]["id"] != team["eq"]:
        return False
    state = (issue_filter.get("state") or {}).get("type") or {}
    if "nin" in state and issue["state"]["type"] in state["nin"]:
        return False
    alternatives = issue_filter.get("or")
    return not alternatives or any(_compares(issue, clause) for clause in alternatives)


def _compares(issue: dict[str, Any], clause: dict[str, Any]) -> bool:
    for field_name, comparator in clause.items():
        value = str(issue.get(field_name) or "")
        for op, wanted in comparator.items():
            if op == "contains" and str(wanted) not in value:
                return False
            if op == "containsIgnoreCase" and str(wanted).lower() not in value.lower():
                return False
            if op == "eq" and value != str(wanted):
                return False
    return True
