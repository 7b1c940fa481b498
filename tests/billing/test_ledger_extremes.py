"""Every field of a usage record at its extreme still lands in the ledger, bounded, through the real writers.

A served request must never lose its row: text too long for its column, NUL bytes (PostgreSQL refuses
them in text and jsonb), characters outside the BMP, unpaired surrogates, integers past the column's
range (or past 64 bits, which JSON cannot carry), costs past the column's digits or not numbers at
all, JSON nested deeper than any encoder writes. Run on the configured database: SQLite in the
embedded pass, PostgreSQL when DATABASE_URL names it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import redis
from django.db import models

from billing.ledger import BatchWriter, RedisStreamWriter
from billing.ledger.consumer import ledger_consume
from billing.models import LedgerEntry
from billing.record_bounds import INTEGER_RANGES, TOO_DEEP, UNSTORABLE_COST
from billing.services.ledger import ledger_entries_insert
from tests.billing.factories import usage_record_make

NASTY = "a\x00b\U0001f600\ud800"  # a NUL, an astral character, an unpaired surrogate
LARGEST_COST = Decimal("999999999999")  # LedgerEntry.cost: 30 digits, 18 places; whole dollars


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def _text_fields() -> list[models.CharField]:
    return [
        field
        for field in LedgerEntry._meta.concrete_fields
        if isinstance(field, models.CharField) and field.name != "request_id"
    ]


def _integer_fields() -> list[models.Field]:
    return [field for field in LedgerEntry._meta.concrete_fields if type(field) in INTEGER_RANGES]


EXTREMES = [
    *[
        pytest.param({field.name: (NASTY * 1000)}, id=f"{field.name}-long-with-nul-astral-surrogate")
        for field in _text_fields()
    ],
    *[pytest.param({field.name: 2**80}, id=f"{field.name}-past-64-bits") for field in _integer_fields()],
    *[pytest.param({field.name: -(2**40)}, id=f"{field.name}-negative") for field in _integer_fields()],
    pytest.param({"cost": Decimal("1e40")}, id="cost-past-its-digits"),
    pytest.param({"cost": Decimal("-1e40")}, id="cost-negative-past-its-digits"),
    pytest.param({"cost": Decimal("1e-40")}, id="cost-below-its-places"),
    pytest.param({"cost": Decimal("NaN")}, id="cost-not-a-number"),
    pytest.param({"cost": Decimal("Infinity")}, id="cost-infinite"),
    pytest.param({"messages": deep(1000), "response": deep(300)}, id="json-nested-1000-levels"),
    pytest.param(
        {
            "messages": [{"role": "user", "content": NASTY, NASTY: 2**80, "n": float("nan")}],
            "response": {"choices": [{"text": "\x00" * 50}], "inf": float("inf")},
            "price": {"input": "1\x00", "\x00": "x"},
        },
        id="json-nul-surrogate-huge-int-nan",
    ),
    pytest.param(
        {"created_at": datetime(1, 1, 1, 2, tzinfo=timezone(timedelta(hours=5)))}, id="time-before-year-1"
    ),
    pytest.param({"created_at": datetime(2030, 1, 1, 12)}, id="time-naive"),
    pytest.param({"key_alias": "x" * 200, "end_user": "\U0001f600" * 200}, id="text-at-its-maximum"),
]


def assert_bounded(row: LedgerEntry, sent: dict[str, Any]) -> None:
    """Assert every value of ``row`` fits its column, and what was sent survived as its bounded form."""
    for field in _text_fields():
        value = getattr(row, field.name)
        assert len(value) <= field.max_length, field.name
        assert "\x00" not in value, field.name
        value.encode("utf-8")  # no unpaired surrogate
    for field in _integer_fields():
        value = getattr(row, field.name)
        low, high = INTEGER_RANGES[type(field)]
        assert value is None or low <= value <= high, field.name
    assert abs(row.cost) <= LARGEST_COST
    for name in ("messages", "response", "price"):
        text = json.dumps(getattr(row, name), allow_nan=False)  # no NaN or Infinity left either
        assert "\\u0000" not in text, name
    for name, value in sent.items():
        stored = getattr(row, name)
        if name in {field.name for field in _text_fields()}:
            cleaned = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
            assert stored == cleaned[: LedgerEntry._meta.get_field(name).max_length]
        elif name in {field.name for field in _integer_fields()}:
            low, high = INTEGER_RANGES[type(LedgerEntry._meta.get_field(name))]
            assert stored == (high if value > high else low)
        elif name == "cost":
            assert_cost(row, value)
        elif name == "messages" and isinstance(value, list) and value and isinstance(value[0], list):
            depth, node = 0, stored
            while isinstance(node, list):
                depth, node = depth + 1, node[0]
            assert node == TOO_DEEP
        elif name == "messages":
            assert stored[0]["content"] == "ab\U0001f600?"
            assert stored[0]["ab\U0001f600?"] == str(2**80)
        elif name == "created_at" and value.tzinfo is None:
            assert stored == value.replace(tzinfo=UTC)
        elif name == "created_at":
            assert stored == datetime.min.replace(tzinfo=UTC)


def assert_cost(row: LedgerEntry, sent: Decimal) -> None:
    """Assert the cost fits its column: rounded to its places, else the largest (or 0) and flagged."""
    if sent.is_finite() and abs(sent) <= LARGEST_COST:
        assert row.cost == sent.quantize(Decimal("1e-18"))
        assert UNSTORABLE_COST not in row.price
        return
    assert row.cost == (LARGEST_COST.copy_sign(sent) if sent.is_finite() else 0)
    assert row.price[UNSTORABLE_COST] == str(sent)


def _record(fields: dict[str, Any]):
    return usage_record_make(request_id=f"extreme-{uuid.uuid4().hex}", **fields)


@pytest.mark.django_db
@pytest.mark.parametrize("fields", EXTREMES)
def test_the_insert_service_stores_every_extreme_bounded(fields):
    record = _record(fields)

    result = ledger_entries_insert(records=[record])

    assert (result.written, result.rejected) == (1, [])
    assert_bounded(LedgerEntry.objects.get(request_id=record.request_id), fields)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fields", EXTREMES)
def test_the_embedded_writer_stores_every_extreme_bounded(fields, caplog):
    record = _record(fields)

    async def write() -> None:
        writer = BatchWriter(batch_size=1000, flush_interval=3600)
        await writer.write(record)
        await writer.close()

    asyncio.run(write())

    assert "refused by the database" not in caplog.text
    assert_bounded(LedgerEntry.objects.get(request_id=record.request_id), fields)


@pytest.fixture
def stream(redis_url, redis_prefix):
    """Return a stream name of this test's own, deleted afterwards."""
    name = f"{redis_prefix}:ledger-{uuid.uuid4().hex}"
    yield name
    redis.Redis.from_url(redis_url).delete(name, f"{name}:dead")


