"""The ``spend`` shown on keys, teams, users and end users: their current budget period's cost.

These are display values and the seed of the limiter's counters when Redis loses them; the limiter's
counters are what enforces budgets. Spend is read from the rollups for whole days (they outlive
the ledger's retention, so a lifetime budget keeps all of its history) plus the ledger for the part
of a day when a period starts mid-day.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import models

from billing.limits.periods import budget_period
from billing.models import LedgerEntry, SpendRollup
from billing.services.money_sums import money_sum, money_value
from billing.services.periods import utc_day_start
from llm_gateway.models import EndUser, Team, UserBudget, VirtualKey


@dataclass(frozen=True)
class SpendOwner:
    """A kind of entity with a spend field, and the ledger/rollup column that names it."""

    model: type[models.Model]
    column: str  # LedgerEntry / SpendRollup column holding the entity's id as text
    id_from_text: type  # how that text becomes a primary key value


SPEND_OWNERS = (
    SpendOwner(VirtualKey, "key_token", uuid.UUID),
    SpendOwner(Team, "team_id", uuid.UUID),
    # The ledger names a key's owner by the user's primary key (UserBudget's primary key too).
    SpendOwner(UserBudget, "user_id", int),
    SpendOwner(EndUser, "end_user", str),
)


def spend_totals_refresh(*, days: Iterable[date], now: datetime) -> int:
    """Recompute the current-period spend of every key, team, user and end user with rollups on ``days``.

    Nobody else's can have changed: spend only grows by ledger rows, and a period's start sets it
    to zero (budgets_reset). Return how many spend fields changed.
    """
    days = list(days)
    if not days:
        return 0
    changed = 0
    for owner in SPEND_OWNERS:
        spenders = SpendRollup.objects.filter(day__in=days).exclude(**{owner.column: ""})
        ids = set(spenders.values_list(owner.column, flat=True))
        changed += _owner_refresh(owner, _primary_keys(owner, ids), now)
    return changed


def _primary_keys(owner: SpendOwner, ids: Iterable[str]) -> list:
    keys = []
    for text in ids:
        try:
            keys.append(owner.id_from_text(text))
        except ValueError:  # a ledger row naming something that was never a key, team or user id
            continue
    return keys


def _owner_refresh(owner: SpendOwner, primary_keys: list, now: datetime) -> int:
    rows = owner.model.objects.filter(pk__in=primary_keys).only("pk", "budget_duration", "budget_reset_at")
    periods: dict[str, datetime | None] = {}
    reset_times: dict[str, datetime | None] = {}
    for row in rows:
        entity_id = str(row.pk)
        periods[entity_id], _ = budget_period(row.budget_duration, row.budget_reset_at, now)
        reset_times[entity_id] = row.budget_reset_at
    changed = 0
    for entity_id, total in period_spend(column=owner.column, periods=periods).items():
        # Only if no reset happened meanwhile: this total belongs to the period that was read.
        unchanged = owner.model.objects.filter(
            pk=owner.id_from_text(entity_id), budget_reset_at=reset_times[entity_id]
        )
        changed += unchanged.exclude(spend=total).update(spend=total)
    return changed


def period_spend(*, column: str, periods: dict[str, datetime | None]) -> dict[str, Decimal]:
    """Return the cost since each entity's period start (None: since always), by entity id.

    ``column`` names the entity in the ledger and rollups (key_token, team_id, user_id, end_user).
    Whole days come from the rollups, one query per distinct first day; a period that starts mid-day
    adds the rest of that day from the ledger.
    """
    totals = {entity_id: Decimal("0") for entity_id in periods}
    by_first_day: dict[date | None, list[str]] = defaultdict(list)
    for entity_id, start in periods.items():
        first_day = None if start is None else _first_whole_day(start)
        by_first_day[first_day].append(entity_id)
        if start is not None and start < utc_day_start(first_day):
            totals[entity_id] += _ledger_spend(column, entity_id, start, utc_day_start(first_day))
    for first_day, entity_ids in by_first_day.items():
        rollups = SpendRollup.objects.filter(**{f"{column}__in": entity_ids})
        if first_day is not None:
            rollups = rollups.filter(day__gte=first_day)
        for group in rollups.order_by().values(column).annotate(cost=money_sum("cost")):
            totals[group[column]] += money_value(group["cost"])
    return totals


def _first_whole_day(start: datetime) -> date:
    day = start.astimezone(UTC).date()
    return day if utc_day_start(day) == start else day + timedelta(days=1)


def _ledger_spend(column: str, entity_id: str, start: datetime, end: datetime) -> Decimal:
    cost = LedgerEntry.objects.filter(
        **{column: entity_id}, created_at__gte=start, created_at__lt=end
    ).aggregate(cost=money_sum("cost"))["cost"]
    return money_value(cost)
