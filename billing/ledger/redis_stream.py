"""The production ledger writer: each record is appended to a Redis stream before the response ends.

``write`` returns once Redis has acknowledged the XADD, and the gateway calls it *before* it
finishes the response (or the last chunk of a stream): a request the client saw answered is in the
stream, and survives a crash of the gateway process (it is as durable as Redis is configured to
be: AOF with ``appendfsync everysec`` or ``always`` in production). The Celery task
``ledger_consume_task`` moves stream entries into the ledger table (billing.ledger.consumer).
The stream has no MAXLEN: an entry is deleted only after its row is committed, never trimmed unread.
"""

from __future__ import annotations

from billing.records import UsageRecord
from llm_gateway.conf import gateway_setting
from providers.redis_clients import RedisClientsPerLoop

RECORD_FIELD = "r"


def ledger_stream() -> str:
    """Return the ledger stream's name: ``ledger`` under the gateway's Redis prefix."""
    return f"{gateway_setting('REDIS_PREFIX')}:ledger"


class RedisStreamWriter:
    """Append usage records to the ledger stream, one XADD per record, from any event loop."""

    def __init__(self, url: str, *, stream: str | None = None, timeout: float = 5.0) -> None:
        self.stream = stream or ledger_stream()
        self._clients = RedisClientsPerLoop(url, socket_timeout=timeout, socket_connect_timeout=timeout)

    async def write(self, record: UsageRecord) -> None:
        """Append ``record`` to the stream; return once Redis acknowledged it.

        Raises redis.RedisError when Redis cannot take it: the caller must then not report the request
        as recorded. A retried XADD may append a record twice; the consumer stores it once.
        """
        await self._clients.get().xadd(self.stream, {RECORD_FIELD: record.to_json()})

    async def close(self) -> None:
        """Close this event loop's connections (the ASGI lifespan shutdown); nothing is buffered."""
        await self._clients.aclose()
