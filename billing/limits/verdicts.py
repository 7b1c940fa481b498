"""What one check of a plan found, and what it becomes: an ``Admission`` with headers, or a 429.

Both limiters count money in integer units of 1e-10 USD, the ledger's precision (its cost and spend
columns keep ten decimal places), so the counters add exactly what the ledger adds. Holds round up,
limits round down and costs round half-even: a counter never under-holds or over-allows by rounding.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from billing.limits.types import Admission, AdmissionPlan, BudgetLimit, RateLimit
from providers.exceptions import BudgetExceededError, RateLimitError

UNIT_EXPONENT = 10  # one unit = 1e-10 USD
# Redis keeps integers as signed 64-bit: $922,337,203.6854775807 is the largest amount a counter holds.
MAX_UNITS = 2**63 - 1
WINDOW_MS = 60_000


def to_units(amount: Decimal, rounding: str = ROUND_HALF_EVEN) -> int:
    """Return ``amount`` (USD) in units of 1e-10 USD, clamped to 0..MAX_UNITS."""
    units = int(amount.scaleb(UNIT_EXPONENT).to_integral_value(rounding=rounding))
    return min(max(units, 0), MAX_UNITS)


# Cached: a budget's limit, and the hold of a request like the last ones, come back every request.
@functools.lru_cache(maxsize=4096)
def hold_units(amount: Decimal) -> int:
    return to_units(amount, ROUND_CEILING)


@functools.lru_cache(maxsize=4096)
def limit_units(amount: Decimal) -> int:
    return to_units(amount, ROUND_FLOOR)


def from_units(units: int) -> Decimal:
    """Return an amount in units of 1e-10 USD as a Decimal in USD, exactly."""
    return Decimal(units).scaleb(-UNIT_EXPONENT)


def usd(amount: Decimal) -> str:
    """Return ``amount`` for people: cents always shown, smaller digits only when there are any."""
    text = format(amount.normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


@dataclass(frozen=True, slots=True)
class RateState:
    """One rate limit's counters in the current window, before this request."""

    requests: int = 0
    tokens: int = 0
    running: int = 0  # parallel requests in flight


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the atomic step decided, and the counters it decided on (before this request)."""

    failure: str  # "" when granted; else "budget", "requests", "tokens" or "parallel"
    index: int  # the failing limit's index in plan.budgets or plan.rate_limits
    now_ms: int
    budgets: tuple[tuple[int, int], ...]  # (spend, held) units per plan budget
    rates: tuple[RateState, ...]  # per plan rate limit

    @property
    def window(self) -> int:
        return self.now_ms // WINDOW_MS

    @property
    def reset_ms(self) -> int:
        return WINDOW_MS - self.now_ms % WINDOW_MS


def go_duration(milliseconds: int) -> str:
    """Return a duration as OpenAI's reset headers write it ("250ms", "12.5s", "1m0s")."""
    if milliseconds < 1000:
        return f"{milliseconds}ms"
    minutes, rest = divmod(milliseconds, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def _report(plan: AdmissionPlan, verdict: Verdict, dimension: str) -> tuple[int, int] | None:
    """Return the (limit, used) to report for "requests" or "tokens", counting this request if granted.

    The refusing limit when it is of this dimension, else the caller-side limit with the least left.
    Deployment capacity is the gateway's routing business, not the caller's quota: it is reported only
    when it is what refused the request.
    """
    granted = not verdict.failure
    candidates = []
    for index, (limit, state) in enumerate(zip(plan.rate_limits, verdict.rates, strict=True)):
        if dimension == "requests":
            cap, used = limit.rpm, state.requests + granted
        else:
            cap, used = limit.tpm, state.tokens + plan.estimated_tokens * granted
        if cap is None:
            continue
        if verdict.failure == dimension and verdict.index == index:
            return cap, used
        if limit.scope != "deployment":
            candidates.append((cap - used, cap, used))
    if not candidates:
        return None
    _, cap, used = min(candidates)
    return cap, used


def rate_headers(plan: AdmissionPlan, verdict: Verdict) -> dict[str, str]:
    """Return OpenAI's x-ratelimit-* headers for the most constraining caller-side limits."""
    reset = go_duration(verdict.reset_ms)
    headers: dict[str, str] = {}
    for dimension in ("requests", "tokens"):
        reported = _report(plan, verdict, dimension)
        if reported is not None:
            cap, used = reported
            headers[f"x-ratelimit-limit-{dimension}"] = str(cap)
            headers[f"x-ratelimit-remaining-{dimension}"] = str(max(cap - used, 0))
            headers[f"x-ratelimit-reset-{dimension}"] = reset
    return headers


def decide(plan: AdmissionPlan, verdict: Verdict) -> Admission:
    """Return the admission for a granted verdict; raise the 429 for a refused one."""
    if verdict.failure == "budget":
        raise budget_error(plan, verdict)
    if verdict.failure:
        raise rate_error(plan, verdict)
    held = from_units(hold_units(plan.reserve)) if plan.budgets else Decimal("0")
    return Admission(plan=plan, held=held, headers=rate_headers(plan, verdict), window=verdict.window)


def _budget_owner(budget: BudgetLimit) -> str:
    return budget.name or f"{budget.scope.replace('_', ' ')} '{budget.id}'"


def budget_error(plan: AdmissionPlan, verdict: Verdict) -> BudgetExceededError:
    budget = plan.budgets[verdict.index]
    spend_units, held_units = verdict.budgets[verdict.index]
    spend = f"spend {usd(from_units(spend_units))}"
    if held_units:
        spend += f" + {usd(from_units(held_units))} held for requests in flight"
    limit = usd(from_units(limit_units(budget.max_budget)))
    reserve = hold_units(plan.reserve)
    if reserve:
        outcome = f"{spend} + this request's hold {usd(from_units(reserve))} would pass the limit {limit}."
    else:
        outcome = f"{spend} has reached the limit {limit}."
    headers = rate_headers(plan, verdict)
    # The OpenAI SDKs retry a 429 on their own unless told not to; waiting cannot help before the reset.
    headers["x-should-retry"] = "false"
    retry_after = None
    if budget.period_end is not None:
        retry_after = float(max(math.ceil(budget.period_end.timestamp() - verdict.now_ms / 1000), 1))
        headers["Retry-After"] = str(int(retry_after))
    return BudgetExceededError(
        f"Budget exceeded for {budget.label} ({_budget_owner(budget)}): {outcome}",
        code="budget_exceeded",
        retry_after=retry_after,
        headers=headers,
    )


def _rate_message(plan: AdmissionPlan, limit: RateLimit, state: RateState, verdict: Verdict) -> str:
    wait = f"retry in {math.ceil(verdict.reset_ms / 1000)}s"
    if verdict.failure == "requests":
        return f"Rate limit exceeded for {limit.label}: all {limit.rpm} requests per minute used; {wait}."
    if verdict.failure == "tokens" and plan.estimated_tokens > (limit.tpm or 0):
        return (
            f"Rate limit exceeded for {limit.label}: this request may use {plan.estimated_tokens} tokens, "
            f"more than the {limit.tpm} tokens per minute allowed; lower max_tokens or shorten the prompt."
        )
    if verdict.failure == "tokens":
        return (
            f"Rate limit exceeded for {limit.label}: {state.tokens} of {limit.tpm} tokens per minute used "
            f"and this request may use {plan.estimated_tokens}; {wait}."
        )
    return (
        f"Parallel request limit reached for {limit.label}: {state.running} of {limit.max_parallel} "
        "requests in flight; retry when one finishes."
    )


def rate_error(plan: AdmissionPlan, verdict: Verdict) -> RateLimitError:
    limit, state = plan.rate_limits[verdict.index], verdict.rates[verdict.index]
    # A parallel slot frees when a request ends, which no clock predicts: suggest a short wait.
    retry_after = 1.0 if verdict.failure == "parallel" else verdict.reset_ms / 1000
    headers = rate_headers(plan, verdict)
    headers["Retry-After"] = str(math.ceil(retry_after))
    return RateLimitError(
        _rate_message(plan, limit, state, verdict),
        code="rate_limit_exceeded",
        retry_after=retry_after,
        headers=headers,
    )
