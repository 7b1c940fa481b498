"""The limiter's behaviour, the same for both backends: every test runs on LocalLimiter and RedisLimiter.

The clock is injected (Redis's own TIME is replaced by it), so windows and leases move only when a
test says so; concurrency is real (asyncio.gather against one limiter).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis

from billing.limits import LocalLimiter, RedisLimiter
from billing.limits.types import AdmissionPlan, BudgetLimit, RateLimit
from providers.exceptions import BudgetExceededError, RateLimitError

# 15 s into a minute: windows reset 45 s later. Near the real time, as Redis expires keys by its own.
START = (int(datetime.now(UTC).timestamp()) // 60) * 60 + 15.0
PERIOD_END = datetime.fromtimestamp(START, UTC).replace(second=0) + timedelta(days=2)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
async def make_limiter(request, clock):
    """Return a factory of limiters of one backend sharing the fake clock (Redis: a fresh key prefix)."""
    if request.param == "local":
        yield lambda **options: LocalLimiter(clock=clock, **options)
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"{request.getfixturevalue('redis_prefix')}:limits-{uuid.uuid4().hex}"
    created: list[RedisLimiter] = []

    def make(**options) -> RedisLimiter:
        created.append(RedisLimiter(url, prefix=prefix, clock=clock, **options))
        return created[-1]

    yield make
    for limiter in created:
        await limiter.aclose()
    client = redis.Redis.from_url(url)
    names = list(client.scan_iter(match=f"{prefix}:*"))
    if names:
        client.delete(*names)
    client.close()


@pytest.fixture
def limiter(make_limiter):
    return make_limiter()


def budget(max_budget: str = "10", *, spent_before: str = "0", end=PERIOD_END, scope="key", id="key-1"):
    start = None if end is None else end - timedelta(days=30)
    return BudgetLimit(
        scope=scope,
        id=id,
        name=f"{scope} 'alias'",
        max_budget=Decimal(max_budget),
        period_start=start,
        period_end=end,
        spent_before=Decimal(spent_before),
    )


def plan(*, budgets=(), rates=(), reserve: str = "0", tokens: int = 0) -> AdmissionPlan:
    return AdmissionPlan(
        request_id=f"req-{uuid.uuid4().hex}",
        budgets=tuple(budgets),
        rate_limits=tuple(rates),
        reserve=Decimal(reserve),
        estimated_tokens=tokens,
    )


async def admitted(limiter, plans):
    """Admit every plan at once; return the admissions and the 429s (any other error is raised)."""
    outcomes = await asyncio.gather(*(limiter.admit(each) for each in plans), return_exceptions=True)
    granted, refused = [], []
    for outcome in outcomes:
        if isinstance(outcome, RateLimitError):
            refused.append(outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            granted.append(outcome)
    return granted, refused


async def test_it_holds_the_reserve_then_settles_to_the_actual_cost(limiter):
    key = budget("10")
    admission = await limiter.admit(plan(budgets=[key], reserve="0.02"))
    assert admission.held == Decimal("0.02")
    state = await limiter.spend_get(key)
    assert (state.spend, state.held) == (Decimal("0"), Decimal("0.02"))

    assert await limiter.settle(admission, Decimal("0.015"), 120) == Decimal("0.015")

    state = await limiter.spend_get(key)
    assert (state.spend, state.held) == (Decimal("0.015"), Decimal("0"))


async def test_exactly_as_many_concurrent_requests_as_the_budget_covers_are_admitted(limiter):
    key, team = budget("10", id="key-1"), budget("50", scope="team", id="team-1")
    plans = [plan(budgets=[key, team], reserve="1") for _ in range(100)]

    granted, refused = await admitted(limiter, plans)

    assert len(granted) == 10
    assert len(refused) == 90
    assert all(isinstance(error, BudgetExceededError) for error in refused)
    # Settled at their actual cost, the budget has room again, and still never goes past its limit.
    for number, admission in enumerate(granted):
        await limiter.settle(admission, Decimal("0.25") + Decimal(number) / 100, 10)
    while True:
        batch, refused = await admitted(limiter, [plan(budgets=[key, team], reserve="1") for _ in range(5)])
        for admission in batch:
            await limiter.settle(admission, Decimal("0.999"), 10)
        state = await limiter.spend_get(key)
        assert state.spend + state.held <= Decimal("10")
        if refused:
            break
    state = await limiter.spend_get(key)
    assert state.held == Decimal("0")
    assert Decimal("9") < state.spend <= Decimal("10")


async def test_a_refused_budget_names_the_budget_the_spend_and_the_limit(limiter):
    key = budget("10", spent_before="9.99")

    with pytest.raises(BudgetExceededError) as refused:
        await limiter.admit(plan(budgets=[key], reserve="0.02"))

    error = refused.value
    assert str(error) == (
        "Budget exceeded for key budget (key 'alias'): spend $9.99 + this request's hold $0.02 "
        "would pass the limit $10.00."
    )
    assert (error.status_code, error.type, error.retryable) == (429, "budget_exceeded", False)
    assert error.headers["x-should-retry"] == "false"
    assert error.retry_after == pytest.approx(PERIOD_END.timestamp() - START, abs=1)
    assert error.headers["Retry-After"] == str(int(error.retry_after))


async def test_a_refused_budget_counts_the_holds_of_requests_in_flight(limiter):
    key = budget("1", spent_before="0.25")
    await limiter.admit(plan(budgets=[key], reserve="0.5"))

    with pytest.raises(BudgetExceededError) as refused:
        await limiter.admit(plan(budgets=[key], reserve="0.3"))

    assert str(refused.value) == (
        "Budget exceeded for key budget (key 'alias'): spend $0.25 + $0.50 held for requests in flight "
        "+ this request's hold $0.30 would pass the limit $1.00."
    )


async def test_a_lifetime_budget_error_has_no_retry_after(limiter):
    with pytest.raises(BudgetExceededError) as refused:
        await limiter.admit(plan(budgets=[budget("1", spent_before="1", end=None)], reserve="0.01"))

    assert refused.value.retry_after is None
    assert "Retry-After" not in refused.value.headers


async def test_an_exhausted_budget_refuses_even_a_request_with_nothing_to_hold(limiter):
    await limiter.admit(plan(budgets=[budget("1", spent_before="0.99", id="open")]))

    with pytest.raises(BudgetExceededError) as refused:
        await limiter.admit(plan(budgets=[budget("1", spent_before="1", id="spent")]))

    assert "spend $1.00 has reached the limit $1.00." in str(refused.value)


async def test_spent_before_seeds_the_counter_once(limiter):
    first = await limiter.admit(plan(budgets=[budget("10", spent_before="5")], reserve="1"))
    await limiter.settle(first, Decimal("1"), 10)

    # A stale snapshot of the database's spend does not overwrite what the counter knows.
    await limiter.admit(plan(budgets=[budget("10", spent_before="0.5")], reserve="1"))

    state = await limiter.spend_get(budget())
    assert (state.spend, state.held) == (Decimal("6"), Decimal("1"))


async def test_a_new_period_starts_from_zero(limiter):
    old = budget("1", spent_before="1")
    with pytest.raises(BudgetExceededError):
        await limiter.admit(plan(budgets=[old], reserve="0.5"))

    new = budget("1", end=PERIOD_END + timedelta(days=30))
    await limiter.admit(plan(budgets=[new], reserve="0.5"))

    assert (await limiter.spend_get(new)).spend == Decimal("0")
    assert (await limiter.spend_get(old)).spend == Decimal("1")


async def test_nothing_is_counted_or_held_when_any_limit_refuses(limiter):
    key = budget("10")
    rate = RateLimit(scope="team", id="team-1", rpm=1, max_parallel=5)
    await limiter.admit(plan(rates=[rate]))

    with pytest.raises(RateLimitError):
        await limiter.admit(plan(budgets=[key], rates=[rate], reserve="1", tokens=10))

    assert (await limiter.spend_get(key)).held == Decimal("0")
    admission = await limiter.admit(plan(budgets=[key], reserve="10"))
    assert admission.held == Decimal("10")


async def test_it_admits_rpm_requests_then_refuses_until_the_next_minute(limiter, clock):
    rate = RateLimit(scope="key", id="key-1", rpm=5, name="key 'alias'")
    for _ in range(5):
        await limiter.admit(plan(rates=[rate]))

    with pytest.raises(RateLimitError) as refused:
        await limiter.admit(plan(rates=[rate]))

    error = refused.value
    assert not isinstance(error, BudgetExceededError)
    assert 0 < error.retry_after <= 60
    assert error.retry_after == 45
    assert str(error) == "Rate limit exceeded for key 'alias': all 5 requests per minute used; retry in 45s."
    assert error.headers["Retry-After"] == "45"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    clock.advance(45)
    await limiter.admit(plan(rates=[rate]))


async def test_the_requests_of_a_minute_are_counted_once_under_concurrency(limiter):
    rate = RateLimit(scope="key", id="key-1", rpm=7)

    granted, refused = await admitted(limiter, [plan(rates=[rate]) for _ in range(40)])

    assert (len(granted), len(refused)) == (7, 33)


async def test_tpm_counts_the_estimate_and_settle_corrects_it_to_the_actual_tokens(limiter):
    rate = RateLimit(scope="key", id="key-1", tpm=1000)
    first = await limiter.admit(plan(rates=[rate], tokens=400))
    second = await limiter.admit(plan(rates=[rate], tokens=400))
    assert second.headers["x-ratelimit-remaining-tokens"] == "200"
    with pytest.raises(RateLimitError) as refused:
        await limiter.admit(plan(rates=[rate], tokens=400))
    assert "800 of 1000 tokens per minute used and this request may use 400" in str(refused.value)

    await limiter.settle(first, Decimal("0"), 100)

    third = await limiter.admit(plan(rates=[rate], tokens=400))
    assert third.headers["x-ratelimit-remaining-tokens"] == "100"
    await limiter.release(second)  # never answered: its whole estimate comes back
    fourth = await limiter.admit(plan(rates=[rate], tokens=400))
    assert fourth.headers["x-ratelimit-remaining-tokens"] == "100"


async def test_a_request_larger_than_the_tpm_limit_says_so(limiter):
    with pytest.raises(RateLimitError) as refused:
        await limiter.admit(plan(rates=[RateLimit(scope="key", id="key-1", tpm=100)], tokens=500))

    assert "this request may use 500 tokens, more than the 100 tokens per minute allowed" in str(
        refused.value
    )


async def test_the_parallel_cap_frees_a_slot_when_a_request_settles(limiter):
    rate = RateLimit(scope="key", id="key-1", max_parallel=3, name="key 'alias'")
    granted, refused = await admitted(limiter, [plan(rates=[rate]) for _ in range(4)])
    assert (len(granted), len(refused)) == (3, 1)
    assert str(refused[0]) == (
        "Parallel request limit reached for key 'alias': 3 of 3 requests in flight; retry when one finishes."
    )
    assert refused[0].retry_after == 1

    await limiter.settle(granted[0], Decimal("0.01"), 10)
    replacement = await limiter.admit(plan(rates=[rate]))
    with pytest.raises(RateLimitError):
        await limiter.admit(plan(rates=[rate]))
    await limiter.release(replacement)
    await limiter.admit(plan(rates=[rate]))


async def test_a_leaked_parallel_slot_expires_after_its_lease(make_limiter, clock):
    limiter = make_limiter(lease_seconds=30)
    rate = RateLimit(scope="key", id="key-1", max_parallel=1)
    await limiter.admit(plan(rates=[rate]))  # never settled: its instance crashed
    clock.advance(29)
    with pytest.raises(RateLimitError):
        await limiter.admit(plan(rates=[rate]))

    clock.advance(2)

    await limiter.admit(plan(rates=[rate]))


async def test_a_leaked_hold_expires_after_its_lease(make_limiter, clock):
    limiter = make_limiter(lease_seconds=30)
    key = budget("1")
    await limiter.admit(plan(budgets=[key], reserve="1"))  # never settled
    with pytest.raises(BudgetExceededError):
        await limiter.admit(plan(budgets=[key], reserve="1"))

    clock.advance(31)

    await limiter.admit(plan(budgets=[key], reserve="1"))
    assert (await limiter.spend_get(key)).held == Decimal("1")


async def test_a_request_settled_after_its_lease_still_counts_its_cost_once(make_limiter, clock):
    limiter = make_limiter(lease_seconds=30)
    key = budget("1")
    slow = await limiter.admit(plan(budgets=[key], reserve="0.5"))
    clock.advance(31)
    await limiter.admit(plan(budgets=[key], reserve="0.5"))  # prunes the slow request's hold

    await limiter.settle(slow, Decimal("0.4"), 10)

    state = await limiter.spend_get(key)
    assert (state.spend, state.held) == (Decimal("0.4"), Decimal("0.5"))


async def test_holds_and_settlements_of_tiny_costs_add_up_exactly(limiter):
    key = budget("1")
    for _ in range(50):
        admissions, _ = await admitted(
            limiter, [plan(budgets=[key], reserve="0.0000001234") for _ in range(20)]
        )
        assert len(admissions) == 20
        for admission in admissions:
            await limiter.settle(admission, Decimal("0.0000000617"), 1)

    state = await limiter.spend_get(key)
    assert state.spend == Decimal("0.0000617")  # 1,000 x 0.0000000617, not a float's approximation
    assert state.held == Decimal("0")


async def test_amounts_past_double_precision_compare_and_add_exactly(limiter):
    # 10^16 units of 1e-10 USD is past 2^53: a double could not tell these amounts apart.
    edge = budget("1000000.0000000001", spent_before="999999.9999999999", id="edge")
    admission = await limiter.admit(plan(budgets=[edge], reserve="0.0000000002"))
    with pytest.raises(BudgetExceededError):
        await limiter.admit(plan(budgets=[edge], reserve="0.0000000001"))
    await limiter.settle(admission, Decimal("0.0000000001"), 1)

    assert (await limiter.spend_get(edge)).spend == Decimal("1000000.0000000000")
    bigger = budget("900000000", spent_before="899999999.9999999999", id="bigger")
    with pytest.raises(BudgetExceededError):
        await limiter.admit(plan(budgets=[bigger], reserve="0.0000000002"))
    admission = await limiter.admit(plan(budgets=[bigger], reserve="0.0000000001"))
    await limiter.settle(admission, Decimal("0.0000000001"), 1)
    assert (await limiter.spend_get(bigger)).spend == Decimal("900000000")


async def test_costs_finer_than_the_unit_round_half_even_and_holds_round_up(limiter):
    key = budget("1")
    admission = await limiter.admit(plan(budgets=[key], reserve="0.00000000011"))
    assert admission.held == Decimal("0.0000000002")
    assert (await limiter.spend_get(key)).held == Decimal("0.0000000002")

    await limiter.settle(admission, Decimal("0.00000000015"), 1)

    assert (await limiter.spend_get(key)).spend == Decimal("0.0000000002")


async def test_headers_report_the_most_constraining_caller_limit(limiter):
    rates = [
        RateLimit(scope="key", id="key-1", rpm=10, tpm=10_000),
        RateLimit(scope="team", id="team-1", rpm=3, tpm=50_000),
        RateLimit(
            scope="deployment", id="deployment-1", rpm=1, tpm=100
        ),  # routing's concern, not the caller's
    ]

    admission = await limiter.admit(plan(rates=rates, tokens=60))

    assert admission.headers == {
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "2",
        "x-ratelimit-reset-requests": "45s",
        "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": "9940",
        "x-ratelimit-reset-tokens": "45s",
    }
    with pytest.raises(RateLimitError) as refused:
        await limiter.admit(plan(rates=rates, tokens=60))
    # The refusing limit is the one reported, even a deployment's.
    assert refused.value.headers == {
        "x-ratelimit-limit-requests": "1",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "45s",
        "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": "9940",
        "x-ratelimit-reset-tokens": "45s",
        "Retry-After": "45",
    }


async def test_a_plan_without_limits_is_admitted_without_headers(limiter):
    admission = await limiter.admit(plan())

    assert admission.headers == {}
    assert await limiter.settle(admission, Decimal("1"), 10) is None


async def test_a_second_settle_does_nothing(limiter):
    key = budget("10")
    admission = await limiter.admit(plan(budgets=[key], reserve="1"))
    assert await limiter.settle(admission, Decimal("0.5"), 10) == Decimal("0.5")

    assert await limiter.settle(admission, Decimal("0.5"), 10) is None

    assert (await limiter.spend_get(key)).spend == Decimal("0.5")


async def test_release_gives_back_the_hold_and_charges_nothing(limiter):
    key = budget("10", spent_before="2")
    admission = await limiter.admit(plan(budgets=[key], reserve="3"))

    assert await limiter.release(admission) == Decimal("2")

    state = await limiter.spend_get(key)
    assert (state.spend, state.held) == (Decimal("2"), Decimal("0"))


async def test_forgetting_a_counter_reseeds_it_from_the_database(limiter):
    key = budget("10", spent_before="2")
    await limiter.admit(plan(budgets=[key], reserve="1"))

    await limiter.spend_forget(key)

    assert await limiter.spend_get(key) is None
    await limiter.admit(plan(budgets=[budget("10", spent_before="0")], reserve="1"))
    assert (await limiter.spend_get(key)).spend == Decimal("0")


async def test_settle_rejects_a_negative_cost(limiter):
    admission = await limiter.admit(plan(budgets=[budget()], reserve="1"))

    with pytest.raises(ValueError, match="cannot be negative"):
        await limiter.settle(admission, Decimal("-1"), 10)


def bounded(*, budgets=(), rates=(), reserve: str, tokens: int, exact_reserve: str, exact_tokens: int):
    """Return a plan on a prompt's upper bound whose exact plan (counted on demand) is smaller."""
    counted: list[AdmissionPlan] = []
    exact = plan(budgets=budgets, rates=rates, reserve=exact_reserve, tokens=exact_tokens)

    def exact_plan() -> AdmissionPlan:
        counted.append(exact)
        return exact

    upper = plan(budgets=budgets, rates=rates, reserve=reserve, tokens=tokens)
    return AdmissionPlan(
        request_id=exact.request_id,
        budgets=upper.budgets,
        rate_limits=upper.rate_limits,
        reserve=upper.reserve,
        estimated_tokens=upper.estimated_tokens,
        exact_plan=exact_plan,
    ), counted


