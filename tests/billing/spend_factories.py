"""Spend test data: ledger rows, and the rollups the rollup task makes of them.

``ledger_entry_make`` writes one request; ``rollups_refresh`` replaces the rollups with the ledger's
sums per UTC day and dimensions, the grouping of the rollup task (billing.services.rollups), added up
here in Python so the expected figures are exact by construction. ``rollup_make`` writes a rollup row
directly, for figures the ledger cannot give.

``urlpatterns`` routes the spend pages and APIs as gateway_project.urls does; the spend tests run on
it (``pytest.mark.urls("tests.billing.spend_factories")``) so they test these routes alone.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.urls import include, path
from django.utils import timezone

from billing.models import LedgerEntry, SpendRollup
from llm_gateway.models import VirtualKey

_sequence = itertools.count(1)
DIMENSIONS = ("key_token", "team_id", "user_id", "end_user", "model_group", "deployment_id", "provider")

urlpatterns = [
    path("admin/billing/spend/", include("billing.dashboards.urls")),
    path("admin/", admin.site.urls),
    path("", include("billing.apis.urls")),
]


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    """Return ``hour:minute`` UTC on ``day``."""
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def days_ago(count: int) -> date:
    return timezone.now().astimezone(UTC).date() - timedelta(days=count)


def ledger_entry_make(*, key: VirtualKey | None = None, **fields: Any) -> LedgerEntry:
    """Write one ledger row; ``key`` fills its key, alias, team and owner as the request path does."""
    number = next(_sequence)
    if key is not None:
        fields.setdefault("key_token", str(key.token))
        fields.setdefault("key_alias", key.key_alias)
        fields.setdefault("team_id", str(key.team_id) if key.team_id else "")
        fields.setdefault("user_id", str(key.user_id) if key.user_id else "")
    fields.setdefault("request_id", f"req-{number:06d}")
    fields.setdefault("created_at", timezone.now())
    fields.setdefault("model_requested", fields.get("model_group", "gpt-4o"))
    fields.setdefault("model_group", "gpt-4o")
    fields.setdefault("deployment_id", f"{fields['model_group']}-deployment")
    fields.setdefault("provider", "openai")
    fields.setdefault("provider_model", fields["model_group"])
    fields.setdefault("prompt_tokens", 100)
    fields.setdefault("completion_tokens", 20)
    fields.setdefault("cost", Decimal("0.0012500000"))
    fields.setdefault("latency_ms", 400)
    if fields.get("status") == LedgerEntry.Status.ERROR:
        fields.setdefault("http_status", 500)
        fields.setdefault("error_type", "api_error")
    return LedgerEntry.objects.create(**fields)


def rollups_refresh() -> int:
    """Replace every rollup with the ledger's sums per UTC day x dimensions; return the row count."""
    groups: dict[tuple, dict[str, Any]] = defaultdict(lambda: defaultdict(int, cost=Decimal("0")))
    for entry in LedgerEntry.objects.all():
        day = entry.created_at.astimezone(UTC).date()
        group = groups[(day, *(getattr(entry, name) for name in DIMENSIONS))]
        group["requests"] += 1
        group["errors"] += entry.status == LedgerEntry.Status.ERROR
        group["cache_hits"] += entry.cache_hit
        group["streamed_requests"] += entry.stream
        group["prompt_tokens"] += entry.prompt_tokens
        group["completion_tokens"] += entry.completion_tokens
        group["cached_tokens"] += entry.cached_tokens
        group["cost"] += entry.cost
        group["latency_ms_sum"] += entry.latency_ms
        group["time_to_first_token_ms_sum"] += entry.time_to_first_token_ms or 0
    SpendRollup.objects.all().delete()
    rows = [
        SpendRollup(day=day, **dict(zip(DIMENSIONS, dimensions, strict=True)), **sums)
        for (day, *dimensions), sums in groups.items()
    ]
    return len(SpendRollup.objects.bulk_create(rows))


def rollup_make(*, day: date, **fields: Any) -> SpendRollup:
    """Write a rollup row directly (figures of requests the ledger no longer holds)."""
    fields.setdefault("model_group", "gpt-4o")
    fields.setdefault("provider", "openai")
    return SpendRollup.objects.create(day=day, **fields)


def ledger_cost(**filters: Any) -> Decimal:
    """Return the exact sum of the matching ledger rows' costs, added up in Python."""
    return sum((entry.cost for entry in LedgerEntry.objects.filter(**filters)), Decimal("0"))
