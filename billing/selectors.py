"""Read spend: the daily rollups for dashboards and reports, the ledger for request logs.

Every rollup selector takes an inclusive range of UTC days and ``team_ids``: the teams whose spend
the reader may see, or None for every team (gateway admins, finance). Dashboards and reports read
``SpendRollup`` only (DESIGN §4). The ledger is read page by page for request logs, and, bounded by
``LATENCY_SAMPLE_SIZE`` rows, for latency percentiles, which sums cannot give.

Ledger and rollup rows name teams, keys and users by plain ids; the ``*_labels`` selectors turn them
into names, and ids whose row was deleted keep a readable label.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet, Sum

from billing.limits import limiter
from billing.limits.periods import budget_period
from billing.limits.types import BudgetLimit
from billing.models import LedgerEntry, SpendRollup
from billing.services.money_sums import money_sum, money_value
from llm_gateway.models import Team, VirtualKey

ZERO = Decimal("0")
MONEY_PLACES = Decimal("0.0000000001")  # the ledger's 10 decimal places
# Latency percentiles read at most this many ledger rows: the latest requests of the range.
LATENCY_SAMPLE_SIZE = 10_000
NO_TEAM, NO_KEY, NO_USER, NO_VALUE = "(no team)", "(no key)", "(no user)", "(none)"

# The rollup columns the selectors add up; each sum is annotated as "sum_<column>" (annotate() may
# not reuse a field's name).
_SUMMED = (
    "cost",
    "requests",
    "errors",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "latency_ms_sum",
)


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
        """Return the figures of a row annotated with ``_sums()``."""
        counts = {name: sums[f"sum_{name}"] or 0 for name in _SUMMED if name != "cost"}
        return cls(cost=money_value(sums["sum_cost"]), **counts)

    def __add__(self, other: SpendFigures) -> SpendFigures:
        return SpendFigures(**{name: getattr(self, name) + getattr(other, name) for name in _SUMMED})

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


@dataclass(frozen=True, slots=True)
class LatencyPercentiles:
    p50_ms: int | None
    p95_ms: int | None
    sample_size: int  # how many requests the percentiles are computed over
    is_sampled: bool  # True when the range held more requests than LATENCY_SAMPLE_SIZE


@dataclass(frozen=True, slots=True)
class BudgetBurn:
    """How far a key's or team's budget is spent in its current period, and where it is heading."""

    id: str
    label: str
    team_label: str
    max_budget: Decimal | None  # None: no budget (a key's /key/usage still shows its spend)
    spent: Decimal
    held: Decimal
    period_start: datetime | None  # None: a lifetime budget, which has no period
    period_end: datetime | None

    @property
    def remaining(self) -> Decimal | None:
        return None if self.max_budget is None else self.max_budget - self.spent - self.held

    def projected(self, now: datetime) -> Decimal | None:
        """Return the spend at the end of the period if it goes on at the pace so far (None: no period)."""
        if self.period_start is None or self.period_end is None:
            return None
        elapsed = (now - self.period_start) / (self.period_end - self.period_start)
        if elapsed <= 0:
            return None
        return (self.spent / Decimal(str(min(elapsed, 1.0)))).quantize(MONEY_PLACES)


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
    return SpendFigures.from_sums(rows.aggregate(**_sums()))


def spend_by_day(
    *, start: date, end: date, team_ids: Collection[str] | None = None, **filters: str
) -> list[SpendRow]:
    """Return one row per day of the range, oldest first, days without requests included (zeros)."""
    rows = rollup_list(start=start, end=end, team_ids=team_ids, **filters)
    summed = {row["day"]: SpendFigures.from_sums(row) for row in _grouped(rows, "day")}
    days = (start + timedelta(days=offset) for offset in range((end - start).days + 1))
    return [SpendRow(day.isoformat(), day.isoformat(), summed.get(day, SpendFigures())) for day in days]


def spend_by_team(
    *, start: date, end: date, team_ids: Collection[str] | None = None, limit: int | None = None
) -> list[SpendRow]:
    """Return spend per team, biggest first (rows without a team under "(no team)")."""
    return _spend_by("team_id", team_labels, start=start, end=end, team_ids=team_ids, limit=limit)


def spend_by_key(
    *, start: date, end: date, team_ids: Collection[str] | None = None, limit: int | None = None
) -> list[SpendRow]:
    """Return spend per virtual key (token), biggest first: ``limit=10`` gives the top spenders."""
    return _spend_by("key_token", key_labels, start=start, end=end, team_ids=team_ids, limit=limit)


def spend_by_user(
    *, start: date, end: date, team_ids: Collection[str] | None = None, limit: int | None = None
) -> list[SpendRow]:
    """Return spend per key owner (the ledger's user id), biggest first."""
    return _spend_by("user_id", user_labels, start=start, end=end, team_ids=team_ids, limit=limit)


def spend_by_model(
    *, start: date, end: date, team_ids: Collection[str] | None = None, limit: int | None = None
) -> list[SpendRow]:
    """Return spend per model group (the model name clients ask for), biggest first."""
    return _spend_by("model_group", _same_labels, start=start, end=end, team_ids=team_ids, limit=limit)


def spend_by_provider(
    *, start: date, end: date, team_ids: Collection[str] | None = None, limit: int | None = None
) -> list[SpendRow]:
    """Return spend per provider, biggest first."""
    return _spend_by("provider", _same_labels, start=start, end=end, team_ids=team_ids, limit=limit)


def spend_daily_breakdown(
    *, start: date, end: date, team_ids: Collection[str] | None = None, **filters: str
) -> list[DailyBreakdownRow]:
    """Return the range's figures per day x model group x provider x key x team, oldest day first."""
    rows = _grouped(
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
    rows = _grouped(rollup_list(start=start, end=end, team_ids=team_ids, **filters), *columns)
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


def budget_held(
    *, scope: str, entity_id: str, period_start: datetime | None, period_end: datetime | None
) -> Decimal:
    """Return what the limiter holds now on a budget for requests in flight (``scope``: "key" or "team")."""
    budget = BudgetLimit(
        scope=scope, id=entity_id, max_budget=ZERO, period_start=period_start, period_end=period_end
    )
    counter = async_to_sync(limiter().spend_get)(budget)
    return counter.held if counter is not None else ZERO


def budget_burn_keys(*, team_ids: Collection[str] | None = None, now: datetime) -> list[BudgetBurn]:
    """Return the keys with a budget, within ``team_ids``, by spend in their period, biggest first."""
    keys = VirtualKey.objects.filter(max_budget__isnull=False).select_related("team")
    if team_ids is not None:
        keys = keys.filter(team_id__in=[team_id for team_id in map(_uuid_text, team_ids) if team_id])
    return sorted(
        (budget_burn(owner=key, now=now) for key in keys), key=lambda burn: (-burn.spent, burn.label)
    )


def budget_burn_teams(*, team_ids: Collection[str] | None = None, now: datetime) -> list[BudgetBurn]:
    """Return the teams with a budget, within ``team_ids``, by spend in their period, biggest first."""
    teams = Team.objects.filter(max_budget__isnull=False)
    if team_ids is not None:
        teams = teams.filter(team_id__in=[team_id for team_id in map(_uuid_text, team_ids) if team_id])
    return sorted(
        (budget_burn(owner=team, now=now) for team in teams), key=lambda burn: (-burn.spent, burn.label)
    )


def budget_burn(*, owner: Team | VirtualKey, now: datetime) -> BudgetBurn:
    """Return a key's or team's spend and budget in its current period.

    The stored spend belongs to the period ending at ``budget_reset_at``: once that has passed (and
    before the reset task catches up) the current period is a later one, with nothing spent yet.
    """
    start, end = budget_period(owner.budget_duration, owner.budget_reset_at, now)
    stale = end is not None and owner.budget_reset_at is not None and owner.budget_reset_at < now
    if isinstance(owner, Team):
        scope, label, team_label = "team", owner.team_alias, owner.team_alias
    else:
        scope, label, team_label = "key", str(owner), owner.team.team_alias if owner.team else NO_TEAM
    entity_id = str(owner.pk)
    return BudgetBurn(
        id=entity_id,
        label=label,
        team_label=team_label,
        max_budget=owner.max_budget,
        spent=ZERO if stale else owner.spend,
        held=budget_held(scope=scope, entity_id=entity_id, period_start=start, period_end=end),
        period_start=start,
        period_end=end,
    )


def team_labels(team_ids: Iterable[str]) -> dict[str, str]:
    """Return team id -> alias; teams that no longer exist keep their id, no team is "(no team)"."""
    ids = set(team_ids)
    known = {_uuid_text(team_id): team_id for team_id in ids if _uuid_text(team_id)}
    aliases = dict(Team.objects.filter(team_id__in=list(known)).values_list("team_id", "team_alias"))
    labels = {team_id: f"{team_id} (deleted)" for team_id in ids}
    labels |= {known[str(team_id)]: alias for team_id, alias in aliases.items()}
    labels.pop("", None)
    return labels | ({"": NO_TEAM} if "" in ids else {})


def key_labels(tokens: Iterable[str]) -> dict[str, str]:
    """Return key token -> alias (or display prefix); deleted keys show their token."""
    ids = set(tokens)
    known = {_uuid_text(token): token for token in ids if _uuid_text(token)}
    labels = {token: f"{token[:8]}… (deleted)" for token in ids}
    for key in VirtualKey.objects.filter(token__in=list(known)).only("token", "key_alias", "key_prefix"):
        labels[known[str(key.token)]] = str(key)
    labels.pop("", None)
    return labels | ({"": NO_KEY} if "" in ids else {})


def key_aliases(tokens: Iterable[str]) -> dict[str, str]:
    """Return key token -> alias, for the keys that still exist and have one."""
    known = [text for text in map(_uuid_text, set(tokens)) if text]
    keys = VirtualKey.objects.filter(token__in=known).exclude(key_alias="").values_list("token", "key_alias")
    return {str(token): alias for token, alias in keys}


def user_labels(user_ids: Iterable[str]) -> dict[str, str]:
    """Return the ledger's user id -> username; deleted users show their id, no user "(no user)"."""
    ids = set(user_ids)
    labels = {user_id: f"user {user_id} (deleted)" for user_id in ids} | usernames(ids)
    labels.pop("", None)
    return labels | ({"": NO_USER} if "" in ids else {})


def usernames(user_ids: Iterable[str]) -> dict[str, str]:
    """Return the ledger's user id -> username, for the users that still exist.

    The ledger names a key's owner by the user's primary key (as the request path records it);
    this and ``user_ledger_id`` are the only places that know.
    """
    ids = {user_id for user_id in user_ids if user_id.isdigit()}
    users = get_user_model().objects.filter(pk__in=[int(user_id) for user_id in ids])
    return {str(pk): name for pk, name in users.values_list("pk", "username")}


def user_ledger_id(*, username: str) -> str | None:
    """Return the id the ledger stores for the user named ``username`` (their primary key), or None."""
    pk = get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()
    return None if pk is None else str(pk)


def _sums() -> dict[str, Any]:
    # money_sum() sums costs exactly on SQLite too (integer units there): figures match to the cent.
    return {f"sum_{name}": money_sum(name) if name == "cost" else Sum(name) for name in _SUMMED}


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


def _grouped(rows: QuerySet[SpendRollup], *columns: str) -> QuerySet:
    return rows.values(*columns).annotate(**_sums()).order_by()


def _spend_by(
    column: str, labeler: Any, *, start: date, end: date, team_ids: Collection[str] | None, limit: int | None
) -> list[SpendRow]:
    grouped = _grouped(rollup_list(start=start, end=end, team_ids=team_ids), column).order_by(
        "-sum_cost", "-sum_requests", column
    )
    rows = list(grouped if limit is None else grouped[:limit])
    labels = labeler(row[column] for row in rows)
    return [SpendRow(row[column], labels[row[column]], SpendFigures.from_sums(row)) for row in rows]


def _same_labels(values: Iterable[str]) -> dict[str, str]:
    return {value: value or NO_VALUE for value in values}


def _nearest_rank(ordered: list[int], quantile: float) -> int | None:
    if not ordered:
        return None
    return ordered[max(math.ceil(quantile * len(ordered)) - 1, 0)]


def _uuid_text(value: Any) -> str | None:
    """Return ``value`` as a canonical UUID string (how the ledger stores ids), or None."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None
