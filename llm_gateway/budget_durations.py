"""Budget periods in LiteLLM's notation: ``30s``, ``10m``, ``1h``, ``1d``, ``1w``, ``1mo``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError

_DURATION = re.compile(r"^(\d+)(s|m|h|d|w|mo)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION_SECONDS = 100 * 366 * 86400


def _seconds(count: int, unit: str) -> int:
    return count * 31 * 86400 if unit == "mo" else count * _SECONDS[unit]


def validate_budget_duration(value: str) -> None:
    """Raise ValidationError unless ``value`` is empty or a duration like ``30d``."""
    match = _DURATION.match(value or "")
    if value and match is None:
        raise ValidationError(
            f"{value!r} is not a duration: use a number and s, m, h, d, w or mo (e.g. 30d)."
        )
    if match is not None and _seconds(int(match.group(1)), match.group(2)) > MAX_DURATION_SECONDS:
        raise ValidationError(f"{value!r} is longer than the 100 years a budget period may last.")


def next_reset(duration: str, start: datetime) -> datetime | None:
    """Return when a budget that started at ``start`` resets, or None if it never does."""
    match = _DURATION.match(duration or "")
    if match is None:
        return None
    count, unit = int(match.group(1)), match.group(2)
    if unit != "mo":
        return start + timedelta(seconds=count * _SECONDS[unit])
    month_index = start.month - 1 + count
    year, month = start.year + month_index // 12, month_index % 12 + 1
    # Clamp the day: a budget that started on 31 January resets on the last day of February.
    for day in (start.day, 30, 29, 28):
        try:
            return start.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")
