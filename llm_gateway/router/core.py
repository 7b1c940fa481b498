"""Route one request: resolve the model group, pick a deployment, retry, fall back, cool down.

``Route.run(attempt)`` calls ``attempt(deployment, upstream)`` until one succeeds:

1. The requested name becomes a model group through the key's aliases, then the team's, then
   ``router_settings.model_group_alias``. Access is decided on that group, by the key's and the
   team's allow-lists: an alias renames a group, it never grants one.
2. Candidates are the group's deployments that may be called (none referencing an environment
   variable it may not read), are not cooling down, not found unhealthy by the health checks
   (unless all are), and whose context window holds the prompt. Of those, the first
   ``order`` tier is used; within it, the group's strategy picks one.
3. A failure counts towards the deployment's cooldown when it is the deployment's fault. It is
   retried, on another deployment of the tier when there is one (immediately) or on the same one
   after a backoff that honours ``Retry-After``, up to what ``num_retries`` / the retry policy
   allows for that error; deployments that failed this request are skipped while others remain, so
   retries walk down the tiers. A deployment the upstream refuses outright (401, 403, 404: a revoked
   key, a deleted deployment) says nothing about the others: the request moves on to one it has not
   tried whatever ``num_retries`` and ``disable_cooldowns`` say, as LiteLLM does.
4. When the group gives up, the fallbacks for that error are tried in order, each as a group of its
   own (with its own retries); a fallback the caller may not use is skipped. ``total_timeout``
   bounds the whole, and each attempt's timeout is cut to what is left of it.

Callers make sure an attempt can be retried: a stream's attempt returns only once its first chunk
arrived, and nothing is resent once a byte reached the client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from django.utils import timezone

from billing.pricing import aprice_for
from llm_gateway.admission import prompt_tokens_estimate
from llm_gateway.authentication import Caller
from llm_gateway.lookups import DeploymentSnapshot, snapshots
from llm_gateway.router.cooldowns import IMMEDIATE, cooldowns, counts_as_failure
from llm_gateway.router.settings import RouterSettings
from llm_gateway.router.stats import stats
from llm_gateway.router.strategies import STRATEGIES, PickContext
from providers.exceptions import (
    APIError,
    AuthenticationError,
    ContextWindowExceededError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    Timeout,
)
from providers.resilience import backoff_delay
from providers.upstream import DEFAULT_TIMEOUT, ResolvedDeployment

T = TypeVar("T")
Attempt = Callable[[DeploymentSnapshot, ResolvedDeployment], Awaitable[T]]
# The upstream refuses this deployment (its key, its permissions, its model), not the request.
DEPLOYMENT_REFUSED = (AuthenticationError, PermissionDeniedError, NotFoundError)


class _Refused(Exception):
    """Carries a refusal of the gateway's own out of the retry and fallback loops."""

    def __init__(self, error: APIError) -> None:
        self.error = error


def group_resolve(caller: Caller, requested: str, settings: RouterSettings) -> str:
    """Return the model group a requested name means for this caller."""
    key = caller.key
    if key is not None:
        if requested in key.aliases:
            return key.aliases[requested]
        if requested in key.team_aliases:
            return key.team_aliases[requested]
    return settings.model_group_alias.get(requested, requested)


