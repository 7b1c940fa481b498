"""Pick the deployment that serves a request: resolve aliases, check access, choose within the group.

Within a model group the lowest ``order`` tier is used, and within it a deployment is drawn at random
in proportion to its ``weight`` (LiteLLM's ``simple-shuffle``). Health, cooldowns and the other
strategies belong to the router (issue 5); this is the baseline it replaces.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from llm_gateway.authentication import Caller
from llm_gateway.lookups import DeploymentSnapshot, snapshots
from providers.exceptions import NotFoundError, PermissionDeniedError


def model_name_resolve(caller: Caller, requested: str) -> str:
    """Return the model group a requested name means for this caller (key aliases applied)."""
    if caller.key is not None:
        return caller.key.aliases.get(requested, requested)
    return requested


def deployment_choose(
    group: Sequence[DeploymentSnapshot], rng: Callable[[], float] = random.random
) -> DeploymentSnapshot:
    """Return a deployment of the first tier, drawn in proportion to its weight."""
    tier = min(deployment.order for deployment in group)
    candidates = [deployment for deployment in group if deployment.order == tier]
    total = sum(deployment.weight for deployment in candidates)
    if total <= 0:
        return candidates[0]
    point = rng() * total
    for deployment in candidates:
        point -= deployment.weight
        if point < 0:
            return deployment
    return candidates[-1]


async def deployment_route(caller: Caller, requested: str) -> DeploymentSnapshot:
    """Return the deployment to call for ``requested``, or raise 403 (not allowed) / 404 (unknown)."""
    name = model_name_resolve(caller, requested)
    if not caller.may_use(name) and not caller.may_use(requested):
        raise PermissionDeniedError(
            f"This key may not use model '{requested}'.", code="model_not_allowed", param="model"
        )
    group = (await snapshots.deployments_get()).get(name)
    if not group:
        raise NotFoundError(
            f"The model '{requested}' does not exist on this gateway.", code="model_not_found", param="model"
        )
    return deployment_choose(group)


async def models_visible(caller: Caller) -> list[str]:
    """Return the model group names this caller may use, sorted."""
    groups = await snapshots.deployments_get()
    return sorted(name for name in groups if caller.may_use(name))
