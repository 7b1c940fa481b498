"""Read the ledger: request logs page by page, and latency percentiles from a bounded sample."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import QuerySet

from billing.models import LedgerEntry
from billing.selectors.rollups import day_bounds

# Latency percentiles read at most this many ledger rows: the latest requests of the range.
LATENCY_SAMPLE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class LatencyPercentiles:
    p50_ms: int | None
    p95_ms: int | None
    sample_size: int  # how many requests the percentiles are computed over
    is_sampled: bool  # True when the range held more requests than LATENCY_SAMPLE_SIZE


def latency_percentiles(
    *, start: date, end: date, team_ids: Collection[str] | None = None, sample_size: int = LATENCY_SAMPLE_SIZE
) -> LatencyPercentiles:
    """Return p50 and p95 latency over the latest ``sample_size`` requests of the range.

    Sums cannot give percentiles, so this reads the ledger, bounded: each query walks the index on
    ``created_at`` (or ``team_id, created_at``, one query per team) backwards from the end of the
    range and stops after ``sample_size + 1`` rows, however many requests the range holds.
    """
    since, until = day_bounds(start, end)
    entries = LedgerEntry.objects.filter(created_at__gte=since, created_at__lt=until).order_by("-created_at")
    if team_ids is None:
        latencies = list(entries.values_list("latency_ms", flat=True)[: sample_size + 1])
    else:
        latest: list[tuple[datetime, int]] = []
        for team_id in sorted(str(team_id) for team_id in team_ids):
            latest += entries.filter(team_id=team_id).values_list("created_at", "latency_ms")[
                : sample_size + 1
            ]
        latest.sort(reverse=True)
        latencies = [latency for _, latency in latest[: sample_size + 1]]
    is_sampled = len(latencies) > sample_size
    latencies = sorted(latencies[:sample_size])
    return LatencyPercentiles(
        p50_ms=_nearest_rank(latencies, 0.50),
        p95_ms=_nearest_rank(latencies, 0.95),
        sample_size=len(latencies),
        is_sampled=is_sampled,
    )


def ledger_entry_list(
    *,
    team_ids: Collection[str] | None = None,
    key_token: str | None = None,
    user_id: str | None = None,
    request_id: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> QuerySet[LedgerEntry]:
    """Return ledger rows, newest first, within ``team_ids`` and the filters (days inclusive, UTC)."""
    entries = LedgerEntry.objects.order_by("-created_at", "-id")
    if team_ids is not None:
        entries = entries.filter(team_id__in=sorted(str(team_id) for team_id in team_ids))
    filters = {"key_token": key_token, "user_id": user_id, "request_id": request_id}
    entries = entries.filter(**{name: value for name, value in filters.items() if value is not None})
    if start is not None:
        entries = entries.filter(created_at__gte=day_bounds(start, start)[0])
    if end is not None:
        entries = entries.filter(created_at__lt=day_bounds(end, end)[1])
    return entries


def _nearest_rank(ordered: list[int], quantile: float) -> int | None:
    if not ordered:
        return None
    return ordered[max(math.ceil(quantile * len(ordered)) - 1, 0)]
