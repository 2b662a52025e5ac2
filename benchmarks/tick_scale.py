"""Benchmark: a steady-state tick at 100, 1,000 and 10,000 syncs, against a naive loop.

Not a timed test: it prints figures. For each workspace size, 2 % of the syncs
ran since the last tick (a tenth of those failed), and every sandbox answer is
delayed by --latency-ms. Each size runs twice: with the sandbox's Hightouch
rate limit off (the client's throttle off too: the figure is the client's own
cost) and on (200 requests / 10 s, 429 without Retry-After; the client
throttles itself with its default settings).

The tick is `python -m triage run` in a subprocess with a state file as the
previous tick left it. The naive loop is what a first script would do: list
every sync, then one List Sync Runs call per enabled sync, one at a time,
sleeping 1 s on a 429. Past --naive-sample syncs its runs calls are
extrapolated (marked ~), since 10,000 sequential calls take minutes.

    python benchmarks/tick_scale.py [--sizes 100,1000,10000] [--latency-ms 50] [--modes off,on]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from triage.models import State, SyncState  # noqa: E402
from triage.sandbox import SandboxServer, World  # noqa: E402
from triage.state import StateStore  # noqa: E402

CHANGED_SHARE = 0.02
FULL = "--full-listing" in sys.argv  # measure the hourly full listing instead of the steady one
# A tenth of the syncs that ran failed; `--no-failures` measures the reads alone (no Slack pace).
FAILED_SHARE_OF_CHANGED = 0.0 if "--no-failures" in sys.argv else 0.1


@dataclass
class Figures:
    hightouch: int
    slack: int
    linear: int
    throttled: int  # 429 answers received
    wall: float
    peak_mb: float
    estimated: bool = False
    busiest: int = 0  # messages posted to the busiest channel

    @property
    def total(self) -> int:
        return self.hightouch + self.slack + self.linear


def build_world(size: int) -> tuple[World, State]:
    """A workspace as the previous tick left it, and the state that tick saved."""
    world = World()
    before = datetime.now(UTC) - timedelta(hours=1)
    last_tick = _iso(datetime.now(UTC) - timedelta(minutes=15))
    # The previous tick listed in full (as one an hour does): this one lists only syncs that ran.
    state = State(baseline_at=_iso(before), last_tick_at=last_tick, full_listing_at=None if FULL else last_tick)
    for i in range(size):
        sync_id = str(10_000 + i)
        sync = world.add_sync(
            sync_id,
            f"sync-{i:05d}",
            destination=f"Destination {i % 20}",
            model=f"Model {i % 50}",
            disabled=i % 25 == 0,  # 4 % paused
        )
        run = world.add_run(sync_id, "success", at=before)
        state.syncs[sync_id] = SyncState(
            name=sync.slug, cursor_run_id=str(run.id), last_run_at=sync.to_json()["lastRunAt"]
        )
    enabled = [s for s in world.syncs.values() if not s.disabled]
    changed = enabled[:: int(1 / CHANGED_SHARE)]
    for index, sync in enumerate(changed):
        failed = FAILED_SHARE_OF_CHANGED > 0 and index % int(1 / FAILED_SHARE_OF_CHANGED) == 0
        world.add_run(
            sync.id, "failed" if failed else "success", error="Destination rejected 5 rows" if failed else None
        )
    return world, state


def run_tick(server: SandboxServer, state: State, rate_limited: bool, workdir: Path) -> Figures:
    config = workdir / "config.yaml"
    throttle = "" if rate_limited else "  max_requests_per_10s: 0\n"
    config.write_text(f"hightouch:\n  workspace_slug: bench\n{throttle}")
    state_path = workdir / "state" / "state.yaml"
    StateStore(state_path).save(state)
    env = {**os.environ, **server.environment(), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, __file__, "--peak", "run", "--config", str(config), "--state", str(state_path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"the tick failed:\n{result.stdout}\n{result.stderr}")
    stats = server.world.stats
    return Figures(
        hightouch=stats["hightouch"],
        slack=stats["slack"],
        linear=stats["linear"],
        throttled=stats["hightouch_429"],
        wall=wall,
        peak_mb=_reported_peak(result.stderr),
        busiest=max(Counter(m.get("channel") for m in server.world.slack_messages).values(), default=0),
    )


def run_naive(server: SandboxServer, sample: int) -> Figures:
    """One request per sync, sequentially, in a subprocess (for its own peak memory)."""
    env = server.environment()
    process = subprocess.run(
        [sys.executable, __file__, "--naive", env["HIGHTOUCH_API_URL"], env["HIGHTOUCH_API_KEY"], str(sample)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    result = json.loads(process.stdout)
    stats = server.world.stats
    return Figures(
        hightouch=result["requests"],
        slack=0,
        linear=0,
        throttled=stats["hightouch_429"],
        wall=result["wall"],
        peak_mb=_reported_peak(process.stderr),
        estimated=result["estimated"],
    )


def naive_loop(base_url: str, key: str, sample: int) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    requests_made = 0

    def get(path: str, **params: Any) -> dict[str, Any]:
        nonlocal requests_made
        while True:
            requests_made += 1
            response = session.get(base_url + path, params=params, timeout=30)
            if response.status_code == 429:
                time.sleep(1)
                continue
            response.raise_for_status()
            return dict(response.json())

    started = time.perf_counter()
    syncs: list[dict[str, Any]] = []
    offset = 0
    while True:
        body = get("/syncs", limit=100, offset=offset)
        syncs.extend(body["data"])
        if not body["hasMore"]:
            break
        offset += len(body["data"])
    listing = time.perf_counter() - started
    enabled = [s for s in syncs if not s["disabled"]]
    measured = enabled[:sample]
    before_runs = requests_made
    runs_started = time.perf_counter()
    for sync in measured:
        get(f"/syncs/{sync['id']}/runs", limit=100)
    runs_wall = time.perf_counter() - runs_started
    estimated = len(measured) < len(enabled)
    scale = len(enabled) / max(1, len(measured))
    total_requests = before_runs + round((requests_made - before_runs) * scale)
    print(json.dumps({"requests": total_requests, "wall": listing + runs_wall * scale, "estimated": estimated}))


def _peak_kb() -> int:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _report_peak() -> None:
    sys.stderr.write(f"\nPEAK_KB {_peak_kb()}\n")


def _reported_peak(stderr: str) -> float:
    values = [int(line.split()[1]) for line in stderr.splitlines() if line.startswith("PEAK_KB ")]
    return values[-1] / 1024 if values else float("nan")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--modes", default="off,on", help="sandbox rate limit: off, on, or both")
    parser.add_argument("--naive-sample", type=int, default=300, help="runs calls of the naive loop to time")
    parser.add_argument("--full-listing", action="store_true", help="the hourly tick that lists every sync")
    parser.add_argument("--no-failures", action="store_true", help="no run failed: the tick's reads alone")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"Steady-state tick; {CHANGED_SHARE:.0%} of syncs ran since the last tick, "
        f"{FAILED_SHARE_OF_CHANGED:.0%} of those failed; {args.latency_ms:g} ms per sandbox request.\n"
    )
    header = (
        f"{'rate limit':<10} {'syncs':>6} {'who':<6} {'Hightouch':>9} {'Slack':>5} {'Linear':>6} "
        f"{'429s':>5} {'wall s':>7} {'peak MB':>7} {'bound':>5} {'HT/20/s':>7} {'SL/1/s':>6} {'vs floor':>8} "
        f"{'req ratio':>9} {'wall ratio':>10}"
    )
    print(header)
    print("-" * len(header))
    for mode in args.modes.split(","):
        rate_limited = mode == "on"
        for size in sizes:
            world, state = build_world(size)
            changed_syncs = sum(1 for s in world.syncs.values() if len(s.runs) > 1)
            failed = sum(1 for s in world.syncs.values() if s.runs[-1].status == "failed")
            names = len({s.destination_id for s in world.syncs.values() if s.runs[-1].status == "failed"}) + len(
                {s.model_id for s in world.syncs.values() if s.runs[-1].status == "failed"}
            )
            bound = -(-size // 100) + changed_syncs + names + failed
            with tempfile.TemporaryDirectory() as tmp, SandboxServer(world) as server:
                world.latency = args.latency_ms / 1000
                world.rate_limit = rate_limited
                ours = run_tick(server, state, rate_limited, Path(tmp))
            world.stats.clear()
            world.recent_requests.clear()
            with SandboxServer(world) as server:
                world.rate_limit = rate_limited
                naive = run_naive(server, args.naive_sample)
            physical = ours.hightouch / 20
            slack_floor = ours.busiest / 1.0  # Slack takes one message a second per channel
            floor = max(physical, slack_floor)
            for who, fig in (("tick", ours), ("naive", naive)):
                mark = "~" if fig.estimated else " "
                extra = (
                    f"{bound:>5} {physical:>7.1f} {slack_floor:>6.1f} {ours.wall / floor:>7.2f}x "
                    f"{ours.total / naive.total:>9.3f} {ours.wall / naive.wall:>10.3f}"
                    if who == "tick"
                    else f"{'':>5} {'':>7} {'':>6} {'':>8} {'':>9} {'':>10}"
                )
                print(
                    f"{mode:<10} {size:>6} {who:<6} {mark}{fig.hightouch:>8} {fig.slack:>5} {fig.linear:>6} "
                    f"{fig.throttled:>5} {mark}{fig.wall:>6.2f} {fig.peak_mb:>7.1f} {extra}"
                )
    print(
        "\nbound: sync pages + syncs that ran + destination/model lookups + messages, the most a tick may cost."
        "\nHT/20/s: the tick's Hightouch requests at 20 per second, the physical floor when rate-limited."
        "\nSL/1/s: the messages of the busiest channel at Slack's one a second; vs floor: the wall time"
        " against the larger of the two floors."
        "\nratios: the tick against the naive loop (requests to all APIs; wall time). ~ marks extrapolated figures."
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--naive":
        atexit.register(_report_peak)
        naive_loop(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--peak":
        # The CLI, reporting its own peak memory on the way out.
        from triage.cli import main as cli_main

        atexit.register(_report_peak)
        sys.exit(cli_main(sys.argv[2:]))
    else:
        main()
