"""A testing knob: the tool's own waits pass on a virtual clock instead of sleeping.

With TRIAGE_VIRTUAL_SLEEP set (to anything but empty or 0), every wait the tool makes
through its injected `sleep` — back-offs, Retry-After, Slack's pace, the state lock's
retries, a trigger's polls — moves a virtual clock forward instead of blocking, and
the tick's time limit, the pacer and the polls' timeout read that clock. An
end-to-end test then rides out a rate limit or a retry in no time, yet sees every
decision the real wait would lead to. Never for production: nothing is waited for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TypedDict

ENV = "TRIAGE_VIRTUAL_SLEEP"


class VirtualClock:
    """Real time plus every second slept so far. Thread-safe."""

    def __init__(self, real: Callable[[], float] = time.monotonic) -> None:
        self._real = real
        self._slept = 0.0
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._slept += max(0.0, seconds)

    @property
    def slept(self) -> float:
        with self._lock:
            return self._slept

    def monotonic(self) -> float:
        return self._real() + self.slept

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.slept)


class Clocks(TypedDict, total=False):
    """What `triage.cli.main` takes to tell and spend time."""

    sleep: Callable[[float], None]
    clock: Callable[[], float]
    now: Callable[[], datetime]


def clocks_from(environ: Mapping[str, str]) -> Clocks:
    """`main`'s sleep, clock and now on one virtual clock when TRIAGE_VIRTUAL_SLEEP is set;
    nothing (the real ones) otherwise."""
    if environ.get(ENV, "").strip() in ("", "0"):
        return {}
    virtual = VirtualClock()
    return {"sleep": virtual.sleep, "clock": virtual.monotonic, "now": virtual.now}
