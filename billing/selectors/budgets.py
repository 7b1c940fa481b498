"""Read budget burn: how far keys' and teams' budgets are spent in their period, and held right now.

Spent is the budget's stored spend for its current period (the rollups keep it up to date), held what
the limiter has reserved for requests in flight.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from asgiref.sync import async_to_sync

from billing.limits import limiter
from billing.limits.periods import budget_period
from billing.limits.types import BudgetLimit, BudgetSpend
from billing.selectors.labels import NO_TEAM, uuid_text
from billing.selectors.rollups import ZERO, Ranking
from llm_gateway.models import Team, VirtualKey

MONEY_PLACES = Decimal("0.0000000001")  # the ledger's 10 decimal places
_BUDGET_FIELDS = ("max_budget", "spend", "budget_duration", "budget_reset_at")


@dataclass(frozen=True, slots=True)
class BudgetBurn:
    """How far a key's or team's budget is spent in its current period, and where it is heading."""

    scope: str  # "key" or "team": whose budget, as the limiter names it
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


def budget_burn_keys(
    *, team_ids: Collection[str] | None = None, now: datetime, limit: int | None = None
) -> Ranking[BudgetBurn]:
    """Return the keys with a budget, within ``team_ids``, by spend in their period, biggest first.

    Every key is ranked from a few of its columns; only the first ``limit`` (None: all) have their
    holds read from the limiter.
    """
    keys = VirtualKey.objects.filter(max_budget__isnull=False)
    if team_ids is not None:
        keys = keys.filter(team_id__in=[team_id for team_id in map(uuid_text, team_ids) if team_id])
    rows = keys.values_list("token", "key_alias", "key_prefix", "team__team_alias", *_BUDGET_FIELDS)
    burns = [
        _burn("key", str(token), alias or prefix, team_alias or NO_TEAM, *budget, now=now)
        for token, alias, prefix, team_alias, *budget in rows
    ]
    return _ranking(burns, limit=limit)


def budget_burn_teams(
    *, team_ids: Collection[str] | None = None, now: datetime, limit: int | None = None
) -> Ranking[BudgetBurn]:
    """Return the teams with a budget, within ``team_ids``, by spend in their period, biggest first."""
    teams = Team.objects.filter(max_budget__isnull=False)
    if team_ids is not None:
        teams = teams.filter(team_id__in=[team_id for team_id in map(uuid_text, team_ids) if team_id])
    rows = teams.values_list("team_id", "team_alias", *_BUDGET_FIELDS)
    burns = [_burn("team", str(team_id), alias, alias, *budget, now=now) for team_id, alias, *budget in rows]
    return _ranking(burns, limit=limit)


def budget_burn(*, owner: Team | VirtualKey, now: datetime) -> BudgetBurn:
    """Return a key's or team's spend and budget in its current period, with the limiter's holds."""
    if isinstance(owner, Team):
        scope, label, team_label = "team", owner.team_alias, owner.team_alias
    else:
        scope, label, team_label = "key", str(owner), owner.team.team_alias if owner.team else NO_TEAM
    budget = [getattr(owner, name) for name in _BUDGET_FIELDS]
    burn = _burn(scope, str(owner.pk), label, team_label, *budget, now=now)
    return replace(burn, held=budget_holds(burns=[burn])[0])


def budget_holds(*, burns: Sequence[BudgetBurn]) -> list[Decimal]:
    """Return what the limiter holds now on each budget of ``burns`` for requests in flight, in order.

    The limiter is async and its callers here sync: each ``async_to_sync`` is a thread hop and a new
    event loop (for Redis a new connection too), about a millisecond. So every counter is read in one
    hop; a hop per budget took most of a second on a dashboard of 1,000 keys.
    """
    budgets = [
        BudgetLimit(
            scope=burn.scope,
            id=burn.id,
            max_budget=ZERO,
            period_start=burn.period_start,
            period_end=burn.period_end,
        )
        for burn in burns
    ]
    if not budgets:
        return []

    async def counters() -> list[BudgetSpend | None]:
        shared = limiter()
        return [await shared.spend_get(budget) for budget in budgets]

    return [ZERO if counter is None else counter.held for counter in async_to_sync(counters)()]


def _burn(
    scope: str,
    entity_id: str,
    label: str,
    team_label: str,
    max_budget: Decimal | None,
    spend: Decimal,
    duration: str,
    reset_at: datetime | None,
    *,
    now: datetime,
) -> BudgetBurn:
    """Return the burn without the limiter's holds (held 0).

    The stored spend belongs to the period ending at ``budget_reset_at``: once that has passed (and
    before the reset task catches up) the current period is a later one, with nothing spent yet.
    """
    start, end = budget_period(duration, reset_at, now)
    stale = end is not None and reset_at is not None and reset_at < now
    return BudgetBurn(
        scope=scope,
        id=entity_id,
        label=label,
        team_label=team_label,
        max_budget=max_budget,
        spent=ZERO if stale else spend,
        held=ZERO,
        period_start=start,
        period_end=end,
    )


def _ranking(burns: list[BudgetBurn], *, limit: int | None) -> Ranking[BudgetBurn]:
    burns.sort(key=lambda burn: (-burn.spent, burn.label))
    shown = burns if limit is None else burns[:limit]
    held = budget_holds(burns=shown)
    return Ranking([replace(burn, held=amount) for burn, amount in zip(shown, held, strict=True)], len(burns))
