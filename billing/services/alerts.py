"""Budget alerts: tell the operator when a key, team, user or end user nears or passes its budget.

Thresholds are the soft budget and 50/80/95 % of the hard budget. Each is sent at most once per
budget period (BudgetAlert's unique constraint), by webhook (a JSON POST to ALERT_WEBHOOK_URL) and
by email (to ALERT_EMAILS). The BudgetAlert row is written only once every configured channel took
the alert, so a channel that failed is tried again on the next run.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
from django.core.mail import send_mail
from django.db import models
from django.db.models import F, Q

from billing.limits.periods import budget_period
from billing.models import BudgetAlert
from llm_gateway.conf import gateway_setting
from llm_gateway.models import EndUser, Team, UserBudget, VirtualKey

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 10.0
SOFT = "soft"
PERCENT_THRESHOLDS = (("50", Decimal("0.50")), ("80", Decimal("0.80")), ("95", Decimal("0.95")))
LOWEST_SHARE = PERCENT_THRESHOLDS[0][1]
ALERT_ENTITIES: tuple[tuple[str, type[models.Model]], ...] = (
    ("key", VirtualKey),
    ("team", Team),
    ("user", UserBudget),
    ("end_user", EndUser),
)


@dataclass(frozen=True)
class BudgetAlertDue:
    entity: str  # key, team, user or end_user
    entity_id: str
    name: str
    threshold: str  # soft, 50, 80 or 95
    spend: Decimal
    limit: Decimal  # the amount the threshold stands for
    max_budget: Decimal | None
    period_start: datetime
    period_end: datetime | None

    def payload(self) -> dict[str, Any]:
        return {
            "type": "budget_alert",
            "entity": self.entity,
            "entity_id": self.entity_id,
            "name": self.name,
            "threshold": self.threshold,
            "spend": str(self.spend),
            "limit": str(self.limit),
            "max_budget": None if self.max_budget is None else str(self.max_budget),
            "period_start": self.period_start.isoformat(),
            "period_end": None if self.period_end is None else self.period_end.isoformat(),
            "message": self.message(),
        }

    def message(self) -> str:
        label = f"{self.entity.replace('_', ' ')} {self.name!r}"
        if self.threshold == SOFT:
            return f"Budget alert: {label} spent {self.spend} USD, past its soft budget of {self.limit} USD."
        return (
            f"Budget alert: {label} spent {self.spend} USD, {self.threshold}% of its "
            f"{self.max_budget} USD budget."
        )


def budget_alerts_send(*, now: datetime) -> int:
    """Send every alert that is due and was not sent this period; return how many were sent."""
    webhook_url = gateway_setting("ALERT_WEBHOOK_URL")
    emails = list(gateway_setting("ALERT_EMAILS"))
    if not webhook_url and not emails:
        return 0
    sent = 0
    for alert in budget_alerts_due(now=now):
        delivered = True
        if webhook_url:
            delivered = _webhook_send(webhook_url, alert) and delivered
        if emails:
            delivered = _email_send(emails, alert) and delivered
        if delivered:
            BudgetAlert.objects.bulk_create(
                [
                    BudgetAlert(
                        entity=alert.entity,
                        entity_id=alert.entity_id,
                        period_start=alert.period_start,
                        threshold=alert.threshold,
                        spend=alert.spend,
                        limit=alert.limit,
                    )
                ],
                ignore_conflicts=True,  # another worker recorded the same alert: keep one
            )
            sent += 1
    return sent


def budget_alerts_due(*, now: datetime) -> Iterator[BudgetAlertDue]:
    """Yield the thresholds crossed in each budget's current period that have no BudgetAlert yet."""
    for entity, model in ALERT_ENTITIES:
        has_soft = any(field.name == "soft_budget" for field in model._meta.fields)
        near = Q(max_budget__isnull=False, spend__gte=F("max_budget") * LOWEST_SHARE)
        if has_soft:
            near |= Q(soft_budget__isnull=False, spend__gte=F("soft_budget"))
        rows = model.objects.filter(near)
        if entity == "user":
            rows = rows.select_related("user")  # named by the username
        candidates = [alert for row in rows for alert in _crossed(entity, row, now)]
        sent = set(
            BudgetAlert.objects.filter(
                entity=entity, entity_id__in={alert.entity_id for alert in candidates}
            ).values_list("entity_id", "period_start", "threshold")
        )
        for alert in candidates:
            if (alert.entity_id, alert.period_start, alert.threshold) not in sent:
                yield alert


def _crossed(entity: str, row: Any, now: datetime) -> Iterator[BudgetAlertDue]:
    period_start, period_end = budget_period(row.budget_duration, row.budget_reset_at, now)
    if period_end is not None and (row.budget_reset_at is not None and row.budget_reset_at < now):
        return  # the stored spend is the last period's: budgets_reset zeroes it on its next run
    common = {
        "entity": entity,
        "entity_id": str(row.pk),
        "name": _name(entity, row),
        "spend": row.spend,
        "max_budget": row.max_budget,
        # A lifetime budget has one period, since the row was created.
        "period_start": period_start or row.created_at,
        "period_end": period_end,
    }
    soft_budget = getattr(row, "soft_budget", None)
    if soft_budget is not None and row.spend >= soft_budget:
        yield BudgetAlertDue(threshold=SOFT, limit=soft_budget, **common)
    if row.max_budget is not None:
        for threshold, share in PERCENT_THRESHOLDS:
            limit = row.max_budget * share
            if row.spend >= limit:
                yield BudgetAlertDue(threshold=threshold, limit=limit, **common)


def _name(entity: str, row: Any) -> str:
    if entity == "key":
        return row.key_alias or row.key_prefix
    if entity == "team":
        return row.team_alias
    if entity == "user":
        return row.user.get_username()
    return row.alias or row.user_id


def _webhook_send(url: str, alert: BudgetAlertDue) -> bool:
    try:
        httpx.post(url, json=alert.payload(), timeout=WEBHOOK_TIMEOUT).raise_for_status()
    except httpx.HTTPError as error:
        logger.warning("Budget alert webhook failed, retrying on the next run: %s", error)
        return False
    return True


def _email_send(recipients: list[str], alert: BudgetAlertDue) -> bool:
    try:
        send_mail(alert.message(), _email_body(alert), None, recipients, fail_silently=False)
    except (smtplib.SMTPException, OSError) as error:
        logger.warning("Budget alert email failed, retrying on the next run: %s", error)
        return False
    return True


def _email_body(alert: BudgetAlertDue) -> str:
    period_end = alert.period_end.isoformat() if alert.period_end else "never (a lifetime budget)"
    return (
        f"{alert.message()}\n\n"
        f"{alert.entity.replace('_', ' ').capitalize()}: {alert.name} ({alert.entity_id})\n"
        f"Spend this period: {alert.spend} USD\n"
        f"Budget: {alert.max_budget if alert.max_budget is not None else 'none'} USD\n"
        f"Period: {alert.period_start.isoformat()} until {period_end}\n"
    )
