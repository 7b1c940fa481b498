"""One ``redis.asyncio`` client per running event loop.

A redis.asyncio client binds its connections to the event loop it first connects on and fails on any
other, and callers may run several loops (a library user's ``asyncio.run`` per step, a loop per
thread, uvicorn's loop beside a test's): keep one client per loop, and forget those of closed loops.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import redis.asyncio


class RedisClientsPerLoop:
    """The ``redis.asyncio`` client of the running event loop, created on first use."""

    def __init__(self, url: str, **options: Any) -> None:
        self._url = url
        self._options = options
        self._clients: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}
        self._lock = threading.Lock()

    def get(self) -> redis.asyncio.Redis:
        """Return the running loop's client."""
        loop = asyncio.get_running_loop()
        with self._lock:
            for stale in [other for other in self._clients if other.is_closed()]:
                del self._clients[stale]
            client = self._clients.get(loop)
            if client is None:
                client = self._clients[loop] = redis.asyncio.Redis.from_url(self._url, **self._options)
            return client

    def __len__(self) -> int:
        """Return how many loops have a client (closed loops' are dropped on the next ``get``)."""
        return len(self._clients)

    async def aclose(self) -> None:
        """Close the running loop's client (call before that loop ends)."""
        with self._lock:
            client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
