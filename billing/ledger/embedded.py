"""The embedded ledger writer: records wait in this process and are bulk-inserted in the background.

A background task flushes every ``flush_interval`` seconds, or as soon as ``batch_size`` records are
waiting; ``close()`` (the ASGI lifespan shutdown) flushes the rest, so a graceful stop loses nothing.
A hard crash (kill -9, power loss) loses what was still waiting: up to one flush interval of records.
Only the Redis stream writer is crash-safe; production runs with REDIS_URL set.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections

from billing.records import UsageRecord
from billing.services.ledger import LedgerInsertResult, ledger_entries_insert

logger = logging.getLogger(__name__)


@dataclass
class _Flusher:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    task: asyncio.Task | None = None


class BatchWriter:
    """Buffer usage records in memory and insert them in batches from a background task."""

    def __init__(self, *, batch_size: int = 500, flush_interval: float = 1.0) -> None:
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._waiting: list[UsageRecord] = []
        # Records are appended on the event loop and taken in flush(); a lock, because a process may
        # run loops in several threads (tests, library callers), each with its own flusher.
        self._lock = threading.Lock()
        self._flushers: dict[asyncio.AbstractEventLoop, _Flusher] = {}

    @property
    def waiting(self) -> int:
        """Return how many records are waiting for the next flush."""
        with self._lock:
            return len(self._waiting)

    async def write(self, record: UsageRecord) -> None:
        """Queue ``record`` for the next batch; return at once (nothing waits for the database)."""
        with self._lock:
            self._waiting.append(record)
            full = len(self._waiting) >= self.batch_size
        flusher = self._flusher()
        if full:
            flusher.wake.set()

    async def flush(self) -> int:
        """Insert every waiting record now, a batch at a time; return how many rows were new.

        When the database fails, the batch goes back to the front of the queue for the next flush.
        """
        written = 0
        while batch := self._take():
            try:
                result = await sync_to_async(_insert)(batch)
            except BaseException as error:  # not written, whatever stopped it (even cancellation): keep them
                self._put_back(batch)
                logger.warning("Ledger flush failed, %d records kept for the next one: %r", len(batch), error)
                raise
            for record, reason in result.rejected:
                # Logged in full, so the row can be restored by hand: there is no other copy of it.
                logger.error(
                    "Ledger record refused by the database (%s): %s", reason, record.to_json().decode()
                )
            written += result.written
        return written

    async def close(self) -> None:
        """Stop this loop's background flusher and flush every waiting record.

        If the database fails now, the records are logged in full before the process goes: the log
        is then their only copy.
        """
        with self._lock:
            flusher = self._flushers.pop(asyncio.get_running_loop(), None)
        if flusher is not None:
            # Let it finish the batch it may be inserting, rather than cancel it in the middle.
            flusher.stopping = True
            flusher.wake.set()
            await asyncio.gather(flusher.task, return_exceptions=True)
        try:
            await self.flush()
        except DatabaseError:
            for record in self._take_all():
                logger.error("Ledger record not written at shutdown: %s", record.to_json().decode())
            raise

    def _take(self) -> list[UsageRecord]:
        with self._lock:
            batch, self._waiting = self._waiting[: self.batch_size], self._waiting[self.batch_size :]
            return batch

    def _take_all(self) -> list[UsageRecord]:
        with self._lock:
            waiting, self._waiting = self._waiting, []
            return waiting

    def _put_back(self, batch: list[UsageRecord]) -> None:
        with self._lock:
            self._waiting[:0] = batch

    def _flusher(self) -> _Flusher:
        loop = asyncio.get_running_loop()
        flusher = self._flushers.get(loop)
        if flusher is not None and not flusher.task.done():
            return flusher  # every write but the first of a loop
        with self._lock:
            for stale in [other for other in self._flushers if other.is_closed()]:
                del self._flushers[stale]
            flusher = self._flushers.get(loop)
            if flusher is None or flusher.task.done():
                flusher = self._flushers[loop] = _Flusher()
                # A context of its own: the flusher outlives the request whose write started it, and
                # must not carry that request's state (or its thread-sensitive executor) along.
                flusher.task = loop.create_task(
                    self._run(flusher), name="ledger-batch-writer", context=contextvars.Context()
                )
            return flusher

    async def _run(self, flusher: _Flusher) -> None:
        while not flusher.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flusher.wake.wait(), timeout=self.flush_interval)
            flusher.wake.clear()
            with contextlib.suppress(DatabaseError):  # logged by flush(); kept for the next interval
                await self.flush()


def _insert(records: list[UsageRecord]) -> LedgerInsertResult:
    # This runs outside any request: manage the connection as a request would, so a connection the
    # database dropped is replaced rather than failing every flush from then on.
    close_old_connections()
    try:
        return ledger_entries_insert(records=records)
    finally:
        close_old_connections()
