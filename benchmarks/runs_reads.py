"""Benchmark: what one checked sync's runs read costs, in either order the API may list runs.

Hightouch documents no direction for List Sync Runs (its reference's example lists runs
oldest first). A read that stops paging only once pages are seen newest first pages
through a sync's whole history when they come oldest first; a read bounded by time (the
client's `after=`) costs the same in both orders. For syncs run every minute (a month
of history), every 15 minutes and daily (a year), two runs after the cursor, this reads what a tick needs (the
new runs and the 5 previous ones an alert shows) against the sandbox on 127.0.0.1, both
ways, and prints requests and wall time; the floor is one request.

    python benchmarks/runs_reads.py [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from triage.hightouch import HightouchClient  # noqa: E402
from triage.http import HttpClient, WaitBudget  # noqa: E402
from triage.models import Run  # noqa: E402
from triage.sandbox import SandboxServer, World  # noqa: E402
from triage.sandbox.server import HIGHTOUCH  # noqa: E402

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
# How often each sync runs (minutes), and how many days of history it has.
CADENCES = {"every minute": (1, 30), "every 15 minutes": (15, 365), "daily": (24 * 60, 365)}
HISTORY_WINDOW = 5  # the previous runs an alert shows (triage.history_window's default)


def workspace(every_minutes: int, days: int, newest_first: bool) -> tuple[World, int, datetime]:
    """Sync 1 with `days` of runs; the cursor run's id and time (two runs came after it)."""
    world = World()
    world.newest_first = newest_first
    world.add_sync("1", "contacts")
    count = days * 24 * 60 // every_minutes
    for index in range(count):
        world.add_run("1", "success", at=NOW - timedelta(minutes=every_minutes * (count - index)), run_id=1 + index)
    cursor = count - 2
    return world, cursor, NOW - timedelta(minutes=every_minutes * 3)


def enough(cursor: int) -> Callable[[list[Run]], bool]:
    return lambda runs: sum(1 for r in runs if int(r.id) <= cursor) >= HISTORY_WINDOW


def measure(every_minutes: int, days: int, newest_first: bool, bounded: bool, latency: float) -> tuple[int, float]:
    world, cursor, cursor_at = workspace(every_minutes, days, newest_first)
    world.latency = latency
    with SandboxServer(world) as server:
        http = HttpClient(name="Hightouch", secrets=[], budget=WaitBudget(60))
        client = HightouchClient(http, server.base_url + HIGHTOUCH, world.hightouch_key)
        started = time.monotonic()
        runs = client.list_runs("1", enough(cursor), after=cursor_at if bounded else None)
        wall = time.monotonic() - started
    assert {cursor + 1, cursor + 2} <= {int(r.id) for r in runs}, "a new run was missed"
    return world.stats["hightouch"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    print(f"One sync's runs read, a year of history, 2 new runs; {args.latency_ms:g} ms per sandbox request.\n")
    print(f"{'sync runs':<17} {'history':>7} {'runs listed':<13} {'read':<17} {'requests':>8} {'wall s':>7}")
    print("-" * 75)
    for label, (minutes, days) in CADENCES.items():
        for newest_first in (True, False):
            for bounded in (False, True):
                requests, wall = measure(minutes, days, newest_first, bounded, args.latency_ms / 1000)
                order = "newest first" if newest_first else "oldest first"
                read = "after= the cursor" if bounded else "until enough"
                print(f"{label:<17} {days:>5} d {order:<13} {read:<17} {requests:>8} {wall:>7.2f}")
    print("\nfloor: 1 request (the new runs and the 5 previous ones fit in one page).")


if __name__ == "__main__":
    main()
