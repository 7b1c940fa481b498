"""Move ledger records from the Redis stream into the ledger table, at least once, in batches.

Consumers share one consumer group, so several workers split the stream between them. An entry is
acknowledged (XACK) and deleted (XDEL) only after its row was committed; a consumer that dies in
between leaves its entries pending, and the next consumer claims them once they have been idle for
``reclaim_idle_ms`` (XAUTOCLAIM). Inserting is idempotent by request id, so an entry delivered
twice is stored once. An entry that cannot be stored (unreadable, or refused by the database) is
moved to the dead-letter stream (the stream's name and ``:dead``) with the reason, never dropped.
"""

from __future__ import annotations

import logging
import os
import socket
from functools import cache

import redis

from billing.ledger.redis_stream import RECORD_FIELD, ledger_stream
from billing.records import UsageRecord
from billing.services.ledger import ledger_entries_insert
from llm_gateway.conf import gateway_setting

logger = logging.getLogger(__name__)

LEDGER_GROUP = "ledger-consumers"
DEAD_LETTER_SUFFIX = ":dead"
RECLAIM_IDLE_MS = 60_000
DRAIN_MAX_BATCHES = 20
FORGET_IDLE_MS = 24 * 3600 * 1000


@cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def consumer_name() -> str:
    """Return this process's consumer name: unique per host and process, so two never share one."""
    return f"{socket.gethostname()}-{os.getpid()}"


def ledger_consume(
    *,
    batch_size: int = 500,
    block_ms: int | None = None,
    stream: str | None = None,
    consumer: str | None = None,
    reclaim_idle_ms: int = RECLAIM_IDLE_MS,
    redis_url: str | None = None,
) -> int:
    """Store up to ``batch_size`` stream entries as ledger rows; return how many rows were new.

    Entries abandoned by a dead consumer come first, then new ones; with ``block_ms`` it waits that
    long for new entries when there are none (None or 0: it does not wait). ``stream`` defaults to
    the gateway's (``ledger_stream()``).
    """
    client = _redis(redis_url or gateway_setting("REDIS_URL"))
    stream = stream or ledger_stream()
    consumer = consumer or consumer_name()
    _group_ensure(client, stream)
    _, entries, *_ = client.xautoclaim(
        stream, LEDGER_GROUP, consumer, min_idle_time=reclaim_idle_ms, start_id="0-0", count=batch_size
    )
    if len(entries) < batch_size:
        for _, new_entries in client.xreadgroup(
            LEDGER_GROUP, consumer, {stream: ">"}, count=batch_size - len(entries), block=block_ms or None
        ):
            entries.extend(new_entries)
    if not entries:
        return 0
    records, dead = _parse(entries)
    result = ledger_entries_insert(records=records)  # raises, acknowledging nothing, if the database is down
    dead += [
        ({RECORD_FIELD.encode(): record.to_json()}, f"refused by the database: {reason}")
        for record, reason in result.rejected
    ]
    _finish(client, stream, [entry_id for entry_id, _ in entries], dead)
    return result.written


def ledger_drain(
    *, batch_size: int = 500, max_batches: int = DRAIN_MAX_BATCHES, stream: str | None = None
) -> int:
    """Consume batches until one comes back short (or ``max_batches``); return how many rows were new.

    A no-op in the embedded mode (no REDIS_URL): there the gateway writes ledger rows itself.
    """
    if not gateway_setting("REDIS_URL"):
        return 0
    stream = stream or ledger_stream()
    written = 0
    for _ in range(max_batches):
        batch_written = ledger_consume(batch_size=batch_size, stream=stream)
        written += batch_written
        if batch_written < batch_size:
            break
    _idle_consumers_forget(_redis(gateway_setting("REDIS_URL")), stream)
    return written


def _group_ensure(client: redis.Redis, stream: str) -> None:
    try:
        client.xgroup_create(stream, LEDGER_GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def _idle_consumers_forget(client: redis.Redis, stream: str) -> None:
    """Delete consumers of processes long gone that hold no pending entry (one per worker process)."""
    for consumer in client.xinfo_consumers(stream, LEDGER_GROUP):
        if consumer["pending"] == 0 and consumer["idle"] > FORGET_IDLE_MS:
            client.xgroup_delconsumer(stream, LEDGER_GROUP, consumer["name"])


def _parse(entries: list) -> tuple[list[UsageRecord], list[tuple[dict, str]]]:
    records: list[UsageRecord] = []
    unreadable: list[tuple[dict, str]] = []
    for _, fields in entries:
        if fields is None:  # deleted while pending (Redis 6.2 reports it so): nothing left to store
            continue
        try:
            records.append(UsageRecord.from_json(fields.get(RECORD_FIELD.encode())))
        except (TypeError, ValueError, KeyError, ArithmeticError) as error:  # ArithmeticError: a bad Decimal
            unreadable.append((fields, f"unreadable record: {error!r}"))
    return records, unreadable


def _finish(client: redis.Redis, stream: str, entry_ids: list[bytes], dead: list[tuple[dict, str]]) -> None:
    pipeline = client.pipeline(transaction=True)
    for fields, reason in dead:
        logger.error("Ledger record moved to %s%s: %s", stream, DEAD_LETTER_SUFFIX, reason)
        pipeline.xadd(stream + DEAD_LETTER_SUFFIX, {**fields, b"reason": reason.encode()})
    pipeline.xack(stream, LEDGER_GROUP, *entry_ids)
    pipeline.xdel(stream, *entry_ids)
    pipeline.execute()
