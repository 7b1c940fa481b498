"""Meter one inference request: admit it against budgets and limits, then price, settle and record it.

``meter_start`` runs before the upstream call (it raises 429 when a budget or limit says no);
``Meter.finish`` runs once the answer (or the failure) is known: it prices the usage, replaces the
budget hold with the actual cost, and hands the ledger record to the writer. The response carries
LiteLLM's headers: call id, cost, key spend, deployment id and the gateway's own overhead.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from billing.costs import PriceQuote, cost_of, quote_make, usage_buckets
from billing.ledger import ledger_writer
from billing.limits import limiter
from billing.limits.types import Admission
from billing.models import LedgerEntry
from billing.pricing import aprice_for
from billing.records import UsageRecord
from llm_gateway.admission import admission_plan, prompt_tokens_estimate
from llm_gateway.authentication import Caller
from llm_gateway.end_user_scopes import GATEWAY_SCOPE, EndUserScope
from llm_gateway.lookups import DeploymentSnapshot, snapshots
from providers.exceptions import APIError, AuthenticationError
from providers.pricing import image_cost

BASIS = LedgerEntry.BillingBasis
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a request whose client left before the answer
CACHE_HIT_QUOTE = quote_make({}, source="cache")  # no prices: a cached answer costs nothing


@dataclass
class Meter:
    request_id: str
    caller: Caller
    deployment: DeploymentSnapshot
    model_requested: str
    operation: str
    body: dict[str, Any]
    quote: PriceQuote
    started: float
    created_at: datetime
    end_user: str = ""
    admission: Admission | None = None
    upstream_seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    price_snapshot: dict[str, str] | None = None  # when the charge did not come from the quote
    retries: int = 0
    fallbacks: int = 0
    cache_hit: bool = False

    def attempted(self, retries: int, fallbacks: int) -> None:
        """Record the retries and fallbacks the request took before (or instead of) this answer."""
        self.retries, self.fallbacks = retries, fallbacks
        self.headers["x-litellm-attempted-retries"] = str(retries)
        self.headers["x-litellm-attempted-fallbacks"] = str(fallbacks)

    async def release(self) -> None:
        """Give back this attempt's budget hold and slots: it failed, and another may follow."""
        if self.admission is not None:
            await limiter().release(self.admission)

    def upstream_started(self) -> float:
        return time.monotonic()

    def upstream_finished(self, since: float) -> None:
        self.upstream_seconds += time.monotonic() - since

    def _asked_usage(self) -> tuple[dict[str, Any], str, int]:
        """Return (usage, basis, images) for an upstream call whose answer never came: the prompt's tokens,
        or the images asked for, which the provider charges for all the same."""
        if self.operation == "image_generation":
            return {}, BASIS.ESTIMATED, _images_asked(self.body)
        prompt = prompt_tokens_estimate(self.operation, self.deployment.upstream.model, self.body)
        return {"prompt_tokens": prompt, "completion_tokens": 0, "total_tokens": prompt}, BASIS.ESTIMATED, 0

    def _cost(self, usage: dict[str, Any], images: int) -> Decimal:
        if not usage and not images:
            return Decimal("0")
        cost = cost_of(self.quote, usage, self.operation, images=images)
        if cost or self.operation != "image_generation" or not images:
            return cost
        # The price list has no flat per-image price for this model: the bundled table prices images
        # by size and quality (e.g. azure/hd/1024-x-1792/dall-e-3), which only the request knows.
        upstream = self.deployment.upstream
        for model in filter(None, (self.quote.snapshot.get("base_model"), upstream.model)):
            size, quality = self.body.get("size"), self.body.get("quality")
            try:
                cost = image_cost(
                    model, provider=upstream.provider, images=images, usage=usage, size=size, quality=quality
                )
            except APIError:
                continue
            self.price_snapshot = {
                "source": "price_table",
                "model": model,
                "size": str(size or ""),
                "quality": str(quality or ""),
            }
            return cost
        return cost

    async def finish(
        self,
        *,
        usage: dict[str, Any] | None,
        basis: str = BASIS.PROVIDER_REPORTED,
        error: APIError | None = None,
        images: int = 0,
        time_to_first_token_ms: int | None = None,
        response: Any = None,
        cancelled: bool = False,
    ) -> dict[str, str]:
        """Price, settle and record the request; return the headers to send with its answer.

        ``cancelled``: the client went away before its answer was complete; the row says so (status
        ``cancelled``, HTTP 499 as nginx logs it) and is billed on ``usage`` all the same, or, when
        the upstream reported none, on what it was asked to do (see ``_asked_usage``).
        """
        if cancelled and usage is None:
            usage, basis, images = self._asked_usage()
        buckets = usage_buckets(usage or {})
        cost = self._cost(usage or {}, images)
        key_spend = None
        if self.admission is not None:
            tokens = buckets["prompt_tokens"] + buckets["completion_tokens"]
            key_spend = await limiter().settle(self.admission, cost=cost, tokens=tokens)
        elapsed = time.monotonic() - self.started
        key = self.caller.key
        await ledger_writer().write(
            UsageRecord(
                request_id=self.request_id,
                created_at=self.created_at,
                key_token=key.token if key else "",
                key_alias=key.key_alias if key else "master",
                team_id=(key.team_id or "") if key else "",
                user_id=str(key.user_id or "") if key else "",
                end_user=self.end_user,
                model_requested=self.model_requested,
                model_group=self.deployment.model_name,
                deployment_id=self.deployment.model_id,
                provider=self.deployment.upstream.provider,
                provider_model=self.deployment.upstream.model,
                operation=self.operation,
                stream=bool(self.body.get("stream")),
                **buckets,
                images=images,
                cost=cost,
                price=self.price_snapshot or self.quote.snapshot,
                latency_ms=int(elapsed * 1000),
                time_to_first_token_ms=time_to_first_token_ms,
                status=_status(error, cancelled),
                http_status=error.status_code if error else CLIENT_CLOSED_REQUEST if cancelled else 200,
                error_type=(error.code or error.type) if error else "",
                billing_basis=basis,
                cache_hit=self.cache_hit,
                retries=self.retries,
                fallbacks=self.fallbacks,
                messages=self.body.get("messages") if key and key.store_prompts else None,
                response=response if key and key.store_prompts else None,
            )
        )
        headers = {
            **self.headers,
            "x-litellm-response-cost": format(cost, "f"),
            "x-litellm-overhead-duration-ms": f"{max(elapsed - self.upstream_seconds, 0) * 1000:.3f}",
        }
        if key_spend is not None:
            headers["x-litellm-key-spend"] = format(key_spend, "f")
        return headers


