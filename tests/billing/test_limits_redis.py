"""RedisLimiter on its own: counters shared by separate processes, the script's life, key expiry."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from billing.limits import RedisLimiter, redis_limiter
from billing.limits.redis_script import SCRIPT
from billing.limits.types import AdmissionPlan, BudgetLimit, RateLimit
from providers.exceptions import RateLimitError, ServiceUnavailableError

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"

# One process of the cross-process tests: wait for the start signal, fire its admissions all at once,
# print how many were granted. The limits arrive as JSON in argv.
WORKER = """
import asyncio, json, sys, uuid
from datetime import datetime
from decimal import Decimal

import redis.asyncio

from billing.limits import RedisLimiter
from billing.limits.types import AdmissionPlan, BudgetLimit, RateLimit
from providers.exceptions import RateLimitError


async def main(url, prefix, spec):
    now = spec["clock"]
    limiter = RedisLimiter(url, prefix=prefix, clock=(lambda: now) if now else None)
    budgets = []
    if spec["max_budget"]:
        period_end = datetime.fromisoformat(spec["period_end"])
        budgets.append(BudgetLimit(scope="key", id="shared", max_budget=Decimal(spec["max_budget"]),
                                   period_end=period_end))
    rates = [RateLimit(scope="key", id="shared", rpm=spec["rpm"])] if spec["rpm"] else []

    async def one():
        plan = AdmissionPlan(request_id=uuid.uuid4().hex, budgets=tuple(budgets), rate_limits=tuple(rates),
                             reserve=Decimal(spec["reserve"]))
        try:
            await limiter.admit(plan)
        except RateLimitError:
            return 0
        return 1

    signals = redis.asyncio.Redis.from_url(url)
    await signals.rpush(f"{prefix}:ready", 1)
    await signals.blpop([f"{prefix}:start"], timeout=30)
    print(sum(await asyncio.gather(*(one() for _ in range(spec["count"])))))


asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
"""


@pytest.fixture
def prefix(redis_url, redis_prefix):
    name = f"{redis_prefix}:limits-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(redis_url)
    names = list(client.scan_iter(match=f"{name}:*"))
    if names:
        client.delete(*names)
    client.close()


async def granted_across_processes(redis_url: str, prefix: str, spec: dict, processes: int = 2) -> list[int]:
    """Run ``processes`` workers against the same counters, released together; return their grants."""
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, redis_url, prefix, json.dumps(spec),
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(processes)
    ]  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    for _ in range(processes):
        assert client.blpop([f"{prefix}:ready"], timeout=30) is not None, "a worker did not start"
    client.rpush(f"{prefix}:start", *range(processes))
    client.close()
    results = []
    for worker in workers:
        stdout, stderr = await worker.communicate()
        assert worker.returncode == 0, stderr.decode()
        results.append(int(stdout))
    return results


async def test_two_processes_share_one_budget(redis_url, prefix):
    period_end = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    spec = {
        "max_budget": "10",
        "reserve": "1",
        "rpm": None,
        "count": 50,
        "clock": None,
        "period_end": period_end,
    }

    results = await granted_across_processes(redis_url, prefix, spec)

    assert sum(results) == 10
    limiter = RedisLimiter(redis_url, prefix=prefix)
    state = await limiter.spend_get(
        BudgetLimit(
            scope="key", id="shared", max_budget=Decimal("10"), period_end=datetime.fromisoformat(period_end)
        )
    )
    await limiter.aclose()
    assert (state.spend, state.held) == (Decimal("0"), Decimal("10"))


async def test_two_processes_share_one_rpm_limit(redis_url, prefix):
    # One fixed minute for both processes: the test cannot straddle a window's turn.
    now = (int(datetime.now(UTC).timestamp()) // 60) * 60 + 10.0
    spec = {"max_budget": None, "reserve": "0", "rpm": 17, "count": 50, "clock": now, "period_end": None}

    results = await granted_across_processes(redis_url, prefix, spec)

    assert sum(results) == 17


def _plan(**fields) -> AdmissionPlan:
    return AdmissionPlan(request_id=f"req-{uuid.uuid4().hex}", **fields)


async def test_it_reloads_the_script_when_the_server_does_not_know_its_sha(redis_url, prefix, monkeypatch):
    # What a restarted server answers is NOSCRIPT; a SHA no script has provokes the same answer
    # without flushing the scripts of everyone else on the server.
    unknown = "0" * 40
    client = redis.Redis.from_url(redis_url)
    assert client.script_exists(unknown) == [False]
    monkeypatch.setattr(redis_limiter, "SCRIPT_SHA", unknown)
    limiter = RedisLimiter(redis_url, prefix=prefix)
    rate = RateLimit(scope="key", id="key-1", rpm=10)

    first = await limiter.admit(_plan(rate_limits=(rate,)))
    second = await limiter.admit(_plan(rate_limits=(rate,)))

    assert first.headers["x-ratelimit-remaining-requests"] == "9"
    assert second.headers["x-ratelimit-remaining-requests"] == "8"
    assert client.script_exists(hashlib.sha1(SCRIPT.encode()).hexdigest()) == [True]
    await limiter.aclose()
    client.close()


async def test_it_uses_the_redis_clock_by_default(redis_url, prefix):
    limiter = RedisLimiter(redis_url, prefix=prefix)
    server_seconds, _ = redis.Redis.from_url(redis_url).time()

    admission = await limiter.admit(_plan(rate_limits=(RateLimit(scope="key", id="key-1", rpm=10),)))

    assert admission.window in (server_seconds // 60, server_seconds // 60 + 1)
    await limiter.aclose()


async def test_counters_expire_with_their_window_lease_or_period(redis_url, prefix):
    limiter = RedisLimiter(redis_url, prefix=prefix, lease_seconds=300)
    period_end = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    periodic = BudgetLimit(scope="key", id="key-1", max_budget=Decimal("5"), period_end=period_end)
    lifetime = BudgetLimit(scope="team", id="team-1", max_budget=Decimal("5"))
    rate = RateLimit(scope="key", id="key-1", rpm=10, max_parallel=2)

    await limiter.admit(_plan(budgets=(periodic, lifetime), rate_limits=(rate,), reserve=Decimal("1")))

    client = redis.Redis.from_url(redis_url)
    assert 0 < client.pttl(f"{prefix}:rate:key:key-1") <= 120_000
    assert 0 < client.pttl(f"{prefix}:parallel:key:key-1") <= 300_000
    expected = period_end.timestamp() + 86_400 - datetime.now(UTC).timestamp()
    assert client.ttl(limiter.budget_key(periodic)) == pytest.approx(expected, abs=5)
    assert client.ttl(limiter.budget_key(periodic) + ":leases") == pytest.approx(expected, abs=5)
    assert client.ttl(limiter.budget_key(lifetime)) == -1  # a lifetime budget's counter never expires
    client.close()
    await limiter.aclose()


async def test_a_settle_after_the_period_counter_expired_does_not_recreate_it(redis_url, prefix):
    limiter = RedisLimiter(redis_url, prefix=prefix)
    key = BudgetLimit(scope="key", id="key-1", max_budget=Decimal("5"), period_end=datetime.now(UTC))
    admission = await limiter.admit(_plan(budgets=(key,), reserve=Decimal("1")))
    redis.Redis.from_url(redis_url).delete(limiter.budget_key(key))  # as its expiry would

    assert await limiter.settle(admission, Decimal("0.5"), 10) is None

    assert await limiter.spend_get(key) is None
    await limiter.aclose()


async def test_it_refuses_requests_when_redis_is_unreachable():
    limiter = RedisLimiter(DEAD_REDIS_URL, timeout=0.5)
    rate = RateLimit(scope="key", id="key-1", rpm=10)

    with pytest.raises(ServiceUnavailableError) as refused:
        await limiter.admit(_plan(rate_limits=(rate,)))

    assert refused.value.status_code == 503
    assert not isinstance(refused.value, RateLimitError)


async def test_a_settle_without_redis_gives_up_quietly(redis_url, prefix):
    limiter = RedisLimiter(redis_url, prefix=prefix)
    admission = await limiter.admit(_plan(rate_limits=(RateLimit(scope="key", id="key-1", max_parallel=1),)))
    await limiter.aclose()

    assert await RedisLimiter(DEAD_REDIS_URL, timeout=0.5).settle(admission, Decimal("1"), 10) is None
    assert admission.settled
