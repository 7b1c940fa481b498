"""The ledger record of one request, as it travels from the request path to the database.

The request path fills a ``UsageRecord`` and hands it to the ledger writer without waiting for the
database; the writer (Redis stream + Celery consumer, or the embedded batch writer) turns records
into ``LedgerEntry`` rows in bulk, idempotent by ``request_id``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from billing.models import LedgerEntry


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
        """Return the record as JSON (Decimal as a string, times in ISO 8601): what the stream carries."""
        data = asdict(self)
        data["cost"] = str(self.cost)
        data["created_at"] = self.created_at.isoformat()
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> UsageRecord:
        data = orjson.loads(raw)
        known = {item.name for item in fields(cls)}
        data = {name: value for name, value in data.items() if name in known}
        data["cost"] = Decimal(data.get("cost", "0"))
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        return cls(**data)

    def to_entry(self) -> LedgerEntry:
        """Return the unsaved ledger row for this record."""
        return LedgerEntry(**asdict(self))
