"""Usage records on their way to the ledger: stored field for field, once per request id."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.models import LedgerEntry
from billing.records import UsageRecord
from billing.services.ledger import ledger_entries_insert
from tests.billing.factories import usage_record_make

pytestmark = pytest.mark.django_db


def _every_field_set() -> UsageRecord:
    return usage_record_make(
        created_at=datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
        key_alias="billing-bot",
        team_id="team-1",
        user_id="42",
        end_user="customer-7",
        operation="text_completion",
        stream=True,
        prompt_tokens=1200,
        completion_tokens=300,
        cached_tokens=1000,
        cache_creation_tokens=100,
        reasoning_tokens=50,
        images=2,
        cost=Decimal("0.000123456789012345"),
        price={"source": "admin", "input_cost_per_token": "0.0000025", "price_id": "7"},
        time_to_first_token_ms=85,
        status=LedgerEntry.Status.ERROR,
        http_status=429,
        error_type="rate_limit_exceeded",
        cache_hit=True,
        retries=2,
        fallbacks=1,
        billing_basis=LedgerEntry.BillingBasis.PARTIAL,
        messages=[{"role": "user", "content": "héllo 🙂"}],
        response={"choices": [{"text": "hi"}], "usage": None},
    )


def test_every_field_is_stored_as_the_record_has_it():
    record = _every_field_set()

    assert ledger_entries_insert(records=[record]).written == 1

    row = LedgerEntry.objects.get(request_id=record.request_id)
    stored = UsageRecord(**{name: getattr(row, name) for name in UsageRecord.__dataclass_fields__})
    assert stored == record


def test_empty_optional_fields_are_stored_empty():
    record = usage_record_make(time_to_first_token_ms=None, messages=None, response=None, price={})

    ledger_entries_insert(records=[record])

    row = LedgerEntry.objects.get(request_id=record.request_id)
    assert (row.time_to_first_token_ms, row.messages, row.response, row.price) == (None, None, None, {})


def test_a_request_id_already_stored_is_skipped():
    first, second = usage_record_make(), usage_record_make()
    ledger_entries_insert(records=[first])

    result = ledger_entries_insert(records=[first, second])

    assert (result.written, result.rejected) == (1, [])
    assert LedgerEntry.objects.count() == 2


def test_a_record_the_database_refuses_is_returned_and_the_rest_stored():
    good = usage_record_make()
    bad = usage_record_make(created_at=None)  # a NOT NULL column: no bound can fit it

    result = ledger_entries_insert(records=[good, bad])

    assert result.written == 1
    assert [record for record, _ in result.rejected] == [bad]
    assert list(LedgerEntry.objects.values_list("request_id", flat=True)) == [good.request_id]
