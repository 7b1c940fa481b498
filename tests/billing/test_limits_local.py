"""LocalLimiter on its own (threads, forgetting old state) and which limiter a process gets."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import billing.limits
from billing.limits import LocalLimiter, RedisLimiter, limiter
from billing.limits.types import AdmissionPlan, BudgetLimit, RateLimit
from providers.exceptions import RateLimitError


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _plan(**fields) -> AdmissionPlan:
    return AdmissionPlan(request_id=f"req-{uuid.uuid4().hex}", **fields)


def test_threads_sharing_one_limiter_never_pass_the_budget():
    local = LocalLimiter()
    key = BudgetLimit(scope="key", id="key-1", max_budget=Decimal("25"))
    rate = RateLimit(scope="key", id="key-1", max_parallel=1000)
    granted: list[int] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        async def one() -> int:
            try:
                await local.admit(_plan(budgets=(key,), rate_limits=(rate,), reserve=Decimal("1")))
            except RateLimitError:
                return 0
            return 1

        async def many() -> int:
            return sum(await asyncio.gather(*(one() for _ in range(20))))

        barrier.wait()
        granted.append(asyncio.run(many()))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(granted) == 25
    assert asyncio.run(local.spend_get(key)).held == Decimal("25")


async def test_it_forgets_a_period_counter_a_day_after_the_period_ends():
    now = datetime(2030, 1, 1, tzinfo=UTC)
    clock = FakeClock(now.timestamp())
    local = LocalLimiter(clock=clock)
    key = BudgetLimit(scope="key", id="key-1", max_budget=Decimal("5"), period_end=now + timedelta(hours=1))
    await local.admit(_plan(budgets=(key,), reserve=Decimal("1")))

    clock.now += 3600 + 86_400 - 60
    await local.admit(_plan(rate_limits=(RateLimit(scope="key", id="key-1", rpm=5),)))
    assert await local.spend_get(key) is not None
    clock.now += 120
    await local.admit(_plan(rate_limits=(RateLimit(scope="key", id="key-1", rpm=5),)))

    assert await local.spend_get(key) is None


async def test_it_keeps_a_lifetime_counter():
    clock = FakeClock(datetime(2030, 1, 1, tzinfo=UTC).timestamp())
    local = LocalLimiter(clock=clock)
    key = BudgetLimit(scope="key", id="key-1", max_budget=Decimal("5"))
    await local.admit(_plan(budgets=(key,), reserve=Decimal("1")))

    clock.now += 10 * 365 * 86_400
    await local.admit(_plan(rate_limits=(RateLimit(scope="key", id="key-1", rpm=5),)))

    assert await local.spend_get(key) is not None


@pytest.fixture
def fresh_limiter(monkeypatch):
    monkeypatch.setattr(billing.limits, "_limiter", None)


def test_the_embedded_mode_gets_the_in_process_limiter(settings, fresh_limiter):
    settings.GATEWAY = {**settings.GATEWAY, "REDIS_URL": ""}

    assert isinstance(limiter(), LocalLimiter)
    assert limiter() is limiter()


def test_production_gets_the_redis_limiter(settings, fresh_limiter):
    settings.GATEWAY = {**settings.GATEWAY, "REDIS_URL": "redis://127.0.0.1:6379/15"}

    assert isinstance(limiter(), RedisLimiter)
    assert limiter() is limiter()
