"""Daily spend rollups, rebuilt from the ledger: what the dashboards and the spend fields read."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db import connections, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce

from billing.models import LedgerEntry, SpendRollup
from billing.services.money_sums import money_sum, money_value
from billing.services.periods import ledger_retention_start, utc_day_start
from billing.services.spend import spend_totals_refresh

logger = logging.getLogger(__name__)

DIMENSIONS = ("key_token", "team_id", "user_id", "end_user", "model_group", "deployment_id", "provider")
# pg_advisory_xact_lock's first key: this module's namespace; the second is the day.
_ROLLUP_LOCK_NAMESPACE = 0x5EED


def spend_rollups_refresh(*, days: Iterable[date], now: datetime) -> int:
    """Rebuild the rollups of ``days``, then the current-period spend of whoever spent on them.

    Return how many rollup rows the days now have.
    """
    days = sorted(set(days))
    rows = 0
    rebuilt = []
    for day in days:
        count = spend_rollup_rebuild(day=day, now=now)
        if count is not None:
            rows += count
            rebuilt.append(day)
    spend_totals_refresh(days=rebuilt, now=now)
    return rows


def spend_rollup_rebuild(*, day: date, now: datetime) -> int | None:
    """Replace the rollups of ``day`` with sums computed from its ledger rows in one GROUP BY.

    Idempotent by construction: the same ledger gives the same rollups, however often it runs.
    Return the number of rollup rows, or None for a day the ledger no longer holds in full (pruned):
    its rollups are all that is left of it, so they are kept as they are.
    """
    start = utc_day_start(day)
    retention_start = ledger_retention_start(now=now)
    if retention_start is not None and start < retention_start:
        logger.warning("Not rebuilding the rollups of %s: its ledger rows are past retention.", day)
        return None
    with transaction.atomic():
        _day_lock(day)
        rows = [SpendRollup(day=day, **group) for group in _ledger_groups(start, start + timedelta(days=1))]
        SpendRollup.objects.filter(day=day).delete()
        SpendRollup.objects.bulk_create(rows)
    return len(rows)


def _day_lock(day: date) -> None:
    """Serialise rebuilds of one day: two concurrent ones would both insert the day's rows.

    SQLite needs nothing: its transactions take the write lock when they begin (settings).
    """
    connection = connections["default"]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_ROLLUP_LOCK_NAMESPACE, day.toordinal()])


def _ledger_groups(start: datetime, end: datetime) -> list[dict]:
    groups = (
        LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .values(*DIMENSIONS)
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=Q(status=LedgerEntry.Status.ERROR)),
            cache_hits=Count("id", filter=Q(cache_hit=True)),
            streamed_requests=Count("id", filter=Q(stream=True)),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            cached_tokens=Sum("cached_tokens"),
            cost=money_sum("cost"),
            latency_ms_sum=Sum("latency_ms"),
            time_to_first_token_ms_sum=Coalesce(Sum("time_to_first_token_ms"), 0),
        )
    )
    return [{**group, "cost": money_value(group["cost"])} for group in groups]
