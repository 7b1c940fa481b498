"""The ledger writers: the embedded batch writer, the Redis stream writer, and which one a process uses."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from asgiref.sync import sync_to_async
from django.db import connection

import billing.ledger
from billing.ledger import BatchWriter, RedisStreamWriter, ledger_writer, ledger_writer_close
from billing.ledger.consumer import ledger_consume
from billing.ledger.redis_stream import RECORD_FIELD
from billing.models import LedgerEntry
from billing.records import UsageRecord
from tests.billing.factories import usage_record_make

REPO_ROOT = Path(__file__).resolve().parents[2]


def in_thread(function):
    """Run ``function`` as the writer does, in asgiref's thread, closing the connection it opens there."""

    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()  # else it outlives the test and keeps the test database in use

    return sync_to_async(run)


async def _rows() -> int:
    return await in_thread(LedgerEntry.objects.count)()


async def rows_eventually(expected: int, timeout: float = 20) -> None:
    """Wait until the ledger holds ``expected`` rows (the background flusher runs on its own time)."""
    deadline = time.monotonic() + timeout
    while (count := await _rows()) != expected:
        assert time.monotonic() < deadline, f"the ledger has {count} rows, not {expected}"
        await asyncio.sleep(0.01)


@pytest.fixture
def stream(redis_url, redis_prefix):
    """Return a stream name of this test's own, deleted afterwards."""
    name = f"{redis_prefix}:ledger-{uuid.uuid4().hex}"
    yield name
    redis.Redis.from_url(redis_url).delete(name, f"{name}:dead")


@pytest.mark.django_db(transaction=True)
class TestBatchWriter:
    async def test_it_flushes_when_a_batch_is_full(self):
        writer = BatchWriter(batch_size=3, flush_interval=3600)
        await writer.write(usage_record_make())
        await writer.write(usage_record_make())

        assert writer.waiting == 2
        assert await _rows() == 0

        await writer.write(usage_record_make())
        await rows_eventually(3)
        assert writer.waiting == 0
        await writer.close()

    async def test_it_flushes_every_interval(self):
        writer = BatchWriter(batch_size=1000, flush_interval=0.05)
        records = [usage_record_make() for _ in range(4)]
        for record in records:
            await writer.write(record)

        await rows_eventually(4)
        stored = await in_thread(lambda: set(LedgerEntry.objects.values_list("request_id", flat=True)))()
        assert stored == {record.request_id for record in records}
        await writer.close()

    async def test_close_flushes_what_is_waiting(self):
        writer = BatchWriter(batch_size=1000, flush_interval=3600)
        for _ in range(5):
            await writer.write(usage_record_make())
        assert await _rows() == 0

        await writer.close()

        assert await _rows() == 5
        assert writer.waiting == 0

    async def test_the_same_request_id_is_stored_once(self):
        writer = BatchWriter(batch_size=1000, flush_interval=3600)
        record = usage_record_make()
        await writer.write(record)
        await writer.write(record)
        await writer.close()
        await writer.write(record)  # written again after its row exists: a retried request's record
        await writer.close()

        assert await _rows() == 1

    async def test_a_row_stores_every_field_of_its_record(self):
        writer = BatchWriter(batch_size=1000, flush_interval=3600)
        record = usage_record_make(
            team_id=str(uuid.uuid4()),
            end_user="customer-7",
            stream=True,
            cached_tokens=4,
            time_to_first_token_ms=120,
            messages=[{"role": "user", "content": "Hi"}],
            response={"choices": []},
        )
        await writer.write(record)
        await writer.close()

        entry = await in_thread(LedgerEntry.objects.get)(request_id=record.request_id)
        assert UsageRecord(**{name: getattr(entry, name) for name in UsageRecord.__slots__}) == record

    async def test_a_record_the_database_refuses_is_logged_whole_and_the_batch_stored(self, caplog):
        writer = BatchWriter(batch_size=1000, flush_interval=3600)
        refused = usage_record_make(created_at=None)  # a NOT NULL column: no bound can fit it
        stored = usage_record_make()
        await writer.write(refused)
        await writer.write(stored)

        with caplog.at_level(logging.ERROR, logger="billing.ledger.embedded"):
            await writer.close()

        assert await in_thread(lambda: list(LedgerEntry.objects.values_list("request_id", flat=True)))() == [
            stored.request_id
        ]
        assert refused.to_json().decode() in caplog.text


