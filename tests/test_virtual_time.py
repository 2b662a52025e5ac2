"""The testing knob TRIAGE_VIRTUAL_SLEEP: waits move a virtual clock instead of blocking."""

from __future__ import annotations

from triage.virtual_time import VirtualClock, clocks_from


def test_without_the_knob_the_real_clocks_are_kept() -> None:
    assert clocks_from({}) == {}
    assert clocks_from({"TRIAGE_VIRTUAL_SLEEP": "0"}) == {}


def test_a_virtual_sleep_moves_the_clock_and_now_without_blocking() -> None:
    real = [100.0]
    clock = VirtualClock(real=lambda: real[0])
    before = clock.now()
    clock.sleep(3600)
    clock.sleep(-5)  # a negative wait waits nothing, as time.sleep refuses it
    assert clock.monotonic() == 3700.0
    assert (clock.now() - before).total_seconds() >= 3600
    knobs = clocks_from({"TRIAGE_VIRTUAL_SLEEP": "1"})
    assert set(knobs) == {"sleep", "clock", "now"}