@dataclass
class Route:
    """One request's way through the router, and what it took (for headers and the ledger)."""

    caller: Caller
    requested: str
    group: str
    operation: str
    body: Mapping[str, Any]
    body_size: int  # bytes of the request: an upper bound on its prompt tokens
    stream: bool
    settings: RouterSettings
    groups: Mapping[str, Sequence[DeploymentSnapshot]]
    retries: int = 0
    fallbacks: int = 0
    started: float = field(default_factory=time.monotonic)
    attempt_began: float = 0.0
    _prompt_tokens: int | None = None

    async def run(self, attempt: Attempt[T]) -> tuple[T, DeploymentSnapshot]:
        """Return the first successful attempt's result and its deployment, or raise the last error.

        The gateway's own refusals raised by an attempt (a budget, a rate limit) end the request:
        another deployment would be refused the same way.
        """
        try:
            try:
                return await self._group_run(self.group, attempt)
            except APIError as error:
                failure = error
            for fallback in dict.fromkeys(self.settings.fallbacks_for(self.group, failure)):
                if fallback == self.group or not self.caller.may_use(fallback) or self._time_left() == 0:
                    continue
                self.fallbacks += 1
                try:
                    return await self._group_run(fallback, attempt)
                except APIError as error:
                    failure = error
            raise failure
        except _Refused as refused:
            raise refused.error from None

    async def _group_run(self, group: str, attempt: Attempt[T]) -> tuple[T, DeploymentSnapshot]:
        grouped = self.groups.get(group)
        if not grouped:
            raise NotFoundError(
                f"The model group '{group}' (a fallback of '{self.group}') has no deployment.",
                code="model_not_found",
            )
        deployments = [deployment for deployment in grouped if deployment.refused is None]
        if not deployments:
            raise ServiceUnavailableError(
                f"No deployment of model group '{group}' can be called. {grouped[0].refused}",
                code="deployment_misconfigured",
            )
        failed: set[str] = set()
        refused: set[str] = set()  # failed with DEPLOYMENT_REFUSED: retried only when nothing else is left
        retried = 0
        candidates: list[DeploymentSnapshot] | None = None
        while True:
            if candidates is None:
                candidates = await self._candidates(group, deployments, failed, refused)
            deployment = await self._pick(group, candidates)
            candidates = None
            upstream = self._upstream(deployment)
            stats.started(deployment.model_id)
            began = self.attempt_began = time.monotonic()
            try:
                return await attempt(deployment, upstream), deployment
            except APIError as error:
                if error.provider is None:
                    stats.finished(deployment.model_id, seconds=None)
                    raise _Refused(error) from None
                await self._failed(deployment, error, time.monotonic() - began, alone=len(deployments) == 1)
                failed.add(deployment.model_id)
                if isinstance(error, DEPLOYMENT_REFUSED):
                    refused.add(deployment.model_id)
                    # Not a retry of a flaky call: it uses none of num_retries, each step leaves one
                    # deployment behind, and it is counted in the retries the caller is told of.
                    candidates = await self._untried_candidates(group, deployments, failed, refused)
                    if candidates:
                        self.retries += 1
                        continue
                if retried >= self.settings.retries_for(group, error):
                    raise
                others = any(d.model_id not in failed for d in deployments)
                delay = 0.0 if others else self._backoff(retried, error)
                left = self._time_left()
                if left is not None and delay >= left:
                    raise
                retried += 1
                self.retries += 1
                if delay:
                    await asyncio.sleep(delay)
            except BaseException:  # cancelled (the client left) or a bug: the attempt is over all the same
                stats.finished(deployment.model_id, seconds=None)
                raise

    def deployment_of(self, model_id: str | None) -> DeploymentSnapshot:
        """Return the group's deployment with this id (the one a cached answer came from), else its first."""
        group = self.groups[self.group]
        return next((deployment for deployment in group if deployment.model_id == model_id), group[0])

    def finished(
        self, deployment: DeploymentSnapshot, *, first_token_seconds: float | None = None, tokens: int = 0
    ) -> None:
        """Record that the answer from ``deployment`` is complete (the strategies learn from it)."""
        stats.finished(
            deployment.model_id,
            seconds=time.monotonic() - self.attempt_began,  # its own attempt, not the failed ones before
            first_token_seconds=first_token_seconds,
            tokens=tokens,
        )

    async def _failed(
        self, deployment: DeploymentSnapshot, error: APIError, seconds: float, *, alone: bool
    ) -> None:
        # A timeout is a (lower bound of the) latency; a refusal says nothing about speed.
        stats.finished(deployment.model_id, seconds=seconds if isinstance(error, Timeout) else None)
        # A group's only deployment is not cooled down (as in LiteLLM): its own answer to the next
        # request beats a 503 from us for the whole cooldown.
        if counts_as_failure(error) and not alone and not self.settings.disable_cooldowns:
            await cooldowns().failed(
                deployment.model_id,
                immediate=isinstance(error, IMMEDIATE),
                allowed_fails=self.settings.allowed_fails,
                cooldown=deployment.cooldown_time or self.settings.cooldown_time,
            )

    def _backoff(self, retried: int, error: APIError) -> float:
        return backoff_delay(retried, error.retry_after)

    def _time_left(self) -> float | None:
        if self.settings.total_timeout is None:
            return None
        return max(self.settings.total_timeout - (time.monotonic() - self.started), 0.0)

    def _upstream(self, deployment: DeploymentSnapshot) -> ResolvedDeployment:
        timeout = deployment.timeout or self.settings.timeout or DEFAULT_TIMEOUT
        left = self._time_left()
        if left is not None:
            if left <= 0:
                raise Timeout(f"The request used up its total_timeout of {self.settings.total_timeout:g} s.")
            timeout = min(timeout, left)
        upstream = deployment.upstream
        return upstream if upstream.timeout == timeout else dataclasses.replace(upstream, timeout=timeout)

    async def _candidates(
        self, group: str, deployments: Sequence[DeploymentSnapshot], failed: set[str], refused: set[str]
    ) -> list[DeploymentSnapshot]:
        cooling = await cooldowns().active() if not self.settings.disable_cooldowns else {}
        usable = [deployment for deployment in deployments if deployment.model_id not in cooling]
        if not usable:
            wait = min(cooling[deployment.model_id] for deployment in deployments)
            raise ServiceUnavailableError(
                f"No deployment of model group '{group}' can take requests: all {len(deployments)} are "
                f"cooling down after failures; the first is retried in {wait:.1f} s.",
                code="no_deployment_available",
                retry_after=wait,
            )
        if self.settings.skip_unhealthy_deployments:
            # The health checks can be wrong (a probe's own failure): if all look unhealthy, try them.
            usable = [d for d in usable if d.health_status != "unhealthy"] or usable
        if self.settings.enable_pre_call_checks:
            usable = self._fitting(group, usable)
        # Untried deployments first; then any but those that refused this request outright.
        untried = [d for d in usable if d.model_id not in failed]
        untried = untried or [d for d in usable if d.model_id not in refused] or usable
        tier = min(deployment.order for deployment in untried)
        return [deployment for deployment in untried if deployment.order == tier]

    async def _untried_candidates(
        self, group: str, deployments: Sequence[DeploymentSnapshot], failed: set[str], refused: set[str]
    ) -> list[DeploymentSnapshot] | None:
        """Return the next candidates if none of them failed this request already, else None."""
        if self._time_left() == 0:
            return None
        try:
            candidates = await self._candidates(group, deployments, failed, refused)
        except (ServiceUnavailableError, ContextWindowExceededError):
            return None  # every other deployment cools down or is too small: the last error stands
        return candidates if all(d.model_id not in failed for d in candidates) else None

    def _fitting(self, group: str, deployments: list[DeploymentSnapshot]) -> list[DeploymentSnapshot]:
        """Return the deployments whose context window holds the prompt (counted only if it may not)."""
        windows = [d.max_input_tokens for d in deployments if d.max_input_tokens]
        if not windows or self.body_size <= min(windows):
            return deployments
        if self._prompt_tokens is None:
            self._prompt_tokens = prompt_tokens_estimate(
                self.operation, deployments[0].upstream.model, dict(self.body)
            )
        fitting = [
            d for d in deployments if not d.max_input_tokens or self._prompt_tokens <= d.max_input_tokens
        ]
        if not fitting:
            raise ContextWindowExceededError(
                f"The prompt ({self._prompt_tokens} tokens) exceeds the context window of every deployment "
                f"of model group '{group}' (at most {max(windows)} tokens).",
                code="context_length_exceeded",
                param="messages",
            )
        return fitting

    async def _pick(self, group: str, candidates: list[DeploymentSnapshot]) -> DeploymentSnapshot:
        if len(candidates) == 1:
            return candidates[0]
        strategy = self.settings.strategy_for(group)
        prices: dict[str, Decimal] = {}
        if strategy == "cost-based-routing":
            prices = await _prices(candidates)
        return STRATEGIES[strategy](candidates, PickContext(stats=stats, stream=self.stream, prices=prices))


