"""Spend figures from the daily rollups: totals, days, the reports' groupings, a key's usage."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Context, Decimal, localcontext
from typing import Any, Generic, TypeVar

from django.db.models import Count, Q, QuerySet, Sum

from billing.models import LedgerEntry, SpendRollup
from billing.services.money_sums import money_sum, money_value

ZERO = Decimal("0")
# Sums of money add Decimals of up to 30 digits (18 places): the default context's 28 digits could
# round a big enough total. 60 digits add up a billion rows of the largest amount exactly.
EXACT_SUMS = Context(prec=60)

# The rollup columns the selectors add up; each sum is annotated as "sum_<column>" (annotate() may
# not reuse a field's name).
SUMMED_COLUMNS = (
    "cost",
    "requests",
    "errors",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "latency_ms_sum",
)
SUM_NAMES = tuple(f"sum_{name}" for name in SUMMED_COLUMNS)

RowT = TypeVar("RowT")


@dataclass(frozen=True, slots=True)
class SpendFigures:
    """Summed rollup figures, and what can be derived from sums (never percentiles)."""

    cost: Decimal = ZERO
    requests: int = 0
    errors: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    latency_ms_sum: int = 0

    @classmethod
    def from_sums(cls, sums: dict[str, Any]) -> SpendFigures:
        """Return the figures of a row annotated with ``rollup_sums()``."""
        counts = {name: sums[f"sum_{name}"] or 0 for name in SUMMED_COLUMNS if name != "cost"}
        return cls(cost=money_value(sums["sum_cost"]), **counts)

    @classmethod
    def from_sum_values(cls, values: Sequence[Any]) -> SpendFigures:
        """Return the figures of sums given in ``SUMMED_COLUMNS`` order."""
        return cls.from_sums(dict(zip(SUM_NAMES, values, strict=True)))

    def __add__(self, other: SpendFigures) -> SpendFigures:
        with localcontext(EXACT_SUMS):
            return SpendFigures(
                **{name: getattr(self, name) + getattr(other, name) for name in SUMMED_COLUMNS}
            )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def successes(self) -> int:
        return self.requests - self.errors

    @property
    def error_rate(self) -> Decimal | None:
        """Return errors per request (0.0125 is 1.25 %), or None without requests."""
        return Decimal(self.errors) / self.requests if self.requests else None

    @property
    def average_latency_ms(self) -> Decimal | None:
        return Decimal(self.latency_ms_sum) / self.requests if self.requests else None


@dataclass(frozen=True, slots=True)
class SpendRow:
    """The figures of one value of a dimension: a day, a team, a key, a user, a model..."""

    id: str  # the value as stored: a day's ISO date, a team id, a key token, a model name...
    label: str
    figures: SpendFigures


@dataclass(frozen=True, slots=True)
class Ranking(Generic[RowT]):
    """The first rows of a ranking, biggest first, and how many rows it holds in all."""

    rows: list[RowT]
    row_count: int


@dataclass(frozen=True, slots=True)
class DailyBreakdownRow:
    """One day of one model group x provider x key x team: what the daily-activity APIs group."""

    day: date
    model_group: str
    provider: str
    key_token: str
    team_id: str
    figures: SpendFigures


@dataclass(frozen=True, slots=True)
class ReportRow:
    """The figures of one group value (a team, an end user, a key) x model group x key, maybe of one day."""

    day: date | None
    group: str
    model_group: str
    key_token: str
    figures: SpendFigures


# A range of days ends at the midnight after its last day, which must be a date too.
LAST_DAY = date.max - timedelta(days=1)


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """Return the instants that bound the UTC days ``start`` to ``end`` (end exclusive)."""
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )


def rollup_list(
    *,
    start: date,
    end: date,
    team_ids: Collection[str] | None = None,
    key_token: str | None = None,
    user_id: str | None = None,
    model_group: str | None = None,
    end_user: str | None = None,
) -> QuerySet[SpendRollup]:
    """Return the rollup rows of the days ``start`` to ``end`` within ``team_ids`` and the filters."""
    rows = SpendRollup.objects.filter(day__gte=start, day__lte=end)
    if team_ids is not None:
        rows = rows.filter(team_id__in=sorted(str(team_id) for team_id in team_ids))
    filters = {"key_token": key_token, "user_id": user_id, "model_group": model_group, "end_user": end_user}
    return rows.filter(**{name: value for name, value in filters.items() if value is not None})


def spend_totals(
    *, start: date, end: date, team_ids: Collection[str] | None = None, **filters: str
) -> SpendFigures:
    """Return the summed figures of the range (filters as for ``rollup_list``)."""
    rows = rollup_list(start=start, end=end, team_ids=team_ids, **filters)
    return SpendFigures.from_sums(rows.aggregate(**rollup_sums()))


def spend_by_day(
    *, start: date, end: date, team_ids: Collection[str] | None = None, **filters: str
) -> list[SpendRow]:
    """Return one row per day of the range, oldest first, days without requests included (zeros)."""
    rows = rollups_grouped(rollup_list(start=start, end=end, team_ids=team_ids, **filters), "day")
    return every_day(start=start, end=end, figures={row["day"]: SpendFigures.from_sums(row) for row in rows})


def every_day(*, start: date, end: date, figures: dict[date, SpendFigures]) -> list[SpendRow]:
    """Return a row per day of the range, oldest first, from ``figures`` by day (zeros where missing)."""
    days = (start + timedelta(days=offset) for offset in range((end - start).days + 1))
    return [SpendRow(day.isoformat(), day.isoformat(), figures.get(day, SpendFigures())) for day in days]


def spend_daily_breakdown(
    *, start: date, end: date, team_ids: Collection[str] | None = None, **filters: str
) -> list[DailyBreakdownRow]:
    """Return the range's figures per day x model group x provider x key x team, oldest day first."""
    rows = rollups_grouped(
        rollup_list(start=start, end=end, team_ids=team_ids, **filters),
        "day",
        "model_group",
        "provider",
        "key_token",
        "team_id",
    )
    return [
        DailyBreakdownRow(
            day=row["day"],
            model_group=row["model_group"],
            provider=row["provider"],
            key_token=row["key_token"],
            team_id=row["team_id"],
            figures=SpendFigures.from_sums(row),
        )
        for row in rows.order_by("day", "model_group", "provider", "key_token", "team_id")
    ]


