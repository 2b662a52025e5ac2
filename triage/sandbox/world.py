"""The sandbox's in-memory workspace: syncs, runs, Slack messages, Linear issues.

A scenario (YAML) describes the workspace and how it changes step by step;
`World.advance()` applies the next step. Everything is guarded by one lock,
since the HTTP server answers requests from several threads.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

PENDING = ("queued", "querying", "processing", "reporting")
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
RUNS_ORDERS = ("newest_first", "oldest_first")


class ScenarioError(ValueError):
    """A scenario file that does not describe a workspace; the message names the file and step."""


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class SandboxRun:
    id: int
    status: str
    created_at: datetime
    finished_at: datetime | None
    error: str | None = None
    rows: dict[str, Any] = field(default_factory=dict)  # counts, and query_size / completion_ratio

    def to_json(self) -> dict[str, Any]:
        added = self.rows.get("added", 100)
        changed = self.rows.get("changed", 10)
        removed = self.rows.get("removed", 0)
        rejected = self.rows.get("rejected", 0 if self.status in ("success", "cancelled") else 5)
        planned = {  # what the run set out to do: by default what it did and what was rejected
            "addedCount": self.rows.get("planned_added", (added or 0) + (rejected or 0)),
            "changedCount": self.rows.get("planned_changed", changed),
            "removedCount": self.rows.get("planned_removed", removed),
        }
        return {
            "id": self.id,
            "status": self.status,
            "createdAt": _iso(self.created_at),
            "startedAt": _iso(self.created_at),
            "finishedAt": _iso(self.finished_at) if self.finished_at else None,
            "error": self.error,
            "completionRatio": self.rows.get("completion_ratio", 1 if self.finished_at else 0.5),
            "querySize": self.rows.get("query_size", (added or 0) + (changed or 0)),
            "plannedRows": planned,
            "successfulRows": {"addedCount": added, "changedCount": changed, "removedCount": removed},
            "failedRows": {"addedCount": rejected, "changedCount": None, "removedCount": None},
        }


@dataclass
class SandboxSync:
    id: str
    slug: str
    destination_id: str
    model_id: str
    disabled: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    runs: list[SandboxRun] = field(default_factory=list)
    last_run_at: datetime | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    schedule: dict[str, Any] | None = None  # Hightouch's shape; None: a manual sync

    def to_json(self) -> dict[str, Any]:
        latest = self.runs[-1].status if self.runs else "pending"
        return {
            "id": self.id,
            "slug": self.slug,
            "workspaceId": "1",
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.created_at),
            "destinationId": self.destination_id,
            "modelId": self.model_id,
            "configuration": {},
            "schedule": self.schedule,
            "status": "disabled" if self.disabled else latest,
            "disabled": self.disabled,
            "lastRunAt": _iso(self.last_run_at) if self.last_run_at else None,
            "primaryKey": "id",
            "referencedColumns": [],
            "tags": dict(self.tags),
        }


@dataclass
class Fault:
    """One injected misbehaviour, answered `times` times to requests that match."""

    api: str  # hightouch | slack | linear
    path: str = ""  # prefix of the path within the API, e.g. /syncs/3/runs
    body: str = ""  # text the request body must contain, e.g. issueCreate (Linear's operations share a path)
    status: int | None = None  # HTTP status to answer with
    retry_after: str | None = None
    malformed: bool = False  # HTTP 200 with a body that is not JSON
    slack_error: str | None = None  # Slack ok:false error code
    delay: float = 0.0  # seconds to wait before answering
    trickle: float = 0.0  # send the answer one byte every this many seconds
    ignore_offset: bool = False  # Hightouch lists: answer the first page, always with hasMore
    message: str | None = None  # the error's message; {authorization} echoes the request's header
    times: int = 1

    def matches(self, api: str, path: str, body: bytes = b"") -> bool:
        return self.times > 0 and self.api == api and path.startswith(self.path) and self.body.encode() in body


@dataclass
class Step:
    note: str = ""
    actions: dict[str, Any] = field(default_factory=dict)


class World:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.syncs: dict[str, SandboxSync] = {}
        self.destinations: dict[str, str] = {}
        self.destination_types: dict[str, str] = {}  # destination id -> type (salesforce, hubspot, …)
        self.models: dict[str, str] = {}
        self.slack_messages: list[dict[str, Any]] = []
        self.linear_issues: list[dict[str, Any]] = []
        # Linear's lagging reads: issues created while this is set stay invisible to reads
        # (`issue(id:)`, searches) — though a second create with the same id is refused.
        self.linear_lagging = False
        self.teams = [{"id": "team-data", "key": "DATA", "name": "Data"}]
        # Label nodes: {"id", "name", "team": {"id"} or None for a workspace label}.
        self.labels: list[dict[str, Any]] = []
        self.hightouch_key = "sandbox-hightouch-key"
        self.slack_token = "xoxb-sandbox-token"
        self.linear_key = "lin_api_sandbox_key"
        self.channels = {"#data-alerts", "data-alerts", "C0DATAALERTS"}
        self.users: set[str] = set()  # user ids a DM (chat.postMessage to a user id) can reach
        # The bot token's scopes: without a read or history scope, conversations.* answer missing_scope.
        self.slack_scopes = {
            "chat:write",
            "channels:history",
            "groups:history",
            "channels:read",
            "groups:read",
            "reactions:read",
            "users:read",
        }
        self.slack_scheduled: list[dict[str, Any]] = []  # chat.scheduleMessage's, until Slack posts them
        self.scheduled_count = 0
        self.slack_outside: set[str] = set()  # channel ids the bot can see but is not a member of
        self.slack_rate: float | None = None  # messages a second per channel (Slack: about 1)
        self.slack_burst = 3
        self.slack_buckets: dict[str, tuple[float, float]] = {}  # channel id -> (tokens, when)
        self.clock: Callable[[], float] = time.monotonic  # tests may step it with the client's sleeps
        self.last_ts = 0.0
        # The world's own clock: when runs happen and messages are posted. A harness that sets
        # the tool's time (TRIAGE_NOW) sets this too, so durations read as they would.
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        # The direction runs are listed in (Hightouch documents none): scenario option runs_order.
        self.newest_first = True
        self.rate_limit = False
        self.rate_limit_requests = 200
        self.rate_limit_window = 10.0
        self.recent_requests: deque[float] = deque()
        self.latency = 0.0
        self.faults: list[Fault] = []
        self.stats: Counter[str] = Counter()
        self.request_log: list[str] = []  # "hightouch GET /syncs/7/runs", in arrival order
        self.steps: list[Step] = []
        self.step_index = 0
        self.next_run_id = 1000
        self.trigger_outcomes: dict[str, str] = {}
        self.in_flight = 0
        self.idle = threading.Condition(self.lock)
        # Called as on_request(api, method, path, body) once a request took effect.
        self.on_request: Callable[[str, str, str, bytes], None] | None = None
        self.polls: Counter[int] = Counter()

    # -- building ------------------------------------------------------------

    def add_sync(
        self,
        sync_id: str,
        slug: str,
        *,
        destination: str = "Salesforce",
        model: str = "Contacts",
        disabled: bool = False,
        destination_type: str | None = None,
        tags: dict[str, str] | None = None,
        destination_id: str | None = None,
        model_id: str | None = None,
        schedule: dict[str, Any] | None = None,
    ) -> SandboxSync:
        """A sync; its destination and model are found or made by name (or given ids)."""
        with self.lock:
            if destination_id is not None:
                self.destinations[destination_id] = destination
            if model_id is not None:
                self.models[model_id] = model
            dest_id = destination_id or self._named(self.destinations, destination, 100)
            # Hightouch's type is the service's (salesforce, hubspot, …): by default its name's first word.
            self.destination_types.setdefault(dest_id, destination_type or destination.split()[0].lower())
            model_id = model_id or self._named(self.models, model, 200)
            sync = SandboxSync(
                id=sync_id,
                slug=slug,
                destination_id=dest_id,
                model_id=model_id,
                disabled=disabled,
                tags=dict(tags or {}),
                schedule=schedule,
                created_at=self.now(),
            )
            self.syncs[sync_id] = sync
            return sync

    @staticmethod
    def _named(table: dict[str, str], name: str, base: int) -> str:
        for object_id, existing in table.items():
            if existing == name:
                return object_id
        object_id = str(base + len(table) + 1)
        table[object_id] = name
        return object_id

    def add_run(
        self,
        sync_id: str,
        status: str,
        *,
        error: str | None = None,
        rows: Mapping[str, Any] | None = None,
        at: datetime | None = None,
        run_id: int | None = None,
    ) -> SandboxRun:
        """A run of a sync, created `at` (now), with the next id (or `run_id`)."""
        with self.lock:
            sync = self.syncs[sync_id]
            moment = at or self.now()
            self.next_run_id = max(self.next_run_id + 1, run_id or 0)
            run = SandboxRun(
                id=run_id if run_id is not None else self.next_run_id,
                status=status,
                created_at=moment,
                finished_at=None if status in PENDING else moment + timedelta(seconds=1),
                error=error if error or status != "failed" else "Destination rejected the batch",
                rows=dict(rows or {}),
            )
            sync.runs.append(run)
            sync.last_run_at = moment
            sync.created_at = min(sync.created_at, moment)  # no sync has a run older than itself
            return run

    def finish_run(self, sync_id: str, status: str, error: str | None = None) -> None:
        """Settle the oldest unfinished run of a sync (as Hightouch does when a run ends)."""
        with self.lock:
            sync = self.syncs[sync_id]
            for run in sync.runs:
                if run.finished_at is None:
                    run.status = status
                    run.finished_at = self.now()
                    run.error = error or (run.error if status != "failed" else "Destination rejected the batch")
                    return
            raise ScenarioError(f"sync {sync_id} has no unfinished run to finish")

    # -- scenario ------------------------------------------------------------

    def load_scenario(self, data: dict[str, Any], source: str = "scenario") -> None:
        with self.lock:
            options = data.get("options") or {}
            order = options.get("runs_order", "newest_first")
            if order not in RUNS_ORDERS:
                raise ScenarioError(f"{source}: options: runs_order is one of {', '.join(RUNS_ORDERS)}, not {order!r}")
            self.newest_first = order == "newest_first"
            self.rate_limit = bool(options.get("rate_limit", False))
            self.latency = float(options.get("latency_ms", 0)) / 1000
            if "slack_rate" in options:  # messages a second per channel, as Slack allows
                self.slack_rate = float(options["slack_rate"])
            if "slack_scopes" in options:
                self.slack_scopes = {str(scope) for scope in options["slack_scopes"]}
            now = self.now()
            for item in data.get("syncs") or []:
                try:
                    sync = self.add_sync(
                        str(item["id"]),
                        str(item["slug"]),
                        destination=str(item.get("destination", "Salesforce")),
                        model=str(item.get("model", "Contacts")),
                        disabled=bool(item.get("disabled", False)),
                        destination_type=item.get("destination_type"),
                        tags={str(k): str(v) for k, v in (item.get("tags") or {}).items()},
                        schedule=item.get("schedule"),
                    )
                except KeyError as exc:
                    raise ScenarioError(f"{source}: syncs: every sync needs {exc}") from None
                history = item.get("history") or []
                for index, status in enumerate(history):
                    # Spread the history over the past hours, oldest first.
                    self.add_run(sync.id, str(status), at=now - timedelta(minutes=15 * (len(history) - index)))
            self.channels |= {str(c) for c in options.get("channels") or []}
            self.users |= {str(u) for u in options.get("users") or []}
            for team in options.get("teams") or []:
                self.add_team(str(team["key"]), str(team.get("name", team["key"])))
            for label in options.get("labels") or []:
                self.add_label(str(label["name"]), label.get("team"))
            self.steps = [Step(note=str(s.get("note", "")), actions=s) for s in data.get("steps") or []]
            self.step_index = 0

    def react(self, channel: str, ts: str, name: str, user: str) -> None:
        """A person adds the reaction `name` to a message (reactions.add, as Slack's client does)."""
        with self.lock:
            channel_id = self.channel_id(channel) or channel
            message = next(m for m in self.slack_messages if m["channel_id"] == channel_id and m["ts"] == ts)
            reactions = message.setdefault("reactions", [])
            reaction = next((r for r in reactions if r["name"] == name), None)
            if reaction is None:
                reaction = {"name": name, "users": [], "count": 0}
                reactions.append(reaction)
            if user not in reaction["users"]:
                reaction["users"].append(user)
                reaction["count"] += 1

    def post_scheduled(self) -> int:
        """Slack posting the scheduled messages whose time has come (by the world's clock);
        how many it posted."""
        with self.lock:
            now = self.now().timestamp()
            due = [m for m in self.slack_scheduled if m["post_at"] <= now]
            for message in due:
                self.slack_scheduled.remove(message)
                if message["never_posts"]:
                    continue
                self.last_ts = max(float(message["post_at"]), self.last_ts + 0.000001)
                posted = {"channel": message["channel"], "text": message["text"], "blocks": message["blocks"]}
                self.slack_messages.append({**posted, "ts": f"{self.last_ts:.6f}", "channel_id": message["channel_id"]})
            return len([m for m in due if not m["never_posts"]])

    def channel_id(self, channel: str) -> str | None:
        """Slack's id for a channel given by name or id (C…), or for a DM with a user (D…);
        None when the bot cannot post there."""
        with self.lock:
            if channel in self.users:
                return "D" + channel[1:]
            ids = {self._id_of(name): name for name in self.channels}
            if channel in ids:
                return channel
            return self._id_of(channel) if channel in self.channels else None

    def channel_ids(self) -> set[str]:
        """Every id history can be read from: the channels' and the DMs'."""
        with self.lock:
            return {self._id_of(name) for name in self.channels} | {"D" + u[1:] for u in self.users}

    def slack_post_allowed(self, channel_id: str) -> bool:
        """Slack's per-channel message rate: a token bucket of `slack_burst` messages refilled
        at `slack_rate` a second (None: no limit), on `clock`."""
        if self.slack_rate is None:
            return True
        with self.lock:
            now = self.clock()
            tokens, then = self.slack_buckets.get(channel_id, (float(self.slack_burst), now))
            tokens = min(float(self.slack_burst), tokens + (now - then) * self.slack_rate)
            allowed = tokens >= 1.0
            self.slack_buckets[channel_id] = (tokens - 1.0 if allowed else tokens, now)
            return allowed

    @staticmethod
    def _id_of(name: str) -> str:
        return name if re.fullmatch(r"C[A-Z0-9]+", name) else "C" + re.sub(r"[^A-Z0-9]", "", name.upper())

    def add_team(self, key: str, name: str) -> None:
        with self.lock:
            self.teams.append({"id": f"team-{key.lower()}", "key": key, "name": name})

    def add_label(self, name: str, team_key: str | None = None) -> None:
        """A label of one team (by key), or of the whole workspace."""
        with self.lock:
            team = next((t for t in self.teams if t["key"] == team_key), None) if team_key else None
            self.labels.append(
                {"id": f"label-{len(self.labels) + 1}", "name": name, "team": {"id": team["id"]} if team else None}
            )

    def advance(self) -> Step | None:
        """Apply the next scenario step; None when there are no more."""
        with self.lock:
            if self.step_index >= len(self.steps):
                return None
            step = self.steps[self.step_index]
            self.step_index += 1
            self.apply(step.actions, where=f"step {self.step_index}")
            return step

    def apply(self, actions: dict[str, Any], where: str = "actions") -> None:
        with self.lock:
            for item in actions.get("add_syncs") or []:
                self.add_sync(
                    str(item["id"]),
                    str(item["slug"]),
                    destination=str(item.get("destination", "Salesforce")),
                    model=str(item.get("model", "Contacts")),
                )
            for item in actions.get("runs") or []:
                sync_id = str(item.get("sync"))
                if sync_id not in self.syncs:
                    raise ScenarioError(f"{where}: runs: unknown sync {sync_id!r}")
                self.add_run(
                    sync_id, str(item.get("status", "success")), error=item.get("error"), rows=item.get("rows")
                )
            for item in actions.get("finish") or []:
                self.finish_run(str(item["sync"]), str(item.get("status", "success")), item.get("error"))
            for sync_id in actions.get("disable") or []:
                self.syncs[str(sync_id)].disabled = True
            for sync_id in actions.get("enable") or []:
                self.syncs[str(sync_id)].disabled = False
            for item in actions.get("faults") or []:
                try:
                    self.faults.append(Fault(**item))
                except TypeError as exc:
                    raise ScenarioError(f"{where}: faults: {exc}") from None
            for identifier, state_type in (actions.get("linear_state") or {}).items():
                issue = next((i for i in self.linear_issues if i["identifier"] == identifier), None)
                if issue is None:
                    raise ScenarioError(f"{where}: linear_state: no issue {identifier!r}")
                issue["state"] = {"type": str(state_type), "name": str(state_type).title()}
            if "rate_limit" in actions:
                self.rate_limit = bool(actions["rate_limit"])

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no request is being answered (a slow answer may still change the world)."""
        with self.idle:
            return self.idle.wait_for(lambda: self.in_flight == 0, timeout=timeout)

    # -- what the sandbox received -------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "slack_messages": list(self.slack_messages),
                "linear_issues": list(self.linear_issues),
                "stats": dict(self.stats),
                "step": self.step_index,
                "steps": len(self.steps),
            }


def load_scenario_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: scenario file not found") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping with 'syncs' and 'steps'")
    return data
