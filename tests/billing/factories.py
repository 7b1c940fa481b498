"""Ledger test data: usage records as the request path makes them, and ledger rows written from them.

Rows go through the ledger service (``ledger_entries_insert``), as the writers store them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from billing.models import LedgerEntry
from billing.records import UsageRecord
from billing.services.ledger import ledger_entries_insert

DEFAULT_KEY_TOKEN = "00000000-0000-4000-8000-000000000001"


def usage_record_make(**fields: Any) -> UsageRecord:
    """Return a usage record of a successful chat request; ``fields`` override its values."""
    fields.setdefault("request_id", f"chatcmpl-{uuid.uuid4().hex}")
    fields.setdefault("created_at", timezone.now())
    fields.setdefault("key_token", DEFAULT_KEY_TOKEN)
    fields.setdefault("model_requested", "gpt-4o-mini")
    fields.setdefault("model_group", "gpt-4o-mini")
    fields.setdefault("deployment_id", "gpt-4o-mini-1")
    fields.setdefault("provider", "openai")
    fields.setdefault("provider_model", "gpt-4o-mini")
    fields.setdefault("prompt_tokens", 12)
    fields.setdefault("completion_tokens", 30)
    fields.setdefault("cost", Decimal("0.0000198000"))
    fields.setdefault("latency_ms", 250)
    return UsageRecord(**fields)


def ledger_entries_make(*records: UsageRecord) -> None:
    """Store ``records`` as ledger rows through the ledger service."""
    result = ledger_entries_insert(records=records)
    assert not result.rejected, result.rejected


def ledger_entry_make(**fields: Any) -> LedgerEntry:
    """Store one usage record (see usage_record_make) and return its ledger row."""
    record = usage_record_make(**fields)
    ledger_entries_make(record)
    return LedgerEntry.objects.get(request_id=record.request_id)


def at(text: str) -> datetime:
    """Return the UTC time written as ISO 8601 without a zone, e.g. at("2025-03-01T12:00")."""
    return datetime.fromisoformat(text + "+00:00")
