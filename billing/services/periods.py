"""Days: the time arithmetic of rollups and ledger retention (UTC days, the rollups' ``day``).

Budget periods are the limiter's (billing.limits.periods.budget_period): the tasks here use the same
function, so stored reset times and the limiter's counters always name the same period.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from llm_gateway.conf import gateway_setting

# The rollup task rebuilds today and yesterday by default: a record that reaches the ledger a few
# minutes after midnight (stream lag, a worker restart) still lands in its day's rollups.
ROLLUP_DAYS_BACK = 1


def utc_day_start(day: date) -> datetime:
    """Return midnight UTC at the start of ``day``."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def spend_rollup_days_default(*, now: datetime) -> list[date]:
    """Return the days the rollup task rebuilds when given none: yesterday and today (UTC)."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=back) for back in range(ROLLUP_DAYS_BACK, -1, -1)]


def ledger_retention_start(*, now: datetime) -> datetime | None:
    """Return the time before which ledger rows are pruned, or None when they are kept forever.

    Never later than the start of the oldest day the rollup task still rebuilds from the ledger:
    pruning part of such a day would make its rebuilt rollups lose that spend.
    """
    days = gateway_setting("LEDGER_RETENTION_DAYS")
    if not days:
        return None
    return min(now - timedelta(days=days), utc_day_start(spend_rollup_days_default(now=now)[0]))