@pytest.mark.redis
@pytest.mark.django_db
@pytest.mark.parametrize("fields", EXTREMES)
def test_the_stream_writer_and_consumer_store_every_extreme_bounded(fields, redis_url, stream):
    record = _record(fields)

    async def write() -> None:
        writer = RedisStreamWriter(redis_url, stream=stream)
        await writer.write(record)  # the request path's write: must not raise, whatever the record holds
        await writer.close()

    asyncio.run(write())

    assert ledger_consume(stream=stream, redis_url=redis_url) == 1
    assert redis.Redis.from_url(redis_url).xlen(f"{stream}:dead") == 0
    assert_bounded(LedgerEntry.objects.get(request_id=record.request_id), fields)


@pytest.mark.django_db
def test_a_record_that_fits_is_stored_as_it_is():
    record = _record({"end_user": "\U0001f600" * 3, "messages": [{"role": "user", "content": "Hi"}]})

    ledger_entries_insert(records=[record])

    row = LedgerEntry.objects.get(request_id=record.request_id)
    assert (row.end_user, row.messages) == ("\U0001f600" * 3, [{"role": "user", "content": "Hi"}])
    assert row.price == {}


@pytest.mark.django_db(transaction=True)
def test_the_embedded_writer_logs_nothing_as_refused_for_a_batch_of_every_extreme(caplog):
    records = [_record(param.values[0]) for param in EXTREMES]

    async def write() -> None:
        writer = BatchWriter(batch_size=1000, flush_interval=3600)
        for record in records:
            await writer.write(record)
        await writer.close()

    asyncio.run(write())

    stored = set(LedgerEntry.objects.values_list("request_id", flat=True))
    assert stored == {record.request_id for record in records}
    assert "refused by the database" not in caplog.text

