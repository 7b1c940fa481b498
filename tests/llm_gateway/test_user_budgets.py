"""Per-user budgets and limits: they apply to every key a user owns, on top of the key's and team's.

Requests go through Django's ``AsyncClient`` to a mock deployment, as in test_inference_queries; the
snapshot reads use ``async_to_sync`` so the ORM runs on the test's own connection.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth.models import User
from django.db import connection
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.costs import INPUT, OUTPUT, quote_make
from billing.limits.periods import budget_period
from billing.limits.types import AdmissionPlan, BudgetLimit, RateLimit
from llm_gateway.admission import admission_plan
from llm_gateway.crypto import virtual_key_hash
from llm_gateway.lookups import NO_LIMITS, KeySnapshot, deployment_snapshot, snapshots
from llm_gateway.models import UserBudget
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.users import user_budget_set
from tests.llm_gateway.factories import key_make, team_make, user_make

MESSAGES = [{"role": "user", "content": "Hello"}]
QUOTE = quote_make({INPUT: Decimal("0.000001"), OUTPUT: Decimal("0.000002")}, source="test")


def key_snapshot(secret: str) -> KeySnapshot:
    """Return the request path's snapshot of the key with this secret (None: no such key)."""
    return async_to_sync(snapshots.key_get)(virtual_key_hash(secret))


def plan_for(key: KeySnapshot, now: datetime | None = None) -> AdmissionPlan:
    """Return the plan of a small chat request with ``key`` to a mock deployment."""
    deployment = deployment_snapshot(deployment_create(model_name="demo", provider="mock", model="demo"))
    return admission_plan(
        request_id="req-test",
        key=key,
        end_user=None,
        deployment=deployment,
        operation="chat",
        body={"model": "demo", "messages": MESSAGES, "max_tokens": 10},
        quote=QUOTE,
        now=now or timezone.now(),
    )


