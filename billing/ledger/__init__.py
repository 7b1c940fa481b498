"""The ledger writer: how the request path hands its UsageRecord to the ledger, never blocking the response.

``ledger_writer()`` returns this process's writer, chosen once from the settings: with REDIS_URL
the records go to a Redis stream (crash-safe: ``write`` returns once Redis holds the record, and
the gateway calls it before it finishes the response), otherwise to an in-process batch writer
(embedded mode: a hard crash can lose up to one flush interval of records). Either way rows reach
``LedgerEntry`` in bulk, at least once, idempotent by ``request_id``. Prompts and completions are
stored as the record carries them: the request path leaves them out unless the team opted in.
"""

from __future__ import annotations

import threading
from typing import Protocol

from billing.ledger.embedded import BatchWriter
from billing.ledger.redis_stream import RedisStreamWriter
from billing.records import UsageRecord
from llm_gateway.conf import gateway_setting

__all__ = ["BatchWriter", "LedgerWriter", "RedisStreamWriter", "ledger_writer", "ledger_writer_close"]


class LedgerWriter(Protocol):
    async def write(self, record: UsageRecord) -> None: ...

    async def close(self) -> None: ...


_writer: LedgerWriter | None = None
_writer_lock = threading.Lock()


def ledger_writer() -> LedgerWriter:
    """Return this process's ledger writer: the Redis stream with REDIS_URL, else the batch writer."""
    global _writer  # one writer per process, created on first use (after the settings are loaded)
    with _writer_lock:
        if _writer is None:
            redis_url = gateway_setting("REDIS_URL")
            _writer = RedisStreamWriter(redis_url) if redis_url else BatchWriter()
        return _writer


async def ledger_writer_close() -> None:
    """Flush and close this process's writer, if it was ever used (the ASGI lifespan shutdown)."""
    with _writer_lock:
        writer = _writer
    if writer is not None:
        await writer.close()
