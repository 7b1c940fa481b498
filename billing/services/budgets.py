"""Budget periods: reset the spend of keys, teams, users and end users when their period ends."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Q

from billing.limits.periods import budget_period
from billing.services.spend import SPEND_OWNERS


def budgets_reset(*, now: datetime) -> int:
    """Start a new period for every budget whose ``budget_reset_at`` has passed; return how many.

    Spend goes back to zero and ``budget_reset_at`` moves to the end of the period ``now`` is in
    (a worker that was down for three periods skips to the current one), as the limiter computes it
    (billing.limits.periods), so its counter for the period stays the same one. A budget with a
    duration and no reset time gets the limiter's; one whose duration was removed stops resetting.
    Idempotent: a row is updated only if it still holds the reset time that was read, so two
    workers cannot reset one period twice, and a second run finds nothing due.
    """
    changed = 0
    for owner in SPEND_OWNERS:
        objects = owner.model.objects
        due = Q(budget_reset_at__lte=now) | (Q(budget_reset_at__isnull=True) & ~Q(budget_duration=""))
        for row in objects.filter(due).only("pk", "budget_duration", "budget_reset_at"):
            _, end = budget_period(row.budget_duration, row.budget_reset_at, now)
            if end is None and row.budget_reset_at is None:
                continue  # "0d": a budget that never resets
            if end is None:
                update = {"budget_reset_at": None}  # no duration (or "0d") any more: a lifetime budget
            elif row.budget_reset_at is None:
                update = {"budget_reset_at": end}  # the period the limiter already counts in
            else:
                update = {"budget_reset_at": end, "spend": Decimal("0")}
            changed += objects.filter(pk=row.pk, budget_reset_at=row.budget_reset_at).update(**update)
    return changed