@pytest.mark.redis
class TestRedisStreamWriter:
    async def test_a_write_returns_once_the_record_is_in_the_stream(self, redis_url, stream):
        writer = RedisStreamWriter(redis_url, stream=stream)
        record = usage_record_make()

        await writer.write(record)

        [(_, fields)] = redis.Redis.from_url(redis_url).xrange(stream)
        assert UsageRecord.from_json(fields[RECORD_FIELD.encode()]) == record
        await writer.close()

    @pytest.mark.django_db
    def test_the_same_request_id_written_twice_is_stored_once(self, redis_url, stream):
        writer = RedisStreamWriter(redis_url, stream=stream)
        record = usage_record_make()

        async def write_twice() -> None:
            await writer.write(record)
            await writer.write(record)
            await writer.close()

        asyncio.run(write_twice())
        written = ledger_consume(stream=stream, redis_url=redis_url)

        assert written == 1
        assert LedgerEntry.objects.count() == 1
        assert redis.Redis.from_url(redis_url).xlen(stream) == 0


# Writes records one at a time through RedisStreamWriter, printing each id once its write returned.
WRITE_UNTIL_KILLED = """
import asyncio, sys
import django
django.setup()
from billing.ledger.redis_stream import RedisStreamWriter
from tests.billing.factories import usage_record_make

async def main(url, stream, prefix):
    writer = RedisStreamWriter(url, stream=stream)
    for number in range(200):
        record = usage_record_make(request_id=f"{prefix}-{number}")
        await writer.write(record)
        print("acked", record.request_id, flush=True)
        await asyncio.sleep(0.005)  # a server between requests: the kill lands mid-way

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.redis
@pytest.mark.django_db
def test_a_killed_writer_loses_no_acknowledged_record(redis_url, stream):
    prefix = uuid.uuid4().hex
    process = subprocess.Popen(
        [sys.executable, "-c", WRITE_UNTIL_KILLED, redis_url, stream, prefix],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked = []
    try:
        for line in process.stdout:
            acked.append(line.split()[1])
            if len(acked) == 50:
                process.kill()  # SIGKILL: no shutdown, no flush, no finally
                break
    finally:
        process.kill()
        remaining, errors = process.communicate(timeout=30)
    acked += [line.split()[1] for line in remaining.splitlines()]  # printed before the kill landed
    assert 50 <= len(acked) < 200, errors

    while ledger_consume(stream=stream, redis_url=redis_url, batch_size=64):
        pass

    stored = set(
        LedgerEntry.objects.filter(request_id__startswith=prefix).values_list("request_id", flat=True)
    )
    assert set(acked) <= stored
    assert redis.Redis.from_url(redis_url).xlen(stream) == 0


class TestLedgerWriter:
    @pytest.fixture(autouse=True)
    def _fresh_writer(self, monkeypatch):
        monkeypatch.setattr(billing.ledger, "_writer", None)

    def test_it_is_the_batch_writer_without_redis(self, settings):
        settings.GATEWAY = {**settings.GATEWAY, "REDIS_URL": ""}

        assert isinstance(ledger_writer(), BatchWriter)
        assert ledger_writer() is ledger_writer()

    def test_it_is_the_redis_stream_writer_with_redis(self, settings):
        settings.GATEWAY = {**settings.GATEWAY, "REDIS_URL": "redis://127.0.0.1:6379/15"}

        writer = ledger_writer()

        assert isinstance(writer, RedisStreamWriter)
        assert writer.stream == f"{settings.GATEWAY['REDIS_PREFIX']}:ledger"

    async def test_closing_a_writer_never_used_does_nothing(self):
        await ledger_writer_close()

        assert billing.ledger._writer is None
