"""The production ledger writer: each record is appended to a Redis stream before the response ends.

``write`` returns once Redis has acknowledged the XADD, and the gateway calls it *before* it
finishes the response (or the last chunk of a stream): a request the client saw answered is in the
stream, and survives a crash of the gateway process (it is as durable as Redis is configured to
be: AOF with ``appendfsync everysec`` or ``always`` in production). The Celery task
``ledger_consume_task`` moves stream entries into the ledger table (billing.ledger.consumer).
The stream has no MAXLEN: an entry is deleted only after its row is committed, never trimmed unread.
"""

from __future__ import annotations

import asyncio
import threading

import redis.asyncio

from billing.records import UsageRecord

LEDGER_STREAM = "llm_gateway:ledger"
RECORD_FIELD = "r"


class RedisStreamWriter:
    """Append usage records to the ledger stream, one XADD per record, from any event loop."""

    def __init__(self, url: str, *, stream: str = LEDGER_STREAM, timeout: float = 5.0) -> None:
        self.stream = stream
        self._url = url
        self._client_options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        # A redis.asyncio client binds its connections to the event loop it first connects on: keep
        # one client per running loop, forget those of closed loops (providers.caching.RedisCache).
        self._clients: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}
        self._clients_lock = threading.Lock()

    def _client(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        with self._clients_lock:
            for stale in [other for other in self._clients if other.is_closed()]:
                del self._clients[stale]
            client = self._clients.get(loop)
            if client is None:
                client = redis.asyncio.Redis.from_url(self._url, **self._client_options)
                self._clients[loop] = client
            return client

    async def write(self, record: UsageRecord) -> None:
        """Append ``record`` to the stream; return once Redis acknowledged it.

        Raises redis.RedisError when Redis cannot take it: the caller must then not report the request
        as recorded. A retried XADD may append a record twice; the consumer stores it once.
        """
        await self._client().xadd(self.stream, {RECORD_FIELD: record.to_json()})

    async def close(self) -> None:
        """Close this event loop's connections (the ASGI lifespan shutdown); nothing is buffered."""
        loop = asyncio.get_running_loop()
        with self._clients_lock:
            client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()
