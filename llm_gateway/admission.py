"""Turn a request into what the limiter must check: its budgets, its rate limits, its worst-case cost.

Budgets: the key's, its team's, its owner's (the user who owns the key), the end user's (OpenAI's
``user`` field) and the key's per-model budget (``model_max_budget``). Rate limits: key, team, owner,
end user, and the deployment's own capacity. The hold is the request's worst-case cost: every prompt
token at the input price and the full output cap (the request's ``max_tokens``, else the model's own
output limit, times its ``n`` choices) at the output price.

Long prompts are bounded rather than counted: tokenizing costs about a millisecond per 10 KB of
prompt on the event loop, for every request, while the prompt's UTF-8 size is a count it can never
exceed (``providers.tokens.token_upper_bound``) and costs microseconds. A hold on the bound is still a
worst case, so budgets hold all the same. When the bound would be refused (by a budget, or by a TPM
limit that the bound pushes over) the limiter counts the prompt and decides again on the exact plan,
so such a request is admitted exactly as before; what the bound costs is holds and TPM counts a few
times larger on the prompt's share, for the requests in flight, until they settle. Short prompts
(``EXACT_COUNT_MAX_TOKENS``), where counting is cheap, are counted exactly as they always were.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from billing.costs import PriceQuote, worst_case_cost
from billing.limits.periods import budget_period
from billing.limits.types import AdmissionPlan, BudgetLimit, RateLimit
from llm_gateway.lookups import DeploymentSnapshot, KeySnapshot, LimitsSnapshot
from providers.price_table import model_info
from providers.tokens import token_counter, token_upper_bound

DEFAULT_OUTPUT_CAP = 4096  # when neither the request nor the price table gives an output limit
# Prompts whose bound is at most this are tokenized: about 1 KB of text, under 0.1 ms to count.
EXACT_COUNT_MAX_TOKENS = 1024


# What _budget and _rate_limit built, per (scope, entity id): the limits of an entity change only when
# its snapshot is replaced, and a budget's period only at its end, so most requests reuse them.
# (snapshot, name, valid from, valid until, limit): valid while the snapshot is the same object.
_budgets: dict[tuple[str, str], tuple[LimitsSnapshot, str, datetime, datetime | None, BudgetLimit]] = {}
_rate_limits: dict[tuple[str, str], tuple[LimitsSnapshot, str, RateLimit | None]] = {}
MAX_REMEMBERED_LIMITS = 100_000


def _remember(table: dict, key: tuple[str, str], entry: tuple) -> None:
    if len(table) >= MAX_REMEMBERED_LIMITS:
        table.clear()
    table[key] = entry


def _budget(
    scope: str, entity_id: str, name: str, limits: LimitsSnapshot, now: datetime
) -> BudgetLimit | None:
    if limits.max_budget is None:
        return None
    known = _budgets.get((scope, entity_id))
    if known is not None:
        known_limits, known_name, since, until, budget = known
        if known_limits is limits and known_name == name and since <= now and (until is None or now < until):
            return budget
    start, end = budget_period(limits.budget_duration, limits.budget_reset_at, now)
    reset_at = limits.budget_reset_at
    # The stored spend belongs to the period ending at budget_reset_at; a later period starts at zero.
    same_period = end is None or reset_at is None or reset_at >= now
    budget = BudgetLimit(
        scope=scope,
        id=entity_id,
        name=name,
        max_budget=limits.max_budget,
        period_start=start,
        period_end=end,
        spent_before=limits.spend if same_period else Decimal("0"),
    )
    # The period holds until its end; same_period until budget_reset_at passes.
    until = min(end, reset_at) if end is not None and reset_at is not None and reset_at >= now else end
    _remember(_budgets, (scope, entity_id), (limits, name, now, until, budget))
    return budget


def _rate_limit(scope: str, entity_id: str, limits: LimitsSnapshot, name: str = "") -> RateLimit | None:
    known = _rate_limits.get((scope, entity_id))
    if known is not None and known[0] is limits and known[1] == name:
        return known[2]
    limit = None
    if (limits.rpm_limit, limits.tpm_limit, limits.max_parallel_requests) != (None, None, None):
        limit = RateLimit(
            scope=scope,
            id=entity_id,
            rpm=limits.rpm_limit,
            tpm=limits.tpm_limit,
            max_parallel=limits.max_parallel_requests,
            name=name,
        )
    _remember(_rate_limits, (scope, entity_id), (limits, name, limit))
    return limit


def _model_budget(key: KeySnapshot, model_group: str, now: datetime) -> BudgetLimit | None:
    """Return the key's budget for one model (LiteLLM: a number, or {budget_limit, time_period})."""
    setting = key.model_max_budget.get(model_group)
    if setting is None:
        return None
    limit, duration = (
        (setting.get("budget_limit"), setting.get("time_period", ""))
        if isinstance(setting, dict)
        else (setting, "")
    )
    try:
        max_budget = Decimal(str(limit))
    except (InvalidOperation, ValueError):
        return None
    start, end = budget_period(duration or "", None, now)
    return BudgetLimit(
        scope="key_model",
        id=f"{key.token}:{model_group}",
        max_budget=max_budget,
        name=f"key '{key.key_alias or key.token}' budget for model '{model_group}'",
        period_start=start,
        period_end=end,
    )


