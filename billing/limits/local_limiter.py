"""The embedded mode's limiter: every counter in this process's memory.

One process serves every request in the embedded mode, so a check-and-update without an ``await``
in between is atomic for asyncio; a lock makes it atomic for threads too (sync views, the test
client). The semantics match ``RedisLimiter`` exactly: the same fixed one-minute windows, the same
leases on parallel slots and holds, money in the same integer units of 1e-10 USD.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from billing.limits.types import Admission, AdmissionPlan, BudgetLimit, BudgetSpend, RateLimit
from billing.limits.verdicts import (
    WINDOW_MS,
    RateState,
    Verdict,
    decide,
    from_units,
    hold_units,
    limit_units,
    to_units,
)

DEFAULT_LEASE_SECONDS = 900.0
BUDGET_GRACE_SECONDS = 86_400  # a period's counter outlives the period by a day, for late settles


@dataclass(slots=True)
class _Window:
    minute: int
    requests: int = 0
    tokens: int = 0


@dataclass(slots=True)
class _Budget:
    spend: int
    held: int = 0
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)  # request id -> (units, expiry)
    expires_at: float | None = None

    def prune(self, now: float) -> None:
        for request_id in _expired(self.holds, now, lambda hold: hold[1]):
            self.held -= self.holds.pop(request_id)[0]


def _expired(leases: dict, now: float, expiry_of: Callable) -> list[str]:
    """Return the request ids whose lease has expired: the oldest, as leases are added in time order."""
    expired = []
    for request_id, lease in leases.items():
        if expiry_of(lease) > now:
            break
        expired.append(request_id)
    return expired


def _budget_key(budget: BudgetLimit) -> tuple[str, str, datetime | None]:
    # Aware datetimes compare and hash by instant, whatever their time zone: one key per period.
    return budget.scope, budget.id, budget.period_end


class LocalLimiter:
    """Budgets and rate limits for one process; ``clock`` returns Unix seconds (injectable for tests)."""

    def __init__(
        self, *, lease_seconds: float = DEFAULT_LEASE_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._parallel: dict[tuple[str, str], dict[str, float]] = {}  # request id -> lease expiry
        self._budgets: dict[tuple[str, str, float | None], _Budget] = {}
        self._swept_minute = 0

    async def admit(self, plan: AdmissionPlan) -> Admission:
        """Check every limit of ``plan`` and, if all pass, count the request and hold its reserve.

        Raise BudgetExceededError or RateLimitError (with headers and retry_after) for the first
        limit that fails; nothing is counted or held then. A plan on a bounded prompt that a budget or
        TPM refuses is decided again on its exact plan.
        """
        if not plan.budgets and not plan.rate_limits:
            return Admission(plan=plan)
        with self._lock:
            verdict = self._admit(plan)
        if plan.refinable(verdict.failure):
            plan = plan.exact_plan()  # tokenized outside the lock
            with self._lock:
                verdict = self._admit(plan)
        return decide(plan, verdict)

    def _admit(self, plan: AdmissionPlan) -> Verdict:
        now = self._clock()
        now_ms = int(now * 1000)
        minute = now_ms // WINDOW_MS
        self._sweep(now, minute)
        reserve = hold_units(plan.reserve)
        failure, failed = "", 0
        budgets = [self._budget(limit, now) for limit in plan.budgets]
        for index, (limit, budget) in enumerate(zip(plan.budgets, budgets, strict=True)):
            # A request with nothing to hold still needs something left: an exhausted budget refuses all.
            if budget.spend + budget.held + max(reserve, 1) > limit_units(limit.max_budget):
                failure, failed = "budget", index
                break
        states = [self._rate_state(limit, now, minute) for limit in plan.rate_limits]
        for index, (limit, state) in enumerate(zip(plan.rate_limits, states, strict=True)):
            if failure:
                break
            if limit.rpm is not None and state.requests + 1 > limit.rpm:
                failure, failed = "requests", index
            elif limit.tpm is not None and state.tokens + plan.estimated_tokens > limit.tpm:
                failure, failed = "tokens", index
            elif limit.max_parallel is not None and state.running + 1 > limit.max_parallel:
                failure, failed = "parallel", index
        if not failure:
            self._grant(plan, budgets, minute, now, reserve)
        return Verdict(
            failure=failure,
            index=failed,
            now_ms=now_ms,
            budgets=tuple((budget.spend, budget.held) for budget in budgets),
            rates=tuple(states),
        )

    def _budget(self, limit: BudgetLimit, now: float) -> _Budget:
        """Return the budget's counter, seeded on first use, with expired holds dropped."""
        budget = self._budgets.get(_budget_key(limit))
        if budget is None:
            expires_at = None
            if limit.period_end is not None:
                expires_at = limit.period_end.timestamp() + BUDGET_GRACE_SECONDS
            budget = _Budget(spend=hold_units(limit.spent_before), expires_at=expires_at)
            self._budgets[_budget_key(limit)] = budget
        budget.prune(now)
        return budget

    def _rate_state(self, limit: RateLimit, now: float, minute: int) -> RateState:
        """Return the scope's counters in this minute, with expired parallel slots dropped."""
        window = self._windows.get((limit.scope, limit.id))
        requests, tokens = (window.requests, window.tokens) if window and window.minute == minute else (0, 0)
        running = 0
        if limit.max_parallel is not None:
            slots = self._parallel.setdefault((limit.scope, limit.id), {})
            for request_id in _expired(slots, now, float):
                del slots[request_id]
            running = len(slots)
        return RateState(requests=requests, tokens=tokens, running=running)

    def _grant(
        self, plan: AdmissionPlan, budgets: list[_Budget], minute: int, now: float, reserve: int
    ) -> None:
        expiry = now + self.lease_seconds
        for budget in budgets:
            if reserve:
                budget.held += reserve
                budget.holds[plan.request_id] = (reserve, expiry)
        for limit in plan.rate_limits:
            if limit.rpm is not None or limit.tpm is not None:
                window = self._windows.get((limit.scope, limit.id))
                if window is None or window.minute != minute:
                    window = self._windows[(limit.scope, limit.id)] = _Window(minute)
                window.requests += 1
                window.tokens += plan.estimated_tokens
            if limit.max_parallel is not None:
                self._parallel[(limit.scope, limit.id)][plan.request_id] = expiry

    def _sweep(self, now: float, minute: int) -> None:
        """Forget past windows, idle parallel sets and ended periods, once a minute (as keys expire)."""
        if minute == self._swept_minute:
            return
        self._swept_minute = minute
        for name in [name for name, window in self._windows.items() if window.minute < minute - 1]:
            del self._windows[name]
        for name in [name for name, slots in self._parallel.items() if not slots]:
            del self._parallel[name]
        for name, budget in list(self._budgets.items()):
            if budget.expires_at is not None and budget.expires_at <= now:
                del self._budgets[name]

    async def settle(self, admission: Admission, cost: Decimal, tokens: int) -> Decimal | None:
        """Charge the request's actual cost in place of its holds; return the key budget's spend after.

        Correct TPM from the estimate to the actual ``tokens`` (in the window that counted it) and free
        the parallel slots. Return None when the plan has no key budget; a second settle does nothing.
        """
        if cost < 0 or tokens < 0:
            raise ValueError(f"cost and tokens cannot be negative (got {cost}, {tokens}).")
        if admission.settled:
            return None
        admission.settled = True
        plan = admission.plan
        with self._lock:
            correction = tokens - plan.estimated_tokens
            for limit in plan.rate_limits:
                window = self._windows.get((limit.scope, limit.id))
                if correction and window is not None and window.minute == admission.window:
                    window.tokens = max(window.tokens + correction, 0)
                self._parallel.get((limit.scope, limit.id), {}).pop(plan.request_id, None)
            key_spend = None
            cost_units = to_units(cost)
            for limit in plan.budgets:
                budget = self._budgets.get(_budget_key(limit))
                if budget is None:
                    continue  # the period's counter is gone; the ledger still records the cost
                units, _ = budget.holds.pop(plan.request_id, (0, 0.0))
                budget.held -= units
                budget.spend += cost_units
                if limit.scope == "key" and key_spend is None:
                    key_spend = from_units(budget.spend)
            return key_spend

    async def release(self, admission: Admission) -> Decimal | None:
        """Give back everything the admission holds: the upstream was never called or billed nothing."""
        return await self.settle(admission, Decimal("0"), 0)

    async def spend_get(self, budget: BudgetLimit) -> BudgetSpend | None:
        """Return the budget's counter for its period, or None before its first admission."""
        with self._lock:
            state = self._budgets.get(_budget_key(budget))
            if state is None:
                return None
            return BudgetSpend(spend=from_units(state.spend), held=from_units(state.held))

    async def spend_forget(self, budget: BudgetLimit) -> None:
        """Drop the budget's counter so the next admission seeds it again from ``spent_before``."""
        with self._lock:
            self._budgets.pop(_budget_key(budget), None)
