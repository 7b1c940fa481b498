"""Budget periods: which period a budget is in now, as the limiter keys its counters.

A budget's ``budget_reset_at`` is the end of its current period (LiteLLM's meaning: when spend goes
back to zero). The Celery reset task moves it forward some time after it passes; until then every
instance steps forward from the stale value itself, without a database write, and lands on the same
period. The reset task must store the ``end`` this module returns, so the period's counter (keyed by
its end) stays the same one before and after the database catches up.

A budget with a duration but no ``budget_reset_at`` yet gets periods aligned on the Unix epoch (whole
multiples of the duration; calendar months from January 1970 for ``mo``), so every instance agrees.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from llm_gateway.budget_durations import next_reset

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _months_before(end: datetime, count: int) -> datetime:
    """Return ``end`` moved back ``count`` calendar months, the day clamped to the month's length."""
    month_index = end.year * 12 + end.month - 1 - count
    year, month = divmod(month_index, 12)
    for day in (end.day, 30, 29, 28):
        try:
            return end.replace(year=year, month=month + 1, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


# (duration, reset_at) -> (computed at, start, end). For one budget the period is a step function of
# now: the answer found at time t holds for every later time before its end, so the request path
# computes it once per period rather than once per request.
_periods: dict[tuple[str, datetime | None], tuple[datetime, datetime | None, datetime | None]] = {}
MAX_REMEMBERED_PERIODS = 10_000


def budget_period(
    duration: str, reset_at: datetime | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """Return the (start, end) of the budget period ``now`` falls in; (None, None) for a lifetime budget.

    The end is exact: ``budget_reset_at`` when it is still ahead, else the first reset after ``now``
    stepped forward from it. The start is the end moved back by one duration; for months it can differ
    by a day or so from the previous reset when a month's end clamped the day (31 January -> 28
    February), and it is after ``now`` when an admin set ``budget_reset_at`` more than a duration ahead.
    ``now`` and ``reset_at`` are timezone-aware.
    """
    remembered = _periods.get((duration, reset_at))
    if remembered is not None:
        since, start, end = remembered
        if since <= now and (end is None or now < end):
            return start, end
    start, end = _period(duration, reset_at, now)
    if len(_periods) >= MAX_REMEMBERED_PERIODS:
        _periods.clear()
    _periods[(duration, reset_at)] = (now, start, end)
    return start, end


def _period(
    duration: str, reset_at: datetime | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    first_reset = next_reset(duration, EPOCH)
    if first_reset is None or first_reset == EPOCH:
        return None, None  # no duration, or "0d": a budget that never resets
    months = int(duration.removesuffix("mo")) if duration.endswith("mo") else 0
    if reset_at is None:
        return _epoch_period(duration, months, first_reset - EPOCH, now)
    end = reset_at
    if not months:
        length = first_reset - EPOCH
        if end <= now:
            end += ((now - end) // length + 1) * length  # arithmetic, not a loop: "30s" may be far behind
        return end - length, end
    # Step forward the way the reset task does, one next_reset at a time: day clamping compounds.
    while end <= now:
        end = next_reset(duration, end)
    return _months_before(end, months), end


def _epoch_period(duration: str, months: int, length: timedelta, now: datetime) -> tuple[datetime, datetime]:
    if not months:
        start = EPOCH + ((now - EPOCH) // length) * length
        return start, start + length
    now = now.astimezone(UTC)
    elapsed = (now.year - 1970) * 12 + now.month - 1
    first = elapsed - elapsed % months
    start = datetime(1970 + first // 12, first % 12 + 1, 1, tzinfo=UTC)
    end = next_reset(duration, start)
    assert end is not None  # the duration parsed above
    return start, end
