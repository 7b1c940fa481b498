"""The production limiter: every counter in Redis, shared by every instance, one round trip a step.

``admit`` and ``settle`` each run the one Lua script of ``redis_script`` (its docstring describes the
keys, units and bounds), loaded once per server and called by its SHA (EVALSHA), reloaded when the
server answers NOSCRIPT (a restart or SCRIPT FLUSH).

When Redis cannot be reached, ``admit`` fails closed with a 503: a budget that cannot be checked
is not enforced otherwise. ``settle`` logs and gives up: the ledger still records the cost, and the
request's holds and slot lapse with their lease.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from decimal import Decimal

import redis
import redis.asyncio

from billing.limits.redis_script import SCRIPT
from billing.limits.types import Admission, AdmissionPlan, BudgetLimit, BudgetSpend
from billing.limits.verdicts import (
    RateState,
    Verdict,
    decide,
    from_units,
    hold_units,
    limit_units,
    to_units,
)
from providers.exceptions import ServiceUnavailableError
from providers.redis_clients import RedisClientsPerLoop

logger = logging.getLogger(__name__)


def limiter_prefix(gateway_prefix: str) -> str:
    """Return the limiter's key prefix under the gateway's Redis prefix.

    The braces make ``{limits}`` a Redis Cluster hash tag: every key a script call touches is in one
    slot, as a script needs.
    """
    return f"{gateway_prefix}:{{limits}}"


DEFAULT_PREFIX = limiter_prefix("llm_gateway")
DEFAULT_LEASE_SECONDS = 900.0
BUDGET_GRACE_SECONDS = 86_400  # a period's counter outlives the period by a day, for late settles
# The 503's Retry-After while Redis is away: short, a restarted Redis serves again at once.
UNREACHABLE_RETRY_SECONDS = 1.0
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()


def _optional(value: int | None) -> int | str:
    return "" if value is None else value


class RedisLimiter:
    """Budgets and rate limits in Redis at ``url``.

    ``lease_seconds`` bounds how long a parallel slot or a budget hold outlives a request that was
    never settled (a crashed instance): keep it above the longest upstream timeout. ``clock`` (Unix
    seconds) replaces Redis's own clock, for tests.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.prefix = prefix
        self.lease_seconds = lease_seconds
        self._url = url
        self._clock = clock
        self._script_sha = SCRIPT_SHA  # replaced by what SCRIPT LOAD answers after a NOSCRIPT
        self._clients = RedisClientsPerLoop(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
        )

    def _client(self) -> redis.asyncio.Redis:
        return self._clients.get()

    async def _run(self, keys: Sequence[str], args: Sequence[object]) -> list:
        client = self._client()
        try:
            return await client.evalsha(self._script_sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self._script_sha = await client.script_load(SCRIPT)
            return await client.evalsha(self._script_sha, len(keys), *keys, *args)

    def budget_key(self, budget: BudgetLimit) -> str:
        period = "life" if budget.period_end is None else f"{budget.period_end.timestamp():.0f}"
        return f"{self.prefix}:budget:{budget.scope}:{budget.id}:{period}"

    def _keys(self, plan: AdmissionPlan) -> list[str]:
        keys = []
        for budget in plan.budgets:
            name = self.budget_key(budget)
            keys += [name, f"{name}:leases"]
        for limit in plan.rate_limits:
            keys += [
                f"{self.prefix}:rate:{limit.scope}:{limit.id}",
                f"{self.prefix}:parallel:{limit.scope}:{limit.id}",
            ]
        return keys

    def _now_ms(self) -> int | str:
        return "" if self._clock is None else int(self._clock() * 1000)

    async def admit(self, plan: AdmissionPlan) -> Admission:
        """Check every limit of ``plan`` and, if all pass, count the request and hold its reserve.

        Raise BudgetExceededError or RateLimitError (with headers and retry_after) for the first
        limit that fails, with nothing counted or held; ServiceUnavailableError without Redis. A plan
        on a bounded prompt that a budget or TPM refuses is decided again on its exact plan (a second
        round trip, only then).
        """
        if not plan.budgets and not plan.rate_limits:
            return Admission(plan=plan)
        verdict = await self._admit(plan)
        if plan.refinable(verdict.failure):
            plan = plan.exact_plan()
            verdict = await self._admit(plan)
        return decide(plan, verdict)

    async def _admit(self, plan: AdmissionPlan) -> Verdict:
        args: list[object] = [
            "admit",
            self._now_ms(),
            plan.request_id,
            max(int(self.lease_seconds * 1000), 1),
            plan.estimated_tokens,
            hold_units(plan.reserve),
            len(plan.budgets),
            len(plan.rate_limits),
        ]
        for budget in plan.budgets:
            expire_at = 0
            if budget.period_end is not None:
                # EXPIREAT in the past deletes at once; Redis's real clock decides, whatever ours says.
                expire_at = max(
                    int(budget.period_end.timestamp()) + BUDGET_GRACE_SECONDS, int(time.time()) + 60
                )
            args += [limit_units(budget.max_budget), hold_units(budget.spent_before), expire_at]
        for limit in plan.rate_limits:
            args += [_optional(limit.rpm), _optional(limit.tpm), _optional(limit.max_parallel)]
        try:
            reply = await self._run(self._keys(plan), args)
        except redis.exceptions.RedisError as error:
            logger.error("The limiter cannot reach Redis; refusing request %s: %s", plan.request_id, error)
            raise ServiceUnavailableError(
                "Budgets and rate limits cannot be checked right now; try again shortly.",
                code="limits_unavailable",
                retry_after=UNREACHABLE_RETRY_SECONDS,
            ) from error
        return _verdict(plan, reply)

    async def settle(self, admission: Admission, cost: Decimal, tokens: int) -> Decimal | None:
        """Charge the request's actual cost in place of its holds; return the key budget's spend after.

        Correct TPM from the estimate to the actual ``tokens`` (in the window that counted it) and free
        the parallel slots. Return None when the plan has no key budget; a second settle does nothing.
        """
        if cost < 0 or tokens < 0:
            raise ValueError(f"cost and tokens cannot be negative (got {cost}, {tokens}).")
        plan = admission.plan
        # Requests and rpm counts stay as they are: with no budget, TPM or parallel cap, nothing to undo.
        undo = plan.budgets or any(
            limit.tpm is not None or limit.max_parallel is not None for limit in plan.rate_limits
        )
        if admission.settled or not undo:
            admission.settled = True
            return None
        admission.settled = True
        args = [
            "settle",
            "",
            plan.request_id,
            admission.window,
            tokens - plan.estimated_tokens,
            to_units(cost),
            len(plan.budgets),
            len(plan.rate_limits),
        ]
        try:
            reply = await self._run(self._keys(plan), args)
        except redis.exceptions.RedisError as error:
            logger.warning(
                "The limiter cannot settle request %s (its holds lapse with their lease): %s",
                plan.request_id,
                error,
            )
            return None
        for budget, spend in zip(plan.budgets, reply, strict=True):
            if budget.scope == "key" and spend:
                return from_units(int(spend))
        return None

    async def release(self, admission: Admission) -> Decimal | None:
        """Give back everything the admission holds: the upstream was never called or billed nothing."""
        return await self.settle(admission, Decimal("0"), 0)

    async def spend_get(self, budget: BudgetLimit) -> BudgetSpend | None:
        """Return the budget's counter for its period, or None before its first admission."""
        spend, held = await self._client().hmget(self.budget_key(budget), "spend", "held")
        if spend is None:
            return None
        return BudgetSpend(spend=from_units(int(spend)), held=from_units(int(held or 0)))

    async def spend_forget(self, budget: BudgetLimit) -> None:
        """Drop the budget's counter so the next admission seeds it again from ``spent_before``."""
        name = self.budget_key(budget)
        await self._client().delete(name, f"{name}:leases")

    async def aclose(self) -> None:
        """Close the running loop's client (call before that loop ends)."""
        await self._clients.aclose()


def _verdict(plan: AdmissionPlan, reply: list) -> Verdict:
    """Return the script's admit reply: now, failure, failing index (from 1), then the counters."""
    now_ms, failure, failed = int(reply[0]), reply[1], int(reply[2])
    budget_count = len(plan.budgets)
    flat = reply[3:]
    budgets = tuple((int(flat[2 * i]), int(flat[2 * i + 1])) for i in range(budget_count))
    rest = flat[2 * budget_count :]
    rates = tuple(
        RateState(requests=int(rest[3 * i]), tokens=int(rest[3 * i + 1]), running=int(rest[3 * i + 2]))
        for i in range(len(plan.rate_limits))
    )
    return Verdict(failure=failure, index=max(failed - 1, 0), now_ms=now_ms, budgets=budgets, rates=rates)
