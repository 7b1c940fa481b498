"""The routing strategies: choose one deployment among the healthy candidates of a model group.

Each is a function of the candidates (already filtered for cooldowns, health and context window, and
narrowed to one priority tier) and what the router knows about them; names are LiteLLM's. Ties are
broken at random so equal deployments share the load.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from llm_gateway.lookups import DeploymentSnapshot
from llm_gateway.router.stats import RouterStats


@dataclass(frozen=True)
class PickContext:
    stats: RouterStats
    stream: bool = False
    prices: Mapping[str, Decimal] = field(default_factory=dict)  # model_id -> price per 1M tokens
    rng: Callable[[], float] = random.random


UNPRICED = Decimal("Infinity")

Strategy = Callable[[Sequence[DeploymentSnapshot], PickContext], DeploymentSnapshot]


def _weighted(candidates: Sequence[DeploymentSnapshot], weights: Sequence[float], rng) -> DeploymentSnapshot:
    total = sum(weights)
    if total <= 0:
        return candidates[int(rng() * len(candidates)) % len(candidates)]
    point = rng() * total
    for deployment, weight in zip(candidates, weights, strict=True):
        point -= weight
        if point < 0:
            return deployment
    return candidates[-1]


def _lowest(candidates: Sequence[DeploymentSnapshot], score, rng) -> DeploymentSnapshot:
    best = min(score(deployment) for deployment in candidates)
    tied = [deployment for deployment in candidates if score(deployment) == best]
    return _weighted(tied, [1.0] * len(tied), rng)


def simple_shuffle(candidates: Sequence[DeploymentSnapshot], context: PickContext) -> DeploymentSnapshot:
    """At random, in proportion to ``weight`` when weights differ, else to rpm, else tpm, else evenly."""
    for weights in (
        [deployment.weight for deployment in candidates],
        [float(deployment.rpm or 0) for deployment in candidates],
        [float(deployment.tpm or 0) for deployment in candidates],
    ):
        if len(set(weights)) > 1 and all(weight > 0 for weight in weights):
            return _weighted(candidates, weights, context.rng)
    weights = [deployment.weight for deployment in candidates]
    return _weighted(candidates, weights, context.rng)


def least_busy(candidates: Sequence[DeploymentSnapshot], context: PickContext) -> DeploymentSnapshot:
    """The one with the fewest requests in flight from this instance."""
    return _lowest(
        candidates, lambda deployment: context.stats.of(deployment.model_id).in_flight, context.rng
    )


def latency_based(candidates: Sequence[DeploymentSnapshot], context: PickContext) -> DeploymentSnapshot:
    """The fastest lately (time to first token for streams); an unmeasured one is tried first."""

    def score(deployment: DeploymentSnapshot) -> float:
        latency = context.stats.latency(deployment.model_id, context.stream)
        return -1.0 if latency is None else latency

    return _lowest(candidates, score, context.rng)


def usage_based(candidates: Sequence[DeploymentSnapshot], context: PickContext) -> DeploymentSnapshot:
    """The one with the most rpm/tpm headroom left this minute (as a share of its limits)."""

    def score(deployment: DeploymentSnapshot) -> tuple[float, int]:
        stats = context.stats.of(deployment.model_id)
        shares = [
            (limit - used) / limit
            for limit, used in ((deployment.rpm, stats.requests), (deployment.tpm, stats.tokens))
            if limit
        ]
        headroom = min(shares) if shares else 1.0
        return (-headroom, stats.tokens)

    return _lowest(candidates, score, context.rng)


def cost_based(candidates: Sequence[DeploymentSnapshot], context: PickContext) -> DeploymentSnapshot:
    """The cheapest by input + output price per token; an unpriced one comes last."""
    return _lowest(
        candidates, lambda deployment: context.prices.get(deployment.model_id, UNPRICED), context.rng
    )


STRATEGIES: dict[str, Strategy] = {
    "simple-shuffle": simple_shuffle,
    "least-busy": least_busy,
    "latency-based-routing": latency_based,
    "usage-based-routing": usage_based,
    "cost-based-routing": cost_based,
}
