"""Benchmark: the bad days — a storm at Slack's real pace, and a first tick with no state.

Not a timed test: it prints figures. Both run the real CLI in a subprocess against the
sandbox, with Hightouch's 200 requests / 10 s enforced and every answer delayed by
--latency-ms.

- storm: --storm-syncs syncs that had already failed twice fail once more in one tick
  (one warehouse outage), out of --syncs; the sandbox enforces Slack's per-channel pace
  (1 message a second, bursts of 3, 429 with Retry-After). Ticks run until nothing is
  deferred; each line is one tick: messages, wall time, messages a second, Slack 429s,
  Linear issues filed.
- baseline: no state file; --unhealthy of the syncs' latest run failed, the rest
  succeeded. Figures: Hightouch requests, wall time, and the floor at 20 requests a second.

    python benchmarks/bad_days.py [--syncs 10000] [--storm-syncs 150] [--tick-limit 90]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from triage.sandbox import SandboxServer, World  # noqa: E402


def tick(server: SandboxServer, workdir: Path) -> tuple[float, str]:
    env = {**os.environ, **server.environment(), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "triage",
            "run",
            "--config",
            str(workdir / "config.yaml"),
            "--state",
            str(workdir / "state" / "state.yaml"),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"the tick failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started, result.stdout


def storm(syncs: int, failing: int, tick_limit: int, latency: float) -> None:
    world = World()
    for number in range(syncs):
        sync_id = str(10_000 + number)
        world.add_sync(sync_id, f"sync-{number:05d}", destination=f"Destination {number % 20}")
        for status in ("failed", "failed") if number < failing else ("success",):
            world.add_run(sync_id, status, error="Warehouse unreachable" if status == "failed" else None)
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(world) as server:
        workdir = Path(tmp)
        (workdir / "config.yaml").write_text(
            f"hightouch: {{workspace_slug: bench}}\ntriage: {{tick_time_limit_seconds: {tick_limit}}}\n"
        )
        tick(server, workdir)  # the baseline, before the outage
        for number in range(failing):
            world.add_run(str(10_000 + number), "failed", error=f"Warehouse unreachable after {number} s")
        world.latency, world.rate_limit, world.slack_rate = latency, True, 1.0
        print(
            f"Storm: {failing} of {syncs} syncs fail in one tick; Slack 1 message/s per channel; "
            f"tick limit {tick_limit} s; {latency * 1000:g} ms per request.\n"
        )
        print("tick  messages  wall s  messages/s  Slack 429s  Linear issues  deferred")
        sent = 0
        for number in range(1, 20):
            before = world.stats["slack_429"]
            wall, _ = tick(server, workdir)
            messages = len(world.slack_messages) - sent
            sent = len(world.slack_messages)
            deferred = yaml.safe_load((workdir / "state" / "state.yaml").read_text()).get("deferred") or []
            print(
                f"{number:>4} {messages:>9} {wall:>7.1f} {messages / wall:>11.2f} "
                f"{world.stats['slack_429'] - before:>11} {len(world.linear_issues):>14} {len(deferred):>9}"
            )
            if not deferred:
                break
        alerts = [m for m in world.slack_messages if "thread_ts" in m]
        named = {m["text"].split("|")[1].split(">")[0] for m in alerts}
        print(
            f"\n{len(alerts)} alerts for {failing} failed syncs ({len(named)} distinct), "
            f"{len(world.slack_messages) - len(alerts)} summary; Linear issues: {len(world.linear_issues)}"
        )


def baseline(syncs: int, unhealthy: float, latency: float) -> None:
    world = World()
    every = round(1 / unhealthy)
    for number in range(syncs):
        sync_id = str(10_000 + number)
        world.add_sync(sync_id, f"sync-{number:05d}", destination=f"Destination {number % 20}")
        world.add_run(sync_id, "success")
        world.add_run(sync_id, "failed" if number % every == 0 else "success")
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(world) as server:
        workdir = Path(tmp)
        (workdir / "config.yaml").write_text("hightouch: {workspace_slug: bench}\n")
        world.latency, world.rate_limit = latency, True
        wall, _ = tick(server, workdir)
        requests = world.stats["hightouch"]
        print(
            f"\nBaseline (no state file): {syncs} syncs, {unhealthy:.0%} unhealthy; {latency * 1000:g} ms per request."
        )
        print(
            f"Hightouch requests: {requests}; wall {wall:.1f} s; floor at 20 requests/s {requests / 20:.1f} s "
            f"({wall / (requests / 20):.2f}x); 429s: {world.stats['hightouch_429']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--syncs", type=int, default=10_000)
    parser.add_argument("--storm-syncs", type=int, default=150)
    parser.add_argument("--tick-limit", type=int, default=90)
    parser.add_argument("--unhealthy", type=float, default=0.05)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--only", choices=["storm", "baseline"])
    args = parser.parse_args()
    if args.only != "baseline":
        storm(args.syncs, args.storm_syncs, args.tick_limit, args.latency_ms / 1000)
    if args.only != "storm":
        baseline(args.syncs, args.unhealthy, args.latency_ms / 1000)


if __name__ == "__main__":
    main()
