"""What a request asks of the limiter: holds on a bounded or counted prompt, limits that follow the
key's snapshot and its budget period.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from billing.costs import INPUT, OUTPUT, quote_make, worst_case_cost
from billing.limits.types import AdmissionPlan
from llm_gateway.admission import EXACT_COUNT_MAX_TOKENS, admission_plan, prompt_tokens_estimate
from llm_gateway.crypto import virtual_key_hash
from llm_gateway.lookups import KeySnapshot, LimitsSnapshot, deployment_snapshot, snapshots
from llm_gateway.services.deployments import deployment_create
from providers.price_table import model_info
from tests.llm_gateway.factories import key_make

QUOTE = quote_make({INPUT: Decimal("0.000001"), OUTPUT: Decimal("0.000002")}, source="test")
MAX_TOKENS = 10
SHORT = [{"role": "user", "content": "Hello"}]
LONG = [{"role": "user", "content": "The quick brown fox jumps over the lazy dog. " * 100}]

pytestmark = pytest.mark.django_db


@pytest.fixture
def key() -> KeySnapshot:
    _, secret = key_make(max_budget=Decimal("10"), budget_duration="1d", tpm_limit=100_000)
    return async_to_sync(snapshots.key_get)(virtual_key_hash(secret))


@pytest.fixture
def plan_for():
    deployment = deployment_snapshot(deployment_create(model_name="demo", provider="mock", model="demo"))

    def plan_for(key: KeySnapshot, messages: list[dict], now=None) -> AdmissionPlan:
        return admission_plan(
            request_id="req-test",
            key=key,
            end_user=None,
            deployment=deployment,
            operation="chat",
            body={"messages": messages, "max_tokens": MAX_TOKENS},
            quote=QUOTE,
            now=now or timezone.now(),
        )

    return plan_for


def test_a_short_prompt_is_counted_exactly(key, plan_for):
    counted = prompt_tokens_estimate("chat", "demo", {"messages": SHORT})

    plan = plan_for(key, SHORT)

    assert plan.estimated_tokens == counted + MAX_TOKENS
    assert plan.reserve == worst_case_cost(QUOTE, counted, MAX_TOKENS)
    assert plan.exact_plan is None


def test_a_long_prompt_is_held_on_a_bound_and_counted_only_when_asked(key, plan_for):
    counted = prompt_tokens_estimate("chat", "demo", {"messages": LONG})

    plan = plan_for(key, LONG)
    exact = plan.exact_plan()

    assert plan.estimated_tokens - MAX_TOKENS > max(counted, EXACT_COUNT_MAX_TOKENS)
    assert plan.reserve > worst_case_cost(QUOTE, counted, MAX_TOKENS)
    assert (exact.estimated_tokens, exact.reserve) == (
        counted + MAX_TOKENS,
        worst_case_cost(QUOTE, counted, MAX_TOKENS),
    )
    assert (exact.budgets, exact.rate_limits, exact.exact_plan) == (plan.budgets, plan.rate_limits, None)


def test_a_changed_snapshot_changes_the_plan(key, plan_for):
    before = plan_for(key, SHORT)
    raised = dataclasses.replace(key, limits=dataclasses.replace(key.limits, max_budget=Decimal("20")))

    after = plan_for(raised, SHORT)

    assert [budget.max_budget for budget in before.budgets] == [Decimal("10")]
    assert [budget.max_budget for budget in after.budgets] == [Decimal("20")]


def test_the_next_budget_period_starts_with_nothing_spent(key, plan_for):
    now = timezone.now()
    limits = LimitsSnapshot(
        max_budget=Decimal("10"),
        spend=Decimal("4"),
        budget_duration="1d",
        budget_reset_at=now + timedelta(hours=1),
    )
    spending = dataclasses.replace(key, limits=limits)

    (this_period,) = plan_for(spending, SHORT, now).budgets
    (next_period,) = plan_for(spending, SHORT, now + timedelta(hours=2)).budgets

    assert (this_period.period_end, this_period.spent_before) == (limits.budget_reset_at, Decimal("4"))
    assert (next_period.period_end, next_period.spent_before) == (
        limits.budget_reset_at + timedelta(days=1),
        Decimal("0"),
    )



@pytest.mark.parametrize("max_tokens", [None, MAX_TOKENS])
def test_every_choice_of_n_is_held_at_its_output_cap_with_or_without_max_tokens(key, max_tokens):
    deployment = deployment_snapshot(
        deployment_create(model_name="mini", provider="openai", model="gpt-4o-mini", api_key="sk-test")
    )
    # Without max_tokens a choice may reach the model's own output limit (the price table's).
    cap = max_tokens or model_info("gpt-4o-mini", "openai")["max_output_tokens"]
    counted = prompt_tokens_estimate("chat", "gpt-4o-mini", {"messages": SHORT})

    def plan(n: int | None) -> AdmissionPlan:
        body = {"messages": SHORT, "n": n, **({"max_tokens": max_tokens} if max_tokens else {})}
        return admission_plan(
            request_id="req-n",
            key=key,
            end_user=None,
            deployment=deployment,
            operation="chat",
            body=body,
            quote=QUOTE,
            now=timezone.now(),
        )

    one, many = plan(None), plan(128)

    assert cap > 1000 if max_tokens is None else cap == MAX_TOKENS
    assert one.reserve == worst_case_cost(QUOTE, counted, cap)
    assert many.reserve == worst_case_cost(QUOTE, counted, cap * 128)
    assert many.estimated_tokens == counted + cap * 128
