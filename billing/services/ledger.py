"""Writes to the ledger: bulk inserts of usage records, idempotent by request id, and pruning by age."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from billing.models import LedgerEntry
from billing.record_bounds import record_bounded
from billing.records import UsageRecord, ledger_rows_insert
from billing.services.periods import ledger_retention_start

logger = logging.getLogger(__name__)

PRUNE_BATCH_SIZE = 5_000


@dataclass(slots=True)
class LedgerInsertResult:
    written: int = 0  # rows that were new (a request id already stored is skipped)
    rejected: list[tuple[UsageRecord, str]] = field(default_factory=list)  # records the database refused


def ledger_entries_insert(*, records: Iterable[UsageRecord]) -> LedgerInsertResult:
    """Store the records as ledger rows in one transaction, skipping request ids already stored.

    Idempotent: a record delivered twice (a retried write, a redelivered stream entry) is stored once,
    by the unique ``request_id``. Every value is first fitted to its column (too long, a NUL byte, an
    integer out of range: billing.record_bounds), so a served request's row is stored; a record the
    database still refuses is returned in ``rejected`` rather than failing the whole batch; a
    database that cannot be reached raises, so the caller keeps the records and tries again.
    """
    unique = {record.request_id: record for record in map(record_bounded, records)}
    if not unique:
        return LedgerInsertResult()
    try:
        with transaction.atomic():
            return LedgerInsertResult(written=_insert_batch(list(unique.values())))
    except (DataError, IntegrityError):
        return _insert_one_by_one(list(unique.values()))


class _RowSkippedError(IntegrityError):
    """A row of the batch is not there after the insert."""


def _stored(request_ids: set[str]) -> set[str]:
    return set(LedgerEntry.objects.filter(request_id__in=request_ids).values_list("request_id", flat=True))


def _insert_batch(records: list[UsageRecord]) -> int:
    request_ids = {record.request_id for record in records}
    stored = _stored(request_ids)
    fresh = [record for record in records if record.request_id not in stored]
    # Conflicts ignored: another writer may insert the same request id between the two statements.
    ledger_rows_insert(fresh)
    if _stored(request_ids) != request_ids:
        # SQLite's INSERT OR IGNORE also skips a row that fails a CHECK constraint, silently:
        # roll back, and let the row-by-row insert say which record was refused, and why.
        raise _RowSkippedError("a row was skipped by INSERT OR IGNORE")
    return len(fresh)


def _insert_one_by_one(records: list[UsageRecord]) -> LedgerInsertResult:
    result = LedgerInsertResult()
    for record in records:
        try:
            with transaction.atomic():
                if not _stored({record.request_id}):
                    record.to_entry().save(force_insert=True)
                    result.written += 1
        except (DataError, IntegrityError) as error:
            if not _stored({record.request_id}):  # else another writer stored it meanwhile
                result.rejected.append((record, str(error)))
    return result


def ledger_prune(*, now: datetime | None = None, batch_size: int = PRUNE_BATCH_SIZE) -> int:
    """Delete ledger rows older than LEDGER_RETENTION_DAYS, a batch per transaction; return how many.

    Small batches keep every DELETE short, so the writers inserting new rows never wait long on it.
    The rollups of the pruned days are kept: dashboards read them, not the ledger.
    """
    cutoff = ledger_retention_start(now=now or timezone.now())
    if cutoff is None:
        return 0
    deleted = 0
    while True:
        old_rows = LedgerEntry.objects.filter(created_at__lt=cutoff).order_by()
        batch = list(old_rows.values_list("id", flat=True)[:batch_size])
        if not batch:
            return deleted
        deleted += LedgerEntry.objects.filter(id__in=batch).delete()[0]
