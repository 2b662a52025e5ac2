"""Small builders for test data, so each test states only what matters to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from triage.actions import Action, DirectMessage, Post
from triage.config import Config, LinearConfig, TriageConfig
from triage.decide import SyncDecision, TickContext
from triage.models import RowCounts, Run, State, Sync, SyncState
from triage.plan import Facts, IncidentRules, plan

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
# Where test configs live: a folder with no templates/ of a user's, so renders use the
# shipped wording whatever a team changed in the repository's own templates/.
NO_USER_FILES = Path(__file__).resolve().parent


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sync(
    sync_id: str = "1",
    name: str = "salesforce-contacts",
    last_run_at: str | None = "2026-11-23T06:00:00Z",
    disabled: bool = False,
) -> Sync:
    return Sync(id=sync_id, name=name, disabled=disabled, last_run_at=last_run_at, destination_id="10", model_id="20")


def run(run_id: int, status: str = "success", minute: int | None = None, error: str | None = None) -> Run:
    created = at(run_id if minute is None else minute)
    settled = status not in ("queued", "querying", "processing", "reporting")
    return Run(
        id=str(run_id),
        status=status,
        created_at=created,
        started_at=created,
        finished_at=created + timedelta(seconds=30) if settled else None,
        error=error if error is not None else ("boom" if status == "failed" else None),
        successful=RowCounts(added=10, changed=2, removed=0),
        failed=RowCounts(added=3, changed=None, removed=None),
    )


def config(threshold: int = 3, window: int = 5, base_dir: Path = NO_USER_FILES) -> Config:
    return Config(
        linear=LinearConfig(escalation_threshold=threshold),
        triage=TriageConfig(history_window=window),
        base_dir=base_dir,
    )


def steady(previous_tick: int = 0) -> TickContext:
    return TickContext(baseline=False, previous_tick_at=at(previous_tick))


BASELINE = TickContext(baseline=True, previous_tick_at=None)


def known(cursor: int | None, failures: int = 0, **extra: Any) -> SyncState:
    return SyncState(
        name="salesforce-contacts",
        cursor_run_id=None if cursor is None else str(cursor),
        last_run_at="2026-11-23T05:00:00Z",
        consecutive_failures=failures,
        **extra,
    )


def planned(decision: SyncDecision, config_: Config | None = None, state: State | None = None) -> tuple[Action, ...]:
    """What the plan does for one judged sync, alone in its tick."""
    facts = {decision.sync.id: Facts("Salesforce", "contacts", f"https://app/{decision.sync.id}")}
    rules = IncidentRules.from_config(config_ or config())
    return plan([decision], facts, state or State(), rules, at(60)).syncs[0].actions


def posts(decision: SyncDecision, config_: Config | None = None) -> list[tuple[str, str, tuple[str, ...]]]:
    """Each Slack message the plan sends for one judged sync: (channel or user, kind, mentions)."""
    result: list[tuple[str, str, tuple[str, ...]]] = []
    for action in planned(decision, config_):
        if isinstance(action, Post):
            result.append((action.channel, action.kind, action.mentions))
        elif isinstance(action, DirectMessage):
            result.append((action.user, "dm", ()))
    return result