async def test_a_bounded_plan_that_fits_is_admitted_without_counting(limiter):
    key = budget("10")
    bound, counted = bounded(budgets=[key], reserve="4", tokens=400, exact_reserve="1", exact_tokens=100)

    admission = await limiter.admit(bound)

    assert (admission.held, counted) == (Decimal("4"), [])
    assert (await limiter.spend_get(key)).held == Decimal("4")


async def test_a_bounded_plan_a_budget_refuses_is_decided_again_on_its_exact_count(limiter):
    key = budget("10", spent_before="8")
    bound, counted = bounded(budgets=[key], reserve="4", tokens=400, exact_reserve="1.5", exact_tokens=100)

    admission = await limiter.admit(bound)

    assert (admission.held, admission.plan) == (Decimal("1.5"), counted[0])
    assert (await limiter.spend_get(key)).held == Decimal("1.5")


async def test_a_bounded_plan_tpm_refuses_is_decided_again_on_its_exact_count(limiter):
    tpm = RateLimit(scope="key", id="key-1", tpm=1000)
    bound, counted = bounded(rates=[tpm], reserve="0", tokens=1500, exact_reserve="0", exact_tokens=600)

    admission = await limiter.admit(bound)

    assert admission.plan is counted[0]
    assert admission.headers["x-ratelimit-remaining-tokens"] == "400"


async def test_an_exact_count_that_still_does_not_fit_is_refused(limiter):
    key = budget("10", spent_before="9.5")
    bound, counted = bounded(budgets=[key], reserve="4", tokens=400, exact_reserve="1", exact_tokens=100)

    with pytest.raises(BudgetExceededError, match=r"this request's hold \$1\.00"):
        await limiter.admit(bound)
    assert len(counted) == 1
    assert (await limiter.spend_get(key)).held == Decimal("0")


async def test_a_refusal_the_count_cannot_change_does_not_count(limiter):
    rpm = RateLimit(scope="key", id="key-1", rpm=1)
    await limiter.admit(plan(rates=[rpm]))
    bound, counted = bounded(rates=[rpm], reserve="0", tokens=400, exact_reserve="0", exact_tokens=100)

    with pytest.raises(RateLimitError):
        await limiter.admit(bound)
    assert counted == []
