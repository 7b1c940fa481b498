"""The ``spend`` shown on keys, teams, users and end users: their current budget period's cost.

These are display values and the seed of the limiter's counters when Redis loses them; the limiter's
counters are what enforces budgets. Spend is read from the rollups for whole days (they outlive
the ledger's retention, so a lifetime budget keeps all of its history) plus the ledger for the part
of a day when a period starts mid-day.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import models

from billing.limits.periods import budget_period
from billing.models import LedgerEntry, SpendRollup
from billing.services.money_sums import money_sum, money_value
from billing.services.periods import utc_day_start
from llm_gateway.end_user_scopes import EndUserScope
from llm_gateway.models import EndUser, Team, UserBudget, VirtualKey


@dataclass(frozen=True)
class SpendOwner:
    """A kind of entity with a spend field, and the ledger/rollup column that names it."""

    model: type[models.Model]
    column: str  # LedgerEntry / SpendRollup column holding the entity's id as text
    id_from_text: type  # how that text becomes a primary key value

    @property
    def columns(self) -> tuple[str, ...]:
        """Return the ledger/rollup columns that together name one entity."""
        return (self.column,)

    def identity(self, values: tuple[str, ...]) -> Hashable | None:
        """Return the entity a ledger row's ``columns`` values name (None: none, or not an id)."""
        try:
            return self.id_from_text(values[0]) if values[0] else None
        except ValueError:  # a ledger row naming something that was never a key, team or user id
            return None

    def identity_of(self, row: models.Model) -> Hashable:
        return row.pk

    def rows(self, identities: Collection[Hashable]) -> models.QuerySet:
        """Return the rows of these entities (and maybe others)."""
        return self.model.objects.filter(pk__in=list(identities))

    def row_filter(self, identity: Hashable) -> dict[str, Any]:
        """Return the ledger/rollup lookups that select an entity's rows."""
        return {self.column: str(identity)}

    def names(self, identities: Collection[Hashable]) -> dict[str, list[str]]:
        """Return lookups (column -> values) that narrow a rollup query to these entities' rows."""
        return {self.column: [str(identity) for identity in identities]}


class EndUserSpendOwner(SpendOwner):
    """End users: named in the ledger by the ``user`` string within a scope, which the row's team
    (or, without one, its key owner) decides (llm_gateway.end_user_scopes)."""

    @property
    def columns(self) -> tuple[str, ...]:
        return ("team_id", "user_id", "end_user")

    def identity(self, values: tuple[str, ...]) -> Hashable | None:
        team_id, user_id, end_user = values
        if not end_user:
            return None
        return EndUserScope.of_ledger(team_id=team_id, user_id=user_id), end_user

    def identity_of(self, row: models.Model) -> Hashable:
        return row.scope, row.user_id

    def rows(self, identities: Collection[Hashable]) -> models.QuerySet:
        # A superset (the same ids in other scopes too): the caller keeps the identities it asked for.
        return self.model.objects.filter(user_id__in=sorted({user_id for _, user_id in identities}))

    def row_filter(self, identity: Hashable) -> dict[str, Any]:
        scope, user_id = identity
        owner = "" if scope.owner_id is None else str(scope.owner_id)
        if scope.team_id is not None:
            return {"team_id": scope.team_id, "end_user": user_id}
        return {"team_id": "", "user_id": owner, "end_user": user_id}

    def names(self, identities: Collection[Hashable]) -> dict[str, list[str]]:
        return {"end_user": sorted({user_id for _, user_id in identities})}


SPEND_OWNERS = (
    SpendOwner(VirtualKey, "key_token", uuid.UUID),
    SpendOwner(Team, "team_id", uuid.UUID),
    # The ledger names a key's owner by the user's primary key (UserBudget's primary key too).
    SpendOwner(UserBudget, "user_id", int),
    EndUserSpendOwner(EndUser, "end_user", str),
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
        values = spenders.order_by().values_list(*owner.columns).distinct()
        identities = {owner.identity(tuple(row)) for row in values} - {None}
        changed += _owner_refresh(owner, identities, now)
    return changed


def _owner_refresh(owner: SpendOwner, identities: set[Hashable], now: datetime) -> int:
    if not identities:
        return 0
    fields = ["pk", "budget_duration", "budget_reset_at", *_scope_fields(owner)]
    periods: dict[Hashable, datetime | None] = {}
    rows: dict[Hashable, models.Model] = {}
    for row in owner.rows(identities).only(*fields):
        identity = owner.identity_of(row)
        if identity not in identities:
            continue
        periods[identity], _ = budget_period(row.budget_duration, row.budget_reset_at, now)
        rows[identity] = row
    changed = 0
    for identity, total in period_spend(owner=owner, periods=periods).items():
        row = rows[identity]
        # Only if no reset happened meanwhile: this total belongs to the period that was read.
        unchanged = owner.model.objects.filter(pk=row.pk, budget_reset_at=row.budget_reset_at)
        changed += unchanged.exclude(spend=total).update(spend=total)
    return changed


def _scope_fields(owner: SpendOwner) -> list[str]:
    return ["user_id", "team_id", "owner_id"] if isinstance(owner, EndUserSpendOwner) else []


def period_spend(*, owner: SpendOwner, periods: dict[Hashable, datetime | None]) -> dict[Hashable, Decimal]:
    """Return the cost since each entity's period start (None: since always), by entity.

    Entities are ``owner``'s identities (a primary key; for end users, their scope and id).
    Whole days come from the rollups, one query per distinct first day; a period that starts mid-day
    adds the rest of that day from the ledger.
    """
    totals = {identity: Decimal("0") for identity in periods}
    by_first_day: dict[date | None, list[Hashable]] = defaultdict(list)
    for identity, start in periods.items():
        first_day = None if start is None else _first_whole_day(start)
        by_first_day[first_day].append(identity)
        if start is not None and start < utc_day_start(first_day):
            totals[identity] += _ledger_spend(owner.row_filter(identity), start, utc_day_start(first_day))
    for first_day, identities in by_first_day.items():
        rollups = SpendRollup.objects.filter(
            **{f"{column}__in": values for column, values in owner.names(identities).items()}
        )
        if first_day is not None:
            rollups = rollups.filter(day__gte=first_day)
        wanted = set(identities)
        for group in rollups.order_by().values(*owner.columns).annotate(cost=money_sum("cost")):
            identity = owner.identity(tuple(group[column] for column in owner.columns))
            if identity in wanted:
                totals[identity] += money_value(group["cost"])
    return totals


def _first_whole_day(start: datetime) -> date:
    day = start.astimezone(UTC).date()
    return day if utc_day_start(day) == start else day + timedelta(days=1)


def _ledger_spend(lookups: dict[str, Any], start: datetime, end: datetime) -> Decimal:
    cost = LedgerEntry.objects.filter(**lookups, created_at__gte=start, created_at__lt=end).aggregate(
        cost=money_sum("cost")
    )["cost"]
    return money_value(cost)
