"""What a request asks of the limiter, and what the limiter grants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    """A hard budget the request spends from."""

    scope: str  # "key", "team", "user", "end_user" or "key_model" (a key's model_max_budget)
    id: str  # the entity's id; for key_model, "<key token>:<model group>"
    max_budget: Decimal
    period_start: datetime | None = None  # None: a lifetime budget
    period_end: datetime | None = None  # identifies the period's counter (it is what budget_reset_at stores)
    spent_before: Decimal = Decimal("0")  # spend the database knew for this period (seeds the counter)
    name: str = ""  # who owns it, for people: "key 'billing-bot'"

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
    name: str = ""  # who owns it, for people: "key 'billing-bot'"; default "<scope> '<id>'"

    @property
    def label(self) -> str:
        return self.name or f"{self.scope.replace('_', ' ')} '{self.id}'"


@dataclass(frozen=True, slots=True)
class AdmissionPlan:
    request_id: str  # unique per admission: parallel slots and holds are tracked by it
    budgets: tuple[BudgetLimit, ...] = ()
    rate_limits: tuple[RateLimit, ...] = ()
    reserve: Decimal = Decimal("0")  # the request's worst-case cost, held on every budget
    estimated_tokens: int = 0  # prompt tokens + the output cap: what TPM is checked against
    # When the prompt tokens above are an upper bound (not counted): return the plan with them
    # counted. The limiter asks for it only when this plan is refused on a budget or on TPM.
    exact_plan: Callable[[], AdmissionPlan] | None = field(default=None, compare=False, repr=False)

    def refinable(self, failure: str) -> bool:
        """Return True if the exact plan may be admitted where this one was refused with ``failure``."""
        return self.exact_plan is not None and failure in ("budget", "tokens")


@dataclass(slots=True)
class Admission:
    """A granted request: what it holds, and the rate-limit state to report in headers."""

    plan: AdmissionPlan
    held: Decimal = Decimal("0")
    headers: dict[str, str] = field(default_factory=dict)
    settled: bool = False
    window: int = 0  # the minute (Unix time // 60) whose counters the request was counted in


@dataclass(frozen=True, slots=True)
class BudgetSpend:
    """A budget counter as the limiter holds it: settled spend, and holds of requests in flight."""

    spend: Decimal
    held: Decimal


class Limiter(Protocol):
    """What the request path uses; ``RedisLimiter`` and ``LocalLimiter`` both provide it."""

    async def admit(self, plan: AdmissionPlan) -> Admission: ...

    async def settle(self, admission: Admission, cost: Decimal, tokens: int) -> Decimal | None: ...

    async def release(self, admission: Admission) -> Decimal | None: ...

    async def spend_get(self, budget: BudgetLimit) -> BudgetSpend | None: ...

    async def spend_forget(self, budget: BudgetLimit) -> None: ...