def spend_report_rows(
    *,
    start: date,
    end: date,
    group: str,
    daily: bool,
    team_ids: Collection[str] | None = None,
    **filters: str,
) -> list[ReportRow]:
    """Return the range's figures per ``group`` value (a rollup column) x model group x key.

    ``daily`` splits them per day too (then ``day`` is set). Rows come by day, group value, model, key.
    """
    # dict.fromkeys: ``group`` may be "key_token" itself, which must be grouped by once.
    columns = list(dict.fromkeys([*(["day"] if daily else []), group, "model_group", "key_token"]))
    rows = rollups_grouped(rollup_list(start=start, end=end, team_ids=team_ids, **filters), *columns)
    return [
        ReportRow(
            day=row["day"] if daily else None,
            group=row[group],
            model_group=row["model_group"],
            key_token=row["key_token"],
            figures=SpendFigures.from_sums(row),
        )
        for row in rows.order_by(*columns)
    ]


def key_usage_since(*, key_token: str, since: datetime, now: datetime) -> SpendFigures:
    """Return a key's figures from ``since`` to ``now``.

    Whole days come from the rollups; the rest of ``since``'s day, when it starts mid-day (a budget
    period, a key created at noon), from the key's ledger rows of that day: bounded, under a day.
    """
    first_day, today = since.astimezone(UTC).date(), now.astimezone(UTC).date()
    figures = SpendFigures()
    whole_days_from = first_day
    if since != day_bounds(first_day, first_day)[0]:
        whole_days_from = first_day + timedelta(days=1)
        until = min(day_bounds(first_day, first_day)[1], now)
        entries = LedgerEntry.objects.filter(key_token=key_token, created_at__gte=since, created_at__lt=until)
        figures += SpendFigures.from_sums(entries.aggregate(**_ledger_sums()))
    if whole_days_from <= today:
        figures += spend_totals(start=whole_days_from, end=today, key_token=key_token)
    return figures


def rollup_sums() -> dict[str, Any]:
    """Return the aggregates that add rollup rows up, named "sum_<column>"."""
    # money_sum() sums costs exactly on SQLite too (integer units there): figures match to the cent.
    return {f"sum_{name}": money_sum(name) if name == "cost" else Sum(name) for name in SUMMED_COLUMNS}


def rollups_grouped(rows: QuerySet[SpendRollup], *columns: str) -> QuerySet:
    """Return ``rows`` added up per distinct value of ``columns``, as dicts (no order)."""
    return rows.values(*columns).annotate(**rollup_sums()).order_by()


def _ledger_sums() -> dict[str, Any]:
    """Return the aggregates that add ledger rows up as the rollups do (for ``SpendFigures.from_sums``)."""
    return {
        "sum_cost": money_sum("cost"),
        "sum_requests": Count("id"),
        "sum_errors": Count("id", filter=Q(status=LedgerEntry.Status.ERROR)),
        "sum_cache_hits": Count("id", filter=Q(cache_hit=True)),
        "sum_prompt_tokens": Sum("prompt_tokens"),
        "sum_completion_tokens": Sum("completion_tokens"),
        "sum_cached_tokens": Sum("cached_tokens"),
        "sum_latency_ms_sum": Sum("latency_ms"),
    }