async def _prices(candidates: Sequence[DeploymentSnapshot]) -> dict[str, Decimal]:
    """Return each priced deployment's input + output price per token."""
    now = timezone.now()
    prices = {}
    for deployment in candidates:
        upstream = deployment.upstream
        quote = await aprice_for(upstream.model, upstream.provider, deployment.model_id, now)
        per_token = [quote.prices.get(name) for name in ("input_cost_per_token", "output_cost_per_token")]
        if any(price is not None for price in per_token):
            prices[deployment.model_id] = sum((price or Decimal(0) for price in per_token), Decimal(0))
    return prices


async def route_start(
    caller: Caller, requested: str, operation: str, body: Mapping[str, Any], body_size: int, stream: bool
) -> Route:
    """Return the route of a request, or raise 403 (model not allowed) / 404 (unknown model)."""
    groups = await snapshots.deployments_get()
    settings = await snapshots.router_settings_get()
    group = group_resolve(caller, requested, settings)
    if not caller.may_use(group):
        raise PermissionDeniedError(
            f"This key may not use model '{requested}'.", code="model_not_allowed", param="model"
        )
    if not groups.get(group):
        raise NotFoundError(
            f"The model '{requested}' does not exist on this gateway.", code="model_not_found", param="model"
        )
    return Route(
        caller=caller,
        requested=requested,
        group=group,
        operation=operation,
        body=body,
        body_size=body_size,
        stream=stream,
        settings=settings,
        groups=groups,
    )


def route_headers(route: Route) -> dict[str, str]:
    """Return LiteLLM's headers saying what a request took: retries and fallbacks attempted."""
    return {
        "x-litellm-attempted-retries": str(route.retries),
        "x-litellm-attempted-fallbacks": str(route.fallbacks),
    }


async def models_visible(caller: Caller) -> list[str]:
    """Return the model groups this caller may use and the aliases it may call them by, sorted.

    An alias is listed when the group it resolves to for this caller exists and may be used;
    ``model_group_alias`` entries marked ``hidden`` are not listed.
    """
    groups = await snapshots.deployments_get()
    settings = await snapshots.router_settings_get()
    names = set(groups) | (set(settings.model_group_alias) - settings.hidden_aliases)
    if caller.key is not None:
        names |= set(caller.key.aliases) | set(caller.key.team_aliases)
    # Each name as route_start reads it: a group name an alias shadows means the alias's group.
    resolved = {name: group_resolve(caller, name, settings) for name in names}
    return sorted(name for name, group in resolved.items() if groups.get(group) and caller.may_use(group))
