"""The Redis stream consumer: at least once into the ledger, exactly one row per request id."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
import redis

from billing.ledger.consumer import LEDGER_GROUP, ledger_consume, ledger_drain
from billing.ledger.redis_stream import RECORD_FIELD, RedisStreamWriter
from billing.models import LedgerEntry
from billing.records import UsageRecord
from tests.billing.factories import ledger_entries_make, usage_record_make


@pytest.fixture
def client(redis_url) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def stream(client, redis_prefix):
    """Return a stream name of this test's own, deleted afterwards."""
    name = f"{redis_prefix}:ledger-{uuid.uuid4().hex}"
    yield name
    client.delete(name, f"{name}:dead")


def stream_write(url: str, stream: str, records: list[UsageRecord]) -> None:
    """Write ``records`` through the gateway's stream writer."""

    async def write_all() -> None:
        writer = RedisStreamWriter(url, stream=stream)
        for record in records:
            await writer.write(record)
        await writer.close()

    asyncio.run(write_all())


def stored_ids() -> list[str]:
    return sorted(LedgerEntry.objects.values_list("request_id", flat=True))


def pending(client: redis.Redis, stream: str) -> int:
    return client.xpending(stream, LEDGER_GROUP)["pending"]


pytestmark = pytest.mark.django_db


@pytest.mark.redis
def test_it_stores_every_record_once_in_batches_and_empties_the_stream(redis_url, client, stream):
    records = [usage_record_make() for _ in range(1200)]
    stream_write(redis_url, stream, records)

    counts = [ledger_consume(stream=stream, redis_url=redis_url, batch_size=500) for _ in range(4)]

    assert counts == [500, 500, 200, 0]
    assert stored_ids() == sorted(record.request_id for record in records)
    assert client.xlen(stream) == 0
    assert pending(client, stream) == 0


@pytest.mark.redis
def test_a_row_equals_its_record(redis_url, stream):
    record = usage_record_make(team_id=str(uuid.uuid4()), cached_tokens=3, price={"input": "0.00000015"})
    stream_write(redis_url, stream, [record])

    ledger_consume(stream=stream, redis_url=redis_url)

    entry = LedgerEntry.objects.get()
    assert UsageRecord(**{name: getattr(entry, name) for name in UsageRecord.__slots__}) == record


@pytest.mark.redis
def test_a_request_id_delivered_twice_is_stored_once(redis_url, client, stream):
    record = usage_record_make()
    ledger_entries_make(record)  # already stored by an earlier delivery
    stream_write(redis_url, stream, [record, record])

    assert ledger_consume(stream=stream, redis_url=redis_url) == 0
    assert stored_ids() == [record.request_id]
    assert client.xlen(stream) == 0


@pytest.mark.redis
def test_entries_of_a_consumer_that_died_before_acking_are_reclaimed_and_stored_once(
    redis_url, client, stream
):
    records = [usage_record_make() for _ in range(10)]
    stream_write(redis_url, stream, records)
    ledger_consume(stream=stream, redis_url=redis_url, batch_size=1, consumer="warm-up")  # makes the group
    # The dead consumer read the other nine, committed four rows, and died before its XACK.
    read = client.xreadgroup(LEDGER_GROUP, "dead-consumer", {stream: ">"}, count=100)
    assert len(read[0][1]) == 9
    ledger_entries_make(*records[1:5])

    # Not idle long enough: a live consumer must not take entries another may still be working on.
    assert ledger_consume(stream=stream, redis_url=redis_url, consumer="live", reclaim_idle_ms=60_000) == 0
    assert pending(client, stream) == 9

    written = ledger_consume(stream=stream, redis_url=redis_url, consumer="live", reclaim_idle_ms=0)

    assert written == 5
    assert stored_ids() == sorted(record.request_id for record in records)
    assert pending(client, stream) == 0
    assert client.xlen(stream) == 0


@pytest.mark.redis
def test_unreadable_and_refused_records_go_to_the_dead_letter_stream(redis_url, client, stream):
    good = usage_record_make()
    refused = usage_record_make(created_at=None)  # a NOT NULL column: no bound can fit it
    client.xadd(stream, {RECORD_FIELD: b"{not json"})
    stream_write(redis_url, stream, [good, refused])

    assert ledger_consume(stream=stream, redis_url=redis_url) == 1

    assert stored_ids() == [good.request_id]
    assert client.xlen(stream) == 0
    dead = [fields for _, fields in client.xrange(f"{stream}:dead")]
    assert [entry[RECORD_FIELD.encode()] for entry in dead] == [b"{not json", refused.to_json()]
    assert dead[0][b"reason"].startswith(b"unreadable record")
    assert dead[1][b"reason"].startswith(b"refused by the database")


@pytest.mark.redis
def test_with_block_ms_it_waits_for_a_record_to_arrive(redis_url, stream):
    ledger_consume(stream=stream, redis_url=redis_url)  # makes the group: entries from now on are new
    record = usage_record_make()
    writer = threading.Timer(0.2, stream_write, args=(redis_url, stream, [record]))
    writer.start()

    written = ledger_consume(stream=stream, redis_url=redis_url, block_ms=30_000)

    writer.join()
    assert written == 1
    assert stored_ids() == [record.request_id]


@pytest.mark.redis
def test_draining_consumes_batch_after_batch_until_the_stream_is_empty(settings, redis_url, client, stream):
    settings.GATEWAY = {**settings.GATEWAY, "REDIS_URL": redis_url}
    records = [usage_record_make() for _ in range(25)]
    stream_write(redis_url, stream, records)

    assert ledger_drain(stream=stream, batch_size=10) == 25

    assert stored_ids() == sorted(record.request_id for record in records)
    assert client.xlen(stream) == 0


def test_draining_is_a_no_op_in_the_embedded_mode(settings):
    settings.GATEWAY = {**settings.GATEWAY, "REDIS_URL": ""}

    assert ledger_drain() == 0