async def chat(client: AsyncClient, secret: str):
    return await client.post(
        "/v1/chat/completions",
        {"model": "demo", "messages": MESSAGES},
        "application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )


@pytest.mark.django_db
class TestSnapshotAndPlan:
    def test_the_plan_holds_the_owners_budget_and_rate_limit(self):
        now = timezone.now()
        user = user_make(username="lea")
        budget = user_budget_set(
            user=user,
            max_budget=Decimal("10"),
            budget_duration="1d",
            rpm_limit=60,
            max_parallel_requests=2,
        )
        UserBudget.objects.filter(pk=user.pk).update(spend=Decimal("2.5"))
        _, secret = key_make(user=user)
        start, end = budget_period("1d", budget.budget_reset_at, now)

        plan = plan_for(key_snapshot(secret), now)

        assert plan.budgets == (
            BudgetLimit(
                scope="user",
                id=str(user.pk),
                max_budget=Decimal("10"),
                period_start=start,
                period_end=end,
                spent_before=Decimal("2.5"),
                name="user 'lea'",
            ),
        )
        assert plan.rate_limits == (
            RateLimit(scope="user", id=str(user.pk), rpm=60, max_parallel=2, name="user 'lea'"),
        )
        assert plan.reserve > 0  # a budget is held: the worst-case cost is reserved on it

    def test_the_owners_budget_comes_with_the_key_and_teams(self):
        user = user_make(username="max")
        user_budget_set(user=user, max_budget=Decimal("3"), tpm_limit=1000)
        team = team_make(max_budget=Decimal("50"))
        _, secret = key_make(user=user, team=team, max_budget=Decimal("1"), rpm_limit=5)

        plan = plan_for(key_snapshot(secret))

        assert [(budget.scope, budget.max_budget) for budget in plan.budgets] == [
            ("key", Decimal("1")),
            ("team", Decimal("50")),
            ("user", Decimal("3")),
        ]
        assert [(limit.scope, limit.rpm, limit.tpm) for limit in plan.rate_limits] == [
            ("key", 5, None),
            ("user", None, 1000),
        ]

    def test_a_user_without_a_budget_row_adds_nothing(self):
        _, secret = key_make(user=user_make(username="ned"))

        key = key_snapshot(secret)
        plan = plan_for(key)

        assert (key.user_name, key.user_limits, key.user_blocked) == ("ned", NO_LIMITS, False)
        assert (plan.budgets, plan.rate_limits, plan.reserve) == ((), (), Decimal("0"))

    def test_a_key_without_an_owner_adds_no_user_limits(self):
        _, secret = key_make()

        key = key_snapshot(secret)

        assert (key.user_id, key.user_name, key.user_limits) == (None, None, NO_LIMITS)
        assert plan_for(key).budgets == ()

    def test_a_budget_of_an_ended_period_starts_the_new_one_at_zero(self):
        now = timezone.now()
        user = user_make()
        user_budget_set(user=user, max_budget=Decimal("4"), budget_duration="1h")
        UserBudget.objects.filter(pk=user.pk).update(
            spend=Decimal("3"), budget_reset_at=now - timedelta(minutes=1)
        )
        _, secret = key_make(user=user)

        [budget] = plan_for(key_snapshot(secret), now).budgets

        assert budget.spent_before == Decimal("0")
        assert budget.period_end > now

    def test_the_key_its_team_its_owner_and_their_budget_are_read_in_one_query(self):
        user = user_make()
        user_budget_set(user=user, max_budget=Decimal("1"))
        _, secret = key_make(user=user, team=team_make())

        with CaptureQueriesContext(connection) as queries:
            key = key_snapshot(secret)

        assert len(queries) == 1
        assert key.user_limits.max_budget == Decimal("1")


@pytest.fixture
def demo(transactional_db) -> None:
    """Seed the mock deployment the requests call."""
    deployment_create(model_name="demo", provider="mock", model="demo")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("demo")
class TestRequests:
    async def test_a_user_over_budget_gets_429_budget_exceeded_on_every_key_they_own(self):
        user = await user_make_async(username="spender")
        await budget_set_async(user=user, max_budget=Decimal("1"))
        await UserBudget.objects.filter(pk=user.pk).aupdate(spend=Decimal("1"))
        first = await key_make_async(user=user)
        second = await key_make_async(user=user, max_budget=Decimal("100"))
        client = AsyncClient()

        responses = [await chat(client, first), await chat(client, second)]

        for response in responses:
            assert response.status_code == 429, response.content
            error = response.json()["error"]
            assert (error["type"], error["code"]) == ("budget_exceeded", "budget_exceeded")
            assert "user budget (user 'spender')" in error["message"]
            assert response["x-should-retry"] == "false"

    async def test_a_user_under_budget_is_served(self):
        user = await user_make_async()
        await budget_set_async(user=user, max_budget=Decimal("1"))
        secret = await key_make_async(user=user)

        response = await chat(AsyncClient(), secret)

        assert response.status_code == 200, response.content

    async def test_the_users_rate_limit_counts_the_requests_of_all_their_keys(self):
        user = await user_make_async(username="busy")
        await budget_set_async(user=user, rpm_limit=1)
        first, second = await key_make_async(user=user), await key_make_async(user=user)
        client = AsyncClient()

        served = await chat(client, first)
        refused = await chat(client, second)

        assert served.status_code == 200, served.content
        assert served["x-ratelimit-limit-requests"] == "1"
        assert refused.status_code == 429, refused.content
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert "user 'busy'" in refused.json()["error"]["message"]

    async def test_blocking_a_user_refuses_their_keys_with_401(self):
        user = await user_make_async(username="mallory")
        secret = await key_make_async(user=user)
        client = AsyncClient()
        assert (await chat(client, secret)).status_code == 200  # the key is in the snapshots now

        await budget_set_async(user=user, blocked=True)
        response = await chat(client, secret)

        assert response.status_code == 401, response.content
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("authentication_error", "invalid_api_key")
        assert error["message"] == "The owner of this API key ('mallory') is blocked."

        await budget_set_async(user=user, blocked=False)
        assert (await chat(client, secret)).status_code == 200


async def user_make_async(**fields) -> User:
    return await sync_to_async(user_make)(**fields)


async def budget_set_async(**fields) -> UserBudget:
    return await sync_to_async(user_budget_set)(**fields)


async def key_make_async(**fields) -> str:
    """Create a key through the service; return its secret."""
    _, secret = await sync_to_async(key_make)(**fields)
    return secret


@pytest.mark.django_db
def test_the_user_admin_saves_a_new_users_budget_inline(admin_client):
    response = admin_client.post(
        "/admin/auth/user/add/",
        {
            "username": "budgeted",
            "password1": "a long passphrase 1",
            "password2": "a long passphrase 1",
            "usable_password": "true",
            "budget-TOTAL_FORMS": "1",
            "budget-INITIAL_FORMS": "0",
            "budget-0-max_budget": "25.50",
            "budget-0-budget_duration": "1mo",
            "budget-0-rpm_limit": "30",
            "budget-0-metadata": "{}",
            "_save": "Save",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    budget = UserBudget.objects.get(user__username="budgeted")
    assert (budget.max_budget, budget.budget_duration, budget.rpm_limit) == (Decimal("25.5"), "1mo", 30)
    assert (budget.tpm_limit, budget.blocked, budget.spend) == (None, False, Decimal("0"))


@pytest.mark.django_db
def test_the_user_admin_shows_the_budget_of_an_existing_user(admin_client):
    user = user_make(username="shown")
    user_budget_set(user=user, max_budget=Decimal("7"))

    page = admin_client.get(f"/admin/auth/user/{user.pk}/change/").content.decode()

    assert 'name="budget-0-max_budget"' in page
    assert 'value="7.0000000000"' in page


@pytest.mark.django_db
def test_a_blocked_users_key_is_refused_by_the_management_api_too(client):
    user = user_make(username="blocked-owner")
    _, secret = key_make(user=user)
    user_budget_set(user=user, blocked=True)

    response = client.get("/key/info", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The owner of this API key ('blocked-owner') is blocked."
