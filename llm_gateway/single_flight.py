"""Concurrent requests that need the same missing thing share one load of it.

When 2,000 clients connect to a cold instance at once, each would otherwise read the same key,
deployments and settings from the database, one after the other through asgiref's single
thread-sensitive thread: the last waits for all the others (a 15-20 s stall was measured). With a
single flight per thing, the first request loads it and the others await that load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class SingleFlight:
    def __init__(self) -> None:
        # Keyed by event loop too: a task belongs to the loop that created it.
        self._pending: dict[tuple[asyncio.AbstractEventLoop, Hashable], asyncio.Task[Any]] = {}

    async def run(self, name: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        """Return ``await load()``, or the result of the load of ``name`` already under way."""
        loop = asyncio.get_running_loop()
        key = (loop, name)
        task = self._pending.get(key)
        if task is None:
            task = self._pending[key] = loop.create_task(load())
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        # Shielded: a caller that is cancelled (its client left) does not cancel the others' load.
        return await asyncio.shield(task)

    def __len__(self) -> int:
        return len(self._pending)
