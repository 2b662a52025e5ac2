"""State file cost at scale: what a tick spends on state.yaml besides the APIs.

For each size it writes a realistic state (every sync with a cursor, a third with
an incident thread, some with Linear issues), then times, in a fresh process each:
load (file + journal), the tick's snapshot of the loaded state, and save. Peak
memory is the process's maximum resident size.

    .venv/bin/python benchmarks/state_scale.py                 # 10,000 and 50,000 syncs
    .venv/bin/python benchmarks/state_scale.py --sizes 1000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from triage.models import Incident, IssueRef, State, SyncState, Thread  # noqa: E402
from triage.state import StateStore  # noqa: E402


def sample_state(size: int) -> State:
    syncs = {}
    for number in range(size):
        incident = number % 3 == 0
        syncs[str(100_000 + number)] = SyncState(
            name=f"sync-{number}-salesforce-contacts",
            cursor_run_id=str(9_000_000 + number),
            cursor_at="2026-11-23T09:01:02.5Z",
            last_run_at="2026-11-23T09:02:11Z",
            consecutive_failures=2 if incident else 0,
            incident=Incident(
                started_at="2026-11-23T08:31:00Z",
                threads=(Thread("#data-alerts", "C024BE91L", f"1700000000.{number:06d}"),),
                issue=IssueRef(f"DATA-{number}", f"https://linear.app/acme/issue/DATA-{number}", "DATA")
                if number % 10 == 0
                else None,
            )
            if incident
            else None,
        )
    return State(baseline_at="2026-11-01T00:00:00Z", last_tick_at="2026-11-23T09:15:00Z", syncs=syncs)


def measure(path: Path) -> dict[str, float]:
    """One tick's state work, as tick.py does it (load, snapshot, save)."""
    from triage.tick import snapshot

    store = StateStore(path)
    started = time.perf_counter()
    state = store.load()
    loaded = time.perf_counter()
    before = snapshot(state)
    copied = time.perf_counter()
    store.save(state)
    saved = time.perf_counter()
    assert snapshot(state) == before
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"load": loaded - started, "snapshot": copied - loaded, "save": saved - copied, "peak_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child))))
        return
    print("syncs    file MB  load s  snapshot s  save s  total s  µs/sync  peak MB  KB/sync")
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "state.yaml"
            StateStore(path).save(sample_state(size))
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path)], capture_output=True, text=True, check=True
            )
            r = json.loads(out.stdout)
            total = r["load"] + r["snapshot"] + r["save"]
            print(
                f"{size:>6} {path.stat().st_size / 1e6:>9.1f} {r['load']:>7.2f} {r['snapshot']:>11.2f} "
                f"{r['save']:>7.2f} {total:>8.2f} {total / size * 1e6:>8.1f} {r['peak_mb']:>8.0f} "
                f"{r['peak_mb'] * 1024 / size:>8.1f}"
            )


if __name__ == "__main__":
    main()
