"""What a request asks of the limiter, and what the limiter grants."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    """A hard budget the request spends from."""

    scope: str  # "key", "team", "user", "end_user" or "key_model" (a key's model_max_budget)
    id: str  # the entity's id; for key_model, "<key token>:<model group>"
    max_budget: Decimal
    period_start: datetime | None = None  # None: a lifetime budget
    period_end: datetime | None = None
    spent_before: Decimal = Decimal("0")  # spend the database knew for this period (seeds the counter)

    @property
    def label(self) -> str:
        return f"{self.scope.replace('_', ' ')} budget"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Per-minute request and token limits and a parallel-request cap for one scope."""

    scope: str  # "key", "team", "user", "end_user" or "deployment"
    id: str
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None


@dataclass(frozen=True, slots=True)
class AdmissionPlan:
    request_id: str
    budgets: tuple[BudgetLimit, ...] = ()
    rate_limits: tuple[RateLimit, ...] = ()
    reserve: Decimal = Decimal("0")  # the request's worst-case cost, held on every budget
    estimated_tokens: int = 0  # prompt tokens + the output cap: what TPM is checked against


@dataclass(slots=True)
class Admission:
    """A granted request: what it holds, and the rate-limit state to report in headers."""

    plan: AdmissionPlan
    held: Decimal = Decimal("0")
    headers: dict[str, str] = field(default_factory=dict)
    settled: bool = False
