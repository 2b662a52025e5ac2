"""The workflow's cron schedule, read as far as the tool needs: how soon one tick can
follow another, so `validate` can check that a tick fits between two."""

from __future__ import annotations

from itertools import pairwise

MINUTES_PER_DAY = 24 * 60


class CronError(ValueError):
    pass


def _field(text: str, low: int, high: int) -> set[int]:
    """One cron field: `*`, `n`, `a-b`, any of them `/step`, and comma lists."""
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            start, end = (int(x) for x in base.split("-", 1))
        else:
            start = int(base)
            end = high if step_text else start
        if step < 1 or not low <= start <= end <= high:
            raise CronError(f"{part!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def minutes_of_day(expression: str) -> set[int]:
    """The minutes of a day at which a 5-field cron line may fire (day fields ignored:
    they choose days, not the spacing within one)."""
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(f"{expression!r}: expected 5 fields (minute hour day month weekday)")
    try:
        minutes, hours = _field(fields[0], 0, 59), _field(fields[1], 0, 23)
    except ValueError as exc:
        raise CronError(f"{expression!r}: {exc}") from None
    return {hour * 60 + minute for hour in hours for minute in minutes}


def fastest_interval_minutes(expressions: list[str]) -> int:
    """The shortest gap, in minutes, between two fire times of any of the cron lines."""
    fires = sorted(set().union(*(minutes_of_day(e) for e in expressions)))
    if len(fires) == 1:
        return MINUTES_PER_DAY
    gaps = [b - a for a, b in pairwise(fires)]
    gaps.append(fires[0] + MINUTES_PER_DAY - fires[-1])
    return min(gaps)