def prompt_tokens_estimate(operation: str, model: str, body: dict[str, Any]) -> int:
    """Return the prompt's token count with the bundled tokenizer (an estimate for non-OpenAI models)."""
    if operation == "chat":
        return token_counter(model=model, messages=list(body.get("messages") or ()), tools=body.get("tools"))
    text = body.get("prompt") if operation in ("text_completion", "image_generation") else body.get("input")
    if isinstance(text, list) and all(isinstance(item, str) for item in text):
        return token_counter(model=model, text=text)
    if isinstance(text, str):
        return token_counter(model=model, text=text)
    return len(text) if isinstance(text, list) else 0  # token arrays: one token an item


def prompt_tokens_bound(operation: str, body: dict[str, Any]) -> int:
    """Return a count that ``prompt_tokens_estimate`` never exceeds, for any model, without tokenizing."""
    if operation == "chat":
        messages = body.get("messages") or ()
        return token_upper_bound(messages=list(messages), tools=body.get("tools"))
    text = body.get("prompt") if operation in ("text_completion", "image_generation") else body.get("input")
    if isinstance(text, str) or (isinstance(text, list) and all(isinstance(item, str) for item in text)):
        return token_upper_bound(text=text)
    return len(text) if isinstance(text, list) else 0  # token arrays: one token an item, as counted


def _count(value: Any) -> int:
    """Return a positive integer field's value (``n``), 1 when it is absent (fields are checked upstream)."""
    return value if type(value) is int and value > 0 else 1


def output_cap(operation: str, deployment: DeploymentSnapshot, body: dict[str, Any]) -> int:
    """Return the most output tokens a request can bill: each of its ``n`` choices up to its cap.

    The cap is the request's ``max_completion_tokens`` or ``max_tokens``, else the model's own output
    limit. Embeddings have no output; images are priced per image (``n`` of them) instead.
    """
    if operation in ("embedding", "image_generation"):
        return 0
    requested = body.get("max_completion_tokens") or body.get("max_tokens")
    if type(requested) is not int or requested <= 0:
        info = model_info(deployment.upstream.model, deployment.upstream.provider) or {}
        requested = int(info.get("max_output_tokens") or info.get("max_tokens") or DEFAULT_OUTPUT_CAP)
    return requested * _count(body.get("n"))


def admission_plan(
    *,
    request_id: str,
    key: KeySnapshot | None,
    end_user: tuple[str, str, LimitsSnapshot] | None,
    deployment: DeploymentSnapshot,
    operation: str,
    body: dict[str, Any],
    quote: PriceQuote,
    now: datetime,
) -> AdmissionPlan:
    """Return the limiter's plan for one request (the master key has no budgets or limits of its own)."""
    budgets: list[BudgetLimit | None] = []
    rate_limits: list[RateLimit | None] = [
        RateLimit(scope="deployment", id=deployment.model_id, rpm=deployment.rpm, tpm=deployment.tpm)
        if deployment.rpm or deployment.tpm
        else None
    ]
    if key is not None:
        key_name = f"key '{key.key_alias or key.token}'"
        budgets += [
            _budget("key", key.token, key_name, key.limits, now),
            _model_budget(key, deployment.model_name, now),
        ]
        rate_limits.append(_rate_limit("key", key.token, key.limits))
        if key.team_id:
            team_name = f"team '{key.team_alias}'"
            budgets.append(_budget("team", key.team_id, team_name, key.team_limits, now))
            rate_limits.append(_rate_limit("team", key.team_id, key.team_limits))
        if key.user_id is not None:
            # The id is the owner's primary key, as the ledger's user_id column holds it; people read
            # the username.
            owner_id, owner_name = str(key.user_id), f"user '{key.user_name}'"
            budgets.append(_budget("user", owner_id, owner_name, key.user_limits, now))
            rate_limits.append(_rate_limit("user", owner_id, key.user_limits, owner_name))
    if end_user is not None:
        # Counted under the scoped id (llm_gateway.end_user_scopes): one team's "cust" is not another's.
        limiter_id, user_id, limits = end_user
        budgets.append(_budget("end_user", limiter_id, f"end user '{user_id}'", limits, now))
        rate_limits.append(_rate_limit("end_user", limiter_id, limits, f"end user '{user_id}'"))
    held_budgets = tuple(budget for budget in budgets if budget is not None)
    limits = tuple(limit for limit in rate_limits if limit is not None)
    if not held_budgets and not any(limit.tpm for limit in limits):
        return AdmissionPlan(request_id=request_id, rate_limits=limits)
    cap = output_cap(operation, deployment, body)
    images = _count(body.get("n")) if operation == "image_generation" else 0

    def plan(prompt_tokens: int, exact_plan: Callable[[], AdmissionPlan] | None) -> AdmissionPlan:
        reserve = worst_case_cost(quote, prompt_tokens, cap, images=images) if held_budgets else Decimal("0")
        return AdmissionPlan(
            request_id=request_id,
            budgets=held_budgets,
            rate_limits=limits,
            reserve=reserve,
            estimated_tokens=prompt_tokens + cap,
            exact_plan=exact_plan,
        )

    def counted() -> AdmissionPlan:
        return plan(prompt_tokens_estimate(operation, deployment.upstream.model, body), None)

    bound = prompt_tokens_bound(operation, body)
    return counted() if bound <= EXACT_COUNT_MAX_TOKENS else plan(bound, counted)
