"""The ledger record of one request, as it travels from the request path to the database.

The request path fills a ``UsageRecord`` and hands it to the ledger writer without waiting for the
database; the writer (Redis stream + Celery consumer, or the embedded batch writer) turns records
into ``LedgerEntry`` rows in bulk (``ledger_rows_insert``), idempotent by ``request_id``, each value
first fitted to its column (billing.record_bounds) so that none can keep a row out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.constants import OnConflict

from billing.models import LedgerEntry
from billing.record_bounds import record_bounded


@dataclass(slots=True)
class UsageRecord:
    request_id: str
    created_at: datetime
    key_token: str = ""
    key_alias: str = ""
    team_id: str = ""
    user_id: str = ""
    end_user: str = ""
    model_requested: str = ""
    model_group: str = ""
    deployment_id: str = ""
    provider: str = ""
    provider_model: str = ""
    operation: str = "chat"
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    images: int = 0
    cost: Decimal = Decimal("0")
    price: dict[str, str] = field(default_factory=dict)
    latency_ms: int = 0
    time_to_first_token_ms: int | None = None
    status: str = LedgerEntry.Status.SUCCESS
    http_status: int = 200
    error_type: str = ""
    cache_hit: bool = False
    retries: int = 0
    fallbacks: int = 0
    billing_basis: str = LedgerEntry.BillingBasis.PROVIDER_REPORTED
    messages: Any = None
    response: Any = None

    def to_json(self) -> bytes:
        """Return the record as JSON (Decimal as a string, times in ISO 8601): what the stream carries.

        A value JSON cannot carry (an integer past 64 bits, JSON nested past orjson's 254 levels, an
        unpaired surrogate) is first fitted to its ledger column (billing.record_bounds).
        """
        # orjson writes the dataclass and its datetime itself, in C; only the Decimal needs help.
        try:
            return orjson.dumps(self, default=_decimal_text)
        except orjson.JSONEncodeError:
            return orjson.dumps(record_bounded(self), default=_decimal_text)

    @classmethod
    def from_json(cls, raw: bytes | str) -> UsageRecord:
        data = orjson.loads(raw)
        known = {item.name for item in fields(cls)}
        data = {name: value for name, value in data.items() if name in known}
        data["cost"] = Decimal(data.get("cost", "0"))
        # A record without a time is carried as it is: the database refuses it, and says so.
        created_at = data["created_at"]
        data["created_at"] = None if created_at is None else datetime.fromisoformat(created_at)
        return cls(**data)

    def to_entry(self) -> LedgerEntry:
        """Return the unsaved ledger row for this record."""
        # Not dataclasses.asdict: its deep copy of every field cost as much as the insert itself, and
        # the record is not changed once it is handed to the writer.
        return LedgerEntry(**{name: getattr(self, name) for name in _FIELD_NAMES})


_FIELD_NAMES = tuple(item.name for item in fields(UsageRecord))


def _decimal_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# Fields whose get_db_prep_save returns a value of this exact type unchanged, on every backend.
_PLAIN_TYPES: dict[type[models.Field], type] = {
    models.CharField: str,
    models.PositiveIntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.BooleanField: bool,
}


def _insert_sql(connection) -> tuple[str, list[tuple[str, Callable, type | None]]]:
    """Return the INSERT-ignoring-conflicts statement and, per column, the attribute and its adapter."""
    meta = LedgerEntry._meta
    columns = [item for item in meta.concrete_fields if not item.primary_key]
    operations, quote = connection.ops, connection.ops.quote_name
    # The same statement bulk_create(ignore_conflicts=True) builds, vendor by vendor.
    suffix = operations.on_conflict_suffix_sql(columns, OnConflict.IGNORE, None, None)
    sql = "{} {} ({}) VALUES ({}){}".format(
        operations.insert_statement(on_conflict=OnConflict.IGNORE),
        quote(meta.db_table),
        ", ".join(quote(column.column) for column in columns),
        ", ".join(["%s"] * len(columns)),
        f" {suffix}" if suffix else "",
    )
    adapters = [(item.attname, item.get_db_prep_save, _PLAIN_TYPES.get(type(item))) for item in columns]
    return sql, adapters


def ledger_rows_insert(records: Sequence[UsageRecord], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Insert the records as ledger rows, skipping request ids already stored, in one executemany.

    What ``LedgerEntry.objects.bulk_create(..., ignore_conflicts=True)`` does, at about a third of its
    CPU: the statement is built once rather than per batch, and each value goes through its field's
    own ``get_db_prep_save`` (plain strings, integers and booleans pass as they are, as it would
    return them). Run it inside a transaction, as bulk_create does.
    """
    if not records:
        return
    connection = connections[using]
    sql, columns = _insert_sql(connection)
    rows = []
    for record in records:
        row = []
        for name, adapt, plain in columns:
            value = getattr(record, name)
            row.append(value if value is None or type(value) is plain else adapt(value, connection))
        rows.append(row)
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
