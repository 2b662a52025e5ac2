"""`python -m triage routes`: where each sync's alerts would go, without sending anything
(after Alertmanager's `amtool config routes test`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date

from triage.config import Config
from triage.hightouch import HightouchClient
from triage.models import Sync
from triage.routing import Route, resolve_route
from triage.targets import route_target

COLUMNS = ("sync", "id", "route", "channels", "mentions", "team", "threshold", "escalate", "muted until")


def routes_table(client: HightouchClient, config: Config, only: str | None = None) -> str:
    """A table of every enabled sync (or the one named by slug or id) and its route."""
    syncs = [s for s in client.list_syncs() if not s.disabled and (only is None or only in (s.id, s.name))]
    if only is not None and not syncs:
        return f"no enabled sync has the slug or id {only!r}\n"

    with ThreadPoolExecutor(max_workers=config.hightouch.concurrency) as pool:
        targets = list(pool.map(lambda sync: route_target(client, config, sync), syncs))
    rows = [_row(t.sync, resolve_route(t, config)) for t in targets]
    return format_table(rows)


def _row(sync: Sync, route: Route) -> tuple[str, ...]:
    muted = route.muted_until
    return (
        sync.name,
        sync.id,
        route.name,
        ", ".join(route.channels),
        ", ".join(route.mentions) or "-",
        route.team if route.escalate else "-",
        str(route.escalation_threshold) if route.escalate else "-",
        "yes" if route.escalate else "no",
        "-" if muted is None else ("for good" if muted == date.max else muted.isoformat()),
    )


def format_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(COLUMNS)]
    lines = [COLUMNS, tuple("-" * w for w in widths), *rows]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() + "\n" for line in lines
    )
