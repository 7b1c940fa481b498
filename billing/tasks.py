"""Billing's Celery tasks: thin and idempotent, each calls one service. billing/schedule.py runs them."""

from __future__ import annotations

from datetime import date

from celery import shared_task
from django.utils import timezone

from billing.ledger.consumer import ledger_drain
from billing.services.alerts import budget_alerts_send
from billing.services.budgets import budgets_reset
from billing.services.ledger import ledger_prune
from billing.services.periods import spend_rollup_days_default
from billing.services.rollups import spend_rollups_refresh


@shared_task
def ledger_consume_task() -> int:
    """Move waiting records from the Redis stream into the ledger (a no-op in the embedded mode)."""
    return ledger_drain()


@shared_task
def spend_rollup_task(day: str | None = None) -> int:
    """Rebuild the rollups of ``day`` (ISO date; default yesterday and today) and the spend fields."""
    now = timezone.now()
    days = [date.fromisoformat(day)] if day else spend_rollup_days_default(now=now)
    return spend_rollups_refresh(days=days, now=now)


@shared_task
def budget_reset_task() -> int:
    """Start a new budget period for every key, team and end user whose period ended."""
    return budgets_reset(now=timezone.now())


@shared_task
def budget_alerts_task() -> int:
    """Send the budget alerts that are due (soft budget, 50/80/95 % of the budget)."""
    return budget_alerts_send(now=timezone.now())


@shared_task
def ledger_prune_task() -> int:
    """Delete ledger rows past LEDGER_RETENTION_DAYS, in batches; the rollups stay."""
    return ledger_prune()