# Meters finishing in tasks of their own; the server waits for them before it flushes the ledger.
_finishing: set[asyncio.Task] = set()


def meter_finish_later(meter: Meter, **outcome: Any) -> asyncio.Task[dict[str, str]]:
    """Run ``meter.finish(**outcome)`` in a task of its own, which the request's cancellation cannot stop."""
    task = asyncio.get_running_loop().create_task(meter.finish(**outcome))
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)
    return task


async def meter_finish(meter: Meter, **outcome: Any) -> dict[str, str]:
    """Return ``meter.finish(**outcome)``; a client leaving meanwhile cancels the wait, not the finish.

    Settling the hold and handing the row to the ledger writer are two awaits: a cancellation between
    them would leave a served request held and unrecorded.
    """
    return await asyncio.shield(meter_finish_later(meter, **outcome))


async def meters_finished() -> None:
    """Wait for the meters still finishing in the background (before the ledger writer is closed)."""
    while _finishing:
        await asyncio.gather(*_finishing, return_exceptions=True)


def _images_asked(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


def _status(error: APIError | None, cancelled: bool) -> str:
    if error is not None:
        return LedgerEntry.Status.ERROR
    return LedgerEntry.Status.CANCELLED if cancelled else LedgerEntry.Status.SUCCESS


async def meter_start(
    *,
    caller: Caller,
    deployment: DeploymentSnapshot,
    model_requested: str,
    operation: str,
    body: dict[str, Any],
    cache_hit: bool = False,
) -> Meter:
    """Return the meter of a request admitted by every budget and limit (or raise the 429 that refused it).

    A cache hit is answered without a deployment call: it is free, and takes no hold or slot.
    """
    now = timezone.now()
    end_user = body.get("user") if isinstance(body.get("user"), str) else ""
    end_user_limits = None
    if end_user:
        key = caller.key
        # The caller's own end users: its team's, else its owner's, else the gateway's (master key).
        scope = EndUserScope.of_key(team_id=key.team_id, owner_id=key.user_id) if key else GATEWAY_SCOPE
        limits, blocked = await snapshots.end_user_get(scope, end_user)
        if blocked:
            raise AuthenticationError(f"The end user '{end_user}' is blocked.", code="end_user_blocked")
        end_user_limits = (scope.limiter_id(end_user), end_user, limits)
    upstream = deployment.upstream
    meter = Meter(
        request_id=f"req-{uuid.uuid4().hex}",
        caller=caller,
        deployment=deployment,
        model_requested=model_requested,
        operation=operation,
        body=body,
        quote=CACHE_HIT_QUOTE
        if cache_hit
        else await aprice_for(upstream.model, upstream.provider, deployment.model_id, now),
        started=time.monotonic(),
        created_at=now,
        end_user=end_user,
        cache_hit=cache_hit,
    )
    meter.headers = {
        "x-litellm-call-id": meter.request_id,
        "x-request-id": meter.request_id,
        "x-litellm-model-id": deployment.model_id,
        "x-litellm-model-group": deployment.model_name,
    }
    if cache_hit:
        meter.headers["x-litellm-cache-hit"] = "True"
        return meter
    plan = admission_plan(
        request_id=meter.request_id,
        key=caller.key,
        end_user=end_user_limits,
        deployment=deployment,
        operation=operation,
        body=body,
        quote=meter.quote,
        now=now,
    )
    if plan.budgets or plan.rate_limits:
        meter.admission = await limiter().admit(plan)
        meter.headers.update(meter.admission.headers)
    return meter
